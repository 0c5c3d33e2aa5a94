"""Storing what CPOs send, whether pushed to our receivers or pulled from their senders.

Each function validates with the wire model first, so nothing is stored half-way, and
leaves committing to the caller; the caller sends the signal after the commit. The JSON is
stored with its numbers exact (json_dumps), so what a CPO sent is what a GET returns.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Any, TypeGuard, TypeVar, cast

from sqlalchemy import ColumnElement, Table, and_, bindparam, delete, insert, select
from sqlalchemy.exc import IntegrityError

from extensions import db, locked_row, row_lock
from ocpi import notices
from ocpi.models import (
    ENDED_SESSION_STATUSES,
    EvseIdClaim,
    OcpiCdr,
    OcpiEvse,
    OcpiEvseStatusChange,
    OcpiLocation,
    OcpiSession,
    OcpiSessionPeriod,
    OcpiTariff,
    Party,
    load_json,
)
from ocpi.modules.cdrs import Cdr, ChargingPeriod
from ocpi.modules.common import parse
from ocpi.modules.locations import Location
from ocpi.modules.sessions import Session
from ocpi.modules.tariffs import Tariff
from ocpi.transport import OcpiError, StatusCode, json_dumps, now_utc, parse_datetime

M = TypeVar("M", OcpiLocation, OcpiTariff, OcpiSession, OcpiCdr)


def _key(value: str) -> str:
    return value.upper()


class NotOwner(OcpiError):
    """The object belongs to a party this connection was not granted."""

    def __init__(self, what: str, country_code: str, party_id: str) -> None:
        super().__init__(
            StatusCode.CLIENT_ERROR,
            f"{what} of {country_code}/{party_id}: not a party of this connection",
            http_status=404,
        )


def _check_owner(party: Party, what: str, country_code: str, party_id: str,
                 row: Any = None) -> None:
    # The receivers check the URL's party first; this also covers pulled objects, and a
    # row stored by another connection before grants existed.
    if not party.owns(country_code, party_id) or (row is not None and row.party_pk != party.pk):
        raise NotOwner(what, country_code, party_id)


def _find(model: type[M], id_column: Any, country_code: str, party_id: str,
          object_id: str) -> M | None:
    """A client-owned object by its owner and id, compared as CiStrings."""
    statement = _FINDING.get((model, id_column.key))
    if statement is None:  # built once per kind of object, the keys as bind parameters
        statement = _FINDING[(model, id_column.key)] = select(model).where(
            model.country_code == bindparam("key_country_code"),
            model.party_id == bindparam("key_party_id"),
            id_column == bindparam("key_object_id"))
    return db.session.scalar(statement, {"key_country_code": _key(country_code),
                                         "key_party_id": _key(party_id),
                                         "key_object_id": _key(object_id)})


_FINDING: dict[tuple[type[Any], str], Any] = {}


def find_location(country_code: str, party_id: str, location_id: str) -> OcpiLocation | None:
    return _find(OcpiLocation, OcpiLocation.location_id, country_code, party_id, location_id)


def upsert_location(party: Party, data: dict[str, Any]) -> tuple[OcpiLocation, bool]:
    """Store a whole Location (PUT or pulled); returns (row, created)."""
    location = parse(Location, data)
    row = find_location(location.country_code, location.party_id, location.id)
    _check_owner(party, f"Location {location.id}", location.country_code, location.party_id, row)
    created = row is None
    if row is None:
        row = OcpiLocation(
            party_pk=party.pk,
            country_code=_key(location.country_code),
            party_id=_key(location.party_id),
            location_id=_key(location.id),
        )
        db.session.add(row)
    row.raw = json_dumps(data)
    row.time_zone = location.time_zone
    row.last_updated = location.last_updated
    db.session.flush()
    _index_evses(row, location)
    return row, created


def _index_evses(row: OcpiLocation, location: Location) -> None:
    existing = {
        evse.evse_uid: evse
        for evse in db.session.scalars(select(OcpiEvse).where(OcpiEvse.location_pk == row.pk))
    }
    seen = set()
    for evse in location.evses or []:
        uid = _key(evse.uid)
        seen.add(uid)
        index = existing.get(uid) or OcpiEvse(location_pk=row.pk, evse_uid=uid)
        index.evse_id = OcpiEvse.normalise_evse_id(evse.evse_id) if evse.evse_id else None
        index.clash = index.evse_id is not None and not _claim_evse_id(row, index.evse_id,
                                                                        evse.evse_id or "")
        if index.status != evse.status.value:
            db.session.add(OcpiEvseStatusChange(
                location_pk=row.pk, evse_uid=uid, previous_status=index.status,
                status=evse.status.value, changed_at=evse.last_updated))
        index.status = evse.status.value
        index.last_updated = evse.last_updated
        db.session.add(index)
    for uid, index in existing.items():
        if uid not in seen:
            db.session.delete(index)


def _claim_evse_id(row: OcpiLocation, evse_id: str, as_sent: str) -> bool:
    """Does the Location's owner hold this EVSE-ID? The first party to publish it does;
    anyone else's EVSE with it gets no charger page, and the operator is told."""
    owner = (row.country_code, row.party_id)
    claim = db.session.get(EvseIdClaim, evse_id)
    if claim is None:
        try:
            with db.session.begin_nested():
                db.session.add(EvseIdClaim(evse_id=evse_id, country_code=owner[0],
                                           party_id=owner[1]))
            return True
        except IntegrityError:  # claimed a moment ago by a concurrent push
            claim = db.session.get(EvseIdClaim, evse_id)
    if claim is None or (claim.country_code, claim.party_id) == owner:
        return True
    notices.record(
        row.party_pk, "CLASH", "EVSE_ID_TAKEN",
        f"EVSE-ID {as_sent} of location {row.location_id} ({owner[0]}*{owner[1]}) is already "
        f"published by {claim.country_code}*{claim.party_id}: it gets no charger page",
        object_key=evse_id,
    )
    return False


