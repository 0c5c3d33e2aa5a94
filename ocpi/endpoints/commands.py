"""The Commands Sender's callback (mod_commands.asciidoc): the asynchronous
CommandResult a CPO posts to the response_url of a command we sent."""

from __future__ import annotations

from flask import Response, g
from sqlalchemy import select

from extensions import db
from ocpi import signals, v211
from ocpi.endpoints.blueprint import VERSION, bp, json_body, ocpi_response
from ocpi.models import OcpiCommand
from ocpi.modules.commands import CommandResult
from ocpi.modules.common import parse
from ocpi.transport import OcpiError, StatusCode, now_utc


@bp.post(f"/{VERSION}/commands/<command>/<uid>")
def command_result(command: str, uid: str) -> Response:
    row = db.session.scalar(select(OcpiCommand).where(OcpiCommand.uid == uid))
    if row is None or row.command != command.upper() or row.party_pk != g.party.pk:
        raise OcpiError(StatusCode.CLIENT_ERROR, "Unknown command", http_status=404)
    body = json_body()
    if isinstance(body, list) and len(body) == 1:  # some CPOs wrap it in a list
        body = body[0]
    if row.party_pk and g.party.version == "2.1.1":
        result = v211.command_result(body)
    else:
        result = parse(CommandResult, body)
    message = "; ".join(m.text for m in result.message or []) or None
    first = row.result is None
    if first:
        row.result = result.result.value
        row.result_message = message
        row.result_at = now_utc()
        db.session.commit()
        signals.command_result_received.send(
            "ocpi", command_uid=row.uid, command_type=row.command,
            result=row.result, message=message,
        )
    return ocpi_response()
