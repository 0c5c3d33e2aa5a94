"""What each open charge is waiting for, and until when: the invariant that every charge
reaches a final state, or a person, by a deadline known for its state (docs/reliability.md).

A read model: it computes from the charge, its START_SESSION command and the settings, and
changes nothing; what a charge waits for is in the operator's language (the dashboard reads
it). The sweeper (charging/sweeper.py) acts when these deadlines pass; the dashboard shows
them, so an operator can see for every open charge what should happen next.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from flask_babel import gettext
from sqlalchemy import select

from charging.models import Charge
from charging.states import OPERATOR_FLAGS
from charging.states import ChargeStatus as S
from extensions import db
from ocpi.models import OcpiCommand
from ocpi.transport import now_utc


@dataclass(frozen=True)
class Waiting:
    what: str  # in the operator's words
    until: datetime | None  # None: nothing will happen by itself (a person must act)
    by_person: bool = False

    def overdue(self, now: datetime | None = None) -> bool:
        return self.until is not None and self.until < (now or now_utc())


def _seconds(name: str) -> timedelta:
    return timedelta(seconds=current_app.config[name])


def capture_deadline(charge: Charge) -> datetime:
    """The last moment to capture: the card authorisation's own end less a safety margin
    when the gateway told it (capture_before), else HOLD_CAPTURE_DEADLINE_HOURS after the
    charge was created."""
    if charge.capture_before is not None:
        margin = timedelta(hours=current_app.config["CAPTURE_SAFETY_MARGIN_HOURS"])
        return charge.capture_before - margin
    return charge.created_at + timedelta(hours=current_app.config["HOLD_CAPTURE_DEADLINE_HOURS"])


def waiting_for(charge: Charge,
                commands: Mapping[str, OcpiCommand] | None = None) -> Waiting | None:
    """None for a charge that is over (final, and its hold given back). `commands`, the
    START_SESSION commands by uid, spares a list of charges a look-up each (start_commands)."""
    if charge.failure_code in OPERATOR_FLAGS or charge.failure_code == "STOP_UNCONFIRMED":
        return Waiting(gettext("a person: flagged %(code)s", code=charge.failure_code), None,
                       by_person=True)
    state = charge.state
    grace = _seconds("SWEEP_GRACE_SECONDS")
    if state == S.CREATED:
        return Waiting(gettext("the driver's payment"),
                       charge.created_at + _seconds("UNPAID_CHARGE_TTL"))
    if state == S.AUTHORIZED:
        return Waiting(gettext("START_SESSION to be sent"), charge.updated_at + grace)
    if state == S.STARTING:
        return _starting(charge, grace, commands)
    if state == S.CHARGING:
        heard = charge.session_updated_at or charge.updated_at
        return Waiting(gettext("the CPO's next Session update"),
                       min(heard + _seconds("SESSION_SILENCE_SECONDS"), capture_deadline(charge)))
    if state == S.STOPPING:
        if charge.stop_next_at is not None:
            return Waiting(
                gettext("the charger to confirm the stop (else STOP_SESSION again)"),
                charge.stop_next_at)
        heard = charge.session_updated_at or charge.updated_at
        return Waiting(gettext("the CPO's first Session, to send the stop to"),
                       heard + _seconds("SESSION_SILENCE_SECONDS"))
    if state == S.ENDED:
        if charge.cdr_pk is not None:
            return Waiting(gettext("the capture"), charge.updated_at + grace)
        return Waiting(gettext("the CDR (pulled from the CPO if late; the last cost is "
                               "captured at the deadline)"),
                       min(charge.updated_at + _seconds("CDR_WAIT_SECONDS"),
                           capture_deadline(charge)))
    if state == S.START_FAILED:
        return Waiting(gettext("the hold's release (or a late Session)"),
                       charge.updated_at + _seconds("LATE_SESSION_GRACE") + grace)
    if state in {S.CANCELLED, S.EXPIRED} and charge.hold_id and charge.hold_released_at is None:
        return Waiting(gettext("the payment provider to confirm the release"),
                       charge.updated_at + grace)
    return None


def start_commands(charges: Iterable[Charge]) -> dict[str, OcpiCommand]:
    """The START_SESSION commands of `charges` by uid, in one query."""
    uids = sorted({c.start_command_uid for c in charges
                   if c.status == S.STARTING.value and c.start_command_uid})
    if not uids:
        return {}
    return {command.uid: command for command in db.session.scalars(
        select(OcpiCommand).where(OcpiCommand.uid.in_(uids)))}


def _starting(charge: Charge, grace: timedelta,
              commands: Mapping[str, OcpiCommand] | None) -> Waiting:
    if commands is not None:
        command = commands.get(charge.start_command_uid or "")
    else:
        command = db.session.scalar(
            select(OcpiCommand).where(OcpiCommand.uid == charge.start_command_uid)
        ) if charge.start_command_uid else None
    default = _seconds("OCPI_DEFAULT_COMMAND_TIMEOUT")
    if command is None or command.response_result is None:
        return Waiting(gettext("the CPO's answer to START_SESSION"),
                       charge.updated_at + default + grace)
    return Waiting(gettext("the Charge Point's CommandResult"),
                   command.deadline or command.created_at + default)
