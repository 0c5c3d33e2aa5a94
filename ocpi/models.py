"""What the protocol edge stores: connected parties, what CPOs sent us, what we sent them.

Objects CPOs own (Locations, Tariffs, Sessions, CDRs) are kept as the JSON received, plus
the columns needed to find them; CiString identifiers are looked up case-insensitively
through upper-cased key columns.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from extensions import Model, db
from ocpi.transport import json_dumps, now_utc


def token_hash(token: str) -> str:
    # Credentials tokens are secrets: only their hash is stored for the ones peers present.
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


# Stored OCPI JSON keeps every number's exact digits: written from Decimals, read into them.
dump_json = json_dumps


def load_json(text: str) -> Any:
    return json.loads(text, parse_float=Decimal)


class Party(Model):
    """A connected OCPI platform (a CPO, or a hub in front of CPOs)."""

    __tablename__ = "ocpi_parties"

    pk: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    # The CPO role's identity; a platform with several roles lists them all in `roles`.
    country_code: Mapped[str | None] = mapped_column(String(2))
    party_id: Mapped[str | None] = mapped_column(String(3))
    roles: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    # PENDING: invited, token A issued; CONNECTED: handshake done; DISCONNECTED: unregistered.
    status: Mapped[str] = mapped_column(String(16), default="PENDING")
    versions_url: Mapped[str | None] = mapped_column(String(255))
    version: Mapped[str | None] = mapped_column(String(10))
    endpoints: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    # The token this party presents to us (hash only), and the one we present to it.
    incoming_token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    outgoing_token: Mapped[str | None] = mapped_column(String(64))
    # How the party encodes its Authorization header: "base64" or "plain" (seen, not assumed).
    auth_encoding: Mapped[str] = mapped_column(String(8), default="base64")
    last_pull_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=now_utc)
    updated_at: Mapped[datetime] = mapped_column(default=now_utc, onupdate=now_utc)

    def endpoint(self, identifier: str, role: str | None = None) -> str | None:
        for entry in self.endpoints or []:
            if entry.get("identifier") != identifier:
                continue
            if role is None or entry.get("role") in (None, role):
                return entry["url"]
        return None

    grants: Mapped[list[PartyGrant]] = relationship(
        back_populates="party", cascade="all, delete-orphan", order_by="PartyGrant.pk",
        lazy="selectin",
    )

    @property
    def is_hub(self) -> bool:
        return any(grant.role == "HUB" for grant in self.grants)

    def grant_for(self, country_code: str, party_id: str) -> PartyGrant | None:
        wanted = (country_code.upper(), party_id.upper())
        for grant in self.grants:
            if grant.role == "CPO" and (grant.country_code, grant.party_id) == wanted:
                return grant
        return None

    def owns(self, country_code: str, party_id: str) -> bool:
        """May this connection push, or be asked about, objects of country_code/party_id?

        Only what the operator granted: a CPO its own identities, a hub the CPOs it was
        allowed to act for, less any its HubClientInfo says it no longer serves.
        """
        grant = self.grant_for(country_code, party_id)
        return grant is not None and grant.usable

    @property
    def cpo_identities(self) -> list[tuple[str, str]]:
        return [(g.country_code, g.party_id) for g in self.grants if g.role == "CPO"]


class PartyGrant(Model):
    """One identity a connection may hold, decided by the operator (docs/security.md).

    role CPO: the connection may push and be asked about that party's objects, directly or,
    on a hub connection, as the hub acting for it. role HUB: the hub's own identity. A CPO
    identity belongs to one connection only (the unique key), so neither a second CPO nor
    a hub can take over a directly connected CPO's Locations, Tariffs or charges.
    """

    __tablename__ = "ocpi_grants"
    __table_args__ = (UniqueConstraint("role", "country_code", "party_id"),)

    pk: Mapped[int] = mapped_column(primary_key=True)
    party_pk: Mapped[int] = mapped_column(ForeignKey("ocpi_parties.pk", ondelete="CASCADE"),
                                          index=True)
    role: Mapped[str] = mapped_column(String(5))  # CPO | HUB
    country_code: Mapped[str] = mapped_column(String(2))
    party_id: Mapped[str] = mapped_column(String(3))
    # What the hub's HubClientInfo last said of this party (CONNECTED, OFFLINE, PLANNED,
    # SUSPENDED), or None when the hub said nothing (or is no hub).
    hub_status: Mapped[str | None] = mapped_column(String(16))
    # That ClientInfo's last_updated: an older one (a pulled list crossing a push) is ignored.
    hub_status_updated: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=now_utc)

    party: Mapped[Party] = relationship(back_populates="grants")

    @property
    def usable(self) -> bool:
        return self.hub_status not in {"PLANNED", "SUSPENDED"}

    @property
    def label(self) -> str:
        return f"{self.role} {self.country_code}*{self.party_id}"


class OcpiNotice(Model):
    """Something about a connection the operator should see: a suspected misuse, a refused
    or skipped object, an EVSE-ID clash, or a deviation from the spec taken in anyway.

    Kept once per (party, code, object): a repeat counts up instead of adding a row, so a
    sloppy CPO's every CDR does not flood the page.
    """

    __tablename__ = "ocpi_notices"
    __table_args__ = (UniqueConstraint("party_pk", "code", "object_key"),)

    pk: Mapped[int] = mapped_column(primary_key=True)
    party_pk: Mapped[int | None] = mapped_column(
        ForeignKey("ocpi_parties.pk", ondelete="CASCADE"), index=True
    )
    # MISUSE | REFUSED | SKIPPED | CLASH | DEVIATION
    kind: Mapped[str] = mapped_column(String(16))
    code: Mapped[str] = mapped_column(String(48))
    # What it concerns (a session or CDR id, an EVSE-ID...), "" for the connection as a whole.
    object_key: Mapped[str] = mapped_column(String(64), default="")
    detail: Mapped[str] = mapped_column(Text)
    count: Mapped[int] = mapped_column(default=1)
    first_at: Mapped[datetime] = mapped_column(default=now_utc)
    last_at: Mapped[datetime] = mapped_column(default=now_utc, index=True)


class EvseIdClaim(Model):
    """Which party holds an EVSE-ID (normalised): the first to publish it keeps it.

    A QR code names an EVSE-ID, so two parties publishing the same one would send a driver
    to whichever pushed last; the primary key makes the first claim win under concurrency.
    """

    __tablename__ = "ocpi_evse_ids"

    evse_id: Mapped[str] = mapped_column(String(48), primary_key=True)
    country_code: Mapped[str] = mapped_column(String(2))
    party_id: Mapped[str] = mapped_column(String(3))
    claimed_at: Mapped[datetime] = mapped_column(default=now_utc)


class OcpiLocation(Model):
    __tablename__ = "ocpi_locations"
    __table_args__ = (
        UniqueConstraint("country_code", "party_id", "location_id"),
        # A charge's location: by its connection and location id (charging.cpo.location_of).
        Index("ix_ocpi_locations_party_pk_location_id", "party_pk", "location_id"),
    )

    pk: Mapped[int] = mapped_column(primary_key=True)
    party_pk: Mapped[int] = mapped_column(ForeignKey("ocpi_parties.pk"))
    country_code: Mapped[str] = mapped_column(String(2))
    party_id: Mapped[str] = mapped_column(String(3))
    location_id: Mapped[str] = mapped_column(String(36))  # upper-cased CiString
    time_zone: Mapped[str] = mapped_column(String(255), default="UTC")
    raw: Mapped[str] = mapped_column(Text)
    last_updated: Mapped[datetime]

    @property
    def data(self) -> dict[str, Any]:
        return load_json(self.raw)


class OcpiEvse(Model):
    """One EVSE of a stored Location, indexed by its EVSE ID: what a QR code names."""

    __tablename__ = "ocpi_evses"
    __table_args__ = (UniqueConstraint("location_pk", "evse_uid"),)

    pk: Mapped[int] = mapped_column(primary_key=True)
    location_pk: Mapped[int] = mapped_column(ForeignKey("ocpi_locations.pk", ondelete="CASCADE"))
    evse_uid: Mapped[str] = mapped_column(String(36))
    evse_id: Mapped[str | None] = mapped_column(String(48), index=True)  # normalised, see below
    status: Mapped[str] = mapped_column(String(16))
    last_updated: Mapped[datetime]
    # Another party holds this EVSE-ID (EvseIdClaim): stored, but no charger page or QR code.
    clash: Mapped[bool] = mapped_column(default=False, server_default="0")

    @staticmethod
    def normalise_evse_id(evse_id: str) -> str:
        # eMI3 EVSE IDs are written with or without '*' separators and in any case.
        return evse_id.replace("*", "").replace("-", "").upper()


class OcpiEvseStatusChange(Model):
    """One EVSE status a CPO sent that differs from the one stored before: the EVSE's
    status history, from which the dashboard tells how often and how long a charger was
    out of order. Keyed by its Location and uid (an OcpiEvse row goes when the Location
    drops the EVSE; its history stays with the Location)."""

    __tablename__ = "ocpi_evse_status_changes"
    __table_args__ = (
        # One EVSE's history in order (the dashboard's durations: each status until the next).
        Index("ix_ocpi_evse_status_changes_evse", "location_pk", "evse_uid", "changed_at"),
    )

    pk: Mapped[int] = mapped_column(primary_key=True)
    location_pk: Mapped[int] = mapped_column(
        ForeignKey("ocpi_locations.pk", ondelete="CASCADE"))
    evse_uid: Mapped[str] = mapped_column(String(36))
    # None for the first status seen of an EVSE.
    previous_status: Mapped[str | None] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    # The CPO's own time of the change (the EVSE's last_updated as sent): durations are
    # measured on its clock, not on when a pull happened to fetch it.
    changed_at: Mapped[datetime]
    received_at: Mapped[datetime] = mapped_column(default=now_utc)


class OcpiTariff(Model):
    __tablename__ = "ocpi_tariffs"
    __table_args__ = (UniqueConstraint("country_code", "party_id", "tariff_id"),)

    pk: Mapped[int] = mapped_column(primary_key=True)
    party_pk: Mapped[int] = mapped_column(ForeignKey("ocpi_parties.pk"))
    country_code: Mapped[str] = mapped_column(String(2))
    party_id: Mapped[str] = mapped_column(String(3))
    tariff_id: Mapped[str] = mapped_column(String(36))
    raw: Mapped[str] = mapped_column(Text)
    last_updated: Mapped[datetime]

    @property
    def data(self) -> dict[str, Any]:
        return load_json(self.raw)


# The statuses that end a Session (mod_sessions SessionStatus).
ENDED_SESSION_STATUSES = ("COMPLETED", "INVALID")
# The partial indexes' conditions: the stored Sessions that ended, and the CDRs, the domain
# is not done with (applied_at). ocpi.store.still_to_apply states the same for a query; its
# values are literals, as a partial index is used only for a condition known when planning.
UNAPPLIED_SQL = "applied_at IS NULL"
UNAPPLIED_END_SQL = f"applied_at IS NULL AND status IN {ENDED_SESSION_STATUSES!r}"


class OcpiSession(Model):
    __tablename__ = "ocpi_sessions"
    __table_args__ = (
        UniqueConstraint("country_code", "party_id", "session_id"),
        Index("ix_ocpi_sessions_authorization_reference", "authorization_reference"),
        Index("ix_ocpi_sessions_token_uid", "token_uid"),
        # The sweeper's ended Sessions still to apply: the few of them, not every Session
        # ever stored (its query states the same condition: ocpi.store.still_to_apply).
        # Alembic does not compare a partial index's condition; a plan test does
        # (tests/integration/test_sweeper_applied.py).
        Index("ix_ocpi_sessions_unapplied_end", "authorization_reference",
              postgresql_where=text(UNAPPLIED_END_SQL), sqlite_where=text(UNAPPLIED_END_SQL)),
    )

    pk: Mapped[int] = mapped_column(primary_key=True)
    party_pk: Mapped[int] = mapped_column(ForeignKey("ocpi_parties.pk"))
    country_code: Mapped[str] = mapped_column(String(2))
    party_id: Mapped[str] = mapped_column(String(3))
    session_id: Mapped[str] = mapped_column(String(36))
    authorization_reference: Mapped[str | None] = mapped_column(String(36))
    token_uid: Mapped[str] = mapped_column(String(36))
    status: Mapped[str] = mapped_column(String(16))
    # The Session's own JSON without its charging periods, which are rows of
    # ocpi_session_periods (a PATCH appends without rewriting them): `charging_periods` is
    # kept here as [] when the CPO sent a list, null or absent as it sent it, so the whole
    # can be given back as sent (ocpi.store.session_json).
    raw: Mapped[str] = mapped_column(Text)
    last_updated: Mapped[datetime]
    # How many periods are stored: the next one's seq, without reading them.
    period_count: Mapped[int] = mapped_column(default=0, server_default="0")
    # When the domain was done with it: its charge is past the session's end (or no charge
    # of its sender is named), so the sweeper never has to apply it again. Set by the
    # Session's receiver in its own unit of work (ocpi.store.mark_applied): a receiver that
    # failed, or a signal lost, leaves it NULL for the sweeper to find.
    applied_at: Mapped[datetime | None]

    @property
    def data(self) -> dict[str, Any]:
        """The Session's own fields; its periods are read with ocpi.store.charging_periods."""
        return load_json(self.raw)


