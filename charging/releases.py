"""Giving a hold back: nothing is captured, and no hold outlives its charge."""

from __future__ import annotations

from charging.models import Charge
from charging.states import ChargeStatus as S
from charging.states import Event, can
from charging.timeline import Cause, fail, fire, money, note
from charging.tokens import retire_token
from charging.unit_of_work import locked_charge, network_step, unit_of_work
from extensions import db
from jobs import background_task
from ocpi.transport import now_utc
from payments.gateway import Hold, HoldStatus, PaymentError
from payments.setup import current_gateway

# The states in which a charge's hold is given back: the charge will not be captured.
RELEASABLE = frozenset({S.START_FAILED, S.CANCELLED, S.EXPIRED, S.ENDED})


# Money moves are safe to repeat (idempotency keys, state checks) and worth retrying soon
# after a passing gateway failure.
@background_task("charging.release_hold", retries=5, retry_delay=20)
def release_hold(charge_pk: int) -> str | None:
    """Cancel the charge's hold at the gateway (no lock held meanwhile), then record it.
    Returns why the hold is still held when the gateway refused, else None."""
    with unit_of_work():
        charge = db.session.get(Charge, charge_pk)
        if charge is None or charge.state not in RELEASABLE or not charge.hold_id:
            return None
        hold_id, key = charge.hold_id, f"charge-{charge.public_id}-release"
    try:
        current_gateway().cancel(hold_id, idempotency_key=key)
    except PaymentError as exc:
        if exc.retryable:
            raise
        # Refused: a capture that won the race (a late CDR, the sweeper) is no failed
        # release, and a hold already canceled (lapsed) is given back; the gateway says.
        current = _hold_now(hold_id)
        if current is not None and current.status == HoldStatus.SUCCEEDED:
            why = (f"the hold was captured meanwhile "
                   f"({money(current.amount_received_minor, current.currency)}): "
                   "refund it if nothing is to be charged")
            with locked_charge(charge_pk) as charge:
                note(charge, Cause("payment", hold_id, f"release refused, {why}"))
            return why
        if current is None or current.status != HoldStatus.CANCELED:
            with locked_charge(charge_pk) as charge:
                fail(charge, "RELEASE_FAILED", str(exc))
                note(charge, Cause("payment", hold_id, f"release failed: {exc}"))
            return str(exc)
    with locked_charge(charge_pk) as charge:
        charge.hold_released_at = charge.hold_released_at or now_utc()
        if can(charge.state, Event.RELEASED):
            fire(charge, Event.RELEASED, Cause("payment", hold_id,
                                               "hold released, nothing charged"))
            retire_token(charge)
        elif charge.state in RELEASABLE:
            note(charge, Cause("payment", hold_id, "hold released"))
            retire_token(charge)
    return None


def _hold_now(hold_id: str) -> Hold | None:
    """The hold as the gateway has it now, or None when it cannot say."""
    try:
        with network_step():
            return current_gateway().retrieve(hold_id)
    except PaymentError:
        return None
