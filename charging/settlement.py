"""Settlement: capture what the CDR says (never more than held) and issue the receipt, or,
with no CDR before the card authorisation lapses, capture the last known cost, flagged.

Each settlement is two units of work with the gateway's capture between them: the first
checks the charge under its lock and commits; the capture runs with no lock held and with
the charge's capture key (`charge-<public_id>-capture`), so a retry after a crash anywhere
captures once; the second applies the captured hold under a fresh lock, after re-checking
the state, and issues the receipt in the same transaction.
"""

from __future__ import annotations

from charging import receipts
from charging.models import Charge
from charging.pricing import cdr_total, check_cdr_price
from charging.releases import release_hold
from charging.states import ChargeStatus as S
from charging.states import Event, can
from charging.stopping import stop_unpaid_session
from charging.timeline import Cause, fail, fire, money, note
from charging.tokens import retire_token
from charging.unit_of_work import leave_unchanged, locked_charge, network_step, unit_of_work
from extensions import db
from jobs import background_task
from ocpi.models import OcpiCdr
from ocpi.transport import now_utc
from payments.gateway import Hold, HoldStatus, PaymentError
from payments.money import to_minor
from payments.setup import current_gateway


def authorization_lapsed(charge: Charge, cause: Cause) -> None:
    """The hold is gone before the capture: flag AUTHORIZATION_LAPSED with the last known
    cost for the operator, never capture. ENDED goes to RELEASED (nothing is held); a
    session still running is stopped, since no money covers it, and is released when it
    ends (settle). The caller holds the lock."""
    if charge.failure_code == "AUTHORIZATION_LAPSED":
        note(charge, cause)
        return
    cost = (money(charge.cost_incl_vat, charge.currency) if charge.cost_incl_vat is not None
            else "unknown")
    fail(charge, "AUTHORIZATION_LAPSED",
         f"the card authorisation ended before the capture; last known cost {cost}")
    text = f"{cause.note}: authorisation lapsed, nothing captured; last known cost {cost}"
    if can(charge.state, Event.RELEASED):
        fire(charge, Event.RELEASED, Cause(cause.kind, cause.ref, text))
        retire_token(charge)
    else:
        note(charge, Cause(cause.kind, cause.ref, text + "; stopping the session"))
        if charge.session_id:
            stop_unpaid_session.enqueue_after_commit(charge.pk)


def capture_once(charge_pk: int, amount: int, retry: int = 0) -> Hold | None:
    """Capture `amount` of the charge's hold with its capture key, holding no lock while the
    gateway works. Returns the captured hold, or None when the gateway refused for good:
    the charge is then flagged AUTHORIZATION_LAPSED when the gateway shows the hold
    canceled (the webhook saying so may not have come), else CAPTURE_FAILED. Retryable
    failures raise, for the queue. `retry` (an operator's retry, charging/operator_actions.py)
    gives the capture a key of its own, since the first key would replay its failure.
    """
    with unit_of_work():
        charge = db.session.get_one(Charge, charge_pk)
        hold_id, key = charge.hold_id or "", f"charge-{charge.public_id}-capture"
        if retry:
            key += f"-retry-{retry}"
    try:
        with network_step():
            return current_gateway().capture(hold_id, amount, idempotency_key=key)
    except PaymentError as exc:
        if exc.retryable:
            raise
        # Captured already? A run that died after the gateway's capture and before our
        # commit, retried after the idempotency key expired, ends up here: reconcile.
        current = _current_hold(hold_id)
        if current is not None and current.status == HoldStatus.SUCCEEDED:
            return current
        with locked_charge(charge_pk) as charge:
            if not can(charge.state, Event.CAPTURED):
                return None
            if current is not None and current.status == HoldStatus.CANCELED \
                    and current.cancellation_reason == "abandoned":
                # ScanCharge's own release won the race (an operator's decision): given
                # back, as decided; no lapsed authorisation to flag.
                charge.hold_released_at = charge.hold_released_at or now_utc()
                fire(charge, Event.RELEASED, Cause(
                    "payment", hold_id, f"capture refused, the hold was released meanwhile: "
                                        f"nothing charged ({exc})"))
                retire_token(charge)
            elif current is not None and current.status == HoldStatus.CANCELED:
                authorization_lapsed(charge, Cause(
                    "payment", hold_id,
                    f"capture refused, the hold is canceled "
                    f"({current.cancellation_reason or 'no reason given'}): {exc}"))
            else:
                fail(charge, "CAPTURE_FAILED", str(exc))
                note(charge, Cause("payment", hold_id, f"capture failed: {exc}"))
        return None


def _current_hold(hold_id: str) -> Hold | None:
    """The hold as the gateway has it now, or None when it cannot say."""
    try:
        with network_step():
            return current_gateway().retrieve(hold_id)
    except PaymentError:
        return None


def _captured(charge: Charge, hold: Hold, amount: int) -> None:
    charge.captured_minor = hold.amount_received_minor or amount
    if charge.failure_code == "CAPTURE_FAILED":
        # A run that raced this one (the sweeper's settle, replaying its failed key) flagged
        # it while this capture went through: a captured charge asks for no retry.
        charge.failure_code = charge.failure_detail = None
    # Stripe's webhook carries the charge only by id; the capture's answer has the card.
    charge.card_brand = charge.card_brand or hold.payment_method_brand
    charge.card_last4 = charge.card_last4 or hold.payment_method_last4


