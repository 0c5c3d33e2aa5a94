"""The simulated hub's state, in memory behind one lock never held while talking HTTP: its
connections, their parties' ClientInfo (pushed to every hubclientinfo Receiver when it
changes), and the requests it sends them; the optional still-alive check is its only thread.
"""

from __future__ import annotations

import contextlib
import hmac
import logging
import secrets
import threading
from collections.abc import Iterable, Mapping
from typing import Any

import requests
from flask import Flask

from cpo_simulator.hub.model import (
    MAX_LOG_ENTRIES,
    VERSION,
    Caller,
    ClientInfo,
    Connection,
    ConnectionStatus,
    HubSettings,
    PendingCommand,
    PostedCdr,
    endpoints_of,
    envelope_of,
    parsed_json,
    party_key,
    party_name,
    pick_version,
    redacted,
    stamp,
)
from cpo_simulator.jsonio import dumps
from cpo_simulator.model import PartyRef
from ocpi.modules.common import Role, parse
from ocpi.modules.credentials import Credentials, CredentialsRole
from ocpi.modules.locations import BusinessDetails
from ocpi.transport import (
    OcpiError,
    StatusCode,
    authorization_header,
    new_request_id,
    now_utc,
    routing_headers,
    token_candidates,
)

logger = logging.getLogger(__name__)


class Hub:
    # Its HTTP face, given by create_hub (cpo_simulator.hub.app needs this class, so this
    # class does not import it).
    app: Flask

    def __init__(self, settings: HubSettings) -> None:
        self.settings = settings
        self.party = PartyRef(settings.country_code, settings.party_id)
        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self._log: list[dict[str, Any]] = []
        self._invites: set[str] = {settings.token_a}
        self._connections: dict[int, Connection] = {}
        self._parties: dict[PartyRef, int] = {}  # party_key(party) -> connection number
        self._client_info: dict[PartyRef, ClientInfo] = {}
        self._commands: dict[str, PendingCommand] = {}
        self._cdrs: dict[str, PostedCdr] = {}
        self._numbers = iter(range(1, 1 << 62))
        self._alive_thread: threading.Thread | None = None
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
        version_url = pick_version(versions, VERSION)
        if version_url is None:
            raise OcpiError(StatusCode.UNSUPPORTED_VERSION,
                            f"{versions_url} offers no OCPI {VERSION}, the only one this hub "
                            f"speaks")
        endpoints = endpoints_of(self._fetch(version_url, token_a))
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
            body = envelope_of(reply)
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
        skip = {party_key(p) for p in exclude}
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
            entry[key] = redacted(entry.get(key))
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
        version_url = pick_version(versions, VERSION)
        if version_url is None:
            raise OcpiError(StatusCode.UNSUPPORTED_VERSION,
                            f"{theirs.url} offers no OCPI {VERSION}, the only one this hub "
                            f"speaks")
        endpoints = endpoints_of(self._fetch(version_url, theirs.token))
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
                        if party_key(p) not in {party_key(q) for q in parties}}
                for party in gone:
                    self._parties.pop(party_key(party), None)
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
                self._parties.pop(party_key(party), None)
        self._announce(self._set_status(connection.parties, ConnectionStatus.SUSPENDED))

    def _claim(self, parties: Mapping[PartyRef, Role], number: int) -> None:
        """Index `parties` under connection `number`; a party another connection holds is
        refused (call with the lock held)."""
        for party in parties:
            holder = self._parties.get(party_key(party))
            if holder is not None and holder != number:
                raise OcpiError(StatusCode.CLIENT_ERROR,
                                f"{party.country_code}/{party.party_id} is already connected "
                                f"to this hub")
        for party in parties:
            self._parties[party_key(party)] = number

    # --- hubclientinfo ---------------------------------------------------------------------

    def _set_status(self, parties: Mapping[PartyRef, Role],
                    status: ConnectionStatus) -> list[ClientInfo]:
        changed = []
        now = now_utc().replace(microsecond=0)
        with self._lock:
            for party, role in parties.items():
                info = self._client_info.get(party_key(party))
                if info is not None and info.status == status and info.role == role:
                    continue
                info = ClientInfo(party=party, role=role, status=status, last_updated=now)
                self._client_info[party_key(party)] = info
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
            own = {party_key(p) for p in connection.parties}
            for info in changed:
                if party_key(info.party) in own:
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
            number = self._parties.get(party_key(party))
            return self._connections.get(number) if number is not None else None

    def role_of(self, party: PartyRef) -> Role | None:
        with self._lock:
            info = self._client_info.get(party_key(party))
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
                            f"{party_name(receiver)} cannot be reached: {exc}") from exc
        except requests.Timeout as exc:
            raise OcpiError(StatusCode.HUB_TIMEOUT,
                            f"{party_name(receiver)} did not answer within "
                            f"{self.settings.forward_timeout} s") from exc
        except requests.RequestException as exc:
            self._went_offline(connection)
            raise OcpiError(StatusCode.HUB_CONNECTION_PROBLEM,
                            f"{party_name(receiver)} cannot be reached: {type(exc).__name__}"
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
        body = envelope_of(reply)
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
            "ocpi_status": None, "request": parsed_json(data), "response": None, "at": stamp(),
        }
        try:
            response = requests.request(method, url, data=data, headers=sent,
                                        timeout=self.settings.forward_timeout)
        except requests.RequestException as exc:
            entry["error"] = f"{type(exc).__name__}: {exc}"
            self.record(entry)
            raise
        entry["http_status"] = response.status_code
        entry["response"] = parsed_json(response.content)
        if isinstance(entry["response"], dict):
            entry["ocpi_status"] = entry["response"].get("status_code")
        self.record(entry)
        return response
