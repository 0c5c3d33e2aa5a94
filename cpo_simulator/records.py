"""What the simulated CPO keeps besides its sessions: the registered eMSP, the starts not
yet played out, its CDRs, and the small helpers its parts share."""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from cpo_simulator.dialect import Dialect
from cpo_simulator.model import PartyRef, SimSession, StartCommand
from ocpi.modules.commands import CommandResultType
from ocpi.modules.locations import Connector, Evse, Location, PowerType
from ocpi.transport import now_utc

BUSINESS_NAME = "ScanCharge CPO Simulator"
DEFAULT_CURRENCY = "SEK"
WH = Decimal("0.001")  # meters report whole watt-hours
MAX_LOG_ENTRIES = 10_000
# Finished sessions (completed, CDR delivered) the state file keeps, newest first: the file is
# rewritten whole on every change, so it must not grow with every charge ever made. Older
# ones are forgotten at the next restart; the eMSP has their CDRs already.
MAX_KEPT_FINISHED = 200

@dataclass
class Peer:
    """The registered eMSP: how to reach it, the token it uses with us, and the version
    both speak (the one whose credentials endpoint it registered at)."""

    token_b: str
    token_c: str
    versions_url: str
    endpoints: dict[tuple[str, str], str]
    country_code: str
    party_id: str
    dialect: Dialect

    @property
    def party(self) -> PartyRef:
        return PartyRef(self.country_code, self.party_id)

    def url(self, identifier: str, role: str = "RECEIVER") -> str | None:
        # 2.1.1 endpoints have no role and are keyed (identifier, "").
        return self.endpoints.get((identifier, role)) or self.endpoints.get((identifier, ""))


@dataclass(frozen=True)
class Reply:
    http_status: int
    body: Any
    headers: Mapping[str, str]  # case-insensitive, as HTTP header names are


@dataclass(frozen=True)
class CommandOutcome:
    """The envelope status and CommandResponse document to answer a command with."""

    status_code: int
    message: str | None
    response: dict[str, Any]


@dataclass(frozen=True)
class PendingStart:
    command: StartCommand
    location_id: str
    evse_uid: str
    connector_id: str
    result: CommandResultType
    correlation_id: str
    result_delay: float
    # Who sent the command: the result goes back to them, the session belongs to them.
    reply_to: PartyRef | None
    # The version the command came in (its result is written in it), and when it was
    # accepted (wall time), so a restart waits only what is left of result_delay.
    version: str = ""
    accepted_at: float = field(default_factory=time.time)
    uid: str = field(default_factory=lambda: uuid.uuid4().hex)


@dataclass
class CdrRecord:
    """A CDR is kept as its completed session and rendered per version when read."""

    id: str
    session: SimSession
    last_updated: datetime
    # The URL the eMSP answered with (Location header), where the CDR can be fetched back.
    emsp_location: str | None = None
    # Still to be delivered: set when the CDR is made (unless the behaviour is cdr=never),
    # cleared once the eMSP answered for good; a restart posts the pending ones again.
    pending: bool = False


def find(items: Any, key: str, attribute: str) -> Any:
    """The item whose `attribute` equals `key`, compared as the spec's CiStrings are."""
    wanted = key.casefold()
    return next((i for i in items if str(getattr(i, attribute)).casefold() == wanted), None)


def site_of(location: Location, evse: Evse, connector: Connector) -> Location:
    """A frozen copy of the Location with only this EVSE and connector, as both versions'
    Sessions and CDRs describe where the charge happened."""
    only_evse = evse.model_copy(deep=True, update={"connectors": [connector.model_copy()]})
    return location.model_copy(deep=True, update={"evses": [only_evse]})


def power_w(connector: Connector) -> int:
    if connector.max_electric_power:
        return connector.max_electric_power
    phases = 3 if connector.power_type == PowerType.AC_3_PHASE else 1
    return connector.max_voltage * connector.max_amperage * phases


def version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


def stamp() -> str:
    return now_utc().isoformat(timespec="milliseconds").replace("+00:00", "Z")
