"""What the driver does: start a charge at a connector (and its hold), stop it, cancel it,
come back from the payment page.

Each action is its own unit of work (charging/unit_of_work.py); placing the hold is a
network call between two of them, so the gateway never waits on a database lock.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from flask import current_app

from charging.connectors import (
    STARTABLE_EVSE_STATUSES,
    connector_limits,
    connector_power_kw,
    connector_tariff,
    evse_data,
    find_evse,
    hold_amount,
)
from charging.errors import DriverError
from charging.models import Charge, ChargeEvent
from charging.payment_events import authorize, expire_unpaid
from charging.releases import release_hold
from charging.states import ChargeStatus as S
from charging.states import Event, can
from charging.stopping import begin_stopping, record_stop_request
from charging.timeline import Cause, fail, fire, money, note
from charging.unit_of_work import leave_unchanged, locked_charge, network_step, unit_of_work
from extensions import db
from ocpi.models import OcpiEvse, OcpiLocation, Party
from payments.gateway import Hold, HoldStatus, PaymentError
from payments.setup import current_gateway

log = logging.getLogger(__name__)


def _connector(
    evse_id: str, connector_id: str | None
) -> tuple[OcpiEvse, OcpiLocation, Party, dict[str, Any], dict[str, Any]]:
    """The EVSE row, its location and CPO, and the EVSE and connector as the CPO sent them;
    DriverError when the driver cannot start there."""
    found = find_evse(evse_id)
    if found is None:
        raise DriverError("unknown_charger", 404)
    evse_row, location, party = found
    evse = evse_data(location, evse_row.evse_uid)
    if evse_row.status not in STARTABLE_EVSE_STATUSES:
        code = (
            "charger_occupied"
            if evse_row.status in {"CHARGING", "BLOCKED", "RESERVED"}
            else "charger_unavailable"
        )
        raise DriverError(code, 409, evse_row.status)
    connectors = evse.get("connectors") or []
    connector = next(
        (c for c in connectors if connector_id is None or str(c["id"]) == str(connector_id)), None
    )
    if connector is None:
        raise DriverError("unknown_connector", 404)
    return evse_row, location, party, evse, connector


def new_charge(
    evse_id: str,
    connector_id: str | None,
    language: str,
    email: str | None,
    max_amount_minor: int | None = None,
    client_key: str | None = None,
) -> int:
    """A new CREATED charge at a connector, in the caller's unit of work; its pk."""
    evse_row, location, party, evse, connector = _connector(evse_id, connector_id)
    tariff = connector_tariff(location, connector)
    currency = (tariff or {}).get("currency", "SEK").upper()
    power = connector_power_kw(connector)
    if max_amount_minor is not None:
        limits = connector_limits(tariff, currency, power_kw=power,
                                  time_zone=location.time_zone)
        if max_amount_minor < limits.min_cap_minor:
            raise DriverError("cap_too_low", 400, amount=(limits.min_cap_minor, currency))
    charge = Charge(
        party_pk=party.pk,
        cpo_country_code=location.country_code,
        cpo_party_id=location.party_id,
        location_id=location.location_id,
        evse_uid=evse_row.evse_uid,
        evse_id=evse.get("evse_id") or evse_row.evse_uid,
        connector_id=str(connector["id"]),
        tariff_id=(tariff or {}).get("id"),
        currency=currency,
        hold_minor=hold_amount(tariff, currency, power_kw=power,
                               time_zone=location.time_zone, driver_cap_minor=max_amount_minor),
        gateway=current_gateway().kind,
        token_uid=uuid.uuid4().hex.upper(),
        authorization_reference=uuid.uuid4().hex.upper(),
        language=language,
        email=email or None,
        status=S.CREATED.value,
        client_key=client_key,
    )
    db.session.add(charge)
    db.session.flush()
    db.session.add(ChargeEvent(
        charge_pk=charge.pk, from_status=None, to_status=S.CREATED.value, cause="driver",
        note=f"{charge.evse_id} connector {connector['id']}",
    ))
    expire_unpaid.enqueue_after_commit(charge.pk, delay=current_app.config["UNPAID_CHARGE_TTL"])
    return charge.pk


