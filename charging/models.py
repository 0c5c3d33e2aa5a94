"""A charge and its timeline."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime
from decimal import Decimal

from sqlalchemy import ForeignKey, Index, String, Text, func
from sqlalchemy.orm import Mapped, mapped_column, relationship

from charging.states import ChargeStatus
from extensions import Model, db
from ocpi.transport import now_utc


def _public_id() -> str:
    # The driver's only credential: whoever holds the link sees the charge and may stop it.
    return secrets.token_urlsafe(16)


class Charge(Model):
    __tablename__ = "charges"
    __table_args__ = (
        # The sweeper's due work (status, untouched since) and the dashboard by status.
        Index("ix_charges_status_updated_at", "status", "updated_at"),
        # The sweeper's holds still to give back: of the many cancelled and expired charges,
        # the few whose release was never confirmed.
        Index("ix_charges_status_hold_released_at", "status", "hold_released_at"),
        # What is going on at an EVSE (an unpaid charge already open there).
        Index("ix_charges_evse_uid_status", "evse_uid", "status"),
        # Flagged charges, for the operator.
        Index("ix_charges_failure_code", "failure_code"),
        # The operator's charge list (dashboard/charges.py): by date, by CPO and site, and a
        # charge found by its card's last four digits, its receipt or its CDR.
        Index("ix_charges_created_at", "created_at"),
        Index("ix_charges_party_pk_location_id", "party_pk", "location_id"),
        Index("ix_charges_card_last4", "card_last4"),
        Index("ix_charges_receipt_pk", "receipt_pk"),
        Index("ix_charges_cdr_pk", "cdr_pk"),
    )

    pk: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(32), unique=True, default=_public_id)
    status: Mapped[str] = mapped_column(String(16), default=ChargeStatus.CREATED.value)
    # Bumped by every locked update: the lock itself, and a cheap change counter.
    lock_version: Mapped[int] = mapped_column(default=0)

    # Where: a snapshot of what the driver chose, in the CPO's own identifiers.
    party_pk: Mapped[int] = mapped_column(ForeignKey("ocpi_parties.pk"))
    # The CPO that owns the location (its OCPI identity): only it, over party_pk's
    # connection, may move this charge (docs/security.md).
    cpo_country_code: Mapped[str | None] = mapped_column(String(2))
    cpo_party_id: Mapped[str | None] = mapped_column(String(3))
    location_id: Mapped[str] = mapped_column(String(36))
    evse_uid: Mapped[str] = mapped_column(String(36))
    evse_id: Mapped[str] = mapped_column(String(48))
    connector_id: Mapped[str] = mapped_column(String(36))
    tariff_id: Mapped[str | None] = mapped_column(String(36))

    # Money: integer minor units, currency beside them.
    currency: Mapped[str] = mapped_column(String(3))
    hold_minor: Mapped[int]
    captured_minor: Mapped[int | None]
    refunded_minor: Mapped[int] = mapped_column(default=0, server_default="0")  # all refunds
    gateway: Mapped[str] = mapped_column(String(16))
    hold_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    card_brand: Mapped[str | None] = mapped_column(String(32))
    card_last4: Mapped[str | None] = mapped_column(String(4))

    # OCPI: the Token we issued and the reference the CPO echoes in Sessions and CDRs.
    token_uid: Mapped[str] = mapped_column(String(36), unique=True)
    authorization_reference: Mapped[str] = mapped_column(String(36), unique=True)
    session_id: Mapped[str | None] = mapped_column(String(36))
    start_command_uid: Mapped[str | None] = mapped_column(String(36), unique=True)
    stop_command_uid: Mapped[str | None] = mapped_column(String(36), unique=True)
    cdr_pk: Mapped[int | None] = mapped_column(ForeignKey("ocpi_cdrs.pk"))

    # The driver's (or ScanCharge's) stop: kept until the charger confirms the session ended,
    # never cleared by a refusal; sent as soon as a Session id is known, retried with backoff.
    stop_requested_at: Mapped[datetime | None]
    stop_requested_by: Mapped[str | None] = mapped_column(String(16))  # driver|system|operator
    stop_attempts: Mapped[int] = mapped_column(default=0, server_default="0")
    stop_next_at: Mapped[datetime | None] = mapped_column(index=True)
    # Why charging ended, for the driver: DRIVER_STOPPED, LIMIT_REACHED, CPO_ENDED, ...
    end_reason: Mapped[str | None] = mapped_column(String(24))
    # When the CPO last sent a Session update: silence is measured from here.
    session_updated_at: Mapped[datetime | None]
    # The card authorisation's real end (the gateway's capture_before), when it says.
    capture_before: Mapped[datetime | None]
    # When the gateway confirmed the hold released: a CANCELLED or EXPIRED charge without it
    # still holds the driver's money, and the sweeper asks again.
    hold_released_at: Mapped[datetime | None]

    # Live figures from the CPO's Session pushes.
    energy_kwh: Mapped[Decimal] = mapped_column(db.Numeric(12, 4), default=Decimal(0))
    cost_incl_vat: Mapped[Decimal | None] = mapped_column(db.Numeric(18, 4))
    # The live cost's priced state after the Session's closed periods (JSON, tariffs.live),
    # so each Session update prices only its new periods (charging/pricing.py). Deferred:
    # only the Session receiver reads it.
    live_cost_state: Mapped[str | None] = mapped_column(Text, deferred=True)
    session_started_at: Mapped[datetime | None]
    session_ended_at: Mapped[datetime | None]

    # Why it failed, as a code the pages translate (e.g. "START_REJECTED") and the CPO's words.
    failure_code: Mapped[str | None] = mapped_column(String(32))
    failure_detail: Mapped[str | None] = mapped_column(Text)
    # An operator's "mark resolved" of the flag above (or of a stuck charge), with the note
    # that says how: such a charge leaves the Needs attention inbox until a new flag is set.
    resolved_at: Mapped[datetime | None]
    resolved_by: Mapped[str | None] = mapped_column(String(255))
    resolution_note: Mapped[str | None] = mapped_column(Text)

    # Who asked for it: a keyed hash of the client (its address and device cookie), never
    # the address itself; rate limits and "one unpaid charge per EVSE and client" use it.
    client_key: Mapped[str | None] = mapped_column(String(64), index=True)

    language: Mapped[str] = mapped_column(String(2), default="sv")
    email: Mapped[str | None] = mapped_column(String(255))
    # The charge's link e-mailed to that address (charging/charge_link.py): claimed once.
    link_mailed_at: Mapped[datetime | None]
    receipt_pk: Mapped[int | None] = mapped_column(ForeignKey("receipts.pk"))

    created_at: Mapped[datetime] = mapped_column(default=now_utc)
    updated_at: Mapped[datetime] = mapped_column(default=now_utc, onupdate=now_utc)

    events: Mapped[list[ChargeEvent]] = relationship(
        back_populates="charge", order_by="ChargeEvent.pk", cascade="all, delete-orphan"
    )

    @property
    def state(self) -> ChargeStatus:
        return ChargeStatus(self.status)

    @property
    def correlation_id(self) -> str:
        """The X-Correlation-ID of this charge's OCPI commands: derived from the public id
        but not it (that is the driver's credential, and CPOs log headers), stable so the
        dashboard finds the messages again."""
        return "sc-" + hashlib.sha256(b"correlation:" + self.public_id.encode()).hexdigest()[:32]


# The operator's search compares ids case-insensitively (dashboard/charges.py): each id it
# looks up has an index on its lower-cased value. The public id is found by its beginning,
# so on PostgreSQL its index keeps byte order for LIKE 'prefix%' whatever the collation.
Index("ix_charges_public_id_lower", func.lower(Charge.public_id).label("public_id_lower"),
      postgresql_ops={"public_id_lower": "varchar_pattern_ops"})
Index("ix_charges_evse_id_lower", func.lower(Charge.evse_id))
Index("ix_charges_email_lower", func.lower(Charge.email))
Index("ix_charges_hold_id_lower", func.lower(Charge.hold_id))
Index("ix_charges_session_id_lower", func.lower(Charge.session_id))


class ChargeEvent(Model):
    """One line of a charge's timeline: a transition and what caused it. Append-only."""

    __tablename__ = "charge_events"
    __table_args__ = (
        # A charger's failed starts: the charges whose timeline went to START_FAILED.
        Index("ix_charge_events_to_status_charge_pk", "to_status", "charge_pk"),
    )

    pk: Mapped[int] = mapped_column(primary_key=True)
    charge_pk: Mapped[int] = mapped_column(ForeignKey("charges.pk"), index=True)
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str] = mapped_column(String(16))
    # What caused it: "driver", "operator", "payment", "ocpi", "deadline", "system".
    cause: Mapped[str] = mapped_column(String(16))
    # The cause's own reference: a webhook event id, an OCPI command uid, a CDR id...
    cause_ref: Mapped[str | None] = mapped_column(String(255))
    note: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(default=now_utc)

    charge: Mapped[Charge] = relationship(back_populates="events")
