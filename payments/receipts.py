"""Receipts and credit notes: numbered in one unbroken sequence per series.

The number is taken by incrementing the series' row inside the caller's transaction: the
row stays locked until commit, so concurrent issuers queue, and a rolled-back transaction
gives its number back. Nothing is skipped, nothing is used twice. A receipt is issued once
per reference; a credit note (a refund's negative receipt) takes its number from the same
series as the receipt it credits.
"""

from __future__ import annotations

import logging
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from extensions import after_commit, db, rows_changed
from payments import signals
from payments.models import Receipt, ReceiptSequence

log = logging.getLogger(__name__)


def _take_number(series: str) -> int:
    bumped = rows_changed(
        update(ReceiptSequence)
        .where(ReceiptSequence.series == series)
        .values(next_number=ReceiptSequence.next_number + 1)
    )
    if not bumped:
        try:
            with db.session.begin_nested():
                db.session.add(ReceiptSequence(series=series, next_number=1))
        except IntegrityError:
            pass  # created meanwhile by a concurrent issuer
        return _take_number(series)
    following = db.session.execute(
        select(ReceiptSequence.next_number)
        .where(ReceiptSequence.series == series)
        .execution_options(populate_existing=True)
    ).scalar_one()
    return following - 1


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
    """The receipt for `reference`, issued now unless it already was. Does not commit;
    once the caller commits, `signals.receipt_issued` announces it."""
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
    receipt_pk = receipt.pk
    after_commit(lambda: _announce_issued(receipt_pk))
    return receipt


def _announce_issued(receipt_pk: int) -> None:
    # Runs inside the session's after_commit hook: whatever a receiver does wrong must not
    # surface as an error of the commit that issued the receipt (the capture is done).
    try:
        signals.receipt_issued.send("payments", receipt_pk=receipt_pk)
    except Exception:
        log.exception("a receiver of receipt_issued failed for receipt %s", receipt_pk)


def credit_split(original: Receipt, amount_minor: int) -> tuple[int, int]:
    """(net, VAT) of a refund of `amount_minor` (positive) against `original`.

    The rule, written once: the refund carries the original receipt's VAT share,
        net = round_half_up(refund × original net / original total),   VAT = refund − net,
    and a refund that brings the credited total to the whole receipt takes exactly the net
    not yet credited, so the receipt and its credit notes sum to zero to the öre.
    """
    if original.total_minor <= 0:
        return amount_minor, 0
    credited_total = sum(-note.total_minor for note in original.credit_notes)
    credited_net = sum(-note.net_minor for note in original.credit_notes)
    if credited_total + amount_minor == original.total_minor:
        net = original.net_minor - credited_net
    else:
        exact = Decimal(amount_minor) * Decimal(original.net_minor) / Decimal(original.total_minor)
        net = int(exact.quantize(Decimal(1), rounding=ROUND_HALF_UP))
    return net, amount_minor - net


def issue_credit_note(
    original: Receipt,
    *,
    reference: str,
    amount_minor: int,
    reason: str,
    refund_id: str | None = None,
) -> Receipt:
    """A credit note for a refund of `amount_minor` (positive) of `original`: the next
    number in the original's series, negative net, VAT and total, the original's VAT rate
    and payment details. Issued once per `reference`; does not commit."""
    if original.is_credit_note:
        raise ValueError("a credit note credits a receipt, not another credit note")
    if isinstance(amount_minor, bool) or not isinstance(amount_minor, int) or amount_minor <= 0:
        raise ValueError(f"a credit note is for a positive amount of minor units, "
                         f"got {amount_minor!r}")
    existing = db.session.scalar(select(Receipt).where(Receipt.reference == reference))
    if existing is not None:
        return existing
    credited = original.credited_minor
    if credited + amount_minor > original.total_minor:
        raise ValueError(
            f"a credit note of {amount_minor} would credit more than receipt "
            f"{original.display_number} ({original.total_minor}, {credited} already credited)"
        )
    net, vat = credit_split(original, amount_minor)
    note = Receipt(
        series=original.series,
        number=_take_number(original.series),
        reference=reference,
        language=original.language,
        currency=original.currency,
        total_minor=-amount_minor,
        net_minor=-net,
        vat_minor=-vat,
        vat_rate=original.vat_rate,
        payment_reference=original.payment_reference,
        card_brand=original.card_brand,
        card_last4=original.card_last4,
        details={
            "credits": original.display_number,
            "reason": reason,
            "refund_id": refund_id,
            "time_zone": (original.details or {}).get("time_zone"),
        },
        seller=dict(original.seller or {}),
        credits_pk=original.pk,
    )
    db.session.add(note)
    db.session.flush()
    db.session.expire(original, ["credit_notes"])
    return note


def find_by_token(token: str) -> Receipt | None:
    """A receipt by the driver's link; credit notes are shown on their receipt's page."""
    return db.session.scalar(
        select(Receipt).where(Receipt.public_token == token, Receipt.credits_pk.is_(None))
    )
