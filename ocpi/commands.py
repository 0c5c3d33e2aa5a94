"""Sending commands to a CPO (mod_commands, Sender side).

Each command gets a uid that is the last segment of its response_url, so the asynchronous
CommandResult is matched to exactly one command. The CPO's CommandResponse timeout becomes
the deadline by which the CommandResult must arrive.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from flask import current_app

from extensions import db
from ocpi import notices, v211
from ocpi.client import OcpiClient, PeerUnreachable
from ocpi.credentials import ocpi_base_url
from ocpi.models import OcpiCommand, Party, dump_json
from ocpi.modules.commands import CommandResponse, CommandType
from ocpi.modules.common import parse
from ocpi.transport import OcpiError, now_utc

# The largest CommandResponse timeout we honour: a CPO saying "wait a day" must not keep
# a driver waiting at the charger.
MAX_TIMEOUT_SECONDS = 300


def new_command_uid() -> str:
    return str(uuid.uuid4())


def send_command(
    party: Party,
    command: CommandType,
    body: dict[str, Any],
    *,
    uid: str | None = None,
    correlation_id: str | None = None,
    to: tuple[str, str] | None = None,
) -> OcpiCommand:
    """POST {commands}/{command} and record the CPO's CommandResponse.

    Pass `uid` (from new_command_uid) when the caller must know the command before it is
    sent: the CommandResult may reach us before the CommandResponse does. `to` is the CPO
    the command is for, when the connection is a hub in front of it.
    Never raises for the CPO's failures: an unreachable CPO or an error answer is recorded
    as response_result "ERROR" with the reason, for the caller to act on.
    """
    uid = uid or new_command_uid()
    version = party.version or "2.2.1"
    body = {**body,
            "response_url": f"{ocpi_base_url()}/{version}/commands/{command.value}/{uid}"}
    if version == "2.1.1":
        body = v211.command_body(command, body)
    row = OcpiCommand(uid=uid, party_pk=party.pk, command=command.value, request=dump_json(body))
    db.session.add(row)
    db.session.commit()

    url = party.endpoint("commands", "RECEIVER")
    if not url:
        return _record(row, "ERROR", "The CPO offers no commands endpoint", None)
    try:
        payload, _ = OcpiClient.for_party(party, to).request(
            "POST", f"{url.rstrip('/')}/{command.value}", module="commands", body=body,
            correlation_id=correlation_id,
        )
        data = payload.get("data")
        if isinstance(data, list) and len(data) == 1:  # tolerate a one-item list
            data = data[0]
        if version == "2.1.1":  # no timeout in 2.1.1: ours applies
            result, message = v211.command_response(data)
            return _record(row, result, message or payload.get("status_message"), None)
        response = parse(CommandResponse, data)
    except PeerUnreachable as exc:
        # NO_RESPONSE: sent, unanswered; the Charge Point may still carry it out.
        return _record(row, "NO_RESPONSE" if exc.sent_unanswered else "ERROR", exc.message,
                       None)
    except OcpiError as exc:
        return _record(row, "ERROR", exc.message, None)
    message = "; ".join(m.text for m in response.message or []) or None
    if response.timeout is None:
        # mod_commands requires it; the meaning is still clear: our default deadline.
        notices.deviation(party.pk, "COMMAND_RESPONSE_WITHOUT_TIMEOUT",
                          f"{command.value} CommandResponse without timeout: "
                          f"{current_app.config['OCPI_DEFAULT_COMMAND_TIMEOUT']} s applied")
    return _record(row, response.result.value, message, response.timeout)


def _record(row: OcpiCommand, result: str, message: str | None, timeout: int | None) -> OcpiCommand:
    row.response_result = result
    row.response_message = message
    if result == "ACCEPTED":
        default = current_app.config["OCPI_DEFAULT_COMMAND_TIMEOUT"]
        seconds = timeout if timeout and timeout > 0 else default
        row.timeout_seconds = min(seconds, MAX_TIMEOUT_SECONDS)
        row.deadline = now_utc() + timedelta(seconds=row.timeout_seconds)
    db.session.commit()
    return row
