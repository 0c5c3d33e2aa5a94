"""The charge state machine: the transition table, checked pair by pair, and timeline.move()
applying it to a real Charge row with its timeline."""

from __future__ import annotations

from itertools import product
from typing import Any

import pytest
from sqlalchemy import func, select

from charging import timeline, unit_of_work
from charging.models import Charge, ChargeEvent
from charging.states import (
    FINAL_STATES,
    OPEN_STATES,
    TRANSITIONS,
    ChargeStatus,
    IllegalTransition,
    can_transition,
    check_transition,
)
from extensions import db
from ocpi.models import Party, PartyGrant

S = ChargeStatus

# The allowed moves, written out by hand from charging/states.py's diagram, so that a change
# to TRANSITIONS must be made twice to pass. DESIGN.md's diagram differs in three places
# (see test_design_diagram_differences below).
ALLOWED = {
    (S.CREATED, S.AUTHORIZED),
    (S.CREATED, S.EXPIRED),
    (S.CREATED, S.CANCELLED),
    (S.AUTHORIZED, S.STARTING),
    (S.AUTHORIZED, S.CANCELLED),
    (S.STARTING, S.CHARGING),
    (S.STARTING, S.START_FAILED),
    (S.CHARGING, S.STOPPING),
    (S.CHARGING, S.ENDED),  # the CPO ends the session by itself (the car is full)
    (S.STOPPING, S.ENDED),
    (S.ENDED, S.CAPTURED),
    (S.ENDED, S.RELEASED),  # zero cost
    (S.CAPTURED, S.REFUNDED),
    (S.START_FAILED, S.RELEASED),
    (S.START_FAILED, S.CHARGING),
}

ALL_PAIRS = list(product(ChargeStatus, repeat=2))


def test_the_table_has_a_row_for_every_status_and_nothing_else() -> None:
    assert set(TRANSITIONS) == set(ChargeStatus)
    assert len(ChargeStatus) == 12
    assert {(a, b) for a, targets in TRANSITIONS.items() for b in targets} == ALLOWED


@pytest.mark.parametrize(("current", "target"), sorted(ALLOWED))
def test_allowed_pair_passes(current: S, target: S) -> None:
    assert check_transition(current, target) is None
    assert can_transition(current, target) is True


@pytest.mark.parametrize(
    ("current", "target"), [pair for pair in ALL_PAIRS if pair not in ALLOWED]
)
def test_every_other_pair_raises_with_current_and_target(current: S, target: S) -> None:
    with pytest.raises(IllegalTransition) as raised:
        check_transition(current, target)
    assert raised.value.current is current
    assert raised.value.target is target
    assert str(raised.value) == f"a charge cannot go from {current} to {target}"
    assert can_transition(current, target) is False


def test_no_status_moves_to_itself() -> None:
    for status in ChargeStatus:
        assert can_transition(status, status) is False


def test_final_states_have_no_exits() -> None:
    assert {S.RELEASED, S.EXPIRED, S.CANCELLED, S.REFUNDED} == FINAL_STATES
    for final in FINAL_STATES:
        assert TRANSITIONS[final] == frozenset()
        for target in ChargeStatus:
            with pytest.raises(IllegalTransition):
                check_transition(final, target)


def test_open_and_final_states() -> None:
    assert {S.CREATED, S.AUTHORIZED, S.STARTING, S.CHARGING, S.STOPPING, S.ENDED} == OPEN_STATES
    assert not OPEN_STATES & FINAL_STATES
    # CAPTURED (may still be refunded) and START_FAILED (release pending) are neither.
    assert set(ChargeStatus) - OPEN_STATES - FINAL_STATES == {S.CAPTURED, S.START_FAILED}


def test_every_status_is_reachable_from_created() -> None:
    reached, frontier = {S.CREATED}, [S.CREATED]
    while frontier:
        for target in TRANSITIONS[frontier.pop()]:
            if target not in reached:
                reached.add(target)
                frontier.append(target)
    assert reached == set(ChargeStatus)


