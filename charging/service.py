"""The charge lifecycle: what happens when a driver, a CPO or the payment gateway acts.

Rules kept here:
- Every change of a charge happens under its row lock (lock_charge) and through move(),
  which checks the transition table and appends the move, with its cause, to the timeline.
- Payment receivers (on_hold_*) run inside the transaction that claims the payment event
  and never commit; OCPI receivers (on_command_result, on_session_updated,
  on_cdr_received) run after the OCPI object is committed and commit their own change;
  task functions (run by the queue) own their transactions.
- Gateway calls are never made while a charge's lock is held: the state is checked and
  committed first, the call carries an idempotency key, and the result is applied under a
  fresh lock after re-checking the state.
- Slow or external work (OCPI commands, captures) is enqueued after commit, never done
  while a driver's request or a webhook waits.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from flask import current_app
from sqlalchemy import or_, select

from charging.models import Charge, ChargeEvent
from charging.states import OPERATOR_FLAGS, Event, check_transition, next_state
from charging.states import ChargeStatus as S
from charging.unit_of_work import lock_charge, locked_charge, unit_of_work  # noqa: F401
from extensions import db
from jobs import background_task, backoff_delay, periodic_task
from ocpi import notices as ocpi_notices
from ocpi import store as ocpi_store
from ocpi import wire
from ocpi.models import (
    IssuedToken,
    OcpiCdr,
    OcpiCommand,
    OcpiEvse,
    OcpiLocation,
    OcpiSession,
    Party,
    dump_json,
)
from ocpi.transport import json_dumps, now_utc, parse_datetime
from payments.gateway import Hold, HoldStatus, PaymentError
from payments.money import Money, to_minor
from payments.setup import current_gateway

log = logging.getLogger(__name__)

# EVSE statuses a driver may start on. UNKNOWN is allowed: many CPOs never push status.
STARTABLE_EVSE_STATUSES = {"AVAILABLE", "UNKNOWN"}


@dataclass(frozen=True)
class Cause:
    kind: str  # driver | operator | payment | ocpi | deadline | system
    ref: str | None = None
    note: str | None = None


class DriverError(Exception):
    """Something the driver asked for cannot be done; `code` is translated on the page."""

    def __init__(self, code: str, http_status: int = 409, detail: str | None = None) -> None:
        super().__init__(code)
        self.code = code
        self.http_status = http_status
        self.detail = detail


# --- Locking and moving -----------------------------------------------------------------


def move(charge: Charge, target: S, cause: Cause) -> None:
    """Apply one allowed transition and record it; raises IllegalTransition otherwise."""
    current = charge.state
    check_transition(current, target)
    charge.status = target.value
    if target == S.ENDED:
        _stop_fulfilled(charge)
    db.session.add(
        ChargeEvent(
            charge_pk=charge.pk,
            from_status=current.value,
            to_status=target.value,
            cause=cause.kind,
            cause_ref=cause.ref,
            note=cause.note,
        )
    )


def fire(charge: Charge, event: Event, cause: Cause) -> None:
    """Move the charge as the state table says `event` does; raises IllegalEvent otherwise."""
    move(charge, next_state(charge.state, event), cause)


def note(charge: Charge, cause: Cause) -> None:
    """A timeline entry that is not a transition (a decline, a refused stop...)."""
    db.session.add(
        ChargeEvent(
            charge_pk=charge.pk,
            from_status=charge.status,
            to_status=charge.status,
            cause=cause.kind,
            cause_ref=cause.ref,
            note=cause.note,
        )
    )


def fail(charge: Charge, code: str, detail: str | None) -> None:
    charge.failure_code = code
    charge.failure_detail = detail


# Outcomes after which the charger may still start (the command got lost, not refused):
# the hold is kept a little longer so a late Session can still be charged.
UNCERTAIN_START_FAILURES = {"START_TIMEOUT", "START_NO_RESULT", "START_NO_RESPONSE",
                            "CPO_UNREACHABLE"}


def fail_start(charge: Charge, code: str, detail: str | None, cause: Cause) -> None:
    """The start failed: release the hold, at once when the charger refused, after
    LATE_SESSION_GRACE when it may yet start."""
    fail(charge, code, detail)
    fire(charge, Event.START_FAILED, cause)
    delay = current_app.config["LATE_SESSION_GRACE"] if code in UNCERTAIN_START_FAILURES else None
    release_hold.enqueue_after_commit(charge.pk, delay=delay)


# --- The driver -------------------------------------------------------------------------


def find_evse(evse_id: str) -> tuple[OcpiEvse, OcpiLocation, Party] | None:
    row = db.session.execute(
        select(OcpiEvse, OcpiLocation, Party)
        .join(OcpiLocation, OcpiEvse.location_pk == OcpiLocation.pk)
        .join(Party, OcpiLocation.party_pk == Party.pk)
        .where(OcpiEvse.evse_id == OcpiEvse.normalise_evse_id(evse_id),
               OcpiEvse.clash.is_(False))
        .where(Party.status == "CONNECTED")
        .order_by(OcpiEvse.last_updated.desc())
    ).first()
    return (row[0], row[1], row[2]) if row else None


def evse_data(location: OcpiLocation, evse_uid: str) -> dict[str, Any]:
    for evse in location.data.get("evses") or []:
        if str(evse.get("uid", "")).upper() == evse_uid.upper():
            return evse
    raise DriverError("unknown_charger", 404)


def connector_tariff(location: OcpiLocation, connector: dict[str, Any]) -> dict[str, Any] | None:
    """The tariff for an ad-hoc charge at this connector: AD_HOC_PAYMENT first."""
    tariffs = []
    for tariff_id in connector.get("tariff_ids") or []:
        row = ocpi_store.find_tariff(location.country_code, location.party_id, tariff_id)
        if row is not None:
            tariffs.append(row.data)
    tariffs.sort(key=lambda t: t.get("type") != "AD_HOC_PAYMENT")
    return tariffs[0] if tariffs else None


def connector_power_kw(connector: dict[str, Any]) -> Decimal:
    watts = connector.get("max_electric_power")
    if not watts:
        phases = 3 if connector.get("power_type") == "AC_3_PHASE" else 1
        watts = connector["max_voltage"] * connector["max_amperage"] * phases
    return Decimal(watts) / 1000


def hold_amount(
    tariff: dict[str, Any] | None,
    currency: str,
    *,
    power_kw: Decimal,
    time_zone: str,
    driver_cap_minor: int | None = None,
) -> int:
    """The card hold: what a plausible longest session at this connector would cost under
    its tariff (or the tariff's own preauthorize_amount), never below its minimum price,
    capped by HOLD_CAP_MINOR and by the driver's own cap."""
    cfg = current_app.config
    caps = [c for c in (cfg["HOLD_CAP_MINOR"], driver_cap_minor) if c]
    if tariff is None:
        return min([cfg["DEFAULT_HOLD_MINOR"], *caps])
    from tariffs import TariffError, hold_for

    try:
        return hold_for(
            tariff, power_kw=power_kw,
            max_session=timedelta(minutes=cfg["HOLD_MAX_SESSION_MINUTES"]),
            cap_minor=min(caps) if caps else None, currency=currency, at=now_utc(),
            time_zone=time_zone,
        )
    except TariffError as exc:
        log.warning("tariff %s cannot size a hold (%s): the default hold applies",
                    tariff.get("id"), exc)
        return min([cfg["DEFAULT_HOLD_MINOR"], *caps])


def minimum_price_minor(tariff: dict[str, Any] | None, currency: str) -> int:
    if not tariff or not tariff.get("min_price"):
        return 0
    minimum = tariff["min_price"].get("incl_vat") or tariff["min_price"]["excl_vat"]
    return to_minor(Decimal(str(minimum)), currency)


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
    tariff = connector_tariff(location, connector)
    currency = (tariff or {}).get("currency", "SEK").upper()
    if max_amount_minor is not None and max_amount_minor < max(
        minimum_price_minor(tariff, currency), 100
    ):
        raise DriverError("cap_too_low", 400)
    hold = hold_amount(tariff, currency, power_kw=connector_power_kw(connector),
                       time_zone=location.time_zone, driver_cap_minor=max_amount_minor)

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
        hold_minor=hold,
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
    db.session.add(
        ChargeEvent(
            charge_pk=charge.pk,
            from_status=None,
            to_status=S.CREATED.value,
            cause="driver",
            note=f"{charge.evse_id} connector {connector['id']}",
        )
    )
    expire_unpaid.enqueue_after_commit(charge.pk, delay=current_app.config["UNPAID_CHARGE_TTL"]
    )
    db.session.commit()  # the gateway call below must not hold the database's write lock
    try:
        hold = current_gateway().create_hold(
            charge.hold_minor,
            currency,
            description=f"EV charging at {charge.evse_id}",
            metadata={"charge": charge.public_id, "evse_id": charge.evse_id},
            idempotency_key=f"charge-{charge.public_id}-hold",
            receipt_email=charge.email,
        )
    except PaymentError as exc:
        db.session.rollback()
        charge = lock_charge(charge.pk)
        fail(charge, "PAYMENT_UNAVAILABLE", str(exc))
        fire(charge, Event.CANCELLED, Cause("payment", note=f"no hold could be placed: {exc}"))
        db.session.commit()
        raise DriverError("payment_unavailable", 503, str(exc)) from exc
    charge = lock_charge(charge.pk)
    charge.hold_id = hold.id
    db.session.commit()
    return charge, hold


def request_stop(charge_pk: int, by: str = "driver") -> Charge:
    """The driver (or an operator) asks to stop. The request is kept on the charge until the
    session ends: sent as soon as a Session id is known, retried while the CPO refuses or
    cannot be reached, never dropped. Asking twice is asking once."""
    charge = lock_charge(charge_pk)
    if charge.stop_requested_at is not None or charge.state == S.STOPPING:
        db.session.rollback()
        return charge
    if charge.state == S.STARTING:
        # Not charging yet: the stop waits for the charger to start, then goes at once.
        _record_stop_request(charge, by)
        note(charge, Cause(by, note="stop requested before charging started: sent once it has"))
        db.session.commit()
        return charge
    if charge.state != S.CHARGING:
        db.session.rollback()
        raise DriverError("not_charging", 409, charge.status)
    _begin_stopping(charge, by, Cause(by, note="stop requested from the phone"
                                      if by == "driver" else f"stop requested by the {by}"))
    db.session.commit()
    return charge


def cancel(charge_pk: int) -> Charge:
    """The driver gives up before charging starts: release whatever is held."""
    charge = lock_charge(charge_pk)
    if charge.state not in {S.CREATED, S.AUTHORIZED}:
        db.session.rollback()
        raise DriverError("cannot_cancel", 409, charge.status)
    fire(charge, Event.CANCELLED, Cause("driver", note="cancelled before charging started"))
    release_hold.enqueue_after_commit(charge.pk)
    db.session.commit()
    return charge


# --- The payment gateway (signal receivers: inside the event's transaction) -------------


def _charge_for_hold(hold: Hold) -> Charge | None:
    pk = db.session.scalar(select(Charge.pk).where(Charge.hold_id == hold.id))
    return lock_charge(pk) if pk is not None else None


def on_hold_authorized(hold: Hold, event_id: str) -> None:
    charge = _charge_for_hold(hold)
    if charge is None:
        log.warning("authorised hold %s belongs to no charge", hold.id)
        return
    authorize(charge, hold, Cause("payment", event_id,
                                  f"{hold.amount_capturable_minor} {hold.currency} held"))


def authorize(charge: Charge, hold: Hold, cause: Cause) -> None:
    """The hold is authorised (said by the webhook, or read from the gateway when the
    webhook is late): CREATED -> AUTHORIZED and start. Idempotent: whichever of the webhook,
    expire_unpaid or the driver's return comes second only fills in what was missing.
    The caller holds the charge's lock and commits."""
    charge.card_brand = hold.payment_method_brand or charge.card_brand
    charge.card_last4 = hold.payment_method_last4 or charge.card_last4
    charge.capture_before = hold.capture_before or charge.capture_before
    if charge.state == S.CREATED:
        fire(charge, Event.HOLD_AUTHORIZED, cause)
        start.enqueue_after_commit(charge.pk)
        if charge.capture_before is None and charge.hold_id:
            # A webhook names the charge by id only: read capture_before from the gateway
            # after commit (never while this transaction holds locks).
            record_capture_before.enqueue_after_commit(charge.pk)
    elif charge.state in {S.EXPIRED, S.CANCELLED}:
        # Paid after giving up: nothing will start, so the money must not stay held.
        note(charge, Cause(cause.kind, cause.ref,
                           "authorised after the charge ended; releasing"))
        release_hold.enqueue_after_commit(charge.pk)


# Reads the authorisation's capture_before when the webhook did not carry it.
@background_task("charging.record_capture_before", retries=5, retry_delay=20)
def record_capture_before(charge_pk: int) -> None:
    """Read the authorisation's real end from the gateway and keep it on the charge."""
    charge = db.session.get(Charge, charge_pk)
    if charge is None or not charge.hold_id or charge.capture_before is not None:
        db.session.rollback()
        return
    hold_id = charge.hold_id
    db.session.rollback()
    hold = current_gateway().retrieve(hold_id)  # a passing failure: the queue retries
    if hold.capture_before is None:
        return
    charge = lock_charge(charge_pk)
    if charge.capture_before is None:
        charge.capture_before = hold.capture_before
    db.session.commit()


def refresh_payment(charge_pk: int) -> Charge:
    """The driver is back from a redirect (3-D Secure's return_url) while the charge still
    waits for its payment: ask the gateway instead of waiting for the webhook, and start
    if the hold is authorised. Gateway trouble leaves the charge as it was (the webhook or
    expire_unpaid decides later)."""
    charge = db.session.get(Charge, charge_pk)
    if charge is None or charge.state != S.CREATED or not charge.hold_id:
        return charge
    hold_id = charge.hold_id
    db.session.rollback()  # no transaction open while the gateway works
    try:
        hold = current_gateway().retrieve(hold_id)
    except PaymentError as exc:
        log.warning("charge %s: payment status not read on return: %s", charge_pk, exc)
        return db.session.get(Charge, charge_pk)
    if hold.status != HoldStatus.REQUIRES_CAPTURE:
        return db.session.get(Charge, charge_pk)
    charge = lock_charge(charge_pk)
    authorize(charge, hold, Cause("payment", hold.id,
                                  f"{hold.amount_capturable_minor} {hold.currency} held "
                                  "(read from the gateway on the driver's return)"))
    db.session.commit()
    return charge


def on_hold_failed(hold: Hold, event_id: str) -> None:
    charge = _charge_for_hold(hold)
    if charge is not None:
        note(charge, Cause("payment", event_id, f"payment failed: {hold.decline_message}"))


def on_hold_canceled(hold: Hold, event_id: str) -> None:
    charge = _charge_for_hold(hold)
    if charge is None:
        return
    charge.hold_released_at = charge.hold_released_at or now_utc()
    if charge.state == S.START_FAILED:
        fire(charge, Event.RELEASED, Cause("payment", event_id, "hold released"))
    elif charge.state in WAITING_FOR_CAPTURE and charge.captured_minor is None and (
        hold.cancellation_reason != OUR_CANCELLATION_REASON or charge.state != S.ENDED
    ):
        # Not our release (ours say "abandoned", and only ENDED of these states is ever
        # released by us): the authorisation lapsed ("automatic") or someone canceled it
        # in the gateway's dashboard. Nothing is held any more, so nothing can be captured.
        authorization_lapsed(charge, Cause(
            "payment", event_id,
            f"the gateway canceled the hold ({hold.cancellation_reason or 'no reason given'})",
        ))


# The states in which the hold waits for its capture; ScanCharge's own cancel reason.
WAITING_FOR_CAPTURE = frozenset({S.CHARGING, S.STOPPING, S.ENDED})
OUR_CANCELLATION_REASON = "abandoned"


def authorization_lapsed(charge: Charge, cause: Cause) -> None:
    """The hold is gone before the capture: flag AUTHORIZATION_LAPSED with the last known
    cost for the operator, never capture. ENDED goes to RELEASED (nothing is held); a
    session still running is stopped, since no money covers it, and is released when it
    ends (settle). The caller holds the lock and commits."""
    if charge.failure_code == "AUTHORIZATION_LAPSED":
        note(charge, cause)
        return
    cost = (f"{Money(to_minor(charge.cost_incl_vat, charge.currency), charge.currency).amount}"
            f" {charge.currency}" if charge.cost_incl_vat is not None else "unknown")
    fail(charge, "AUTHORIZATION_LAPSED",
         f"the card authorisation ended before the capture; last known cost {cost}")
    text = f"{cause.note}: authorisation lapsed, nothing captured; last known cost {cost}"
    if charge.state == S.ENDED:
        fire(charge, Event.RELEASED, Cause(cause.kind, cause.ref, text))
        _retire_token(charge)
    else:
        note(charge, Cause(cause.kind, cause.ref, text + "; stopping the session"))
        if charge.session_id:
            stop_unpaid_session.enqueue_after_commit(charge.pk)


def on_hold_captured(hold: Hold, event_id: str) -> None:
    charge = _charge_for_hold(hold)
    if charge is not None:
        note(
            charge,
            Cause(
                "payment",
                event_id,
                f"gateway confirms {hold.amount_received_minor} {hold.currency} captured",
            ),
        )


# --- Background tasks (each owns its transaction) ---------------------------------------


@background_task("charging.start")
def start(charge_pk: int) -> None:
    """Issue the ad-hoc Token and send START_SESSION."""
    charge = lock_charge(charge_pk)
    if charge.state != S.AUTHORIZED:
        db.session.rollback()
        return
    fire(charge, Event.START_SENT, Cause("system", note="sending START_SESSION"))
    token = _issue_token(charge)
    # Known before sending: the CommandResult may overtake the CommandResponse.
    charge.start_command_uid = ocpi_commands().new_command_uid()
    db.session.commit()

    party = db.session.get(Party, charge.party_pk)
    body = wire.StartSession.model_validate(
        {
            "response_url": "pending",
            "token": token,
            "location_id": charge.location_id,
            "evse_uid": charge.evse_uid,
            "connector_id": charge.connector_id,
            "authorization_reference": charge.authorization_reference,
        }
    ).to_json()
    body.pop("response_url")
    command = ocpi_commands().send_command(
        party,
        wire.CommandType.START_SESSION,
        body,
        uid=charge.start_command_uid,
        correlation_id=charge.public_id,
        to=cpo_of(charge),
    )

    charge = lock_charge(charge_pk)
    if command.response_result == "ACCEPTED":
        note(
            charge,
            Cause(
                "ocpi",
                command.uid,
                f"START_SESSION accepted; result due within {command.timeout_seconds} s",
            ),
        )
        command_deadline.enqueue_after_commit(command.uid, delay=command.timeout_seconds
        )
    elif charge.state == S.STARTING:
        code = (
            "CPO_UNREACHABLE"
            if command.response_result == "ERROR"
            else f"START_{command.response_result}"
        )
        fail_start(
            charge,
            code,
            command.response_message,
            Cause("ocpi", command.uid, f"START_SESSION {command.response_result}"),
        )
    db.session.commit()


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


def ocpi_commands():  # the module, imported late: it needs an app context for its config
    from ocpi import commands

    return commands


def _issue_token(charge: Charge) -> dict[str, Any]:
    cfg = current_app.config
    token = {
        "country_code": cfg["OCPI_COUNTRY_CODE"],
        "party_id": cfg["OCPI_PARTY_ID"],
        "uid": charge.token_uid,
        "type": "AD_HOC_USER",
        "contract_id": f"{cfg['OCPI_COUNTRY_CODE']}{cfg['OCPI_PARTY_ID']}{charge.token_uid[:20]}",
        "issuer": cfg["OCPI_BUSINESS_NAME"],
        "valid": True,
        "whitelist": "ALLOWED",
        "language": charge.language,
        "last_updated": now_utc(),
    }
    parsed = wire.Token.model_validate(token).to_json()
    existing = db.session.scalar(select(IssuedToken).where(IssuedToken.uid == charge.token_uid))
    if existing is None:
        owner = cpo_of(charge)
        db.session.add(
            IssuedToken(
                uid=charge.token_uid,
                type="AD_HOC_USER",
                contract_id=parsed["contract_id"],
                raw=dump_json(parsed),
                party_pk=charge.party_pk,
                country_code=owner[0] if owner else None,
                party_id=owner[1] if owner else None,
            )
        )
    return parsed


def _retire_token(charge: Charge) -> None:
    """A finished charge's one-time Token authorises nothing any more."""
    row = db.session.scalar(select(IssuedToken).where(IssuedToken.uid == charge.token_uid))
    if row is not None and row.valid:
        data = row.data
        data["valid"] = False
        data["last_updated"] = now_utc()
        row.valid = False
        row.raw = dump_json(data)


@background_task("charging.command_deadline")
def command_deadline(command_uid: str) -> None:
    """The CPO's own timeout has passed: apply the result if it came, else the start failed."""
    command = db.session.scalar(select(OcpiCommand).where(OcpiCommand.uid == command_uid))
    pk = db.session.scalar(select(Charge.pk).where(Charge.start_command_uid == command_uid))
    if command is None or pk is None:
        return
    if command.result is not None:
        db.session.rollback()
        on_command_result(command.uid, command.command, command.result, command.result_message)
        return
    charge = lock_charge(pk)
    if charge.state == S.STARTING:
        seconds = command.timeout_seconds or current_app.config["OCPI_DEFAULT_COMMAND_TIMEOUT"]
        fail_start(
            charge,
            "START_NO_RESULT",
            "The charger did not answer in time.",
            Cause("deadline", command_uid, f"no CommandResult within {seconds} s"),
        )
    db.session.commit()


# Flags after which no stop is sent again by itself (the sweeper still settles the charge).
STOP_GIVEN_UP = OPERATOR_FLAGS | {"STOP_UNCONFIRMED"}
RELEASABLE = {S.START_FAILED, S.CANCELLED, S.EXPIRED, S.ENDED}


# Money moves and stops are safe to repeat (idempotency keys, state checks) and worth
# retrying soon after a passing gateway or CPO failure.
@background_task("charging.release_hold", retries=5, retry_delay=20)
def release_hold(charge_pk: int) -> None:
    charge = db.session.get(Charge, charge_pk)
    if charge is None or charge.state not in RELEASABLE or not charge.hold_id:
        db.session.rollback()
        return
    hold_id, key = charge.hold_id, f"charge-{charge.public_id}-release"
    db.session.rollback()
    try:
        current_gateway().cancel(hold_id, idempotency_key=key)
    except PaymentError as exc:
        db.session.rollback()
        if exc.retryable:
            raise
        charge = lock_charge(charge_pk)
        fail(charge, "RELEASE_FAILED", str(exc))
        note(charge, Cause("payment", hold_id, f"release failed: {exc}"))
        db.session.commit()
        return
    charge = lock_charge(charge_pk)
    charge.hold_released_at = charge.hold_released_at or now_utc()
    if charge.state in {S.START_FAILED, S.ENDED}:
        fire(charge, Event.RELEASED, Cause("payment", hold_id, "hold released, nothing charged"))
        _retire_token(charge)
    elif charge.state in RELEASABLE:
        note(charge, Cause("payment", hold_id, "hold released"))
        _retire_token(charge)
    db.session.commit()


# --- Stopping: a stop request stands until the session ends -----------------------------


def _record_stop_request(charge: Charge, by: str) -> None:
    charge.stop_requested_at = now_utc()
    charge.stop_requested_by = by
    charge.stop_attempts = 0
    charge.stop_next_at = charge.stop_requested_at


def _begin_stopping(charge: Charge, by: str, cause: Cause) -> None:
    if charge.stop_requested_at is None:
        _record_stop_request(charge, by)
    fire(charge, Event.STOP_REQUESTED, cause)
    send_stop.enqueue_after_commit(charge.pk)


def _now_charging(charge: Charge, cause: Cause) -> None:
    """Into CHARGING, and on to STOPPING at once if a stop was asked for while starting."""
    fire(charge, Event.SESSION_ACTIVE, cause)
    if charge.stop_requested_at is not None:
        _begin_stopping(charge, charge.stop_requested_by or "driver",
                        Cause("system", cause.ref, "sending the stop asked for while starting"))


def _stop_fulfilled(charge: Charge) -> None:
    """The session ended: the stop, if there was one, is done; its refusals are history."""
    charge.stop_next_at = None
    if (charge.failure_code or "").startswith("STOP_"):
        charge.failure_code = charge.failure_detail = None
    if charge.end_reason is None:
        charge.end_reason = {"driver": "DRIVER_STOPPED", "system": "LIMIT_REACHED",
                             "operator": "OPERATOR_STOPPED"}.get(charge.stop_requested_by or "",
                                                                 "CPO_ENDED")


def stop_retry_delay(attempts: int) -> float:
    """Seconds before the next STOP_SESSION (jobs.backoff_delay: exponential, capped, with
    jitter so that many charges at one failing CPO do not all retry at the same moment)."""
    cfg = current_app.config
    return backoff_delay(attempts, cfg["STOP_RETRY_BASE_DELAY"], cfg["STOP_RETRY_MAX_DELAY"])


def _stop_refused(charge: Charge, code: str, detail: str | None, cause: Cause) -> None:
    """The CPO refused the stop or could not be reached: say so to the driver (the code stays
    on the charge until the session ends) and try again later, until STOP_RETRY_FOR; then a
    person takes over (STOP_UNCONFIRMED), and the hold is still settled from the CDR or the
    last known cost by the capture deadline. A flag for a person (AUTHORIZATION_LAPSED, say)
    stays: the stop is still retried, but its news must not hide the flag."""
    flagged = charge.failure_code in OPERATOR_FLAGS
    if not flagged:
        fail(charge, code, detail)
    now = now_utc()
    give_up_at = (charge.stop_requested_at or now) + timedelta(
        seconds=current_app.config["STOP_RETRY_FOR"])
    if now >= give_up_at:
        if not flagged:
            fail(charge, "STOP_UNCONFIRMED", f"{code}: {detail}" if detail else code)
        charge.stop_next_at = None
        note(charge, Cause(cause.kind, cause.ref,
                           f"{cause.note}; still not stopped after {charge.stop_attempts} tries: "
                           "flagged for the operator"))
        return
    delay = stop_retry_delay(charge.stop_attempts)
    charge.stop_next_at = now + timedelta(seconds=delay)
    note(charge, Cause(cause.kind, cause.ref, f"{cause.note}; trying again in {round(delay)} s"))
    send_stop.enqueue_after_commit(charge.pk, delay=delay)


# send_stop schedules its own next try with backoff; this covers a crash inside one.
@background_task("charging.send_stop", retries=3, retry_delay=15)
def send_stop(charge_pk: int) -> None:
    """Send the standing stop request as STOP_SESSION, if it is due."""
    charge = lock_charge(charge_pk)
    now = now_utc()
    due = charge.stop_next_at is not None and charge.stop_next_at <= now + timedelta(seconds=1)
    if charge.state != S.STOPPING or not due:
        db.session.rollback()  # not stopping, or an early duplicate of a scheduled try
        return
    if not charge.session_id:
        # The CPO has not named the session yet: on_session_updated sends it when it does.
        charge.stop_next_at = None
        note(charge, Cause("system", note="stop waits for the CPO's first Session"))
        db.session.commit()
        return
    charge.stop_attempts += 1
    charge.stop_command_uid = ocpi_commands().new_command_uid()
    # Should nothing at all come back, the next try is due after the command's timeout.
    charge.stop_next_at = now + timedelta(
        seconds=current_app.config["OCPI_DEFAULT_COMMAND_TIMEOUT"]
        + current_app.config["SWEEP_GRACE_SECONDS"])
    db.session.commit()
    party = db.session.get(Party, charge.party_pk)
    command = ocpi_commands().send_command(
        party,
        wire.CommandType.STOP_SESSION,
        {"session_id": charge.session_id},
        uid=charge.stop_command_uid,
        correlation_id=charge.public_id,
        to=cpo_of(charge),
    )
    charge = lock_charge(charge_pk)
    if charge.state == S.STOPPING and command.uid == charge.stop_command_uid:
        if command.response_result == "ACCEPTED":
            wait = (command.timeout_seconds or 0) + current_app.config["STOP_CONFIRM_SECONDS"]
            charge.stop_next_at = now_utc() + timedelta(seconds=wait)
        else:
            _stop_refused(charge, f"STOP_{command.response_result}", command.response_message,
                          Cause("ocpi", command.uid, f"STOP_SESSION {command.response_result}"))
    db.session.commit()


@background_task("charging.settle_without_cdr", retries=5, retry_delay=20)
def settle_without_cdr(charge_pk: int) -> None:
    """No CDR before the card authorisation lapses: capture the last cost the Sessions
    showed (never more than held), or release the hold when none is known; either way the
    charge is flagged for the operator, who settles the rest with the CPO. A capture issues
    its receipt in the same transaction, saying what it is based on, so the driver's
    receipt link works at once."""
    charge = db.session.get(Charge, charge_pk)
    if charge is None or charge.state != S.ENDED or charge.cdr_pk is not None \
            or charge.failure_code == "AUTHORIZATION_LAPSED":
        db.session.rollback()
        return
    cost = to_minor(charge.cost_incl_vat, charge.currency) if charge.cost_incl_vat else 0
    if cost <= 0:
        db.session.rollback()
        release_hold(charge_pk)
        charge = lock_charge(charge_pk)
        if charge.state == S.RELEASED:  # else release_hold flagged why (RELEASE_FAILED)
            fail(charge, "RELEASED_WITHOUT_CDR",
                 "no CDR and no cost known before the hold lapsed")
        db.session.commit()
        return
    amount = min(cost, charge.hold_minor)
    hold_id = charge.hold_id
    hold = capture_once(charge, amount)
    if hold is None:
        return
    charge = lock_charge(charge_pk)
    if charge.state != S.ENDED:
        db.session.commit()
        return
    charge.captured_minor = hold.amount_received_minor or amount
    charge.card_brand = charge.card_brand or hold.payment_method_brand
    charge.card_last4 = charge.card_last4 or hold.payment_method_last4
    fail(charge, "CAPTURED_WITHOUT_CDR",
         f"captured {charge.captured_minor} from the last Session cost; no CDR arrived")
    fire(charge, Event.CAPTURED, Cause("deadline", hold_id,
                                   f"no CDR before the hold lapses: captured "
                                   f"{charge.captured_minor} from the last Session cost"))
    _retire_token(charge)
    from charging.receipts import issue_without_cdr

    charge.receipt_pk = issue_without_cdr(charge).pk
    db.session.commit()


def capture_once(charge: Charge, amount: int) -> Hold | None:
    """Capture `amount` of the charge's hold with its capture key, holding no lock while the
    gateway works. Returns the captured hold, or None when the gateway refused for good:
    the charge is then flagged AUTHORIZATION_LAPSED when the gateway shows the hold
    canceled (the webhook saying so may not have come), else CAPTURE_FAILED. Retryable
    failures raise, for the queue.
    """
    charge_pk, hold_id = charge.pk, charge.hold_id
    key = f"charge-{charge.public_id}-capture"
    db.session.rollback()
    try:
        return current_gateway().capture(hold_id, amount, idempotency_key=key)
    except PaymentError as exc:
        db.session.rollback()
        if exc.retryable:
            raise
        # Captured already? A run that died after the gateway's capture and before our
        # commit, retried after the idempotency key expired, ends up here: reconcile.
        current = _current_hold(hold_id)
        if current is not None and current.status == HoldStatus.SUCCEEDED:
            return current
        charge = lock_charge(charge_pk)
        if charge.state == S.ENDED:
            if current is not None and current.status == HoldStatus.CANCELED:
                authorization_lapsed(charge, Cause(
                    "payment", hold_id,
                    f"capture refused, the hold is canceled "
                    f"({current.cancellation_reason or 'no reason given'}): {exc}"))
            else:
                fail(charge, "CAPTURE_FAILED", str(exc))
                note(charge, Cause("payment", hold_id, f"capture failed: {exc}"))
        db.session.commit()
        return None


def _current_hold(hold_id: str) -> Hold | None:
    """The hold as the gateway has it now, or None when it cannot say."""
    try:
        return current_gateway().retrieve(hold_id)
    except PaymentError:
        return None


@background_task("charging.stop_unpaid_session")
def stop_unpaid_session(charge_pk: int) -> None:
    """STOP_SESSION for a Session that started after its hold was released."""
    charge = db.session.get(Charge, charge_pk)
    if charge is None or not charge.session_id:
        return
    party = db.session.get(Party, charge.party_pk)
    command = ocpi_commands().send_command(
        party,
        wire.CommandType.STOP_SESSION,
        {"session_id": charge.session_id},
        correlation_id=charge.public_id,
        to=cpo_of(charge),
    )
    charge = lock_charge(charge_pk)
    note(
        charge,
        Cause(
            "ocpi", command.uid, f"STOP_SESSION for the unpaid Session: {command.response_result}"
        ),
    )
    db.session.commit()


# Its own retries with backoff (OCPI_RETRY_*), each try on the charge's timeline.
@background_task("charging.unlock_connector")
def unlock_connector(charge_pk: int, operator: str, attempt: int = 0) -> str:
    """UNLOCK_CONNECTOR for the charge's connector, on an operator's request (a stuck cable:
    mod_commands allows it to operators only, never to drivers). Returns the CPO's answer;
    the asynchronous result shows in the charge's OCPI messages. A CPO that could not be
    reached, or did not answer, is asked again in the background with backoff (a cable
    stuck in a charger is worth a few more tries), up to OCPI_RETRY_ATTEMPTS."""
    charge = db.session.get(Charge, charge_pk)
    party = db.session.get(Party, charge.party_pk)
    command = ocpi_commands().send_command(
        party,
        wire.CommandType.UNLOCK_CONNECTOR,
        {"location_id": charge.location_id, "evse_uid": charge.evse_uid,
         "connector_id": charge.connector_id},
        correlation_id=charge.public_id,
        to=cpo_of(charge),
    )
    charge = lock_charge(charge_pk)
    answer = command.response_result or "ERROR"
    words = (f"{operator} asked to unlock connector {charge.connector_id}: {answer}"
             + (f" ({command.response_message})" if command.response_message else ""))
    cfg = current_app.config
    if answer in {"ERROR", "NO_RESPONSE"} and attempt + 1 < cfg["OCPI_RETRY_ATTEMPTS"]:
        delay = backoff_delay(attempt, cfg["OCPI_RETRY_BASE_DELAY"], cfg["OCPI_RETRY_MAX_DELAY"])
        words += f"; trying again in {round(delay)} s"
        unlock_connector.enqueue_after_commit(charge_pk, operator, attempt + 1,
                             delay=delay)
    note(charge, Cause("operator", command.uid, words))
    db.session.commit()
    return answer


@background_task("charging.expire_unpaid")
def expire_unpaid(charge_pk: int) -> None:
    """Give up on a charge nobody paid for, after asking the gateway: the webhook saying
    the hold is authorised may be late or lost, and expiring a paid charge would release
    money the driver just gave and never start charging."""
    charge = db.session.get(Charge, charge_pk)
    if charge is None or charge.state != S.CREATED:
        db.session.rollback()
        return
    hold_id = charge.hold_id
    db.session.rollback()  # no transaction open while the gateway works
    hold: Hold | None = None
    if hold_id:
        try:
            hold = current_gateway().retrieve(hold_id)
        except PaymentError as exc:
            if exc.retryable:
                raise  # not known: try again later (the sweeper re-drives CREATED charges)
            log.warning("charge %s: hold %s not readable, expiring: %s", charge_pk, hold_id, exc)
    charge = lock_charge(charge_pk)
    if charge.state != S.CREATED:  # the webhook came meanwhile
        db.session.rollback()
        return
    if hold is not None and hold.status == HoldStatus.REQUIRES_CAPTURE:
        authorize(charge, hold, Cause("payment", hold.id,
                                      f"{hold.amount_capturable_minor} {hold.currency} held "
                                      "(read from the gateway; no webhook yet)"))
    elif hold is not None and hold.status == HoldStatus.PROCESSING:
        db.session.rollback()  # the bank is still deciding: the sweeper asks again
        return
    else:
        fire(charge, Event.EXPIRED, Cause("deadline", note="not paid in time"))
        release_hold.enqueue_after_commit(charge.pk)
    db.session.commit()


def _cdr_total(cdr: OcpiCdr) -> Decimal | None:
    """The CDR's total as charged: incl. VAT, or excl. when the CPO gives no incl."""
    return cdr.total_cost_incl_vat if cdr.total_cost_incl_vat is not None \
        else cdr.total_cost_excl_vat


@background_task("charging.settle", retries=5, retry_delay=20)
def settle(charge_pk: int) -> None:
    """Capture what the CDR says (never more than held), or release a zero-cost charge,
    and issue the receipt."""
    charge = db.session.get(Charge, charge_pk)
    if charge is None or charge.state != S.ENDED or charge.cdr_pk is None:
        db.session.rollback()
        return
    cdr = db.session.get(OcpiCdr, charge.cdr_pk)
    if charge.failure_code == "AUTHORIZATION_LAPSED":
        # The hold lapsed while charging: nothing to capture. Released, with the CDR's
        # cost on the timeline for the operator to claim some other way.
        charge = lock_charge(charge_pk)
        if charge.state == S.ENDED:
            fire(charge, Event.RELEASED, Cause(
                "system", f"cdr {cdr.cdr_id}",
                f"CDR total {_cdr_total(cdr)} {cdr.currency} not captured: the "
                "authorisation had lapsed"))
            _retire_token(charge)
        db.session.commit()
        return
    if cdr.currency != charge.currency:
        charge = lock_charge(charge_pk)
        if charge.failure_code != "CURRENCY_MISMATCH":
            fail(charge, "CURRENCY_MISMATCH", f"CDR in {cdr.currency}, hold in {charge.currency}")
            note(charge, Cause("system", cdr.cdr_id, "CDR currency differs from the hold: flagged"))
        db.session.commit()
        return
    total = (
        cdr.total_cost_incl_vat if cdr.total_cost_incl_vat is not None else cdr.total_cost_excl_vat
    )
    cost_minor = to_minor(total, cdr.currency)
    if cost_minor <= 0:
        db.session.rollback()
        release_hold(charge_pk)
        return
    amount = min(cost_minor, charge.hold_minor)
    hold_id = charge.hold_id
    if charge.failure_code != "CDR_PRICE_MISMATCH":
        check_cdr_price(lock_charge(charge_pk), cdr)
        db.session.commit()
    hold = capture_once(charge, amount)
    if hold is None:
        return

    charge = lock_charge(charge_pk)
    if charge.state != S.ENDED:  # a concurrent settle got here first; the capture was one
        db.session.commit()
        return
    charge.captured_minor = hold.amount_received_minor or amount
    # Stripe's webhook carries the charge only by id; the capture's answer has the card.
    charge.card_brand = charge.card_brand or hold.payment_method_brand
    charge.card_last4 = charge.card_last4 or hold.payment_method_last4
    if cost_minor > charge.hold_minor:
        fail(charge, "COST_ABOVE_HOLD", f"cost {cost_minor}, held {charge.hold_minor}")
    move(
        charge,
        S.CAPTURED,
        Cause("payment", hold_id, f"captured {charge.captured_minor} of {charge.hold_minor} held"),
    )
    _retire_token(charge)
    from charging.receipts import issue_for

    receipt = issue_for(charge, cdr)
    charge.receipt_pk = receipt.pk
    db.session.commit()


# --- The CPO (signal receivers: the OCPI object is already committed) -------------------


def _charge_for(authorization_reference: str | None, token_uid: str | None) -> int | None:
    conditions = []
    if authorization_reference:
        conditions.append(Charge.authorization_reference == authorization_reference.upper())
    if token_uid:
        conditions.append(Charge.token_uid == token_uid.upper())
    if not conditions:
        return None
    return db.session.scalar(select(Charge.pk).where(or_(*conditions)))


def charge_for_object(row: OcpiSession | OcpiCdr) -> int | None:
    """The charge a stored Session or CDR is about, if it came from that charge's own CPO.

    Matched by our authorization_reference or token uid, and then by who sent it: a
    Session or CDR from any other party that names one of our references moves nothing
    (another CPO could otherwise end, or capture, a charge it never ran) and is flagged for
    the operator as a suspected misuse.
    """
    pk = _charge_for(row.authorization_reference, row.token_uid)
    if pk is None:
        return None
    charge = db.session.get(Charge, pk)
    if owned_by(charge, row.party_pk, row.country_code, row.party_id):
        return pk
    kind = "Session" if isinstance(row, OcpiSession) else "CDR"
    object_id = row.session_id if isinstance(row, OcpiSession) else row.cdr_id
    ocpi_notices.record(
        row.party_pk, "MISUSE", f"FOREIGN_{kind.upper()}",
        f"{kind} {row.country_code}*{row.party_id} {object_id} names the token or "
        f"authorization reference of a charge at another CPO's location; it changed nothing",
        object_key=f"{kind}:{object_id}",
    )
    db.session.commit()
    return None


def on_command_result(
    command_uid: str, command_type: str, result: str, message: str | None
) -> None:
    column = (
        Charge.start_command_uid if command_type == "START_SESSION" else Charge.stop_command_uid
    )
    pk = db.session.scalar(select(Charge.pk).where(column == command_uid))
    if pk is None:
        return
    charge = lock_charge(pk)
    cause = Cause(
        "ocpi", command_uid, f"{command_type} result {result}" + (f": {message}" if message else "")
    )
    if command_type == "START_SESSION":
        if charge.state != S.STARTING:
            note(charge, cause)
        elif result == "ACCEPTED":
            _now_charging(charge, cause)
        else:
            fail_start(charge, f"START_{result}", message, cause)
    elif command_type == "STOP_SESSION":
        if result != "ACCEPTED" and charge.state == S.STOPPING:
            _stop_refused(charge, f"STOP_{result}", message, cause)
        else:
            if charge.state == S.STOPPING:
                # The charger stopped; the Session's COMPLETED should follow. If it does not,
                # the stop is sent again after a while (the CPO may have lost it).
                charge.stop_next_at = now_utc() + timedelta(
                    seconds=current_app.config["STOP_CONFIRM_SECONDS"])
            note(charge, cause)
    db.session.commit()


def on_session_updated(
    session_pk: int, status: str, authorization_reference: str | None, token_uid: str | None
) -> None:
    stored = db.session.get(OcpiSession, session_pk)
    pk = charge_for_object(stored) if stored is not None else None
    if pk is None:
        log.warning("Session %s matches no charge of its sender", session_pk)
        return
    figures = ocpi_store.session_figures(stored)
    charge = lock_charge(pk)
    first_id = charge.session_id is None
    charge.session_id = figures["session_id"]
    charge.session_updated_at = now_utc()
    charge.energy_kwh = figures["kwh"]
    cost = figures["cost_incl_vat"]
    if cost is None:  # the CPO sends no running cost: price its charging periods ourselves
        cost = estimate_cost(charge, session_pk)
    if cost is not None:
        # The highest seen: step sizes can make a later estimate dip, the driver's view not.
        charge.cost_incl_vat = max(cost, charge.cost_incl_vat or Decimal(0))
    charge.session_started_at = figures["start_date_time"]
    charge.session_ended_at = figures["end_date_time"]
    cause = Cause("ocpi", f"session {figures['session_id']}", f"Session {status}")
    if status == "ACTIVE" and charge.state == S.STARTING:
        _now_charging(charge, cause)
    if status == "ACTIVE" and charge.state == S.STOPPING and first_id \
            and charge.stop_next_at is None:
        # The stop waited for this Session's id: send it now.
        charge.stop_next_at = now_utc()
        send_stop.enqueue_after_commit(charge.pk)
    if status == "ACTIVE" and charge.state == S.CHARGING and first_id \
            and charge.failure_code == "AUTHORIZATION_LAPSED":
        # The hold lapsed before the CPO named the session: stop it now it has a name.
        stop_unpaid_session.enqueue_after_commit(charge.pk)
    if status == "ACTIVE" and charge.state == S.CHARGING and _near_the_hold(charge):
        held = Money(charge.hold_minor, charge.currency).amount
        _begin_stopping(charge, "system", Cause(
            "system", cause.ref, f"cost {charge.cost_incl_vat} {charge.currency} near the hold "
                                 f"of {held} {charge.currency}: stopping"))
    elif status in {"ACTIVE", "COMPLETED"} and charge.state == S.START_FAILED:
        # The start looked failed (no answer in time) but the charger started after all;
        # the hold is still in place, so the session is charged as any other.
        charge.failure_code = charge.failure_detail = None
        if status == "COMPLETED":
            fire(charge, Event.SESSION_ACTIVE, Cause("ocpi", cause.ref, f"late Session {status}"))
            fire(charge, Event.SESSION_ENDED, cause)
        else:
            _now_charging(charge, Cause("ocpi", cause.ref, f"late Session {status}"))
    elif status == "ACTIVE" and charge.state in {S.RELEASED, S.EXPIRED, S.CANCELLED}:
        # Charging with no money held: stop it and tell an operator.
        if charge.failure_code != "UNPAID_SESSION":
            fail(
                charge,
                "UNPAID_SESSION",
                f"Session {figures['session_id']} after the hold was released",
            )
            note(
                charge,
                Cause(
                    "ocpi", cause.ref, "Session started after the hold was released: stopping it"
                ),
            )
            stop_unpaid_session.enqueue_after_commit(charge.pk)
    elif status in {"COMPLETED", "INVALID"} and charge.state in {S.CHARGING, S.STOPPING}:
        if status == "INVALID":
            charge.end_reason = "SESSION_INVALID"
        fire(charge, Event.SESSION_ENDED, cause)
        if charge.cdr_pk is not None:
            settle.enqueue_after_commit(charge.pk)
    db.session.commit()


def _tariff_of(charge: Charge) -> dict[str, Any] | None:
    location = location_of(charge) if charge.tariff_id else None
    if location is None:
        return None
    row = ocpi_store.find_tariff(location.country_code, location.party_id, charge.tariff_id)
    return row.data if row else None


def estimate_cost(charge: Charge, session_pk: int) -> Decimal | None:
    """The cost so far incl. VAT, priced from the Session's charging periods."""
    from tariffs import TariffError, price_session

    tariff = _tariff_of(charge)
    session = db.session.get(OcpiSession, session_pk).data
    periods = session.get("charging_periods") or []
    if tariff is None or not periods:
        return None
    end = session.get("end_date_time") or session.get("last_updated")
    try:
        breakdown = price_session(tariff, periods, time_zone=time_zone_of(charge),
                                  session_start=parse_datetime(session["start_date_time"]),
                                  session_end=parse_datetime(end))
    except (TariffError, ValueError) as exc:
        log.warning("charge %s: cost not estimated: %s", charge.public_id, exc)
        return None
    return breakdown.total.incl_vat


def _near_the_hold(charge: Charge) -> bool:
    """Stop before the cost can pass what is held: nobody owes more than they agreed to."""
    if charge.cost_incl_vat is None:
        return False
    percent = Decimal(current_app.config["STOP_AT_PERCENT_OF_HOLD"])
    return to_minor(charge.cost_incl_vat, charge.currency) * 100 >= charge.hold_minor * percent


def check_cdr_price(charge: Charge, cdr: OcpiCdr) -> None:
    """Recompute the CDR's total from its own tariffs and periods; a difference of more
    than one minor unit is flagged for the operator with both figures."""
    from tariffs import TariffError, price_cdr

    data = cdr.data
    if not data.get("tariffs"):
        return
    try:
        ours = price_cdr(data, time_zone=time_zone_of(charge))
    except (TariffError, ValueError) as exc:
        note(charge, Cause("system", f"cdr {cdr.cdr_id}", f"CDR not checked: {exc}"))
        return
    theirs = cdr.total_cost_incl_vat if cdr.total_cost_incl_vat is not None \
        else cdr.total_cost_excl_vat
    mine = ours.total.incl_vat if cdr.total_cost_incl_vat is not None else ours.total.excl_vat
    theirs_minor, mine_minor = to_minor(theirs, cdr.currency), to_minor(mine, cdr.currency)
    if abs(mine_minor - theirs_minor) > 1:
        cdr_total = Money(theirs_minor, cdr.currency).amount
        tariff_total = Money(mine_minor, cdr.currency).amount
        if charge.failure_code is None:
            fail(charge, "CDR_PRICE_MISMATCH",
                 f"CDR {cdr_total}, tariff {tariff_total} {cdr.currency}")
        note(charge, Cause("system", f"cdr {cdr.cdr_id}",
                           f"CDR total {cdr_total} differs from the tariff's {tariff_total} "
                           f"{cdr.currency}: {json_dumps(ours.to_json())[:1500]}"))


def on_cdr_received(
    cdr_pk: int, authorization_reference: str | None, token_uid: str | None, session_id: str | None
) -> None:
    cdr = db.session.get(OcpiCdr, cdr_pk)
    pk = charge_for_object(cdr) if cdr is not None else None
    if pk is None:
        log.warning("CDR %s matches no charge of its sender", cdr_pk)
        return
    charge = lock_charge(pk)
    if cdr.data.get("credit"):
        _on_credit_cdr(charge, cdr)
        db.session.commit()
        return
    cause = Cause("ocpi", f"cdr {cdr.cdr_id}", "CDR received")
    if charge.cdr_pk is None:
        charge.cdr_pk = cdr_pk
    elif charge.cdr_pk != cdr_pk:
        # A replacement after a credit CDR, for a charge already settled: money may differ.
        fail(charge, "CDR_REPLACED", f"CDR {cdr.cdr_id} after the charge was settled")
        cause = Cause("ocpi", f"cdr {cdr.cdr_id}", "another CDR for a settled charge: flagged")
    if charge.state in {S.STARTING, S.START_FAILED}:
        # The Session never reached us (or came after the start looked failed): the CDR
        # says charging happened.
        charge.failure_code = charge.failure_detail = None
        fire(charge, Event.SESSION_ACTIVE, cause)
    if charge.state in {S.CHARGING, S.STOPPING}:
        fire(charge, Event.SESSION_ENDED, cause)
    else:
        note(charge, cause)
    if charge.state == S.ENDED:
        settle.enqueue_after_commit(charge.pk)
    db.session.commit()


def _on_credit_cdr(charge: Charge, credit: OcpiCdr) -> None:
    """A Credit CDR voids an earlier CDR (mod_cdrs: Credit CDRs); its replacement follows."""
    original_id = credit.data.get("credit_reference_id")
    linked = db.session.get(OcpiCdr, charge.cdr_pk) if charge.cdr_pk else None
    cause = Cause("ocpi", f"cdr {credit.cdr_id}", f"credit CDR for {original_id}")
    if linked is not None and linked.cdr_id == str(original_id).upper() \
            and charge.state == S.ENDED:
        charge.cdr_pk = None  # not settled yet: wait for the replacement CDR
        note(charge, Cause(cause.kind, cause.ref, f"{cause.note}: waiting for its replacement"))
    elif charge.state in {S.CAPTURED, S.REFUNDED}:
        fail(charge, "CDR_CREDITED", f"credit CDR {credit.cdr_id} after capture")
        note(charge, Cause(cause.kind, cause.ref, f"{cause.note} after capture: flagged"))
    else:
        note(charge, cause)


def on_cdr_refused(
    party_pk: int, country_code: str, party_id: str, cdr_id: str | None,
    authorization_reference: str | None, token_uid: str | None, reason: str,
) -> None:
    """A CDR for this charge could not be taken in (the edge refused it, 2001): flag the
    charge, so it never waits in silence for a CDR that was sent. Only its own CPO's
    refused CDR flags it; the state is left alone (the sweeper still settles by deadline)."""
    pk = _charge_for(authorization_reference, token_uid)
    if pk is None or not owned_by(db.session.get(Charge, pk), party_pk, country_code,
                                  party_id):
        return
    charge = lock_charge(pk)
    if charge.failure_code not in STOP_GIVEN_UP:  # never hide a flag the sweeper obeys
        fail(charge, "CDR_REFUSED", reason[:500])
    note(charge, Cause("ocpi", f"cdr {cdr_id or '?'}", f"CDR refused: {reason}"[:1000]))
    db.session.commit()


def on_token_authorization(
    token_uid: str, location: dict[str, Any] | None, party_pk: int | None = None,
    country_code: str | None = None, party_id: str | None = None,
) -> dict | None:
    """Real-time authorization of a charge's one-time Token: allowed for its own charge
    while that is open, at its own location and EVSE only (mod_tokens: AllowedType), and
    only when its own CPO asks (the edge has already refused everyone else)."""
    pk = _charge_for(None, token_uid)
    if pk is None:
        return None
    charge = db.session.get(Charge, pk)
    if party_pk is not None and not owned_by(charge, party_pk, country_code or "",
                                             party_id or ""):
        return {"allowed": "NOT_ALLOWED"}
    if charge.state not in {S.AUTHORIZED, S.STARTING, S.CHARGING, S.STOPPING, S.START_FAILED}:
        return {"allowed": "EXPIRED"}
    if location is not None:
        if str(location["location_id"]).upper() != charge.location_id.upper():
            return {"allowed": "NOT_ALLOWED"}
        asked = {str(uid).upper() for uid in location.get("evse_uids") or []}
        if asked and charge.evse_uid.upper() not in asked:
            return {"allowed": "NOT_ALLOWED"}
    return {"allowed": "ALLOWED", "authorization_reference": charge.authorization_reference,
            "evse_uids": [charge.evse_uid]}


# --- Sweeping: nothing is lost if a task or a signal was ---------------------------------


def _from_its_cpo(model: type[OcpiSession] | type[OcpiCdr], charge: Charge) -> list[Any]:
    """Conditions for a stored Session or CDR sent by the charge's own CPO."""
    conditions: list[Any] = [model.party_pk == charge.party_pk]
    owner = cpo_of(charge)
    if owner is not None:
        conditions += [model.country_code == owner[0], model.party_id == owner[1]]
    return conditions


@periodic_task("charging.sweep", "SWEEP_INTERVAL")
def sweep() -> dict[str, int]:
    """Re-drive every open charge whose next step should already have happened, and the
    payment events stored but not applied: a lost task, a failed receiver or a crash
    between two steps is never lost for good. Each step is one query for what is due."""
    now = now_utc()
    return {name: step(now) for name, step in _SWEEP_STEPS}


def _grace() -> timedelta:
    return timedelta(seconds=current_app.config["SWEEP_GRACE_SECONDS"])


def _due(now: datetime, older_than: timedelta, *statuses: S,
         proceeding: frozenset[str] = frozenset()) -> list[Charge]:
    """Charges in `statuses` untouched for `older_than`, less those a person must handle
    (but for the flags in `proceeding`, whose charges still move on by themselves)."""
    left_alone = OPERATOR_FLAGS - proceeding
    return list(db.session.scalars(
        select(Charge).where(
            Charge.status.in_([status.value for status in statuses]),
            Charge.updated_at < now - older_than,
            or_(Charge.failure_code.is_(None), Charge.failure_code.not_in(left_alone)),
        ).order_by(Charge.pk)
    ))


# A lapsed charge is flagged for a person, yet still has to end and be released by itself
# (authorization_lapsed): the sweeper applies its stored Session or CDR and settles it.
LAPSE_PROCEEDS = frozenset({"AUTHORIZATION_LAPSED"})


def _sweep_payment_events(now: datetime) -> int:
    from payments.events import apply_event
    from payments.models import PaymentEvent

    applied = 0
    for event_pk in db.session.scalars(select(PaymentEvent.pk).where(
        PaymentEvent.applied_at.is_(None), PaymentEvent.received_at < now - _grace()
    )).all():
        try:
            applied += apply_event(event_pk)
        except Exception:
            log.exception("payment event %s still cannot be applied", event_pk)
    return applied


def _sweep_authorized(now: datetime) -> int:
    charges = _due(now, _grace(), S.AUTHORIZED)
    for charge in charges:
        start.enqueue(charge.pk)
    return len(charges)


def _sweep_starting(now: datetime) -> int:
    result_wait = timedelta(seconds=current_app.config["OCPI_DEFAULT_COMMAND_TIMEOUT"])
    redriven = 0
    for charge in _due(now, timedelta(0), S.STARTING):
        command = db.session.scalar(
            select(OcpiCommand).where(OcpiCommand.uid == charge.start_command_uid)
        ) if charge.start_command_uid else None
        if command is not None:
            if command.result is None and (command.deadline
                                           or command.created_at + result_wait) >= now:
                continue
            command_deadline.enqueue(command.uid)
        elif charge.updated_at < now - result_wait:
            # The start was never sent (a crash between commit and send).
            locked = lock_charge(charge.pk)
            if locked.state == S.STARTING:
                fail_start(locked, "CPO_UNREACHABLE", "START_SESSION was never sent",
                           Cause("system", note="START_SESSION never sent"))
            db.session.commit()
        else:
            continue
        redriven += 1
    return redriven


def _sweep_stops(now: datetime) -> int:
    """Standing stop requests whose next try is due, or whose trigger was lost."""
    charges = list(db.session.scalars(select(Charge).where(
        Charge.status == S.STOPPING.value,
        or_(Charge.failure_code.is_(None), Charge.failure_code.not_in(STOP_GIVEN_UP)),
        or_(Charge.stop_next_at <= now,
            Charge.stop_next_at.is_(None) & Charge.session_id.is_not(None)
            & (Charge.updated_at < now - _grace())),
    ).order_by(Charge.pk)))
    for charge in charges:
        if charge.stop_next_at is None:
            locked = lock_charge(charge.pk)
            locked.stop_next_at = now
            db.session.commit()
        send_stop.enqueue(charge.pk)
    return len(charges)


def _sweep_charging(now: datetime) -> int:
    """CHARGING or STOPPING charges whose end is already stored: a Session COMPLETED, or a
    CDR, whose receiver failed or whose signal was lost."""
    ended = 0
    for charge in _due(now, _grace(), S.CHARGING, S.STOPPING, proceeding=LAPSE_PROCEEDS):
        stored = db.session.scalar(select(OcpiSession).where(
            OcpiSession.authorization_reference == charge.authorization_reference,
            *_from_its_cpo(OcpiSession, charge),
        ))
        if stored is not None and stored.status in {"COMPLETED", "INVALID"}:
            on_session_updated(stored.pk, stored.status, stored.authorization_reference,
                               stored.token_uid)
            ended += 1
            continue
        cdr = _stored_cdr(charge)
        if cdr is not None:
            on_cdr_received(cdr.pk, cdr.authorization_reference, cdr.token_uid, cdr.session_id)
            ended += 1
    return ended


def _stored_cdr(charge: Charge) -> OcpiCdr | None:
    return db.session.scalar(select(OcpiCdr).where(
        OcpiCdr.authorization_reference == charge.authorization_reference,
        *_from_its_cpo(OcpiCdr, charge),
    ).order_by(OcpiCdr.pk))


def _sweep_capture_deadline(now: datetime) -> int:
    """CHARGING or STOPPING charges whose card authorisation is about to lapse: end them
    here and settle from the last known cost (flagged), rather than let the hold lapse
    unpaid, whether the CPO went quiet or keeps pushing a session that never ends; a
    session still running is stopped, since from here no money covers it."""
    cfg = current_app.config
    silence = timedelta(seconds=cfg["SESSION_SILENCE_SECONDS"])
    margin = timedelta(hours=cfg["CAPTURE_SAFETY_MARGIN_HOURS"])
    deadline = timedelta(hours=cfg["HOLD_CAPTURE_DEADLINE_HOURS"])
    candidates = db.session.scalars(select(Charge.pk).where(
        Charge.status.in_([S.CHARGING.value, S.STOPPING.value]),
        or_(Charge.failure_code.is_(None), Charge.failure_code.not_in(OPERATOR_FLAGS)),
        or_(Charge.capture_before < now + margin,
            Charge.capture_before.is_(None) & (Charge.created_at < now - deadline)),
    ).order_by(Charge.pk)).all()
    ended = 0
    for pk in candidates:
        charge = lock_charge(pk)
        if charge.state in {S.CHARGING, S.STOPPING} and capture_deadline_passed(charge, now):
            silent = (charge.session_updated_at or charge.created_at) < now - silence
            charge.end_reason = charge.end_reason or ("CPO_SILENT" if silent
                                                      else "CAPTURE_DEADLINE")
            fire(charge, Event.SESSION_ENDED, Cause("deadline", note=(
                ("no word from the CPO" if silent else "the session has not ended")
                + " and the card authorisation is about to lapse: settling from the last "
                  "known cost")))
            settle_without_cdr.enqueue_after_commit(charge.pk)
            if not silent and charge.session_id:
                stop_unpaid_session.enqueue_after_commit(charge.pk)
            ended += 1
        db.session.commit()
    return ended


def _sweep_silent(now: datetime) -> int:
    """CHARGING or STOPPING charges the CPO has gone quiet about: ask it for its Sessions
    and CDRs (the capture deadline, if it comes first, is _sweep_capture_deadline's)."""
    silence = timedelta(seconds=current_app.config["SESSION_SILENCE_SECONDS"])
    pull_from: dict[int, datetime] = {}
    for charge in _due(now, silence, S.CHARGING, S.STOPPING):
        if (charge.session_updated_at or charge.created_at) >= now - silence:
            continue
        since = (charge.session_started_at or charge.created_at) - timedelta(hours=1)
        pull_from[charge.party_pk] = min(since, pull_from.get(charge.party_pk, since))
    from ocpi.sync import pull_cdrs, pull_sessions

    for party_pk, since in pull_from.items():
        pull_sessions.enqueue(party_pk, since.isoformat())
        pull_cdrs.enqueue(party_pk, since.isoformat())
    return len(pull_from)


def capture_deadline_passed(charge: Charge, now: datetime) -> bool:
    """Has the last moment to capture come (the card authorisation lapses soon after)?"""
    from charging.deadlines import capture_deadline

    return capture_deadline(charge) < now


def _sweep_unpaid(now: datetime) -> int:
    charges = _due(now, timedelta(seconds=current_app.config["UNPAID_CHARGE_TTL"]), S.CREATED)
    for charge in charges:
        expire_unpaid.enqueue(charge.pk)
    return len(charges)


def _sweep_ended(now: datetime) -> int:
    """ENDED charges: settle those with their CDR; link a stored CDR; settle without one
    when the authorisation is about to lapse."""
    settled = 0
    for charge in _due(now, _grace(), S.ENDED, proceeding=LAPSE_PROCEEDS):
        if charge.cdr_pk is not None:
            settle.enqueue(charge.pk)
            settled += 1
            continue
        cdr = _stored_cdr(charge)
        if cdr is not None:
            on_cdr_received(cdr.pk, cdr.authorization_reference, cdr.token_uid, cdr.session_id)
        elif capture_deadline_passed(charge, now) \
                and charge.failure_code != "AUTHORIZATION_LAPSED":  # nothing to capture
            settle_without_cdr.enqueue(charge.pk)
    return settled


def _sweep_late_cdrs(now: datetime) -> int:
    """ENDED charges whose CDR is late: ask each CPO for its CDRs (once per CPO and sweep)."""
    cdr_wait = timedelta(seconds=current_app.config["CDR_WAIT_SECONDS"])
    pull_from: dict[int, datetime] = {}
    for charge in _due(now, cdr_wait, S.ENDED):
        if charge.cdr_pk is None and not capture_deadline_passed(charge, now):
            since = (charge.session_started_at or charge.created_at) - timedelta(hours=1)
            pull_from[charge.party_pk] = min(since, pull_from.get(charge.party_pk, since))
    from ocpi.sync import pull_cdrs

    for party_pk, since in pull_from.items():
        pull_cdrs.enqueue(party_pk, since.isoformat())
    return len(pull_from)


def _sweep_releases(now: datetime) -> int:
    """Holds still to give back: failed starts, and cancelled or expired charges whose
    release was never confirmed (a lost task must not keep a driver's money)."""
    charges = _due(now, _grace(), S.START_FAILED)
    charges += [c for c in _due(now, _grace(), S.CANCELLED, S.EXPIRED)
                if c.hold_id and c.hold_released_at is None]
    for charge in charges:
        release_hold.enqueue(charge.pk)
    return len(charges)


_SWEEP_STEPS = (
    ("events", _sweep_payment_events),
    ("start", _sweep_authorized),
    ("deadline", _sweep_starting),
    ("stop", _sweep_stops),
    ("ended", _sweep_charging),
    ("capture_deadline", _sweep_capture_deadline),
    ("silent", _sweep_silent),
    ("expire", _sweep_unpaid),
    ("settle", _sweep_ended),
    ("cdr_pulls", _sweep_late_cdrs),
    ("release", _sweep_releases),
)