class OcpiSessionPeriod(Model):
    """One charging period of a stored Session, numbered from 0 in the order received."""

    __tablename__ = "ocpi_session_periods"

    session_pk: Mapped[int] = mapped_column(
        ForeignKey("ocpi_sessions.pk", ondelete="CASCADE"), primary_key=True)
    seq: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    start_date_time: Mapped[datetime]
    raw: Mapped[str] = mapped_column(Text)  # the period as sent, numbers exact


class OcpiCdr(Model):
    """A CDR as received: immutable (the CDRs module allows no PUT, PATCH or DELETE)."""

    __tablename__ = "ocpi_cdrs"
    __table_args__ = (
        UniqueConstraint("country_code", "party_id", "cdr_id"),
        Index("ix_ocpi_cdrs_authorization_reference", "authorization_reference"),
        Index("ix_ocpi_cdrs_token_uid", "token_uid"),
        # The operator looks a charge up by its CDR's id, whichever CPO sent it.
        Index("ix_ocpi_cdrs_cdr_id", "cdr_id"),
        # The sweeper's CDRs still to apply: the few, not every CDR ever received.
        Index("ix_ocpi_cdrs_unapplied", "authorization_reference",
              postgresql_where=text(UNAPPLIED_SQL), sqlite_where=text(UNAPPLIED_SQL)),
    )

    pk: Mapped[int] = mapped_column(primary_key=True)
    party_pk: Mapped[int] = mapped_column(ForeignKey("ocpi_parties.pk"))
    country_code: Mapped[str] = mapped_column(String(2))
    party_id: Mapped[str] = mapped_column(String(3))
    cdr_id: Mapped[str] = mapped_column(String(39))
    session_id: Mapped[str | None] = mapped_column(String(36))
    authorization_reference: Mapped[str | None] = mapped_column(String(36))
    token_uid: Mapped[str] = mapped_column(String(36))
    currency: Mapped[str] = mapped_column(String(3))
    total_cost_excl_vat: Mapped[Decimal] = mapped_column(db.Numeric(18, 4))
    total_cost_incl_vat: Mapped[Decimal | None] = mapped_column(db.Numeric(18, 4))
    raw: Mapped[str] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(default=now_utc)
    # As OcpiSession.applied_at: set by the CDR's receiver once its charge is past the
    # session's end; NULL, the sweeper applies it again.
    applied_at: Mapped[datetime | None]

    @property
    def data(self) -> dict[str, Any]:
        return load_json(self.raw)


