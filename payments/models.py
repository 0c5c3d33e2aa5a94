"""What the money edge stores: every gateway event as received, demo payment intents,
and receipts with their numbering."""

from __future__ import annotations

import secrets
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from extensions import db
from ocpi.transport import now_utc


class PaymentEvent(db.Model):
    """A gateway event (a Stripe webhook, or the demo gateway's equivalent), stored raw
    before it is applied; `applied_at` is set in the same transaction that applies it."""

    __tablename__ = "payment_events"

    pk: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[str] = mapped_column(String(255), unique=True)
    gateway: Mapped[str] = mapped_column(String(16))
    type: Mapped[str] = mapped_column(String(64))
    object_id: Mapped[str | None] = mapped_column(String(255), index=True)
    payload: Mapped[str] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(default=now_utc)
    applied_at: Mapped[datetime | None]
    error: Mapped[str | None] = mapped_column(Text)


class DemoPaymentIntent(db.Model):
    """The demo gateway's PaymentIntent: the same lifecycle as Stripe's, no real money."""

    __tablename__ = "demo_payment_intents"

    pk: Mapped[int] = mapped_column(primary_key=True)
    intent_id: Mapped[str] = mapped_column(String(64), unique=True)
    client_secret: Mapped[str] = mapped_column(String(128))
    idempotency_key: Mapped[str] = mapped_column(String(255), unique=True)
    amount_minor: Mapped[int]
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(32), default="requires_payment_method")
    amount_capturable_minor: Mapped[int] = mapped_column(default=0)
    amount_received_minor: Mapped[int] = mapped_column(default=0)
    description: Mapped[str] = mapped_column(String(255), default="")
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JSON, default=dict)
    card_brand: Mapped[str | None] = mapped_column(String(32))
    card_last4: Mapped[str | None] = mapped_column(String(4))
    decline_message: Mapped[str | None] = mapped_column(String(255))
    # Keys of the capture/cancel calls already applied, so a retried call replays.
    applied_keys: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(default=now_utc)


class ReceiptSequence(db.Model):
    """The next receipt number of one series (one per seller): taken under a row lock."""

    __tablename__ = "receipt_sequences"

    series: Mapped[str] = mapped_column(String(32), primary_key=True)
    next_number: Mapped[int] = mapped_column(default=1)


def _receipt_token() -> str:
    return secrets.token_urlsafe(20)


class Receipt(db.Model):
    __tablename__ = "receipts"
    __table_args__ = (UniqueConstraint("series", "number"),)

    pk: Mapped[int] = mapped_column(primary_key=True)
    series: Mapped[str] = mapped_column(String(32))
    number: Mapped[int]
    # The driver's unguessable link to the receipt.
    public_token: Mapped[str] = mapped_column(String(40), unique=True, default=_receipt_token)
    # What the receipt is for, in the issuer's words (e.g. "charge:42"); issued once per ref.
    reference: Mapped[str] = mapped_column(String(64), unique=True)
    language: Mapped[str] = mapped_column(String(2), default="sv")
    currency: Mapped[str] = mapped_column(String(3))
    total_minor: Mapped[int]
    net_minor: Mapped[int]
    vat_minor: Mapped[int]
    vat_rate: Mapped[Decimal] = mapped_column(db.Numeric(5, 2))
    payment_reference: Mapped[str] = mapped_column(String(255))
    card_brand: Mapped[str | None] = mapped_column(String(32))
    card_last4: Mapped[str | None] = mapped_column(String(4))
    # The lines and the facts of the charge as they were at issue, never recomputed.
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    seller: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    issued_at: Mapped[datetime] = mapped_column(default=now_utc)

    @property
    def display_number(self) -> str:
        return f"{self.series}-{self.number:06d}"
