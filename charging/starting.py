"""Starting: START_SESSION for an authorised charge, and what its answer and its result do.

The ad-hoc Token is issued and START_SESSION sent; the CPO answers at once (CommandResponse)
and later says whether the charger started (CommandResult), or its timeout passes
(command_deadline). A start that failed releases the hold, at once when the charger refused,
after LATE_SESSION_GRACE when it may yet start (a late Session is charged as any other).
"""

from __future__ import annotations

from flask import current_app
from sqlalchemy import select

from charging.cpo import cpo_of, ocpi_commands
from charging.models import Charge
from charging.releases import release_hold
from charging.states import Event, can
from charging.stopping import begin_stopping
from charging.timeline import Cause, fail, fire, note
from charging.tokens import issue_token
from charging.unit_of_work import leave_unchanged, locked_charge, network_step, unit_of_work
from extensions import db
from jobs import background_task
from ocpi.models import OcpiCommand, Party
from ocpi.modules.commands import CommandType, StartSession

# Outcomes after which the charger may still start (the command got lost, not refused):
# the hold is kept a little longer so a late Session can still be charged.
UNCERTAIN_START_FAILURES = {"START_TIMEOUT", "START_NO_RESULT", "START_NO_RESPONSE",
                            "CPO_UNREACHABLE"}


def fail_start(charge: Charge, code: str, detail: str | None, cause: Cause) -> None:
    """The start failed: release the hold, at once when the charger refused, after
    LATE_SESSION_GRACE when it may yet start."""
    fail(charge, code, detail)
    fire(charge, Event.START_FAILED, cause)
    delay = current_app.config["LATE_SESSION_GRACE"] if code in UNCERTAIN_START_FAILURES else None
    release_hold.enqueue_after_commit(charge.pk, delay=delay)


def now_charging(charge: Charge, cause: Cause) -> None:
    """Into CHARGING, and on to STOPPING at once if a stop was asked for while starting."""
    fire(charge, Event.SESSION_ACTIVE, cause)
    if charge.stop_requested_at is not None:
        begin_stopping(charge, charge.stop_requested_by or "driver",
                       Cause("system", cause.ref, "sending the stop asked for while starting"))


def result_cause(command_uid: str, command_type: str, result: str,
                 message: str | None) -> Cause:
    return Cause("ocpi", command_uid,
                 f"{command_type} result {result}" + (f": {message}" if message else ""))


def start_result(charge: Charge, result: str, message: str | None, cause: Cause) -> None:
    """The CommandResult of a START_SESSION, under the charge's lock."""
    if not can(charge.state, Event.START_FAILED):  # the start's outcome is decided already
        note(charge, cause)
    elif result == "ACCEPTED":
        now_charging(charge, cause)
    else:
        fail_start(charge, f"START_{result}", message, cause)


def _start_session(charge: Charge, token: dict[str, object]) -> dict[str, object]:
    body = StartSession.model_validate(
        {
            "response_url": "pending",
            "token": token,
            "location_id": charge.location_id,
            "evse_uid": charge.evse_uid,
            "connector_id": charge.connector_id,
            "authorization_reference": charge.authorization_reference,
        }
    ).to_json()
    body.pop("response_url")  # ocpi.commands sets the command's own
    return body


@background_task("charging.start")
def start(charge_pk: int) -> None:
    """Issue the ad-hoc Token and send START_SESSION."""
    with locked_charge(charge_pk) as charge:
        if not can(charge.state, Event.START_SENT):
            leave_unchanged()
            return
        fire(charge, Event.START_SENT, Cause("system", note="sending START_SESSION"))
        body = _start_session(charge, issue_token(charge))
        # Known before sending: the CommandResult may overtake the CommandResponse.
        charge.start_command_uid = uid = ocpi_commands().new_command_uid()
        party_pk, correlation, to = charge.party_pk, charge.correlation_id, cpo_of(charge)
    with network_step():  # ocpi.commands stores and commits the command itself
        command: OcpiCommand = ocpi_commands().send_command(
            db.session.get_one(Party, party_pk), CommandType.START_SESSION, body,
            uid=uid, correlation_id=correlation, to=to,
        )
    with locked_charge(charge_pk) as charge:
        if command.response_result == "ACCEPTED":
            note(charge, Cause("ocpi", command.uid, "START_SESSION accepted; result due "
                                                    f"within {command.timeout_seconds} s"))
            command_deadline.enqueue_after_commit(command.uid, delay=command.timeout_seconds)
        elif can(charge.state, Event.START_FAILED):
            code = ("CPO_UNREACHABLE" if command.response_result == "ERROR"
                    else f"START_{command.response_result}")
            fail_start(charge, code, command.response_message,
                       Cause("ocpi", command.uid, f"START_SESSION {command.response_result}"))


@background_task("charging.command_deadline")
def command_deadline(command_uid: str) -> None:
    """The CPO's own timeout has passed: apply the result if it came, else the start failed."""
    with unit_of_work():
        command = db.session.scalar(select(OcpiCommand).where(OcpiCommand.uid == command_uid))
        pk = db.session.scalar(select(Charge.pk).where(Charge.start_command_uid == command_uid))
        if command is None or pk is None:
            return
        result, message = command.result, command.result_message
        seconds = command.timeout_seconds or current_app.config["OCPI_DEFAULT_COMMAND_TIMEOUT"]
    with locked_charge(pk) as charge:
        if result is not None:
            start_result(charge, result, message,
                         result_cause(command_uid, "START_SESSION", result, message))
        elif can(charge.state, Event.START_FAILED):
            fail_start(charge, "START_NO_RESULT", "The charger did not answer in time.",
                       Cause("deadline", command_uid, f"no CommandResult within {seconds} s"))
