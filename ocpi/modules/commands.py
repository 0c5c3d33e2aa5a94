"""OCPI 2.2.1 Commands (mod_commands.asciidoc): the commands ScanCharge sends, the
CommandResponse that answers them and the CommandResult that follows."""

from __future__ import annotations

from enum import StrEnum

from ocpi.modules.common import CiString36, DisplayText, Int, OcpiModel, String255
from ocpi.modules.tokens import Token


class CommandType(StrEnum):
    CANCEL_RESERVATION = "CANCEL_RESERVATION"
    RESERVE_NOW = "RESERVE_NOW"
    START_SESSION = "START_SESSION"
    STOP_SESSION = "STOP_SESSION"
    UNLOCK_CONNECTOR = "UNLOCK_CONNECTOR"


class CommandResponseType(StrEnum):
    NOT_SUPPORTED = "NOT_SUPPORTED"
    REJECTED = "REJECTED"
    ACCEPTED = "ACCEPTED"
    UNKNOWN_SESSION = "UNKNOWN_SESSION"


class CommandResultType(StrEnum):
    ACCEPTED = "ACCEPTED"
    CANCELED_RESERVATION = "CANCELED_RESERVATION"
    EVSE_OCCUPIED = "EVSE_OCCUPIED"
    EVSE_INOPERATIVE = "EVSE_INOPERATIVE"
    FAILED = "FAILED"
    NOT_SUPPORTED = "NOT_SUPPORTED"
    REJECTED = "REJECTED"
    TIMEOUT = "TIMEOUT"
    UNKNOWN_RESERVATION = "UNKNOWN_RESERVATION"


class StartSession(OcpiModel):
    response_url: String255  # ours, sent to the CPO: built by ocpi.commands
    token: Token
    location_id: CiString36
    evse_uid: CiString36 | None = None
    connector_id: CiString36 | None = None
    authorization_reference: CiString36 | None = None


class StopSession(OcpiModel):
    response_url: String255  # ours, sent to the CPO: built by ocpi.commands
    session_id: CiString36


class UnlockConnector(OcpiModel):
    response_url: String255  # ours, sent to the CPO: built by ocpi.commands
    location_id: CiString36
    evse_uid: CiString36
    connector_id: CiString36


class CommandResponse(OcpiModel):
    result: CommandResponseType
    # Required by mod_commands, yet some CPOs leave it out: ocpi.commands then applies
    # OCPI_DEFAULT_COMMAND_TIMEOUT and notes the deviation.
    timeout: Int | None = None
    message: list[DisplayText] | None = None


class CommandResult(OcpiModel):
    result: CommandResultType
    message: list[DisplayText] | None = None
