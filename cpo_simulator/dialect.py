"""Everything that depends on the OCPI version the simulator speaks, in one place.

The simulator's core works on version-neutral state (cpo_simulator.model) and on 2.2.1-shaped
catalogue objects (Locations, Tariffs: the richer of the two versions, so 2.1.1 is a
projection of them); a Dialect turns these into one version's JSON documents, parses that
version's request bodies and knows its authorization header and endpoint list. The core and
the Flask routes only ever call a dialect.

Documents returned here keep Decimal numbers; cpo_simulator.jsonio writes them exactly.

The dialects themselves: cpo_simulator.dialect221 and cpo_simulator.dialect211.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from cpo_simulator.dialect211 import Ocpi211
from cpo_simulator.dialect221 import Ocpi221
from cpo_simulator.model import (
    PeerCredentials,
    Period,
    SimSession,
    StartCommand,
    StopCommand,
    UnlockCommand,
)
from ocpi.modules.commands import CommandResponseType, CommandResultType
from ocpi.modules.locations import Connector, Evse, Location
from ocpi.modules.tariffs import Tariff


class Dialect(Protocol):
    version: str
    # Whether OCPI-from/to headers exist in this version (2.2 introduced them).
    routing: bool
    # Whether the CommandResponse can carry a message for the eMSP; if not, the envelope's
    # status_message does.
    command_messages: bool
    # mod_sessions 2.1.1 makes date_from a required parameter of the Sessions GET.
    sessions_need_date_from: bool
    # Peer endpoints the simulator cannot work without, as (identifier, role) keys of
    # parse_version_details (otherwise 3003 at registration).
    required_peer_endpoints: tuple[tuple[str, str], ...]

    def authorization(self, token: str) -> str: ...
    def version_entry(self, version_url: str) -> dict[str, Any]: ...
    def version_details(self, version_url: str) -> dict[str, Any]: ...
    def credentials(self, token: str, versions_url: str, country_code: str, party_id: str,
                    name: str) -> dict[str, Any]: ...
    def parse_credentials(self, body: Any) -> PeerCredentials: ...
    def pick_version(self, versions: Any) -> str | None: ...
    def parse_version_details(self, body: Any) -> dict[tuple[str, str], str]: ...
    def location(self, location: Location) -> dict[str, Any]: ...
    def evse(self, evse: Evse) -> dict[str, Any]: ...
    def connector(self, connector: Connector) -> dict[str, Any]: ...
    def tariff(self, tariff: Tariff) -> dict[str, Any]: ...
    def evse_status_patch(self, status: str, last_updated: datetime) -> dict[str, Any]: ...
    def parse_start(self, body: Any) -> StartCommand: ...
    def parse_stop(self, body: Any) -> StopCommand: ...
    def parse_unlock(self, body: Any) -> UnlockCommand: ...
    def command_response(self, result: CommandResponseType, timeout: int,
                         message: str | None = None) -> dict[str, Any]: ...
    def command_result(self, result: CommandResultType,
                       message: str | None = None) -> dict[str, Any]: ...
    def session(self, session: SimSession, country_code: str,
                party_id: str) -> dict[str, Any]: ...
    def session_progress(self, session: SimSession, period: Period) -> dict[str, Any]: ...
    def cdr(self, session: SimSession, cdr_id: str, country_code: str,
            party_id: str) -> dict[str, Any]: ...


SUPPORTED_VERSIONS = ("2.1.1", "2.2.1")


def make_dialect(version: str, *, report_vat_included: bool = False) -> Dialect:
    if version == "2.2.1":
        return Ocpi221()
    if version == "2.1.1":
        return Ocpi211(report_vat_included=report_vat_included)
    raise ValueError(f"unsupported OCPI version {version!r}; known: {SUPPORTED_VERSIONS}")

