"""Stopping: a stop request stands until the session ends.

The driver (or an operator, or the rule that stops before the cost passes the hold) asks
once; the request is kept on the charge and sent as STOP_SESSION as soon as a Session id is
known, retried with backoff while the CPO refuses or cannot be reached, never dropped. After
STOP_RETRY_FOR a person takes over (STOP_UNCONFIRMED); the hold is still settled.
"""

from __future__ import annotations

from datetime import timedelta

from flask import current_app

from charging.cpo import cpo_of, ocpi_commands
from charging.models import Charge
from charging.states import OPERATOR_FLAGS, Event
from charging.states import ChargeStatus as S
from charging.timeline import Cause, fail, fire, note
from charging.unit_of_work import leave_unchanged, locked_charge, network_step, unit_of_work
from extensions import db
from jobs import background_task, backoff_delay
from ocpi.models import OcpiCommand, Party
from ocpi.modules.commands import CommandType
from ocpi.transport import now_utc

# Flags after which no stop is sent again by itself (the sweeper still settles the charge).
STOP_GIVEN_UP = OPERATOR_FLAGS | {"STOP_UNCONFIRMED"}


def record_stop_request(charge: Charge, by: str) -> None:
    charge.stop_requested_at = now_utc()
    charge.stop_requested_by = by
    charge.stop_attempts = 0
    charge.stop_next_at = charge.stop_requested_at


def begin_stopping(charge: Charge, by: str, cause: Cause) -> None:
    """CHARGING -> STOPPING, and STOP_SESSION sent once this unit of work commits."""
    if charge.stop_requested_at is None:
        record_stop_request(charge, by)
    fire(charge, Event.STOP_REQUESTED, cause)
    send_stop.enqueue_after_commit(charge.pk)


def stop_retry_delay(attempts: int) -> float:
    """Seconds before the next STOP_SESSION (jobs.backoff_delay: exponential, capped, with
    jitter so that many charges at one failing CPO do not all retry at the same moment)."""
    cfg = current_app.config
    return backoff_delay(attempts, cfg["STOP_RETRY_BASE_DELAY"], cfg["STOP_RETRY_MAX_DELAY"])


def stop_refused(charge: Charge, code: str, detail: str | None, cause: Cause) -> None:
    """The CPO refused the stop or could not be reached: say so to the driver (the code stays
    on the charge until the session ends) and try again later, until STOP_RETRY_FOR; then a
    person takes over (STOP_UNCONFIRMED), and the hold is still settled from the CDR or the
    last known cost by the capture deadline. A flag for a person (AUTHORIZATION_LAPSED, say)
    stays: the stop is still retried, but its news must not hide the flag."""
    flagged = charge.failure_code in OPERATOR_FLAGS
    if not flagged:
        fail(charge, code, detail)
    now = now_utc()
    give_up_at = (charge.stop_requested_at or now) + timedelta(
        seconds=current_app.config["STOP_RETRY_FOR"])
    if now >= give_up_at:
        if not flagged:
            fail(charge, "STOP_UNCONFIRMED", f"{code}: {detail}" if detail else code)
        charge.stop_next_at = None
        note(charge, Cause(cause.kind, cause.ref,
                           f"{cause.note}; still not stopped after {charge.stop_attempts} tries: "
                           "flagged for the operator"))
        return
    delay = stop_retry_delay(charge.stop_attempts)
    charge.stop_next_at = now + timedelta(seconds=delay)
    note(charge, Cause(cause.kind, cause.ref, f"{cause.note}; trying again in {round(delay)} s"))
    send_stop.enqueue_after_commit(charge.pk, delay=delay)


def stop_result(charge: Charge, result: str, message: str | None, cause: Cause) -> None:
    """The CommandResult of a STOP_SESSION, under the charge's lock."""
    if result != "ACCEPTED" and charge.state == S.STOPPING:
        stop_refused(charge, f"STOP_{result}", message, cause)
        return
    if charge.state == S.STOPPING:
        # The charger stopped; the Session's COMPLETED should follow. If it does not,
        # the stop is sent again after a while (the CPO may have lost it).
        charge.stop_next_at = now_utc() + timedelta(
            seconds=current_app.config["STOP_CONFIRM_SECONDS"])
    note(charge, cause)


def _stop_command(party_pk: int, session_id: str, correlation: str,
                  to: tuple[str, str] | None, uid: str | None = None) -> OcpiCommand:
    """STOP_SESSION to the CPO (ocpi.commands stores and commits the command itself)."""
    with network_step():
        return ocpi_commands().send_command(
            db.session.get_one(Party, party_pk),
            CommandType.STOP_SESSION,
            {"session_id": session_id},
            uid=uid,
            correlation_id=correlation,
            to=to,
        )


# send_stop schedules its own next try with backoff; this covers a crash inside one.
@background_task("charging.send_stop", retries=3, retry_delay=15)
def send_stop(charge_pk: int) -> None:
    """Send the standing stop request as STOP_SESSION, if it is due."""
    with locked_charge(charge_pk) as charge:
        now = now_utc()
        due = charge.stop_next_at is not None and charge.stop_next_at <= now + timedelta(seconds=1)
        if charge.state != S.STOPPING or not due:
            leave_unchanged()  # not stopping, or an early duplicate of a scheduled try
            return
        if not charge.session_id:
            # The CPO has not named the session yet: on_session_updated sends it when it does.
            charge.stop_next_at = None
            note(charge, Cause("system", note="stop waits for the CPO's first Session"))
            return
        charge.stop_attempts += 1
        charge.stop_command_uid = uid = ocpi_commands().new_command_uid()
        # Should nothing at all come back, the next try is due after the command's timeout.
        charge.stop_next_at = now + timedelta(
            seconds=current_app.config["OCPI_DEFAULT_COMMAND_TIMEOUT"]
            + current_app.config["SWEEP_GRACE_SECONDS"])
        sent = (charge.party_pk, charge.session_id, charge.correlation_id, cpo_of(charge))
    command = _stop_command(*sent, uid=uid)
    with locked_charge(charge_pk) as charge:
        if charge.state != S.STOPPING or command.uid != charge.stop_command_uid:
            return
        if command.response_result == "ACCEPTED":
            wait = (command.timeout_seconds or 0) + current_app.config["STOP_CONFIRM_SECONDS"]
            charge.stop_next_at = now_utc() + timedelta(seconds=wait)
        else:
            stop_refused(charge, f"STOP_{command.response_result}", command.response_message,
                         Cause("ocpi", command.uid, f"STOP_SESSION {command.response_result}"))


@background_task("charging.stop_unpaid_session")
def stop_unpaid_session(charge_pk: int) -> None:
    """STOP_SESSION for a Session that no money covers any more (its hold was released or
    lapsed), sent once; the charge's own state is left as it is."""
    with unit_of_work():
        charge = db.session.get(Charge, charge_pk)
        if charge is None or not charge.session_id:
            return
        sent = (charge.party_pk, charge.session_id, charge.correlation_id, cpo_of(charge))
    command = _stop_command(*sent)
    with locked_charge(charge_pk) as charge:
        note(charge, Cause("ocpi", command.uid,
                           f"STOP_SESSION for the unpaid Session: {command.response_result}"))