class OcpiCommand(Model):
    """A command we sent; its uid is the last segment of the response_url we gave."""

    __tablename__ = "ocpi_commands"

    pk: Mapped[int] = mapped_column(primary_key=True)
    uid: Mapped[str] = mapped_column(String(36), unique=True)
    party_pk: Mapped[int] = mapped_column(ForeignKey("ocpi_parties.pk"))
    command: Mapped[str] = mapped_column(String(24))
    request: Mapped[str] = mapped_column(Text)
    # The CPO's CommandResponse: ACCEPTED, REJECTED, NOT_SUPPORTED, UNKNOWN_SESSION, or
    # ERROR when it could not be reached or answered nonsense, or NO_RESPONSE when the
    # command was sent and no answer came in time (it may still be carried out).
    response_result: Mapped[str | None] = mapped_column(String(24))
    response_message: Mapped[str | None] = mapped_column(Text)
    timeout_seconds: Mapped[int | None]
    deadline: Mapped[datetime | None]
    # The Charge Point's CommandResult, when it comes.
    result: Mapped[str | None] = mapped_column(String(24))
    result_message: Mapped[str | None] = mapped_column(Text)
    result_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=now_utc)


class IssuedToken(Model):
    """An OCPI Token ScanCharge issued (AD_HOC_USER, one per charge)."""

    __tablename__ = "ocpi_tokens"

    pk: Mapped[int] = mapped_column(primary_key=True)
    uid: Mapped[str] = mapped_column(String(36), unique=True)
    type: Mapped[str] = mapped_column(String(16), default="AD_HOC_USER")
    contract_id: Mapped[str] = mapped_column(String(36))
    valid: Mapped[bool] = mapped_column(default=True)
    raw: Mapped[str] = mapped_column(Text)
    last_updated: Mapped[datetime] = mapped_column(default=now_utc, onupdate=now_utc)
    # Whom it was issued to: the connection the START_SESSION went to, and the CPO (its
    # country_code/party_id) that owns the location. Only they see it or ask about it.
    party_pk: Mapped[int | None] = mapped_column(ForeignKey("ocpi_parties.pk"), index=True)
    country_code: Mapped[str | None] = mapped_column(String(2))
    party_id: Mapped[str | None] = mapped_column(String(3))

    @property
    def data(self) -> dict[str, Any]:
        return load_json(self.raw)


