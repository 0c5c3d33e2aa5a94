"""A simulated OCPI 2.2.1 hub, so ScanCharge can be tested behind a hub with several CPOs.

The hub is one OCPI platform that the parties connect to (transport_and_format "Message
Routing", credentials, mod_hub_client_info of ../shared/ocpi-spec/2.2.1/):

- An eMSP (ScanCharge) registers with the hub as with any CPO platform: token A from
  HubSettings.token_a (or Hub.invite()), credentials POST, token C back. The hub's
  credentials hold one role, HUB ("A Hub SHALL only report itself as role: Hub"); the parties
  behind it are listed by the hubclientinfo module (Sender) and pushed to connected parties'
  hubclientinfo Receiver endpoints when their status changes.
- The hub registers itself with CPO platforms (Hub.connect(versions_url, token_a)), e.g. CPO
  simulators, or is told about a party directly (Hub.add_party), and keeps a table
  {(country_code, party_id): connection}; each connection has its own tokens both ways.
- Every module is offered twice, as the hub's Sender interface (/ocpi/2.2.1/sender/<module>,
  where Receivers pull) and as its Receiver interface (/ocpi/2.2.1/receiver/<module>, where
  Senders push). A request is forwarded to the same interface of the party named by
  OCPI-to-country-code/OCPI-to-party-id, with that party's token, a new X-Request-ID, the
  same X-Correlation-ID and the caller as OCPI-from; its answer comes back with the headers
  swapped. Errors of the hub itself: 4001 unknown receiver, 4002 timeout, 4003 receiver not
  reachable, 4000 anything else (status_codes 4xxx).
- A GET of a list with OCPI-to naming the hub (or without OCPI-to) is a "GET All via Hubs":
  the objects of every connected party of another role, combined and paginated by the hub.
- A push (PUT/PATCH/POST/DELETE) of Locations, Tariffs or Tokens addressed to the hub is a
  Broadcast Push: answered by the hub, then sent to every party of another role with the
  hub as OCPI-from. Sessions, CDRs and commands are never broadcast: they need a receiver.
- URLs that lead back to a party behind the hub are rewritten to point at the hub: the
  response_url of a command (the CommandResult then travels back through the hub), the
  Location of a posted CDR, and the Link of a forwarded page.

It speaks 2.2.1 on both sides: OCPI 2.1.1 has no routing headers, so there is no 2.1.1 hub.
All state is in memory behind one lock, never held while talking HTTP. The only thread is
the optional still-alive check (HubSettings.alive_interval), stopped by shutdown().

    hub = create_hub(HubSettings(base_url="", token_a="hub-token-a"))
    server = ServerThread(hub.app); hub.settings.base_url = server.url; server.start()
    hub.connect(f"{cpo_url}/ocpi/versions", cpo_token_a)      # once per CPO
    # ScanCharge: connect to f"{server.url}/ocpi/versions" with token "hub-token-a"
"""

from __future__ import annotations

import contextlib
import hmac
import logging
import secrets
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any
from urllib.parse import urlencode, urlsplit

import requests
from flask import Flask, Response, g, request

from cpo_simulator.jsonio import dumps, loads
from cpo_simulator.model import PartyRef
from cpo_simulator.web import date_arg, envelope_response, int_arg, register_error_handlers
from ocpi.transport import (
    OcpiError,
    StatusCode,
    authorization_header,
    format_datetime,
    new_request_id,
    next_link,
    now_utc,
    pagination_headers,
    parse_datetime,
    routing_headers,
    token_candidates,
)
from ocpi.wire import (
    BusinessDetails,
    Credentials,
    CredentialsRole,
    Endpoint,
    InterfaceRole,
    Role,
    Version,
    VersionDetails,
    parse,
)

logger = logging.getLogger(__name__)

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
class _Routed:
    """What the after_request hook needs to know about a routed request."""

    answer_from: PartyRef
    answer_to: PartyRef | None
    log: dict[str, Any] = field(default_factory=dict)


def _key(party: PartyRef) -> PartyRef:
    # country codes and party ids are CiStrings
    return PartyRef(party.country_code.upper(), party.party_id.upper())


