"""At most one open unpaid charge per EVSE and client.

A phone on a weak connection sends "pay and start" and never hears the answer; the driver
taps again. That second request gets the first charge back — the same public id, the same
PaymentIntent and client secret — instead of a second hold on the card. A 409 would leave
that driver, who never saw the first answer, holding nothing to pay with; returning the
charge lets the page carry on as if the first answer had arrived.

Only the same request is answered this way: the same connector and the same hold (a
different cap gives another hold). A different one, while the first is still unpaid,
is refused with 409 `unpaid_charge_open` naming the open charge, which the client may
cancel before asking again — never two holds at one charger from one client.
"""

from __future__ import annotations

import time
from datetime import timedelta

from flask import current_app
from sqlalchemy import select, update

from charging.connectors import (
    connector_power_kw,
    connector_tariff,
    evse_data,
    find_evse,
    hold_amount,
)
from charging.driver_actions import create_charge, new_charge, place_hold
from charging.errors import DriverError
from charging.models import Charge
from charging.states import ChargeStatus as S
from charging.unit_of_work import network_step, unit_of_work
from extensions import db
from ocpi.models import OcpiEvse, OcpiLocation
from ocpi.transport import now_utc
from payments.gateway import Hold, PaymentError
from payments.setup import current_gateway

# How long the second of two simultaneous requests waits for the first one's hold.
HOLD_WAIT_SECONDS = 15.0


def create_or_resume(
    evse_id: str,
    connector_id: str | None,
    language: str,
    email: str | None,
    *,
    max_amount_minor: int | None,
    client_key: str,
) -> tuple[Charge, Hold, bool]:
    """(charge, hold, created): the client's open unpaid charge for this same request at this
    EVSE, else a new one (driver_actions.new_charge, which also raises every request error).
    Looking for the open charge and creating the new one are one unit of work under the
    EVSE's lock; the hold is placed after it commits (driver_actions.place_hold)."""
    for _ in range(2):  # twice at most: the open charge may fail to get its hold meanwhile
        with unit_of_work():
            open_pk = _open_unpaid_pk(evse_id, connector_id, max_amount_minor, client_key)
            if open_pk is None:
                new_pk = new_charge(evse_id, connector_id, language, email,
                                    max_amount_minor=max_amount_minor, client_key=client_key)
        if open_pk is None:
            return (*place_hold(new_pk), True)
        resumed = _with_hold(open_pk)  # the lock is not needed to wait for the hold
        if resumed is not None:
            return (*resumed, False)
    charge, hold = create_charge(
        evse_id, connector_id, language, email,
        max_amount_minor=max_amount_minor, client_key=client_key,
    )
    return charge, hold, True


def _open_unpaid_pk(evse_id: str, connector_id: str | None, max_amount_minor: int | None,
                    client_key: str) -> int | None:
    """The client's open unpaid charge for this same request, under the EVSE's lock (held
    until the unit of work ends); DriverError for a different request while it is open."""
    found = find_evse(evse_id)
    if found is None:
        return None  # new_charge says why
    evse_row, location, _party = found
    _lock_evse(evse_row.pk)
    open_charge = _open_unpaid(evse_row, location, client_key)
    if open_charge is None:
        return None
    if not _same_request(open_charge, evse_row, location, connector_id, max_amount_minor):
        raise DriverError("unpaid_charge_open", 409, open_charge.public_id)
    return open_charge.pk


def _lock_evse(evse_pk: int) -> None:
    # Creations at one EVSE take turns: an UPDATE that changes nothing holds the row's lock
    # (PostgreSQL) or the database's write lock (SQLite) until the unit of work that creates
    # the new charge commits, so of two simultaneous requests the second finds the first's charge.
    db.session.execute(
        update(OcpiEvse).where(OcpiEvse.pk == evse_pk).values(status=OcpiEvse.status)
    )


def _open_unpaid(evse_row: OcpiEvse, location: OcpiLocation, client_key: str) -> Charge | None:
    # Unpaid and not yet expired: the expiry task may run late, so the age decides too.
    since = now_utc() - timedelta(seconds=current_app.config["UNPAID_CHARGE_TTL"])
    return db.session.scalar(
        select(Charge)
        .where(Charge.client_key == client_key, Charge.party_pk == location.party_pk,
               Charge.location_id == location.location_id,
               Charge.evse_uid == evse_row.evse_uid, Charge.status == S.CREATED.value,
               Charge.created_at > since)
        .order_by(Charge.pk.desc())
        .limit(1)
    )


def _same_request(charge: Charge, evse_row: OcpiEvse, location: OcpiLocation,
                  connector_id: str | None, max_amount_minor: int | None) -> bool:
    """The connector and hold this request would get are the open charge's."""
    evse = evse_data(location, evse_row.evse_uid)
    connector = next((c for c in evse.get("connectors") or []
                      if connector_id is None or str(c["id"]) == str(connector_id)), None)
    if connector is None or str(connector["id"]) != charge.connector_id:
        return False
    tariff = connector_tariff(location, connector)
    currency = (tariff or {}).get("currency", "SEK").upper()
    hold = hold_amount(tariff, currency, power_kw=connector_power_kw(connector),
                               time_zone=location.time_zone, driver_cap_minor=max_amount_minor)
    return currency == charge.currency and hold == charge.hold_minor


def _with_hold(charge_pk: int) -> tuple[Charge, Hold] | None:
    """The charge and its hold once the request that created it has placed the hold; None
    if that failed meanwhile (the charge is CANCELLED: a new one may be created)."""
    deadline = time.monotonic() + HOLD_WAIT_SECONDS
    while True:
        with unit_of_work():  # one short read each time: no transaction left open while waiting
            charge = db.session.get_one(Charge, charge_pk, populate_existing=True)
            hold_id, status = charge.hold_id, charge.status
        if hold_id:
            try:
                with network_step():
                    return charge, current_gateway().retrieve(hold_id)
            except PaymentError as exc:
                raise DriverError("payment_unavailable", 503, str(exc)) from exc
        if status != S.CREATED.value:
            return None
        if time.monotonic() > deadline:
            raise DriverError("payment_unavailable", 503,
                              "the hold of the open charge is still being placed")
        time.sleep(0.1)