class OcpiMessage(Model):
    """One OCPI request and its answer, either way: the message log (ocpi/messages.py).

    Credentials tokens are never stored: no headers are kept, and bodies are scrubbed
    before they are written. ocpi/ knows no charges, so a message carries the keys a charge
    is found by instead: the X-Correlation-ID (a charge's commands carry a hash of its
    public id, never the id itself), and the ids a CPO's pushes name (object_id: session
    id, CDR id or command uid; authorization_reference; token_uid), upper-cased like every
    stored CiString.
    """

    __tablename__ = "ocpi_messages"
    __table_args__ = (
        # A party's latest messages (dashboard), and the foreign key's ON DELETE.
        Index("ix_ocpi_messages_party_pk_pk", "party_pk", "pk"),
        # A party's messages of one module, newest first (dashboard).
        Index("ix_ocpi_messages_party_pk_module_pk", "party_pk", "module", "pk"),
    )

    pk: Mapped[int] = mapped_column(primary_key=True)
    # When the request started (duration_ms says when it ended); pruning goes by it.
    at: Mapped[datetime] = mapped_column(default=now_utc, index=True)
    direction: Mapped[str] = mapped_column(String(3))  # "in": a CPO called us; "out": we called
    # None for a request nobody could be authenticated for. SET NULL: the log outlives a
    # party (connect() deletes its provisional party on failure or reconnection).
    party_pk: Mapped[int | None] = mapped_column(
        ForeignKey("ocpi_parties.pk", ondelete="SET NULL")
    )
    method: Mapped[str] = mapped_column(String(10))
    url: Mapped[str] = mapped_column(String(2048))  # "in": path and query; "out": full URL
    module: Mapped[str | None] = mapped_column(String(16))
    http_status: Mapped[int | None]  # None: no answer came (see error)
    ocpi_status: Mapped[int | None]  # the envelope's status_code, when there was one
    duration_ms: Mapped[int]
    request_id: Mapped[str | None] = mapped_column(String(255))
    correlation_id: Mapped[str | None] = mapped_column(String(255), index=True)
    object_id: Mapped[str | None] = mapped_column(String(64), index=True)
    authorization_reference: Mapped[str | None] = mapped_column(String(64), index=True)
    token_uid: Mapped[str | None] = mapped_column(String(64), index=True)
    request_body: Mapped[str | None] = mapped_column(Text)
    request_truncated: Mapped[bool] = mapped_column(default=False)
    response_body: Mapped[str | None] = mapped_column(Text)
    response_truncated: Mapped[bool] = mapped_column(default=False)
    # Why an outgoing request failed below OCPI: no connection, a timeout, not an envelope.
    error: Mapped[str | None] = mapped_column(Text)

    @property
    def failed(self) -> bool:
        return (
            self.error is not None
            or self.http_status is None
            or self.http_status >= 400
            or (self.ocpi_status is not None and not 1000 <= self.ocpi_status < 2000)
        )