def _stamp() -> str:
    return now_utc().isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Hub:
    def __init__(self, settings: HubSettings) -> None:
        self.settings = settings
        self.party = PartyRef(settings.country_code, settings.party_id)
        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self._log: list[dict[str, Any]] = []
        self._invites: set[str] = {settings.token_a}
        self._connections: dict[int, Connection] = {}
        self._parties: dict[PartyRef, int] = {}  # _key(party) -> connection number
        self._client_info: dict[PartyRef, ClientInfo] = {}
        self._commands: dict[str, PendingCommand] = {}
        self._cdrs: dict[str, PostedCdr] = {}
        self._numbers = iter(range(1, 1 << 62))
        self._alive_thread: threading.Thread | None = None
        self.app = create_hub_app(self)
        if settings.alive_interval:
            self._alive_thread = threading.Thread(target=self._alive_loop, name="hub-alive",
                                                  daemon=True)
            self._alive_thread.start()

    # --- public control -----------------------------------------------------------------

    @property
    def base_url(self) -> str:
        if not self.settings.base_url:
            raise ValueError("HubSettings.base_url must be set: parties call the hub back")
        return self.settings.base_url.rstrip("/")

    @property
    def versions_url(self) -> str:
        return f"{self.base_url}/ocpi/versions"

    def invite(self) -> str:
        """A new one-time token A for one more party to register with."""
        token = secrets.token_urlsafe(24)
        with self._lock:
            self._invites.add(token)
        return token

    def connect(self, versions_url: str, token_a: str) -> list[dict[str, Any]]:
        """Register the hub with a platform (a CPO) from its versions URL and token A, as the
        hub's side of credentials.asciidoc; returns the ClientInfo of the parties it brought.
        OcpiError when the platform cannot be registered with."""
        with self._lock:
            number = next(self._numbers)
        versions = self._fetch(versions_url, token_a)
        version_url = _pick(versions, VERSION)
        if version_url is None:
            raise OcpiError(StatusCode.UNSUPPORTED_VERSION,
                            f"{versions_url} offers no OCPI {VERSION}, the only one this hub "
                            f"speaks")
        endpoints = _endpoints(self._fetch(version_url, token_a))
        credentials_url = endpoints.get(("credentials", "SENDER")) or next(
            (url for (ident, _), url in endpoints.items() if ident == "credentials"), None)
        if credentials_url is None:
            raise OcpiError(StatusCode.NO_MATCHING_ENDPOINTS,
                            f"{version_url} has no credentials endpoint")
        token_b = secrets.token_urlsafe(32)
        connection = Connection(number=number, parties={}, token_ours=token_b,
                                token_theirs=token_a, versions_url=versions_url,
                                endpoints=endpoints, configuring=True)
        with self._lock:
            # Token B must open our versions before we send it: the platform calls back.
            self._connections[number] = connection
        try:
            try:
                reply = self._request("POST", credentials_url, token_a, "credentials",
                                      body=self.own_credentials(token_b, self.versions_url))
            except requests.RequestException as exc:
                raise OcpiError(StatusCode.UNABLE_TO_USE_CLIENT_API,
                                f"credentials POST to {credentials_url} failed: "
                                f"{type(exc).__name__}") from exc
            body = _envelope_of(reply)
            if reply.status_code != 200 or body.get("status_code") != StatusCode.SUCCESS:
                raise OcpiError(StatusCode.UNABLE_TO_USE_CLIENT_API,
                                f"credentials POST to {credentials_url} answered HTTP "
                                f"{reply.status_code}, OCPI {body.get('status_code')}: "
                                f"{body.get('status_message')}")
            theirs = parse(Credentials, body.get("data"))
            parties = {PartyRef(r.country_code, r.party_id): r.role for r in theirs.roles}
            with self._lock:
                self._claim(parties, number)
                connection.parties = parties
                connection.token_theirs = theirs.token
                connection.configuring = False
        except Exception:
            # Nothing half-registered stays behind: token B stops opening anything.
            with self._lock:
                self._connections.pop(number, None)
            raise
        changed = self._set_status(parties, ConnectionStatus.CONNECTED)
        self._announce(changed)
        return [info.to_json() for info in changed]

    def add_party(
        self, role: str, country_code: str, party_id: str, *, token: str,
        endpoints: Mapping[tuple[str, str], str], versions_url: str = "",
    ) -> str:
        """Connect a party without a credentials exchange (a hub configured by hand), e.g. to
        test an unreachable or slow receiver; returns the token it uses with the hub."""
        party = PartyRef(country_code, party_id)
        token_ours = secrets.token_urlsafe(32)
        with self._lock:
            number = next(self._numbers)
            self._claim({party: Role(role)}, number)
            self._connections[number] = Connection(
                number=number, parties={party: Role(role)}, token_ours=token_ours,
                token_theirs=token, versions_url=versions_url, endpoints=dict(endpoints),
            )
        self._announce(self._set_status({party: Role(role)}, ConnectionStatus.CONNECTED))
        return token_ours

    def client_info(self, exclude: Iterable[PartyRef] = ()) -> list[dict[str, Any]]:
        """The ClientInfo of every party known to the hub, but those in `exclude`."""
        skip = {_key(p) for p in exclude}
        with self._lock:
            return [info.to_json() for key, info in self._client_info.items()
                    if key not in skip]

    def check_alive(self) -> list[dict[str, Any]]:
        """GET every connection's versions endpoint (mod_hub_client_info "Still alive
        check"); parties become OFFLINE or CONNECTED; returns the ClientInfo that changed."""
        with self._lock:
            connections = [c for c in self._connections.values()
                           if not c.configuring and c.versions_url]
        changed: list[ClientInfo] = []
        for connection in connections:
            try:
                reply = self._request("GET", connection.versions_url, connection.token_theirs,
                                      "versions")
                alive = reply.status_code == 200
            except requests.RequestException:
                alive = False
            status = ConnectionStatus.CONNECTED if alive else ConnectionStatus.OFFLINE
            changed += self._set_status(connection.parties, status)
        self._announce(changed)
        return [info.to_json() for info in changed]

    def shutdown(self) -> None:
        self._stopping.set()
        if self._alive_thread is not None:
            self._alive_thread.join(timeout=5)

    @property
    def log(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._log)

    def reset_log(self) -> None:
        with self._lock:
            self._log.clear()

    def state(self) -> dict[str, Any]:
        with self._lock:
            return {
                "party": {"country_code": self.party.country_code,
                          "party_id": self.party.party_id},
                "connections": [
                    {"parties": [{"country_code": p.country_code, "party_id": p.party_id,
                                  "role": r.value} for p, r in c.parties.items()],
                     "versions_url": c.versions_url,
                     "configuring": c.configuring,
                     "endpoints": [{"identifier": i, "role": r, "url": u}
                                   for (i, r), u in c.endpoints.items()]}
                    for c in self._connections.values()
                ],
                "client_info": [info.to_json() for info in self._client_info.values()],
                "pending_commands": len(self._commands),
            }

    def record(self, entry: dict[str, Any]) -> None:
        """Append to the message log; credentials tokens are never kept in clear."""
        for key in ("request", "response"):
            entry[key] = _redacted(entry.get(key))
        with self._lock:
            self._log.append(entry)
            if len(self._log) > MAX_LOG_ENTRIES:
                del self._log[: len(self._log) - MAX_LOG_ENTRIES]

    # --- credentials: parties registering with the hub -----------------------------------

    def own_credentials(self, token: str, versions_url: str) -> dict[str, Any]:
        # Only the hub itself, never the parties behind it (credentials.asciidoc).
        role = CredentialsRole(role=Role.HUB, business_details=BusinessDetails(
            name=self.settings.name), party_id=self.party.party_id,
            country_code=self.party.country_code)
        return Credentials(token=token, url=versions_url, roles=[role]).to_json()

    def authenticate(self, header: str | None) -> Caller | None:
        """The connection whose token it is, or an unused invite; None for anything else."""
        candidates = [c.encode() for c in token_candidates(header)]
        with self._lock:
            for connection in self._connections.values():
                if any(hmac.compare_digest(c, connection.token_ours.encode())
                       for c in candidates):
                    return Caller(connection)
            for invite in self._invites:
                if any(hmac.compare_digest(c, invite.encode()) for c in candidates):
                    return Caller(None, invite)
        return None

    def register(self, body: Any, versions_url: str, caller: Caller) -> dict[str, Any]:
        """POST (by token A) or PUT (by a connection) of a party's credentials: fetch its
        2.2.1 endpoints with its token, answer the hub's credentials with a new token."""
        connection = caller.connection
        theirs = parse(Credentials, body)
        versions = self._fetch(theirs.url, theirs.token)
        version_url = _pick(versions, VERSION)
        if version_url is None:
            raise OcpiError(StatusCode.UNSUPPORTED_VERSION,
                            f"{theirs.url} offers no OCPI {VERSION}, the only one this hub "
                            f"speaks")
        endpoints = _endpoints(self._fetch(version_url, theirs.token))
        parties = {PartyRef(r.country_code, r.party_id): r.role for r in theirs.roles}
        if any(role == Role.HUB for role in parties.values()):
            raise OcpiError(StatusCode.CLIENT_ERROR, "this hub does not connect to hubs")
        token_ours = secrets.token_urlsafe(32)
        with self._lock:
            if connection is None:
                if caller.invite not in self._invites:
                    raise OcpiError(StatusCode.CLIENT_ERROR, "token A was used meanwhile", 401)
                number = next(self._numbers)
                self._claim(parties, number)
                self._invites.discard(caller.invite)
                connection = Connection(number=number, parties=parties, token_ours=token_ours,
                                        token_theirs=theirs.token, versions_url=theirs.url,
                                        endpoints=endpoints)
                self._connections[number] = connection
                gone: dict[PartyRef, Role] = {}
            else:
                self._claim(parties, connection.number)
                gone = {p: r for p, r in connection.parties.items()
                        if _key(p) not in {_key(q) for q in parties}}
                for party in gone:
                    self._parties.pop(_key(party), None)
                connection.parties = parties
                connection.token_ours = token_ours
                connection.token_theirs = theirs.token
                connection.versions_url = theirs.url
                connection.endpoints = endpoints
        changed = self._set_status(parties, ConnectionStatus.CONNECTED)
        changed += self._set_status(gone, ConnectionStatus.SUSPENDED)
        self._announce(changed)
        return self.own_credentials(token_ours, versions_url)

    def unregister(self, connection: Connection) -> None:
        with self._lock:
            self._connections.pop(connection.number, None)
            for party in connection.parties:
                self._parties.pop(_key(party), None)
        self._announce(self._set_status(connection.parties, ConnectionStatus.SUSPENDED))

    def _claim(self, parties: Mapping[PartyRef, Role], number: int) -> None:
        """Index `parties` under connection `number`; a party another connection holds is
        refused (call with the lock held)."""
        for party in parties:
            holder = self._parties.get(_key(party))
            if holder is not None and holder != number:
                raise OcpiError(StatusCode.CLIENT_ERROR,
                                f"{party.country_code}/{party.party_id} is already connected "
                                f"to this hub")
        for party in parties:
            self._parties[_key(party)] = number

    # --- hubclientinfo ---------------------------------------------------------------------

    def _set_status(self, parties: Mapping[PartyRef, Role],
                    status: ConnectionStatus) -> list[ClientInfo]:
        changed = []
        now = now_utc().replace(microsecond=0)
        with self._lock:
            for party, role in parties.items():
                info = self._client_info.get(_key(party))
                if info is not None and info.status == status and info.role == role:
                    continue
                info = ClientInfo(party=party, role=role, status=status, last_updated=now)
                self._client_info[_key(party)] = info
                changed.append(info)
        return changed

    def _announce(self, changed: list[ClientInfo]) -> None:
        """PUT changed ClientInfo to every other connection with a hubclientinfo Receiver
        (the module's push model). Failures are logged, never raised."""
        if not changed:
            return
        with self._lock:
            receivers = [c for c in self._connections.values()
                         if not c.configuring and c.url("hubclientinfo", "RECEIVER")]
        for connection in receivers:
            own = {_key(p) for p in connection.parties}
            for info in changed:
                if _key(info.party) in own:
                    continue
                base = connection.url("hubclientinfo", "RECEIVER") or ""
                url = f"{base.rstrip('/')}/{info.party.country_code}/{info.party.party_id}"
                # Logged by _request; a party that missed it GETs hubclientinfo when back.
                with contextlib.suppress(requests.RequestException):
                    self._request("PUT", url, connection.token_theirs, "hubclientinfo",
                                  body=info.to_json())

    def _alive_loop(self) -> None:
        interval = float(self.settings.alive_interval or 0)
        while not self._stopping.wait(interval):
            try:
                self.check_alive()
            except Exception:  # the check must keep running whatever one party does
                logger.exception("hub still-alive check failed")

    # --- routing ---------------------------------------------------------------------------

    def connection_of(self, party: PartyRef) -> Connection | None:
        with self._lock:
            number = self._parties.get(_key(party))
            return self._connections.get(number) if number is not None else None

    def role_of(self, party: PartyRef) -> Role | None:
        with self._lock:
            info = self._client_info.get(_key(party))
            return info.role if info else None

    def targets(self, requester: Connection, module: str, role: str,
                ) -> list[tuple[Connection, PartyRef]]:
        """For GET All and Broadcast Push: each other connected platform with a party of a
        role other than the requester's, once, with that module interface."""
        with self._lock:
            own_roles = set(requester.parties.values())
            found = []
            for connection in self._connections.values():
                if connection is requester or connection.configuring:
                    continue
                if not connection.url(module, role):
                    continue
                party = next((p for p, r in connection.parties.items()
                              if r not in own_roles and r != Role.HUB), None)
                if party is not None:
                    found.append((connection, party))
            return found

    def remember_command(self, pending: PendingCommand) -> str:
        ref = secrets.token_urlsafe(12)
        with self._lock:
            self._commands[ref] = pending
            if len(self._commands) > MAX_LOG_ENTRIES:
                del self._commands[next(iter(self._commands))]
        return ref

    def pending_command(self, ref: str) -> PendingCommand | None:
        with self._lock:
            return self._commands.get(ref)

    def remember_cdr(self, posted: PostedCdr) -> str:
        ref = secrets.token_urlsafe(12)
        with self._lock:
            self._cdrs[ref] = posted
        return ref

    def posted_cdr(self, ref: str) -> PostedCdr | None:
        with self._lock:
            return self._cdrs.get(ref)

    def forward(
        self, method: str, url: str, connection: Connection, module: str, *,
        sender: PartyRef, receiver: PartyRef, correlation_id: str, data: bytes | None,
    ) -> requests.Response:
        """One request to a party, with its token and the routing headers; OcpiError 4002
        on timeout, 4003 when it cannot be reached (the party is then OFFLINE)."""
        headers = routing_headers(sender.country_code, sender.party_id,
                                  receiver.country_code, receiver.party_id)
        try:
            return self._request(method, url, connection.token_theirs, module, data=data,
                                 headers=headers, correlation_id=correlation_id)
        except requests.ConnectTimeout as exc:
            self._went_offline(connection)
            raise OcpiError(StatusCode.HUB_CONNECTION_PROBLEM,
                            f"{_name(receiver)} cannot be reached: {exc}") from exc
        except requests.Timeout as exc:
            raise OcpiError(StatusCode.HUB_TIMEOUT,
                            f"{_name(receiver)} did not answer within "
                            f"{self.settings.forward_timeout} s") from exc
        except requests.RequestException as exc:
            self._went_offline(connection)
            raise OcpiError(StatusCode.HUB_CONNECTION_PROBLEM,
                            f"{_name(receiver)} cannot be reached: {type(exc).__name__}"
                            ) from exc

    def _went_offline(self, connection: Connection) -> None:
        self._announce(self._set_status(connection.parties, ConnectionStatus.OFFLINE))

    # --- outgoing HTTP -----------------------------------------------------------------------

    def _fetch(self, url: str, token: str) -> Any:
        """GET a configuration document (versions, version details): its data, or 3001."""
        try:
            reply = self._request("GET", url, token, "versions")
        except requests.RequestException as exc:
            raise OcpiError(StatusCode.UNABLE_TO_USE_CLIENT_API,
                            f"GET {url} failed: {type(exc).__name__}") from exc
        body = _envelope_of(reply)
        if reply.status_code != 200 or body.get("status_code") != StatusCode.SUCCESS:
            raise OcpiError(StatusCode.UNABLE_TO_USE_CLIENT_API,
                            f"GET {url} failed: HTTP {reply.status_code}, OCPI "
                            f"{body.get('status_code')}")
        return body.get("data")

    def _request(
        self, method: str, url: str, token: str, module: str, *, body: Any = None,
        data: bytes | None = None, headers: Mapping[str, str] | None = None,
        correlation_id: str | None = None,
    ) -> requests.Response:
        """One logged request; raises requests' exceptions after logging them."""
        if body is not None:
            data = dumps(body).encode("utf-8")
        sent = {
            "Authorization": authorization_header(token, VERSION),
            "X-Request-ID": new_request_id(),
            "X-Correlation-ID": correlation_id or new_request_id(),
            **(headers or {}),
        }
        if data:
            sent["Content-Type"] = "application/json"
        entry: dict[str, Any] = {
            "direction": "out", "method": method, "url": url, "module": module,
            "from": sent.get("OCPI-from-party-id"), "to": sent.get("OCPI-to-party-id"),
            "correlation_id": sent["X-Correlation-ID"], "http_status": None,
            "ocpi_status": None, "request": _parsed(data), "response": None, "at": _stamp(),
        }
        try:
            response = requests.request(method, url, data=data, headers=sent,
                                        timeout=self.settings.forward_timeout)
        except requests.RequestException as exc:
            entry["error"] = f"{type(exc).__name__}: {exc}"
            self.record(entry)
            raise
        entry["http_status"] = response.status_code
        entry["response"] = _parsed(response.content)
        if isinstance(entry["response"], dict):
            entry["ocpi_status"] = entry["response"].get("status_code")
        self.record(entry)
        return response


