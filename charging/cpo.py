"""A charge at its CPO: its location, the CPO it belongs to, its tariff, and which charge
a CPO's Session or CDR is about (only the charge's own CPO may move it)."""

from __future__ import annotations

from types import ModuleType
from typing import Any

from sqlalchemy import bindparam, or_, select

from charging.models import Charge
from charging.unit_of_work import charge_lock, count_lock, lock_charge_where
from extensions import db
from ocpi import notices as ocpi_notices
from ocpi import store as ocpi_store
from ocpi.models import OcpiCdr, OcpiLocation, OcpiSession


def location_of(charge: Charge) -> OcpiLocation | None:
    query = select(OcpiLocation).where(OcpiLocation.party_pk == charge.party_pk,
                                       OcpiLocation.location_id == charge.location_id)
    if charge.cpo_country_code and charge.cpo_party_id:
        # Behind a hub, two CPOs may use the same location id.
        query = query.where(OcpiLocation.country_code == charge.cpo_country_code,
                            OcpiLocation.party_id == charge.cpo_party_id)
    return db.session.scalar(query)


def cpo_of(charge: Charge) -> tuple[str, str] | None:
    """The CPO that owns the charge's location: whom commands are for, also via a hub."""
    if charge.cpo_country_code and charge.cpo_party_id:
        return charge.cpo_country_code, charge.cpo_party_id
    location = location_of(charge)
    return (location.country_code, location.party_id) if location else None


def owned_by(charge: Charge, party_pk: int, country_code: str, party_id: str) -> bool:
    """Did this come from the charge's own CPO, over the connection it was started on?"""
    owner = cpo_of(charge)
    return (charge.party_pk == party_pk and owner is not None
            and owner == (country_code.upper(), party_id.upper()))


def time_zone_of(charge: Charge) -> str:
    location = location_of(charge)
    return location.time_zone if location else "UTC"


def tariff_of(charge: Charge) -> dict[str, Any] | None:
    """The tariff the charge was offered under, as its CPO last sent it."""
    location = location_of(charge) if charge.tariff_id else None
    if location is None or charge.tariff_id is None:
        return None
    row = ocpi_store.find_tariff(location.country_code, location.party_id, charge.tariff_id)
    return row.data if row else None


def ocpi_commands() -> ModuleType:  # imported late: it needs an app context for its config
    from ocpi import commands

    return commands


def _naming(authorization_reference: str | None, token_uid: str | None) -> Any:
    conditions = []
    if authorization_reference:
        conditions.append(Charge.authorization_reference == authorization_reference.upper())
    if token_uid:
        conditions.append(Charge.token_uid == token_uid.upper())
    return or_(*conditions) if conditions else None


def charge_for(authorization_reference: str | None, token_uid: str | None) -> int | None:
    """The charge our authorization_reference or one-time token uid names, if any."""
    naming = _naming(authorization_reference, token_uid)
    return None if naming is None else db.session.scalar(select(Charge.pk).where(naming))


# Either may be None: "= NULL" matches nothing, so one statement serves both.
_BY_REFERENCE = charge_lock(or_(Charge.authorization_reference == bindparam("reference"),
                                Charge.token_uid == bindparam("uid")))


def lock_charge_for_object(row: OcpiSession | OcpiCdr) -> Charge | None:
    """The charge a stored Session or CDR is about, locked, if it came from that charge's
    own CPO (for the caller's unit of work).

    Matched by our authorization_reference or token uid, and then by who sent it: a
    Session or CDR from any other party that names one of our references moves nothing
    (another CPO could otherwise end, or capture, a charge it never ran) and is flagged for
    the operator as a suspected misuse, in the caller's unit of work. Found and locked in
    one read: on the ingest path every round trip counts.
    """
    if not (row.authorization_reference or row.token_uid):
        return None
    charge = lock_charge_where(_BY_REFERENCE, {
        "reference": row.authorization_reference.upper() if row.authorization_reference else None,
        "uid": row.token_uid.upper() if row.token_uid else None}, count=False)
    if charge is None:
        return None
    if owned_by(charge, row.party_pk, row.country_code, row.party_id):
        count_lock(charge)
        return charge
    kind = "Session" if isinstance(row, OcpiSession) else "CDR"
    object_id = row.session_id if isinstance(row, OcpiSession) else row.cdr_id
    ocpi_notices.record(
        row.party_pk, "MISUSE", f"FOREIGN_{kind.upper()}",
        f"{kind} {row.country_code}*{row.party_id} {object_id} names the token or "
        f"authorization reference of a charge at another CPO's location; it changed nothing",
        object_key=f"{kind}:{object_id}",
    )
    return None