def _cost_to_capture(charge: Charge) -> int | None:
    """Under the lock, before the capture: the CDR's cost in minor units, or None when
    there is nothing to capture (not ENDED with a CDR, a lapsed hold released here, or a
    currency mismatch flagged). 0: a zero-cost charge, whose hold is only released."""
    if not can(charge.state, Event.CAPTURED) or charge.cdr_pk is None:
        leave_unchanged()
        return None
    cdr = db.session.get_one(OcpiCdr, charge.cdr_pk)
    if charge.failure_code == "AUTHORIZATION_LAPSED":
        # The hold lapsed while charging: nothing to capture. Released, with the CDR's
        # cost on the timeline for the operator to claim some other way.
        fire(charge, Event.RELEASED, Cause(
            "system", f"cdr {cdr.cdr_id}",
            f"CDR total {money(cdr_total(cdr), cdr.currency)} not captured: the "
            "authorisation had lapsed"))
        retire_token(charge)
        return None
    if cdr.currency != charge.currency:
        if charge.failure_code != "CURRENCY_MISMATCH":
            fail(charge, "CURRENCY_MISMATCH", f"CDR in {cdr.currency}, hold in {charge.currency}")
            note(charge, Cause("system", cdr.cdr_id, "CDR currency differs from the hold: flagged"))
        return None
    cost_minor = to_minor(cdr_total(cdr), cdr.currency)
    if cost_minor > 0 and charge.failure_code != "CDR_PRICE_MISMATCH":
        check_cdr_price(charge, cdr)
    else:
        leave_unchanged()
    return cost_minor


@background_task("charging.settle", retries=5, retry_delay=20)
def settle(charge_pk: int, retry: int = 0) -> None:
    """Capture what the CDR says (never more than held), or release a zero-cost charge,
    and issue the receipt."""
    with locked_charge(charge_pk) as charge:
        cost_minor = _cost_to_capture(charge)
        held = charge.hold_minor
    if cost_minor is None:
        return
    if cost_minor <= 0:
        release_hold(charge_pk)
        return
    amount = min(cost_minor, held)
    hold = capture_once(charge_pk, amount, retry)
    if hold is None:
        return
    with locked_charge(charge_pk) as charge:
        if not can(charge.state, Event.CAPTURED):  # a concurrent settle got here first
            return
        _captured(charge, hold, amount)
        if cost_minor > charge.hold_minor:
            fail(charge, "COST_ABOVE_HOLD",
                 f"cost {money(cost_minor, charge.currency)}, "
                 f"held {money(charge.hold_minor, charge.currency)}")
        fire(charge, Event.CAPTURED, Cause(
            "payment", charge.hold_id,
            f"captured {money(charge.captured_minor or 0, charge.currency)} of "
            f"{money(charge.hold_minor, charge.currency)} held"))
        retire_token(charge)
        charge.receipt_pk = receipts.issue_for(
            charge, db.session.get_one(OcpiCdr, charge.cdr_pk)).pk


@background_task("charging.settle_without_cdr", retries=5, retry_delay=20)
def settle_without_cdr(charge_pk: int, retry: int = 0) -> None:
    """No CDR before the card authorisation lapses: capture the last cost the Sessions
    showed (never more than held), or release the hold when none is known; either way the
    charge is flagged for the operator, who settles the rest with the CPO. A capture issues
    its receipt in the same transaction, saying what it is based on, so the driver's
    receipt link works at once."""
    with unit_of_work():
        charge = db.session.get(Charge, charge_pk)
        if charge is None or not can(charge.state, Event.CAPTURED) \
                or charge.cdr_pk is not None or charge.failure_code == "AUTHORIZATION_LAPSED":
            return
        cost = to_minor(charge.cost_incl_vat, charge.currency) if charge.cost_incl_vat else 0
        amount = min(cost, charge.hold_minor)
    if cost <= 0:
        release_hold(charge_pk)
        with locked_charge(charge_pk) as charge:
            if charge.state == S.RELEASED:  # else release_hold flagged why (RELEASE_FAILED)
                fail(charge, "RELEASED_WITHOUT_CDR",
                     "no CDR and no cost known before the hold lapsed")
        return
    hold = capture_once(charge_pk, amount, retry)
    if hold is None:
        return
    with locked_charge(charge_pk) as charge:
        if not can(charge.state, Event.CAPTURED):
            return
        _captured(charge, hold, amount)
        fail(charge, "CAPTURED_WITHOUT_CDR",
             f"captured {money(charge.captured_minor or 0, charge.currency)} from the last "
             "Session cost; no CDR arrived")
        fire(charge, Event.CAPTURED, Cause(
            "deadline", charge.hold_id,
            f"no CDR before the hold lapses: captured "
            f"{money(charge.captured_minor or 0, charge.currency)} from the last Session cost"))
        retire_token(charge)
        charge.receipt_pk = receipts.issue_without_cdr(charge).pk