def _redacted(value: Any) -> Any:
    """`value` with every credentials token (a string under "token") replaced; a command's
    Token object is a dict there and stays."""
    if isinstance(value, dict):
        return {k: "<redacted>" if k == "token" and isinstance(v, str) else _redacted(v)
                for k, v in value.items()}
    if isinstance(value, list):
        return [_redacted(v) for v in value]
    return value


def _name(party: PartyRef) -> str:
    return f"{party.country_code}/{party.party_id}"


def _parsed(raw: bytes | None) -> Any:
    try:
        return loads(raw) if raw else None
    except ValueError:
        return None


def _envelope_of(response: requests.Response) -> dict[str, Any]:
    body = _parsed(response.content)
    return body if isinstance(body, dict) else {}


def _pick(versions: Any, version: str) -> str | None:
    if not isinstance(versions, list):
        return None
    for item in versions:
        if isinstance(item, dict) and str(item.get("version")) == version and item.get("url"):
            return str(item["url"])
    return None


def _endpoints(details: Any) -> dict[tuple[str, str], str]:
    try:
        parsed = parse(VersionDetails, details)
    except OcpiError as exc:
        raise OcpiError(StatusCode.UNABLE_TO_USE_CLIENT_API,
                        f"unusable version details: {exc.message}") from exc
    return {(e.identifier, e.role.value if e.role else ""): e.url for e in parsed.endpoints}


