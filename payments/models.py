"""What the money edge stores: every gateway event as received, demo payment intents and
their refunds, receipts and credit notes with their numbering, and the refunds made."""

from __future__ import annotations

import secrets
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from extensions import Model, db, now_utc


class PaymentEvent(Model):
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


class DemoPaymentIntent(Model):
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
    # Cards declined on this intent; at DEMO_MAX_FAILED_CARDS it refuses every further card.
    failed_cards: Mapped[int] = mapped_column(default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(default=now_utc)
    # When it was captured: the demo's books (payments/demo_books.py) date its balance
    # transaction by it, as Stripe dates a charge's.
    captured_at: Mapped[datetime | None]


class DemoRefund(Model):
    """A refund of a demo PaymentIntent: no money moves, the bookkeeping is Stripe's."""

    __tablename__ = "demo_refunds"

    pk: Mapped[int] = mapped_column(primary_key=True)
    refund_id: Mapped[str] = mapped_column(String(64), unique=True)
    intent_id: Mapped[str] = mapped_column(String(64), index=True)
    # A retried call with the same key answers with this refund instead of refunding again.
    idempotency_key: Mapped[str] = mapped_column(String(255), unique=True)
    amount_minor: Mapped[int]
    currency: Mapped[str] = mapped_column(String(3))
    reason: Mapped[str | None] = mapped_column(String(32))
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=now_utc)


class ReceiptSequence(Model):
    """The next receipt number of one series (one per seller): taken under a row lock."""

    __tablename__ = "receipt_sequences"

    series: Mapped[str] = mapped_column(String(32), primary_key=True)
    next_number: Mapped[int] = mapped_column(default=1)


def _receipt_token() -> str:
    return secrets.token_urlsafe(20)


class Receipt(Model):
    """A receipt, or a credit note (`credits_pk` set: it credits that receipt, with negative
    amounts). Both draw their numbers from the same series, so the series stays unbroken
    and the table's (series, number) constraint covers both."""

    __tablename__ = "receipts"
    __table_args__ = (
        UniqueConstraint("series", "number"),
        # A receipt found by the number printed on it, whatever case its series is typed in.
        Index("ix_receipts_number", "number"),
    )

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
    # Indexed: the dashboard's receipts, reports and exports read a range of days.
    issued_at: Mapped[datetime] = mapped_column(default=now_utc, index=True)
    # A credit note: the pk of the receipt it credits (amounts above are then negative).
    # No database foreign key: SQLite can add one to an existing table only by rebuilding
    # it, which it refuses while charges reference receipts. Receipts are never deleted.
    credits_pk: Mapped[int | None] = mapped_column(index=True)
    # When the receipt was handed to the SMTP server (e-mailed once).
    sent_at: Mapped[datetime | None]

    credit_notes: Mapped[list[Receipt]] = relationship(
        primaryjoin="Receipt.pk == foreign(Receipt.credits_pk)",
        order_by="Receipt.number",
        viewonly=True,
    )

    @property
    def display_number(self) -> str:
        return f"{self.series}-{self.number:06d}"

    @property
    def is_credit_note(self) -> bool:
        return self.credits_pk is not None

    @property
    def credited_minor(self) -> int:
        """What the credit notes of this receipt give back, as a positive amount."""
        return -sum(note.total_minor for note in self.credit_notes)


class RefundRecord(Model):
    """One refund asked for by an operator, from the moment it is asked for.

    `state` is "started" once the request is recorded (before the gateway is called: a crash
    after the gateway's answer leaves it started, and running the same refund again
    finishes it with the same idempotency key), then "refunded" or "failed".
    """

    __tablename__ = "refunds"
    __table_args__ = (UniqueConstraint("reference", "sequence"),)

    pk: Mapped[int] = mapped_column(primary_key=True)
    # What was refunded, in the issuer's words (a receipt's reference: "charge:<public id>").
    reference: Mapped[str] = mapped_column(String(64), index=True)
    sequence: Mapped[int]  # 1, 2, ... per reference; part of the idempotency key
    idempotency_key: Mapped[str] = mapped_column(String(255), unique=True)
    state: Mapped[str] = mapped_column(String(16), default="started")
    gateway: Mapped[str] = mapped_column(String(16))
    hold_id: Mapped[str] = mapped_column(String(255))
    gateway_refund_id: Mapped[str | None] = mapped_column(String(255))
    gateway_status: Mapped[str | None] = mapped_column(String(32))
    amount_minor: Mapped[int]
    currency: Mapped[str] = mapped_column(String(3))
    reason: Mapped[str] = mapped_column(Text)  # the operator's words
    category: Mapped[str] = mapped_column(String(32))  # the gateway's enum
    operator: Mapped[str] = mapped_column(String(255))
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=now_utc)
    completed_at: Mapped[datetime | None]
    credit_note_pk: Mapped[int | None] = mapped_column(ForeignKey("receipts.pk"))
    credit_note_number: Mapped[str | None] = mapped_column(String(48))
