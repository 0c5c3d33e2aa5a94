"""The charge state machine: every allowed transition, in one table.

    CREATED → AUTHORIZED → STARTING → CHARGING → STOPPING → ENDED → CAPTURED → REFUNDED
       │          │            │          └──────────────────→ ENDED    └→ RELEASED
       │          │            └→ START_FAILED → RELEASED
       │          │                     └→ CHARGING (a late Session)
       └→ EXPIRED └→ CANCELLED

A charge leaves CHARGING for ENDED directly when the CPO ends the session by itself (the car
is full); START_FAILED goes on to CHARGING when a Session arrives after the start looked
failed (no answer in time) while the hold is still in place. STOPPING means a stop request
stands, and it leads only to ENDED: a refused or lost STOP_SESSION is retried, never undone
(charging/stopping.py).
"""

from __future__ import annotations

from enum import StrEnum


class ChargeStatus(StrEnum):
    CREATED = "CREATED"  # the driver chose a connector; the hold is being placed
    AUTHORIZED = "AUTHORIZED"  # the hold is in place
    STARTING = "STARTING"  # START_SESSION sent, waiting for the Charge Point
    CHARGING = "CHARGING"
    STOPPING = "STOPPING"  # a stop is requested and stands until the session ends
    ENDED = "ENDED"  # the session is over; waiting for the CDR
    CAPTURED = "CAPTURED"  # the cost is captured and the receipt issued
    REFUNDED = "REFUNDED"
    START_FAILED = "START_FAILED"  # the Charge Point never started; the hold is being released
    RELEASED = "RELEASED"  # the hold is released; nothing was charged
    EXPIRED = "EXPIRED"  # nobody paid in time
    CANCELLED = "CANCELLED"  # the driver gave up before charging started


S = ChargeStatus


class Event(StrEnum):
    """What happens to a charge; with its state, it decides the next state."""

    HOLD_AUTHORIZED = "HOLD_AUTHORIZED"  # the payment provider placed the hold
    START_SENT = "START_SENT"  # START_SESSION went to the CPO
    SESSION_ACTIVE = "SESSION_ACTIVE"  # a Session says energy flows (also a late one)
    START_FAILED = "START_FAILED"  # the start was refused, timed out or never answered
    STOP_REQUESTED = "STOP_REQUESTED"  # the driver (or the unpaid rule) asked to stop
    SESSION_ENDED = "SESSION_ENDED"  # the Session is over (stopped or the car is full)
    CAPTURED = "CAPTURED"  # the cost is captured
    RELEASED = "RELEASED"  # the hold is released, nothing charged
    REFUNDED = "REFUNDED"  # the captured amount is refunded
    EXPIRED = "EXPIRED"  # nobody paid in time
    CANCELLED = "CANCELLED"  # the driver gave up before charging started


E = Event

# The state machine: (state, event) → next state. Every pair not listed is illegal.
EVENT_TRANSITIONS: dict[tuple[ChargeStatus, Event], ChargeStatus] = {
    (S.CREATED, E.HOLD_AUTHORIZED): S.AUTHORIZED,
    (S.CREATED, E.EXPIRED): S.EXPIRED,
    (S.CREATED, E.CANCELLED): S.CANCELLED,
    (S.AUTHORIZED, E.START_SENT): S.STARTING,
    (S.AUTHORIZED, E.CANCELLED): S.CANCELLED,
    (S.STARTING, E.SESSION_ACTIVE): S.CHARGING,
    (S.STARTING, E.START_FAILED): S.START_FAILED,
    (S.CHARGING, E.STOP_REQUESTED): S.STOPPING,
    (S.CHARGING, E.SESSION_ENDED): S.ENDED,
    (S.STOPPING, E.SESSION_ENDED): S.ENDED,
    (S.ENDED, E.CAPTURED): S.CAPTURED,
    (S.ENDED, E.RELEASED): S.RELEASED,
    (S.CAPTURED, E.REFUNDED): S.REFUNDED,
    (S.START_FAILED, E.RELEASED): S.RELEASED,
    (S.START_FAILED, E.SESSION_ACTIVE): S.CHARGING,  # a late Session while the hold stands
}

# The same machine read as from → {to}: derived, so the two cannot disagree.
TRANSITIONS: dict[ChargeStatus, frozenset[ChargeStatus]] = {
    state: frozenset(t for (s, _e), t in EVENT_TRANSITIONS.items() if s == state)
    for state in ChargeStatus
}


def _leading_to(event: Event) -> frozenset[ChargeStatus]:
    """The states from which `event` can still happen, now or after other events."""
    states = {state for state, e in EVENT_TRANSITIONS if e == event}
    while more := {s for (s, _e), t in EVENT_TRANSITIONS.items() if t in states} - states:
        states |= more
    return frozenset(states)


# States whose session end is still to come (derived from the table). A stored Session or
# CDR naming a charge in any other state has done all it can: the sweeper never applies it
# again (ocpi.store.mark_applied), as no state past the end leads back to one of these.
END_TO_COME = _leading_to(Event.SESSION_ENDED)

# States in which the driver's money is still held and the charge is not finished.
OPEN_STATES = frozenset({S.CREATED, S.AUTHORIZED, S.STARTING, S.CHARGING, S.STOPPING, S.ENDED})
FINAL_STATES = frozenset(s for s, targets in TRANSITIONS.items() if not targets)


# Flags that need a person: the sweeper leaves such charges alone.
OPERATOR_FLAGS = frozenset({
    "CAPTURED_WITHOUT_CDR", "RELEASED_WITHOUT_CDR", "AUTHORIZATION_LAPSED",
    "CURRENCY_MISMATCH", "CAPTURE_FAILED", "RELEASE_FAILED", "UNPAID_SESSION", "CDR_CREDITED",
    "CDR_REPLACED",
})


class IllegalTransition(Exception):
    """A move the table does not allow; the charge is left as it was."""

    def __init__(self, current: ChargeStatus, target: ChargeStatus) -> None:
        super().__init__(f"a charge cannot go from {current} to {target}")
        self.current = current
        self.target = target


def check_transition(current: ChargeStatus, target: ChargeStatus) -> None:
    if target not in TRANSITIONS[current]:
        raise IllegalTransition(current, target)


def can_transition(current: ChargeStatus, target: ChargeStatus) -> bool:
    return target in TRANSITIONS[current]


class IllegalEvent(IllegalTransition):
    """An event the table does not allow in the charge's state."""

    def __init__(self, current: ChargeStatus, event: Event) -> None:
        Exception.__init__(self, f"a charge in {current} cannot take {event}")
        self.current = current
        self.event = event
        self.target = current


def can(current: ChargeStatus, event: Event) -> bool:
    """Whether `event` moves a charge in state `current` (the table's answer)."""
    return (current, event) in EVENT_TRANSITIONS


def next_state(current: ChargeStatus, event: Event) -> ChargeStatus:
    """The state `event` leads to from `current`; raises IllegalEvent if it leads nowhere."""
    try:
        return EVENT_TRANSITIONS[(current, event)]
    except KeyError:
        raise IllegalEvent(current, event) from None
