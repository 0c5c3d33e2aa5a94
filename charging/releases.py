"""Giving a hold back: nothing is captured, and no hold outlives its charge."""

from __future__ import annotations

from charging.models import Charge
from charging.states import ChargeStatus as S
from charging.states import Event, can
from charging.timeline import Cause, fail, fire, note
from charging.tokens import retire_token
from charging.unit_of_work import locked_charge, unit_of_work
from extensions import db
from jobs import background_task
from ocpi.transport import now_utc
from payments.gateway import PaymentError
from payments.setup import current_gateway

# The states in which a charge's hold is given back: the charge will not be captured.
RELEASABLE = frozenset({S.START_FAILED, S.CANCELLED, S.EXPIRED, S.ENDED})


# Money moves are safe to repeat (idempotency keys, state checks) and worth retrying soon
# after a passing gateway failure.
@background_task("charging.release_hold", retries=5, retry_delay=20)
def release_hold(charge_pk: int) -> None:
    """Cancel the charge's hold at the gateway (no lock held meanwhile), then record it."""
    with unit_of_work():
        charge = db.session.get(Charge, charge_pk)
        if charge is None or charge.state not in RELEASABLE or not charge.hold_id:
            return
        hold_id, key = charge.hold_id, f"charge-{charge.public_id}-release"
    try:
        current_gateway().cancel(hold_id, idempotency_key=key)
    except PaymentError as exc:
        if exc.retryable:
            raise
        with locked_charge(charge_pk) as charge:
            fail(charge, "RELEASE_FAILED", str(exc))
            note(charge, Cause("payment", hold_id, f"release failed: {exc}"))
        return
    with locked_charge(charge_pk) as charge:
        charge.hold_released_at = charge.hold_released_at or now_utc()
        if can(charge.state, Event.RELEASED):
            fire(charge, Event.RELEASED, Cause("payment", hold_id,
                                               "hold released, nothing charged"))
            retire_token(charge)
        elif charge.state in RELEASABLE:
            note(charge, Cause("payment", hold_id, "hold released"))
            retire_token(charge)
