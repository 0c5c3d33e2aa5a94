"""Receipts: numbered in one unbroken sequence per series, issued once per reference.

The number is taken by incrementing the series' row inside the caller's transaction: the
row stays locked until commit, so concurrent issuers queue, and a rolled-back transaction
gives its number back. Nothing is skipped, nothing is used twice.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from extensions import db
from payments.models import Receipt, ReceiptSequence


def _take_number(series: str) -> int:
    bumped = db.session.execute(
        update(ReceiptSequence)
        .where(ReceiptSequence.series == series)
        .values(next_number=ReceiptSequence.next_number + 1)
    ).rowcount
    if not bumped:
        try:
            with db.session.begin_nested():
                db.session.add(ReceiptSequence(series=series, next_number=1))
        except IntegrityError:
            pass  # created meanwhile by a concurrent issuer
        return _take_number(series)
    following = db.session.scalar(
        select(ReceiptSequence.next_number)
        .where(ReceiptSequence.series == series)
        .execution_options(populate_existing=True)
    )
    return int(following) - 1


def issue_receipt(
    *,
    reference: str,
    series: str,
    language: str,
    currency: str,
    total_minor: int,
    net_minor: int,
    vat_rate: Decimal,
    payment_reference: str,
    card_brand: str | None,
    card_last4: str | None,
    details: dict[str, Any],
    seller: dict[str, Any],
) -> Receipt:
    """The receipt for `reference`, issued now unless it already was. Does not commit."""
    existing = db.session.scalar(select(Receipt).where(Receipt.reference == reference))
    if existing is not None:
        return existing
    receipt = Receipt(
        series=series,
        number=_take_number(series),
        reference=reference,
        language=language,
        currency=currency,
        total_minor=total_minor,
        net_minor=net_minor,
        vat_minor=total_minor - net_minor,
        vat_rate=vat_rate,
        payment_reference=payment_reference,
        card_brand=card_brand,
        card_last4=card_last4,
        details=details,
        seller=seller,
    )
    db.session.add(receipt)
    db.session.flush()
    return receipt


def find_by_token(token: str) -> Receipt | None:
    return db.session.scalar(select(Receipt).where(Receipt.public_token == token))