def place_hold(charge_pk: int) -> tuple[Charge, Hold]:
    """The card hold for a committed CREATED charge, placed with no lock held; a gateway
    that cannot place it cancels the charge (DriverError payment_unavailable)."""
    with unit_of_work():
        charge = db.session.get_one(Charge, charge_pk)
        amount, currency, public_id = charge.hold_minor, charge.currency, charge.public_id
        evse_id = charge.evse_id
    try:
        with network_step():
            hold = current_gateway().create_hold(
                amount,
                currency,
                description=f"EV charging at {evse_id}",
                metadata={"charge": public_id, "evse_id": evse_id},
                idempotency_key=f"charge-{public_id}-hold",
            )
    except PaymentError as exc:
        with locked_charge(charge_pk) as charge:
            fail(charge, "PAYMENT_UNAVAILABLE", str(exc))
            fire(charge, Event.CANCELLED, Cause("payment", note=f"no hold could be placed: {exc}"))
        raise DriverError("payment_unavailable", 503, str(exc)) from exc
    with locked_charge(charge_pk) as charge:
        charge.hold_id = hold.id
    return charge, hold


def create_charge(
    evse_id: str,
    connector_id: str | None,
    language: str,
    email: str | None,
    max_amount_minor: int | None = None,
    client_key: str | None = None,
) -> tuple[Charge, Hold]:
    """A new charge at a connector, and its hold. `max_amount_minor` is the driver's own
    cap ("charge up to 200 kr"): the hold is no larger, and charging stops before it.
    `client_key` is the requesting client's keyed hash (ratelimits.client_key), never its
    address: it finds the client's open unpaid charge (charging/unpaid.py)."""
    with unit_of_work():  # committed before the gateway call: it holds no write lock
        pk = new_charge(evse_id, connector_id, language, email, max_amount_minor, client_key)
    return place_hold(pk)


def request_stop(charge_pk: int, by: str = "driver", who: str | None = None) -> Charge:
    """The driver (or an operator) asks to stop. The request is kept on the charge until the
    session ends: sent as soon as a Session id is known, retried while the CPO refuses or
    cannot be reached, never dropped. Asking twice is asking once. `who` names the
    operator on the timeline."""
    with locked_charge(charge_pk) as charge:
        if charge.stop_requested_at is not None or charge.state == S.STOPPING:
            leave_unchanged()
            return charge
        if charge.state == S.STARTING:
            # Not charging yet: the stop waits for the charger to start, then goes at once.
            record_stop_request(charge, by)
            note(charge, Cause(by, who, "stop requested before charging started: "
                                        "sent once it has"))
            return charge
        if not can(charge.state, Event.STOP_REQUESTED):
            raise DriverError("not_charging", 409, charge.status)
        begin_stopping(charge, by, Cause(by, who, "stop requested from the phone"
                                         if by == "driver" else f"stop requested by the {by}"))
        return charge


def cancel(charge_pk: int) -> Charge:
    """The driver gives up before charging starts: release whatever is held."""
    with locked_charge(charge_pk) as charge:
        if not can(charge.state, Event.CANCELLED):
            raise DriverError("cannot_cancel", 409, charge.status)
        fire(charge, Event.CANCELLED, Cause("driver", note="cancelled before charging started"))
        release_hold.enqueue_after_commit(charge.pk)
        return charge


def refresh_payment(charge_pk: int) -> Charge:
    """The driver is back from a redirect (3-D Secure's return_url) while the charge still
    waits for its payment: ask the gateway instead of waiting for the webhook, and start
    if the hold is authorised. Gateway trouble leaves the charge as it was (the webhook or
    expire_unpaid decides later)."""
    with unit_of_work():  # no transaction open while the gateway works
        charge = db.session.get_one(Charge, charge_pk)
        if not can(charge.state, Event.HOLD_AUTHORIZED) or not charge.hold_id:
            return charge
        hold_id = charge.hold_id
    try:
        with network_step():
            hold = current_gateway().retrieve(hold_id)
    except PaymentError as exc:
        log.warning("charge %s: payment status not read on return: %s", charge_pk, exc)
        return db.session.get_one(Charge, charge_pk)
    if hold.status != HoldStatus.REQUIRES_CAPTURE:
        return db.session.get_one(Charge, charge_pk)
    with locked_charge(charge_pk) as charge:
        authorize(charge, hold, Cause("payment", hold.id,
                                      f"{money(hold.amount_capturable_minor, hold.currency)} held "
                                      "(read from the gateway on the driver's return)"))
        return charge
