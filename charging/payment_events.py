"""What the payment gateway says about a charge's hold, and what ScanCharge asks it when
a webhook is late: authorised, failed, canceled, captured; nobody paid in time.

The on_hold_* receivers run inside the unit of work of the payment event that announced
them (payments.events.apply_event commits the event's claim and the charge's change
together, or neither), so they lock the charge but never end the transaction. The tasks
here (record_capture_before, expire_unpaid) own their units of work, with the gateway's
answer read between two of them.
"""

from __future__ import annotations

import logging

from sqlalchemy import select

from charging.models import Charge
from charging.releases import release_hold
from charging.settlement import authorization_lapsed
from charging.starting import start
from charging.states import ChargeStatus as S
from charging.states import Event, can
from charging.timeline import Cause, fire, money, note
from charging.unit_of_work import (
    leave_unchanged,
    lock_charge,
    locked_charge,
    network_step,
    unit_of_work,
)
from extensions import db
from jobs import background_task
from ocpi.transport import now_utc
from payments.gateway import Hold, HoldStatus, PaymentError
from payments.setup import current_gateway

log = logging.getLogger(__name__)

# The states in which the hold waits for its capture; ScanCharge's own cancel reason.
WAITING_FOR_CAPTURE = frozenset({S.CHARGING, S.STOPPING, S.ENDED})
OUR_CANCELLATION_REASON = "abandoned"


def _charge_for_hold(hold: Hold) -> Charge | None:
    pk = db.session.scalar(select(Charge.pk).where(Charge.hold_id == hold.id))
    return lock_charge(pk) if pk is not None else None


def authorize(charge: Charge, hold: Hold, cause: Cause) -> None:
    """The hold is authorised (said by the webhook, or read from the gateway when the
    webhook is late): CREATED -> AUTHORIZED and start. Idempotent: whichever of the webhook,
    expire_unpaid or the driver's return comes second only fills in what was missing.
    The caller holds the charge's lock."""
    charge.card_brand = hold.payment_method_brand or charge.card_brand
    charge.card_last4 = hold.payment_method_last4 or charge.card_last4
    charge.capture_before = hold.capture_before or charge.capture_before
    if can(charge.state, Event.HOLD_AUTHORIZED):
        fire(charge, Event.HOLD_AUTHORIZED, cause)
        start.enqueue_after_commit(charge.pk)
        if (charge.capture_before is None or charge.card_last4 is None) and charge.hold_id:
            # A webhook names the charge by id only: read capture_before and the card from
            # the gateway after commit (never while this transaction holds locks).
            record_capture_before.enqueue_after_commit(charge.pk)
    elif charge.state in {S.EXPIRED, S.CANCELLED}:
        # Paid after giving up: nothing will start, so the money must not stay held.
        note(charge, Cause(cause.kind, cause.ref,
                           "authorised after the charge ended; releasing"))
        release_hold.enqueue_after_commit(charge.pk)


def on_hold_authorized(hold: Hold, event_id: str) -> None:
    charge = _charge_for_hold(hold)
    if charge is None:
        log.warning("authorised hold %s belongs to no charge", hold.id)
        return
    authorize(charge, hold, Cause("payment", event_id,
                                  f"{money(hold.amount_capturable_minor, hold.currency)} held"))


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


def on_hold_captured(hold: Hold, event_id: str) -> None:
    charge = _charge_for_hold(hold)
    if charge is not None:
        note(charge, Cause("payment", event_id,
                           f"gateway confirms {money(hold.amount_received_minor, hold.currency)} "
                           "captured"))


# Reads the authorisation's capture_before and card when the webhook did not carry them.
@background_task("charging.record_capture_before", retries=5, retry_delay=20)
def record_capture_before(charge_pk: int) -> None:
    """Read the authorisation's real end from the gateway and keep it on the charge."""
    with unit_of_work():
        charge = db.session.get(Charge, charge_pk)
        if charge is None or not charge.hold_id or (
                charge.capture_before is not None and charge.card_last4 is not None):
            return
        hold_id = charge.hold_id
    with network_step():
        hold = current_gateway().retrieve(hold_id)  # a passing failure: the queue retries
    if hold.capture_before is None and not hold.payment_method_last4:
        return
    with locked_charge(charge_pk) as charge:
        # The webhook's PaymentIntent names its charge by id: the card's brand and last four
        # (for the receipt and the operator) come with this expanded read.
        charge.capture_before = charge.capture_before or hold.capture_before
        charge.card_brand = charge.card_brand or hold.payment_method_brand
        charge.card_last4 = charge.card_last4 or hold.payment_method_last4


def _read_hold(charge_pk: int, hold_id: str | None) -> Hold | None:
    """The hold as the gateway has it, for expire_unpaid; None when there is none to read
    or it cannot be read for good. A passing failure raises: the sweeper asks again."""
    if not hold_id:
        return None
    try:
        with network_step():
            return current_gateway().retrieve(hold_id)
    except PaymentError as exc:
        if exc.retryable:
            raise  # not known: try again later (the sweeper re-drives CREATED charges)
        log.warning("charge %s: hold %s not readable, expiring: %s", charge_pk, hold_id, exc)
        return None


@background_task("charging.expire_unpaid")
def expire_unpaid(charge_pk: int) -> None:
    """Give up on a charge nobody paid for, after asking the gateway: the webhook saying
    the hold is authorised may be late or lost, and expiring a paid charge would release
    money the driver just gave and never start charging."""
    with unit_of_work():
        charge = db.session.get(Charge, charge_pk)
        if charge is None or not can(charge.state, Event.EXPIRED):
            return
        hold_id = charge.hold_id
    hold = _read_hold(charge_pk, hold_id)
    with locked_charge(charge_pk) as charge:
        if not can(charge.state, Event.EXPIRED):  # the webhook came meanwhile
            leave_unchanged()
        elif hold is not None and hold.status == HoldStatus.REQUIRES_CAPTURE:
            held = money(hold.amount_capturable_minor, hold.currency)
            authorize(charge, hold, Cause("payment", hold.id,
                                          f"{held} held (read from the gateway; no webhook yet)"))
        elif hold is not None and hold.status == HoldStatus.PROCESSING:
            leave_unchanged()  # the bank is still deciding: the sweeper asks again
        else:
            fire(charge, Event.EXPIRED, Cause("deadline", note="not paid in time"))
            release_hold.enqueue_after_commit(charge.pk)