def evse_id_matches_owner(evse_id: str, country_code: str, party_id: str) -> bool:
    """Does an eMI3 EVSE-ID's operator prefix (CC*PID) name this party? (A warning only:
    credentials.asciidoc lets a party push EVSE-IDs of another spot operator.)"""
    normalised = OcpiEvse.normalise_evse_id(evse_id)
    return normalised.startswith((country_code + party_id).upper())


def patch_location(
    row: OcpiLocation, patch: dict[str, Any], evse_uid: str | None, connector_id: str | None
) -> None:
    """Apply a PATCH at location, EVSE or connector level, then re-validate the whole."""
    if "last_updated" not in patch:
        raise OcpiError(StatusCode.INVALID_PARAMETERS, "PATCH must contain last_updated")
    data = row.data
    target = data
    if evse_uid is not None:
        target = _child(data.get("evses") or [], "uid", evse_uid, "EVSE")
        if connector_id is not None:
            target = _child(target.get("connectors") or [], "id", connector_id, "Connector")
    target.update(patch)
    # A change below the Location updates the Location's own last_updated (mod_locations).
    data["last_updated"] = patch["last_updated"]
    if evse_uid is not None and connector_id is not None:
        evse = _child(data["evses"], "uid", evse_uid, "EVSE")
        evse["last_updated"] = patch["last_updated"]
    location = parse(Location, data)
    row.raw = json_dumps(data)
    row.last_updated = location.last_updated
    _index_evses(row, location)


def _child(items: list[dict[str, Any]], field: str, value: str, what: str) -> dict[str, Any]:
    for item in items:
        if str(item.get(field, "")).upper() == value.upper():
            return item
    raise OcpiError(StatusCode.UNKNOWN_LOCATION, f"Unknown {what} {value!r}", http_status=404)


def upsert_tariff(party: Party, data: dict[str, Any]) -> tuple[OcpiTariff, bool]:
    tariff = parse(Tariff, data)
    row = find_tariff(tariff.country_code, tariff.party_id, tariff.id)
    _check_owner(party, f"Tariff {tariff.id}", tariff.country_code, tariff.party_id, row)
    created = row is None
    if row is None:
        row = OcpiTariff(
            party_pk=party.pk,
            country_code=_key(tariff.country_code),
            party_id=_key(tariff.party_id),
            tariff_id=_key(tariff.id),
        )
        db.session.add(row)
    row.raw = json_dumps(data)
    row.last_updated = tariff.last_updated
    db.session.flush()
    return row, created