# --- the HTTP face -------------------------------------------------------------------------


def create_hub_app(hub: Hub) -> Flask:
    app = Flask("cpo_simulator.hub")
    app.url_map.strict_slashes = False

    def public_base() -> str:
        return (hub.settings.base_url or request.host_url).rstrip("/")

    ocpi_response = envelope_response

    def module_of(path: str) -> str:
        parts = [p for p in path.split("/") if p]
        if len(parts) >= 4 and parts[2] in SIDES:
            return parts[3]
        return parts[2] if len(parts) >= 3 else "versions"

    # --- authentication, routing headers, log ----------------------------------------------

    @app.before_request
    def authenticate() -> Response | None:
        g.request_id = request.headers.get("X-Request-ID") or new_request_id()
        g.correlation_id = request.headers.get("X-Correlation-ID") or new_request_id()
        if not request.path.startswith("/ocpi"):
            return None
        g.module = module_of(request.path)
        caller = hub.authenticate(request.headers.get("Authorization"))
        if caller is None:
            return ocpi_response(status_code=StatusCode.CLIENT_ERROR,
                                 message="Missing or unknown credentials token",
                                 http_status=401)
        if caller.configuration_only and g.module not in {"versions", "credentials"}:
            return ocpi_response(status_code=StatusCode.CLIENT_ERROR,
                                 message="Token A only gives access to versions and credentials",
                                 http_status=401)
        g.caller = caller
        g.connection = caller.connection
        return None

    @app.after_request
    def finish(response: Response) -> Response:
        if not request.path.startswith("/ocpi"):
            return response
        response.headers["X-Request-ID"] = g.get("request_id") or new_request_id()
        response.headers["X-Correlation-ID"] = g.get("correlation_id") or new_request_id()
        module = g.get("module") or module_of(request.path)
        routed: _Routed | None = g.get("routed")
        if module not in CONFIGURATION_MODULES:
            answer_from = routed.answer_from if routed else hub.party
            answer_to = routed.answer_to if routed else g.get("requester")
            response.headers["OCPI-from-country-code"] = answer_from.country_code
            response.headers["OCPI-from-party-id"] = answer_from.party_id
            if answer_to is not None:
                response.headers["OCPI-to-country-code"] = answer_to.country_code
                response.headers["OCPI-to-party-id"] = answer_to.party_id
        body = _parsed(response.get_data())
        connection: Connection | None = g.get("connection")
        entry: dict[str, Any] = {
            "direction": "in", "method": request.method, "url": request.path,
            "module": module, "party": connection.label if connection else None,
            "from": request.headers.get("OCPI-from-party-id"),
            "to": request.headers.get("OCPI-to-party-id"),
            "correlation_id": g.get("correlation_id"),
            "http_status": response.status_code,
            "ocpi_status": body.get("status_code") if isinstance(body, dict) else None,
            "request": _parsed(request.get_data()), "response": body, "at": _stamp(),
        }
        if request.query_string:
            entry["query"] = request.query_string.decode("utf-8")
        if routed is not None:
            entry.update(routed.log)
        hub.record(entry)
        return response

    register_error_handlers(app, "hub", StatusCode.HUB_ERROR)

    # --- configuration modules -----------------------------------------------------------

    @app.get("/ocpi/versions")
    def versions() -> Response:
        return ocpi_response([Version(version=VERSION,
                                      url=f"{public_base()}{PREFIX}").to_json()])

    @app.get(PREFIX)
    def version_details() -> Response:
        base = f"{public_base()}{PREFIX}"
        endpoints = [
            Endpoint(identifier="credentials", role=InterfaceRole.SENDER,
                     url=f"{base}/credentials"),
            Endpoint(identifier="hubclientinfo", role=InterfaceRole.SENDER,
                     url=f"{base}/hubclientinfo"),
        ]
        for module in ROUTED_MODULES:
            for side, role in SIDES.items():
                endpoints.append(Endpoint(identifier=module, role=InterfaceRole(role),
                                          url=f"{base}/{side}/{module}"))
        return ocpi_response(VersionDetails(version=VERSION, endpoints=endpoints).to_json())

    def versions_url() -> str:
        return f"{public_base()}/ocpi/versions"

    @app.route(f"{PREFIX}/credentials", methods=["GET", "POST", "PUT", "DELETE"])
    def credentials() -> Response:
        caller: Caller = g.caller
        connection = caller.connection
        if request.method == "GET":
            token = connection.token_ours if connection else caller.invite or ""
            return ocpi_response(hub.own_credentials(token, versions_url()))
        if request.method == "POST":
            if connection is not None:
                raise OcpiError(StatusCode.CLIENT_ERROR,
                                "Already registered: use PUT to update or DELETE to "
                                "unregister", 405)
            return ocpi_response(hub.register(json_body(), versions_url(), caller))
        if connection is None:
            raise OcpiError(StatusCode.CLIENT_ERROR, "Not registered: use POST to register",
                            405)
        if request.method == "PUT":
            return ocpi_response(hub.register(json_body(), versions_url(), caller))
        hub.unregister(connection)
        return ocpi_response()

    @app.get(f"{PREFIX}/hubclientinfo")
    def hubclientinfo() -> Response:
        connection: Connection = g.connection
        items = [(parse_datetime(info["last_updated"]), info)
                 for info in hub.client_info(exclude=connection.parties)]
        return paginated(items)

    # --- routed modules --------------------------------------------------------------------

    @app.route(f"{PREFIX}/<side>/<module>",
               methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
    @app.route(f"{PREFIX}/<side>/<module>/<path:rest>",
               methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
    def routed(side: str, module: str, rest: str = "") -> Response:
        if side not in SIDES or module not in ROUTED_MODULES:
            raise OcpiError(StatusCode.CLIENT_ERROR, f"No {side} {module} at this hub", 404)
        role = SIDES[side]
        connection: Connection = g.connection
        requester = sender_of(connection)
        g.requester = requester
        method = request.method
        segments = [s for s in rest.split("/") if s]

        if module == "commands" and role == "SENDER" and method == "POST" and segments:
            return command_result(segments[0], connection)
        if module == "cdrs" and role == "RECEIVER" and method == "GET" and segments:
            posted = hub.posted_cdr(segments[0])
            if posted is not None:
                return fetch_posted_cdr(posted, connection, requester)
        if module in CLIENT_OWNED and role == "RECEIVER" and len(segments) >= 2:
            owner = PartyRef(segments[0], segments[1])
            if _key(owner) != _key(requester):
                raise OcpiError(StatusCode.CLIENT_ERROR,
                                f"{requester.country_code}/{requester.party_id} may not "
                                f"touch objects of {_name(owner)}", 404)

        receiver = receiver_of()
        if receiver is None or _key(receiver) == _key(hub.party):
            if method == "GET" and role == "SENDER" and not segments:
                return get_all(module, connection, requester)
            if method != "GET" and role == "RECEIVER" and module in BROADCAST_MODULES:
                return broadcast(module, rest, connection, requester)
            raise OcpiError(StatusCode.HUB_UNKNOWN_RECEIVER,
                            "OCPI-to-country-code and OCPI-to-party-id must name the "
                            f"receiver of this {method} {module} request (this hub routes "
                            "by headers only)")
        target = hub.connection_of(receiver)
        if target is None or target.configuring:
            raise OcpiError(StatusCode.HUB_UNKNOWN_RECEIVER,
                            f"Unknown receiver {_name(receiver)}")
        base = target.url(module, role)
        if base is None:
            raise OcpiError(StatusCode.HUB_ERROR,
                            f"{_name(receiver)} offers no {module} {role} interface")
        url = _join(base, rest) + (f"?{request.query_string.decode()}"
                                   if request.query_string else "")
        data = request.get_data() or None
        if module == "commands" and role == "RECEIVER" and method == "POST" and data:
            data = rewrite_response_url(data, connection, requester, target, receiver)
        reply = hub.forward(method, url, target, module, sender=requester, receiver=receiver,
                            correlation_id=g.correlation_id, data=data)
        headers: dict[str, str] = {}
        for name in ("X-Total-Count", "X-Limit"):
            if name in reply.headers:
                headers[name] = reply.headers[name]
        link = next_link(reply.headers.get("Link"))
        if link:
            headers["Link"] = f'<{hub_url_for(link, base, side, module)}>; rel="next"'
        location = reply.headers.get("Location")
        if location and module == "cdrs" and method == "POST":
            ref = hub.remember_cdr(PostedCdr(url=location, receiver=receiver,
                                             receiver_connection=target.number,
                                             poster_connection=connection.number))
            headers["Location"] = f"{public_base()}{PREFIX}/receiver/cdrs/{ref}"
        return relay(reply, headers, receiver, requester)

    def sender_of(connection: Connection) -> PartyRef:
        """The requesting party: OCPI-from, which must be one of the caller's own parties;
        without it, the caller's only party."""
        cc = request.headers.get("OCPI-from-country-code")
        pid = request.headers.get("OCPI-from-party-id")
        if bool(cc) != bool(pid):
            raise OcpiError(StatusCode.INVALID_PARAMETERS,
                            "OCPI-from-country-code and OCPI-from-party-id go together")
        if cc and pid:
            party = PartyRef(cc, pid)
            own = next((p for p in connection.parties if _key(p) == _key(party)), None)
            if own is None:
                raise OcpiError(StatusCode.CLIENT_ERROR,
                                f"OCPI-from names {_name(party)}, which these credentials "
                                f"are not for")
            return own
        if len(connection.parties) != 1:
            raise OcpiError(StatusCode.INVALID_PARAMETERS,
                            "OCPI-from-country-code and OCPI-from-party-id are required: "
                            "these credentials are for several parties")
        return next(iter(connection.parties))

    def receiver_of() -> PartyRef | None:
        cc = request.headers.get("OCPI-to-country-code")
        pid = request.headers.get("OCPI-to-party-id")
        if bool(cc) != bool(pid):
            raise OcpiError(StatusCode.INVALID_PARAMETERS,
                            "OCPI-to-country-code and OCPI-to-party-id go together")
        return PartyRef(cc, pid) if cc and pid else None

    def relay(reply: requests.Response, headers: dict[str, str], answer_from: PartyRef,
              answer_to: PartyRef) -> Response:
        """The receiver's answer, as it was (errors included, status_codes 4xxx), unless it
        is no OCPI answer at all."""
        body = _parsed(reply.content)
        if not isinstance(body, dict) or "status_code" not in body:
            raise OcpiError(StatusCode.HUB_ERROR,
                            f"{_name(answer_from)} answered HTTP {reply.status_code} without "
                            f"an OCPI envelope")
        g.routed = _Routed(answer_from=answer_from, answer_to=answer_to,
                           log={"forwarded_to": _name(answer_from)})
        return Response(reply.content, status=reply.status_code, headers=headers,
                        mimetype="application/json")

    def hub_url_for(link: str, base: str, side: str, module: str) -> str:
        """The hub's URL for a party's own URL below one of its module endpoints."""
        ours = f"{public_base()}{PREFIX}/{side}/{module}"
        stripped = base.rstrip("/")
        if link.startswith(stripped):
            return ours + link[len(stripped):]
        query = urlsplit(link).query
        return ours + (f"?{query}" if query else "")

    def rewrite_response_url(data: bytes, requester_connection: Connection,
                             requester: PartyRef, target: Connection,
                             receiver: PartyRef) -> bytes:
        """The command's response_url, replaced by one at the hub: the party behind the hub
        cannot reach the requester's URL with its own token."""
        try:
            body = loads(data)
        except ValueError:
            return data  # the receiver will answer 2001 for it
        if not isinstance(body, dict) or not isinstance(body.get("response_url"), str):
            return data
        ref = hub.remember_command(PendingCommand(
            response_url=body["response_url"], requester=requester,
            requester_connection=requester_connection.number, target=receiver,
            target_connection=target.number))
        body["response_url"] = f"{public_base()}{PREFIX}/sender/commands/{ref}"
        return dumps(body).encode("utf-8")

    def command_result(ref: str, connection: Connection) -> Response:
        """A CommandResult posted to a response_url the hub gave out: to the requester."""
        pending = hub.pending_command(ref)
        if pending is None or pending.target_connection != connection.number:
            raise OcpiError(StatusCode.CLIENT_ERROR, f"Unknown command response URL {ref}",
                            404)
        requester = hub.connection_of(pending.requester)
        if requester is None:
            raise OcpiError(StatusCode.HUB_UNKNOWN_RECEIVER,
                            f"{_name(pending.requester)} is no longer connected")
        reply = hub.forward("POST", pending.response_url, requester, "commands",
                            sender=pending.target, receiver=pending.requester,
                            correlation_id=g.correlation_id,
                            data=request.get_data() or None)
        return relay(reply, {}, pending.requester, pending.target)

    def fetch_posted_cdr(posted: PostedCdr, connection: Connection,
                         requester: PartyRef) -> Response:
        if posted.poster_connection != connection.number:
            raise OcpiError(StatusCode.CLIENT_ERROR, "Not your CDR", 404)
        receiver = hub.connection_of(posted.receiver)
        if receiver is None:
            raise OcpiError(StatusCode.HUB_UNKNOWN_RECEIVER,
                            f"{_name(posted.receiver)} is no longer connected")
        reply = hub.forward("GET", posted.url, receiver, "cdrs", sender=requester,
                            receiver=posted.receiver, correlation_id=g.correlation_id,
                            data=None)
        return relay(reply, {}, posted.receiver, requester)

    def get_all(module: str, connection: Connection, requester: PartyRef) -> Response:
        """GET All via Hubs: every other-role party's objects, combined, paginated here.
        A party that cannot be read fails the whole request: a silently partial list would
        tell the requester that the missing objects are gone."""
        g.routed = _Routed(answer_from=hub.party, answer_to=requester,
                           log={"get_all": True})
        filters = {k: v for k, v in request.args.items() if k in ("date_from", "date_to")}
        items: list[Any] = []
        for target, party in hub.targets(connection, module, "SENDER"):
            url: str | None = _join(target.url(module, "SENDER") or "", "") + (
                f"?{urlencode(filters)}" if filters else "")
            for _ in range(MAX_PAGES):
                if url is None:
                    break
                reply = hub.forward("GET", url, target, module, sender=requester,
                                    receiver=party, correlation_id=g.correlation_id,
                                    data=None)
                body = _parsed(reply.content)
                if (reply.status_code != 200 or not isinstance(body, dict)
                        or body.get("status_code") != StatusCode.SUCCESS
                        or not isinstance(body.get("data"), list)):
                    status = body.get("status_code") if isinstance(body, dict) else None
                    raise OcpiError(StatusCode.HUB_ERROR,
                                    f"GET All: {_name(party)} answered HTTP "
                                    f"{reply.status_code}, OCPI {status}")
                items.extend(body["data"])
                url = next_link(reply.headers.get("Link"))
        return paginated([(None, item) for item in items])

    def broadcast(module: str, rest: str, connection: Connection,
                  requester: PartyRef) -> Response:
        """Broadcast Push: accepted by the hub, then sent on with the hub as sender; the
        receivers' answers are logged, not returned (status_codes 4xxx)."""
        g.routed = _Routed(answer_from=hub.party, answer_to=requester,
                           log={"broadcast": True})
        data = request.get_data() or None
        delivered = []
        for target, party in hub.targets(connection, module, "RECEIVER"):
            url = _join(target.url(module, "RECEIVER") or "", rest)
            try:
                reply = hub.forward(request.method, url, target, module, sender=hub.party,
                                    receiver=party, correlation_id=g.correlation_id,
                                    data=data)
                delivered.append({"to": _name(party), "http_status": reply.status_code})
            except OcpiError as exc:
                delivered.append({"to": _name(party), "ocpi_status": exc.status_code})
        g.routed.log["delivered"] = delivered
        return ocpi_response()

    def paginated(items: list[tuple[datetime | None, Any]]) -> Response:
        date_from = date_arg("date_from")
        date_to = date_arg("date_to")
        offset = int_arg("offset", 0)
        limit = int_arg("limit", hub.settings.page_limit)
        if offset < 0 or limit < 1:
            raise OcpiError(StatusCode.INVALID_PARAMETERS,
                            "offset must be 0 or more and limit 1 or more")
        limit = min(limit, hub.settings.page_limit)
        # Items without a date were filtered by their owner already (GET All).
        matching = [doc for updated, doc in items
                    if updated is None or ((date_from is None or updated >= date_from)
                                           and (date_to is None or updated < date_to))]
        page = matching[offset:offset + limit]
        query = request.query_string.decode("utf-8")
        url = f"{public_base()}{request.path}" + (f"?{query}" if query else "")
        headers = pagination_headers(url, offset, limit, len(matching), len(page))
        return ocpi_response(page, headers=headers)

    def json_body() -> Any:
        raw = request.get_data()
        if not raw:
            raise OcpiError(StatusCode.INVALID_PARAMETERS, "A JSON body is required", 400)
        try:
            return loads(raw)
        except ValueError as exc:
            raise OcpiError(StatusCode.INVALID_PARAMETERS, f"Invalid JSON: {exc}", 400) from exc

    # --- test controls, unauthenticated ----------------------------------------------------

    def plain_json(data: Any, status: int = 200) -> Response:
        return Response(dumps(data), status=status, mimetype="application/json")

    @app.get("/hub/log")
    def message_log() -> Response:
        return plain_json(hub.log)

    @app.get("/hub/state")
    def state() -> Response:
        return plain_json(hub.state())

    @app.post("/hub/check-alive")
    def check_alive() -> Response:
        return plain_json(hub.check_alive())

    return app


def _join(base: str, rest: str) -> str:
    rest = rest.strip("/")
    return f"{base.rstrip('/')}/{rest}" if rest else base


def create_hub(settings: HubSettings) -> Hub:
    return Hub(settings)