def test_design_diagram_differences() -> None:
    """DESIGN.md draws EXPIRED / CANCELLED under AUTHORIZED, draws no CHARGING → ENDED arrow
    (its bar under CHARGING leads nowhere). The table follows the service instead: a charge
    expires when nobody pays (CREATED), a driver may cancel before or after paying, and the
    CPO may end a session by itself. Like DESIGN.md, a stop never goes back to CHARGING: a
    refused STOP_SESSION is retried. Pinned here so that a change to either side is a
    conscious one."""
    assert not can_transition(S.AUTHORIZED, S.EXPIRED)  # in DESIGN.md, not in the table
    assert can_transition(S.CREATED, S.EXPIRED)  # in the table, not in DESIGN.md
    assert can_transition(S.CREATED, S.CANCELLED)  # in the table, not in DESIGN.md
    assert can_transition(S.CHARGING, S.ENDED)  # in the table, not in DESIGN.md
    assert not can_transition(S.STOPPING, S.CHARGING)  # a standing stop is never undone


# --- timeline.move() on a real row -------------------------------------------------------


def _charge(status: S = S.CREATED) -> Charge:
    party = Party(name="CPO", country_code="SE", party_id="SIM", status="CONNECTED",
                  grants=[PartyGrant(role="CPO", country_code="SE", party_id="SIM")])
    db.session.add(party)
    db.session.flush()
    charge = Charge(
        party_pk=party.pk, location_id="LOC1", evse_uid="EVSE1", evse_id="SE*SIM*E1",
        connector_id="1", currency="SEK", hold_minor=30000, gateway="demo",
        token_uid="TOKEN1", authorization_reference="REF1", status=status.value,
    )
    db.session.add(charge)
    db.session.commit()
    return charge


def _events(charge_pk: int) -> list[tuple[Any, ...]]:
    return [
        (e.from_status, e.to_status, e.cause, e.cause_ref, e.note)
        for e in db.session.scalars(
            select(ChargeEvent).where(ChargeEvent.charge_pk == charge_pk).order_by(ChargeEvent.pk)
        )
    ]


def test_move_applies_and_records_each_transition(app: Any) -> None:
    charge = _charge()
    pk = charge.pk
    timeline.move(charge, S.AUTHORIZED, timeline.Cause("payment", "evt_1", "SEK 300.00 held"))
    db.session.commit()
    timeline.move(charge, S.STARTING, timeline.Cause("system", note="sending START_SESSION"))
    db.session.commit()
    db.session.expire_all()

    reloaded = db.session.get(Charge, pk)
    assert reloaded.status == "STARTING"
    assert reloaded.state is S.STARTING
    assert _events(pk) == [
        ("CREATED", "AUTHORIZED", "payment", "evt_1", "SEK 300.00 held"),
        ("AUTHORIZED", "STARTING", "system", None, "sending START_SESSION"),
    ]


def test_move_under_lock_counts_the_lock(app: Any) -> None:
    pk = _charge().pk
    charge = unit_of_work.lock_charge(pk)
    assert charge.lock_version == 1
    timeline.move(charge, S.CANCELLED, timeline.Cause("driver", note="walked away"))
    db.session.commit()
    db.session.expire_all()
    assert db.session.get(Charge, pk).status == "CANCELLED"
    assert _events(pk) == [("CREATED", "CANCELLED", "driver", None, "walked away")]


def test_illegal_move_changes_nothing(app: Any) -> None:
    charge = _charge(S.CHARGING)
    pk = charge.pk
    timeline.move(charge, S.STOPPING, timeline.Cause("driver"))
    db.session.commit()
    before = _events(pk)
    assert before == [("CHARGING", "STOPPING", "driver", None, None)]

    with pytest.raises(IllegalTransition) as raised:
        timeline.move(charge, S.CAPTURED, timeline.Cause("payment", "evt_2"))
    assert (raised.value.current, raised.value.target) == (S.STOPPING, S.CAPTURED)
    assert charge.status == "STOPPING"
    db.session.commit()  # nothing was added to the session to commit
    db.session.expire_all()

    assert db.session.get(Charge, pk).status == "STOPPING"
    assert _events(pk) == before
    count = db.session.scalar(select(func.count()).select_from(ChargeEvent))
    assert count == 1


def test_final_state_refuses_every_move(app: Any) -> None:
    charge = _charge(S.REFUNDED)
    for target in ChargeStatus:
        with pytest.raises(IllegalTransition):
            timeline.move(charge, target, timeline.Cause("operator", "ops-1"))
    db.session.commit()
    assert charge.status == "REFUNDED"
    assert _events(charge.pk) == []