def find_tariff(country_code: str, party_id: str, tariff_id: str) -> OcpiTariff | None:
    return _find(OcpiTariff, OcpiTariff.tariff_id, country_code, party_id, tariff_id)


def find_session(country_code: str, party_id: str, session_id: str) -> OcpiSession | None:
    return _find(OcpiSession, OcpiSession.session_id, country_code, party_id, session_id)


def lock_session(country_code: str, party_id: str, session_id: str) -> OcpiSession | None:
    """The stored Session under a row lock held until the transaction ends, re-read.

    A PUT or PATCH reads, merges and writes the Session: without the lock, two PATCHes of
    one Session in flight at once would each merge into the same old version (and number
    their periods alike). Locked as every row is (extensions.locked_row: FOR UPDATE on
    PostgreSQL, SQLite's write lock first); concurrent requests for one Session queue here.
    """
    row: OcpiSession | None = locked_row(_SESSION_LOCK, {
        "key_country_code": _key(country_code), "key_party_id": _key(party_id),
        "key_session_id": _key(session_id)})
    return row


_SESSION_LOCK = row_lock(OcpiSession, and_(
    OcpiSession.country_code == bindparam("key_country_code"),
    OcpiSession.party_id == bindparam("key_party_id"),
    OcpiSession.session_id == bindparam("key_session_id")), OcpiSession.last_updated)


def put_session(party: Party, data: dict[str, Any]) -> tuple[OcpiSession, bool]:
    session = parse(Session, data)
    row = find_session(session.country_code, session.party_id, session.id)
    _check_owner(party, f"Session {session.id}", session.country_code, session.party_id, row)
    created = row is None
    if row is None:
        row = OcpiSession(
            party_pk=party.pk,
            country_code=_key(session.country_code),
            party_id=_key(session.party_id),
            session_id=_key(session.id),
            period_count=0,
        )
        db.session.add(row)
    else:
        _forget_periods(row)
    sent = data.get("charging_periods")
    _fill_session(row, session, {**data, "charging_periods": []}
                  if isinstance(sent, list) else data)
    db.session.flush()  # a new row's pk, for its periods
    if isinstance(sent, list):
        _add_periods(row, sent, session.charging_periods or [])
    return row, created


def patch_session(row: OcpiSession, patch: dict[str, Any], *, append_periods: bool = True) -> None:
    """Merge a PATCH: charging_periods are appended (2.2.1; replaced when append_periods is
    False, as 2.1.1 reads a PATCH), every other field replaced.

    What is validated and written does not grow with the Session: its own fields and the
    new periods only; the stored periods are neither read nor rewritten (a replacing PATCH
    deletes them)."""
    if "last_updated" not in patch:
        raise OcpiError(StatusCode.INVALID_PARAMETERS, "PATCH must contain last_updated")
    data = row.data
    periods: Any = None  # the PATCH's periods, when they change anything
    for field, value in patch.items():
        if field == "charging_periods":
            if not append_periods:
                periods = value or []
            elif value:
                periods = value
        elif field in {"id", "country_code", "party_id"}:
            if str(value).upper() != str(data.get(field, "")).upper():
                raise OcpiError(StatusCode.INVALID_PARAMETERS, f"PATCH may not change {field}")
        else:
            data[field] = value
    if periods is None:
        _fill_session(row, parse(Session, data), data)
        return
    # Numbered as if the stored ones were there, so an error names the period as the CPO
    # counts them.
    offset = row.period_count if append_periods else 0
    session = parse(Session, {**data, "charging_periods": periods},
                    offsets={"charging_periods": offset})
    if not append_periods:
        _forget_periods(row)
    _add_periods(row, periods, session.charging_periods or [])
    data["charging_periods"] = []
    _fill_session(row, session, data)


def _forget_periods(row: OcpiSession) -> None:
    if row.period_count:
        db.session.execute(delete(OcpiSessionPeriod)
                           .where(OcpiSessionPeriod.session_pk == row.pk))
    row.period_count = 0


