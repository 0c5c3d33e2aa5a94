"""What the simulated hub knows and routes by: its settings, the connections and their
parties, ClientInfo, commands and CDRs in transit, and the small helpers its parts share."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

import requests

from cpo_simulator.jsonio import loads
from cpo_simulator.model import PartyRef
from ocpi.modules.common import Role, parse
from ocpi.modules.versions import VersionDetails
from ocpi.transport import OcpiError, StatusCode, format_datetime, now_utc

VERSION = "2.2.1"
PREFIX = f"/ocpi/{VERSION}"
MAX_LOG_ENTRIES = 10_000
# A party behind the hub paginating forever must not hang a GET All.
MAX_PAGES = 500

# Functional modules the hub routes; configuration modules (versions, credentials,
# hubclientinfo) are between a party and the hub itself and are never routed.
ROUTED_MODULES = ("locations", "tariffs", "sessions", "cdrs", "commands", "tokens")
CONFIGURATION_MODULES = {"versions", "credentials", "hubclientinfo"}
# Objects pushed to /{country_code}/{party_id}/... of their owner (client owned objects).
CLIENT_OWNED = {"locations", "tariffs", "sessions", "tokens"}
# What may be broadcast: information meant for everyone, not one party's Sessions or CDRs.
BROADCAST_MODULES = {"locations", "tariffs", "tokens"}
SIDES = {"sender": "SENDER", "receiver": "RECEIVER"}


class ConnectionStatus(StrEnum):
    CONNECTED = "CONNECTED"
    OFFLINE = "OFFLINE"
    PLANNED = "PLANNED"
    SUSPENDED = "SUSPENDED"


@dataclass
class HubSettings:
    """Start-up configuration of the hub.

    base_url may be empty while serving requests (URLs then follow the request), but must be
    set before Hub.connect, since the CPO calls the hub back during that registration.
    """

    base_url: str
    # Token A an eMSP (ScanCharge) registers with; more with Hub.invite().
    token_a: str
    country_code: str = "SE"
    party_id: str = "HUB"
    name: str = "ScanCharge Test Hub"
    # Page size cap of lists the hub composes itself (GET All, hubclientinfo).
    page_limit: int = 4
    # Seconds a forwarded request may take before the hub answers 4002.
    forward_timeout: float = 5.0
    # Seconds between still-alive checks of every connection (GET versions); None: never.
    alive_interval: float | None = None


@dataclass
class Connection:
    """One platform connected to the hub by one credentials exchange (or by add_party)."""

    number: int
    parties: dict[PartyRef, Role]
    # The token the platform uses with us, and the one we use with it.
    token_ours: str
    token_theirs: str
    versions_url: str
    endpoints: dict[tuple[str, str], str]
    # While the hub registers with the platform, its token opens only configuration modules.
    configuring: bool = False

    def url(self, identifier: str, role: str) -> str | None:
        return self.endpoints.get((identifier, role))

    @property
    def label(self) -> str:
        return ",".join(f"{p.country_code}/{p.party_id}" for p in self.parties)


@dataclass
class ClientInfo:
    party: PartyRef
    role: Role
    status: ConnectionStatus
    last_updated: datetime

    def to_json(self) -> dict[str, Any]:
        return {
            "party_id": self.party.party_id,
            "country_code": self.party.country_code,
            "role": self.role.value,
            "status": self.status.value,
            "last_updated": format_datetime(self.last_updated),
        }


@dataclass(frozen=True)
class PendingCommand:
    """A command forwarded to a party behind the hub, whose result comes back via us."""

    response_url: str
    requester: PartyRef
    requester_connection: int
    target: PartyRef
    target_connection: int


@dataclass(frozen=True)
class PostedCdr:
    url: str  # where the receiver keeps it (its Location header)
    receiver: PartyRef
    receiver_connection: int
    poster_connection: int


@dataclass(frozen=True)
class Caller:
    """Who a request's token belongs to: a connection, or an unused token A (invite)."""

    connection: Connection | None
    invite: str | None = None

    @property
    def configuration_only(self) -> bool:
        return self.connection is None or self.connection.configuring


@dataclass
class Routed:
    """What the after_request hook needs to know about a routed request."""

    answer_from: PartyRef
    answer_to: PartyRef | None
    log: dict[str, Any] = field(default_factory=dict)


def party_key(party: PartyRef) -> PartyRef:
    # country codes and party ids are CiStrings
    return PartyRef(party.country_code.upper(), party.party_id.upper())


def stamp() -> str:
    return now_utc().isoformat(timespec="milliseconds").replace("+00:00", "Z")


def redacted(value: Any) -> Any:
    """`value` with every credentials token (a string under "token") replaced; a command's
    Token object is a dict there and stays."""
    if isinstance(value, dict):
        return {k: "<redacted>" if k == "token" and isinstance(v, str) else redacted(v)
                for k, v in value.items()}
    if isinstance(value, list):
        return [redacted(v) for v in value]
    return value


def party_name(party: PartyRef) -> str:
    return f"{party.country_code}/{party.party_id}"


def parsed_json(raw: bytes | None) -> Any:
    try:
        return loads(raw) if raw else None
    except ValueError:
        return None


def envelope_of(response: requests.Response) -> dict[str, Any]:
    body = parsed_json(response.content)
    return body if isinstance(body, dict) else {}


def pick_version(versions: Any, version: str) -> str | None:
    if not isinstance(versions, list):
        return None
    for item in versions:
        if isinstance(item, dict) and str(item.get("version")) == version and item.get("url"):
            return str(item["url"])
    return None


def endpoints_of(details: Any) -> dict[tuple[str, str], str]:
    try:
        parsed = parse(VersionDetails, details)
    except OcpiError as exc:
        raise OcpiError(StatusCode.UNABLE_TO_USE_CLIENT_API,
                        f"unusable version details: {exc.message}") from exc
    return {(e.identifier, e.role.value if e.role else ""): e.url for e in parsed.endpoints}


def join_url(base: str, rest: str) -> str:
    rest = rest.strip("/")
    return f"{base.rstrip('/')}/{rest}" if rest else base
