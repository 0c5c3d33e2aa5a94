"""Every move of a charge, with its cause, on the charge's timeline.

Rules kept everywhere in charging/:
- A charge changes only under its row lock (charging/unit_of_work.py) and through fire(),
  which asks the (state, event) table in charging/states.py for the next state and
  appends the move, with its cause, to the timeline; note() records what is not a move.
- Gateway calls and OCPI commands are never made while a charge's lock is held: the state
  is checked and committed first, the call carries an idempotency key (or a command uid
  kept on the charge), and the result is applied under a fresh lock after re-checking.
- Slow or external work (OCPI commands, captures) is enqueued after commit, never done
  while a driver's request or a webhook waits.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from charging.models import Charge, ChargeEvent
from charging.states import ChargeStatus as S
from charging.states import Event, check_transition, next_state
from extensions import db
from payments.money import Money


@dataclass(frozen=True)
class Cause:
    kind: str  # driver | operator | payment | ocpi | deadline | system
    ref: str | None = None
    note: str | None = None


def _record(charge: Charge, from_status: str, to_status: str, cause: Cause) -> None:
    db.session.add(ChargeEvent(charge_pk=charge.pk, from_status=from_status,
                               to_status=to_status, cause=cause.kind, cause_ref=cause.ref,
                               note=cause.note))


def move(charge: Charge, target: S, cause: Cause) -> None:
    """Apply one allowed transition and record it; raises IllegalTransition otherwise."""
    current = charge.state
    check_transition(current, target)
    charge.status = target.value
    if target == S.ENDED:
        _stop_fulfilled(charge)
    if target == S.CHARGING:
        from charging.charge_link import mail_after_commit  # it reads the driver's words

        mail_after_commit(charge)
    _record(charge, current.value, target.value, cause)


def fire(charge: Charge, event: Event, cause: Cause) -> None:
    """Move the charge as the state table says `event` does; raises IllegalEvent otherwise."""
    move(charge, next_state(charge.state, event), cause)


def note(charge: Charge, cause: Cause) -> None:
    """A timeline entry that is not a transition (a decline, a refused stop...)."""
    _record(charge, charge.status, charge.status, cause)


def money(amount: int | Decimal, currency: str) -> str:
    """An amount as the timeline writes it, as money ("SEK 150.00"): never bare minor units
    with a currency beside them. An int is minor units, a Decimal major units (OCPI's)."""
    value = Money(amount, currency) if isinstance(amount, int) else Money.of(amount, currency)
    return value.format("en")


def fail(charge: Charge, code: str, detail: str | None) -> None:
    if (code, detail) != (charge.failure_code, charge.failure_detail):
        # A new flag needs a person again, whatever was resolved before; so does the same
        # flag for a new matter (a second refund failing, a second dispute). Only the same
        # words again (an event replayed) leave a resolved flag resolved.
        charge.resolved_at = None
        charge.resolved_by = charge.resolution_note = None
    charge.failure_code = code
    charge.failure_detail = detail


def _stop_fulfilled(charge: Charge) -> None:
    """The session ended: the stop, if there was one, is done; its refusals are history."""
    charge.stop_next_at = None
    if (charge.failure_code or "").startswith("STOP_"):
        charge.failure_code = charge.failure_detail = None
    if charge.end_reason is None:
        charge.end_reason = {"driver": "DRIVER_STOPPED", "system": "LIMIT_REACHED",
                             "operator": "OPERATOR_STOPPED"}.get(charge.stop_requested_by or "",
                                                                 "CPO_ENDED")