def _add_periods(row: OcpiSession, sent: list[dict[str, Any]],
                 parsed: list[ChargingPeriod]) -> None:
    """Append the periods as sent (numbers exact), numbered on from the stored ones."""
    if not sent:
        return
    first = row.period_count
    # Core, not the ORM's bulk insert: nothing here needs the rows as objects.
    db.session.execute(insert(cast(Table, OcpiSessionPeriod.__table__)), [
        {"session_pk": row.pk, "seq": first + n, "start_date_time": period.start_date_time,
         "raw": json_dumps(raw)}
        for n, (raw, period) in enumerate(zip(sent, parsed, strict=True))])
    row.period_count = first + len(sent)


def charging_periods(row: OcpiSession, start: int = 0) -> list[dict[str, Any]]:
    """The Session's charging periods from the `start`-th on, in the order received: how the
    domain reads periods (so a reader of only the new ones need not load the old)."""
    if not row.period_count or start >= row.period_count:
        return []
    return [load_json(raw) for raw in db.session.scalars(
        select(OcpiSessionPeriod.raw)
        .where(OcpiSessionPeriod.session_pk == row.pk, OcpiSessionPeriod.seq >= start)
        .order_by(OcpiSessionPeriod.seq))]


def session_json(row: OcpiSession) -> dict[str, Any]:
    """The whole Session as the CPO sent it, its periods put back (a GET, a full copy)."""
    data = row.data
    if isinstance(data.get("charging_periods"), list):
        data["charging_periods"] = charging_periods(row)
    return data


def _fill_session(row: OcpiSession, session: Session, data: dict[str, Any]) -> None:
    row.authorization_reference = (
        _key(session.authorization_reference) if session.authorization_reference else None
    )
    row.token_uid = _key(session.cdr_token.uid)
    row.status = session.status.value
    row.last_updated = session.last_updated
    row.raw = json_dumps(data)


def store_cdr(party: Party, data: dict[str, Any],
              parsed: Cdr | None = None) -> tuple[OcpiCdr, bool]:
    """Store a new CDR; a CDR already received (same owner and id) is returned unchanged.
    `parsed`: `data` already validated as a Cdr by the caller (not validated twice)."""
    cdr = parsed if parsed is not None else parse(Cdr, data)
    existing = _find(OcpiCdr, OcpiCdr.cdr_id, cdr.country_code, cdr.party_id, cdr.id)
    _check_owner(party, f"CDR {cdr.id}", cdr.country_code, cdr.party_id, existing)
    if existing is not None:
        return existing, False
    row = OcpiCdr(
        party_pk=party.pk,
        country_code=_key(cdr.country_code),
        party_id=_key(cdr.party_id),
        cdr_id=_key(cdr.id),
        session_id=_key(cdr.session_id) if cdr.session_id else None,
        authorization_reference=(
            _key(cdr.authorization_reference) if cdr.authorization_reference else None
        ),
        token_uid=_key(cdr.cdr_token.uid),
        currency=cdr.currency.upper(),
        total_cost_excl_vat=_column(cdr.total_cost.excl_vat),
        total_cost_incl_vat=_column(cdr.total_cost.incl_vat),
        raw=json_dumps(data),
    )
    db.session.add(row)
    try:
        db.session.flush()
    except IntegrityError:
        # The same CDR, POSTed again at the same moment, was stored first by the other
        # request: it is the one, and this delivery changes nothing. Rolled back whole (no
        # savepoint: two round trips on every CDR for a race): nothing else is written yet.
        db.session.rollback()
        stored = _find(OcpiCdr, OcpiCdr.cdr_id, cdr.country_code, cdr.party_id, cdr.id)
        if stored is None:  # some other constraint, not this CDR stored twice
            raise
        return stored, False
    return row, True


def _column(value: Decimal | None) -> Decimal | None:
    # Numeric(18, 4): rounded here, the same on every database; the raw JSON keeps the
    # digits as sent.
    return None if value is None else value.quantize(Decimal("0.0001"), ROUND_HALF_UP)


def _plain(value: Any, limit: int) -> TypeGuard[str]:
    return isinstance(value, str) and 0 < len(value) <= limit and all(
        " " <= ch <= "~" for ch in value)


