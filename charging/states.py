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
(charging/service.py, "Stopping").
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

TRANSITIONS: dict[ChargeStatus, frozenset[ChargeStatus]] = {
    S.CREATED: frozenset({S.AUTHORIZED, S.EXPIRED, S.CANCELLED}),
    S.AUTHORIZED: frozenset({S.STARTING, S.CANCELLED}),
    S.STARTING: frozenset({S.CHARGING, S.START_FAILED}),
    S.CHARGING: frozenset({S.STOPPING, S.ENDED}),
    S.STOPPING: frozenset({S.ENDED}),
    S.ENDED: frozenset({S.CAPTURED, S.RELEASED}),
    S.CAPTURED: frozenset({S.REFUNDED}),
    S.START_FAILED: frozenset({S.RELEASED, S.CHARGING}),
    S.RELEASED: frozenset(),
    S.EXPIRED: frozenset(),
    S.CANCELLED: frozenset(),
    S.REFUNDED: frozenset(),
}

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
