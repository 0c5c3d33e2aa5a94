"""What a CPO's Session does to its charge: figures on the driver's screen, charging
started (also late), the stop sent once the Session is named, a stop before the cost
passes the hold, the end of the session.

An OCPI receiver: the Session is already stored and answered for (wiring.py logs a
failure here, and the sweeper applies the stored Session again).
"""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Any

from charging.cpo import lock_charge_for_object
from charging.models import Charge
from charging.pricing import estimate_cost, near_the_hold
from charging.settlement import settle
from charging.starting import now_charging
from charging.states import END_TO_COME, Event, can
from charging.states import ChargeStatus as S
from charging.stopping import begin_stopping, send_stop, stop_unpaid_session
from charging.timeline import Cause, fail, fire, money, note
from charging.unit_of_work import unit_of_work
from extensions import db
from ocpi import store as ocpi_store
from ocpi.models import OcpiSession
from ocpi.transport import now_utc

log = logging.getLogger(__name__)


def _take_figures(charge: Charge, session_pk: int, figures: dict[str, Any]) -> bool:
    """Copy the Session's figures onto the charge; True if it names the session first."""
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
    return first_id


def _named_at_last(charge: Charge) -> None:
    """An ACTIVE Session names the session for the first time."""
    if charge.state == S.STOPPING and charge.stop_next_at is None:
        # The stop waited for this Session's id: send it now.
        charge.stop_next_at = now_utc()
        send_stop.enqueue_after_commit(charge.pk)
    if charge.state == S.CHARGING and charge.failure_code == "AUTHORIZATION_LAPSED":
        # The hold lapsed before the CPO named the session: stop it now it has a name.
        stop_unpaid_session.enqueue_after_commit(charge.pk)


def _late_session(charge: Charge, status: str, cause: Cause) -> None:
    """The start looked failed (no answer in time) but the charger started after all;
    the hold is still in place, so the session is charged as any other."""
    charge.failure_code = charge.failure_detail = None
    late = Cause("ocpi", cause.ref, f"late Session {status}")
    if status == "COMPLETED":
        fire(charge, Event.SESSION_ACTIVE, late)
        fire(charge, Event.SESSION_ENDED, cause)
    else:
        now_charging(charge, late)


def _unpaid_session(charge: Charge, session_id: str, cause: Cause) -> None:
    """Charging with no money held: stop it and tell an operator."""
    if charge.failure_code == "UNPAID_SESSION":
        return
    fail(charge, "UNPAID_SESSION", f"Session {session_id} after the hold was released")
    note(charge, Cause("ocpi", cause.ref,
                       "Session started after the hold was released: stopping it"))
    stop_unpaid_session.enqueue_after_commit(charge.pk)


def _apply(charge: Charge, status: str, session_id: str, first_id: bool) -> None:
    """What the Session's status does to the charge in its state, under the lock."""
    cause = Cause("ocpi", f"session {session_id}", f"Session {status}")
    if status == "ACTIVE" and charge.state == S.STARTING:
        now_charging(charge, cause)
    if status == "ACTIVE" and first_id:
        _named_at_last(charge)
    if status == "ACTIVE" and can(charge.state, Event.STOP_REQUESTED) and near_the_hold(charge):
        cost = money(charge.cost_incl_vat or Decimal(0), charge.currency)
        begin_stopping(charge, "system", Cause(
            "system", cause.ref, f"cost {cost} near the hold of "
                                 f"{money(charge.hold_minor, charge.currency)}: stopping"))
    elif status in {"ACTIVE", "COMPLETED"} and charge.state == S.START_FAILED:
        _late_session(charge, status, cause)
    elif status == "ACTIVE" and charge.state in {S.RELEASED, S.EXPIRED, S.CANCELLED}:
        _unpaid_session(charge, session_id, cause)
    elif status in {"COMPLETED", "INVALID"} and can(charge.state, Event.SESSION_ENDED):
        if status == "INVALID":
            charge.end_reason = "SESSION_INVALID"
        fire(charge, Event.SESSION_ENDED, cause)
        if charge.cdr_pk is not None:
            settle.enqueue_after_commit(charge.pk)


def on_session_updated(
    session_pk: int, status: str, authorization_reference: str | None, token_uid: str | None
) -> None:
    # One unit: the charge found, locked and updated once (a foreign Session is flagged
    # for the operator in it), and the Session marked applied once there is nothing left
    # for the sweeper to do with it; a failure rolls the mark back with the rest.
    with unit_of_work():
        stored = db.session.get(OcpiSession, session_pk)
        charge = lock_charge_for_object(stored) if stored is not None else None
        if stored is None or charge is None:
            if stored is not None:
                ocpi_store.mark_applied(stored)
            log.warning("Session %s matches no charge of its sender", session_pk)
            return
        figures = ocpi_store.session_figures(stored)
        first_id = _take_figures(charge, session_pk, figures)
        _apply(charge, status, figures["session_id"], first_id)
        # Not before: an end stored while the charge is, say, still STARTING must be found
        # again once the charge is CHARGING (its CommandResult came after the Session).
        if charge.state not in END_TO_COME:
            ocpi_store.mark_applied(stored)