def tolerate_cdr(party: Party, data: dict[str, Any]) -> dict[str, Any]:
    """The CDR with what real CPOs leave out, where the meaning is still clear, filled in
    (each noted as a DEVIATION on the connection's page):
    - no cdr_location.evse_uid, when the CDR's Session (same owner and session_id) was
      pushed over this connection: the Session's evse_uid;
    - a cdr_token without country_code/party_id: the eMSP that owns the Token, which is
      ScanCharge (mod_cdrs, CdrToken: "the MSP that 'owns' this Token"; CPOs send a CDR
      only to the eMSP of its Token).
    Anything else is left for the wire model to judge. Returns a new dict."""
    from flask import current_app

    data = dict(data)
    cdr_id = data.get("id") if _plain(data.get("id"), 39) else "(no id)"
    location = data.get("cdr_location")
    country_code, party_id, session_id = (
        data.get("country_code"), data.get("party_id"), data.get("session_id"))
    if isinstance(location, dict) and location.get("evse_uid") is None \
            and _plain(country_code, 2) and _plain(party_id, 3) and _plain(session_id, 36):
        row = find_session(country_code, party_id, session_id)
        evse_uid = row.data.get("evse_uid") if row is not None else None
        if row is not None and row.party_pk == party.pk and evse_uid:
            data["cdr_location"] = {**location, "evse_uid": evse_uid}
            notices.deviation(party.pk, "CDR_WITHOUT_EVSE_UID",
                              f"CDR {cdr_id} has no cdr_location.evse_uid; taken from its "
                              f"Session {session_id}: {evse_uid}")
    token = data.get("cdr_token")
    if isinstance(token, dict) and (token.get("country_code") is None
                                    or token.get("party_id") is None):
        ours = current_app.config
        data["cdr_token"] = {**token,
                             "country_code": token.get("country_code")
                             or ours["OCPI_COUNTRY_CODE"],
                             "party_id": token.get("party_id") or ours["OCPI_PARTY_ID"]}
        notices.deviation(party.pk, "CDR_TOKEN_WITHOUT_OWNER",
                          f"CDR {cdr_id}: cdr_token without country_code/party_id; taken as "
                          f"the Token of {ours['OCPI_COUNTRY_CODE']}*{ours['OCPI_PARTY_ID']}")
    return data


def mark_applied(row: OcpiSession | OcpiCdr) -> None:
    """The domain is done with this stored Session or CDR (its charge is past the session's
    end, or no charge of its sender is named): the sweeper will not read it again. Called
    in the receiver's unit of work, so a receiver that fails leaves it to the sweeper."""
    if row.applied_at is None:
        row.applied_at = now_utc()


def still_to_apply(model: type[OcpiSession] | type[OcpiCdr]) -> ColumnElement[bool]:
    """Condition: the stored Sessions that ended, or the CDRs, the domain is not done with
    (the partial indexes ix_ocpi_sessions_unapplied_end, ix_ocpi_cdrs_unapplied). The
    statuses are rendered as literals: a partial index serves only a condition the planner
    can compare with its own, which a bound parameter is not."""
    if model is OcpiCdr:
        return OcpiCdr.applied_at.is_(None)
    return and_(OcpiSession.applied_at.is_(None), OcpiSession.status.in_(bindparam(
        "ended_statuses", ENDED_SESSION_STATUSES, expanding=True, literal_execute=True)))


def session_figures(row: OcpiSession) -> dict[str, Any]:
    """The live figures of a stored Session, for the domain."""
    data = row.data
    total = data.get("total_cost") or {}
    return {
        "kwh": Decimal(str(data.get("kwh", 0))),
        "cost_incl_vat": (
            Decimal(str(total["incl_vat"])) if total.get("incl_vat") is not None else None
        ),
        "cost_excl_vat": (
            Decimal(str(total["excl_vat"])) if total.get("excl_vat") is not None else None
        ),
        "currency": data.get("currency"),
        "start_date_time": parse_datetime(data["start_date_time"]),
        "end_date_time": (
            parse_datetime(data["end_date_time"]) if data.get("end_date_time") else None
        ),
        "status": row.status,
        "session_id": data["id"],
    }


__all__ = ["load_json"]
