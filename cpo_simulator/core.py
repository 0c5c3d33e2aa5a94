"""The simulated CPO: its state, its registration with one eMSP, and its charge points.

All state lives in memory behind one lock. The lock is never held while talking HTTP, so a
slow or dead eMSP cannot stall the simulator's own API. With a state_path every change that
matters is also written to disk before the eMSP hears of it (see "persistence" below), so a
simulator built again on the same file, then resume()d, carries on after even a kill -9.

Each accepted START_SESSION gets a daemon thread that plays the charge point: posts the
command result, opens the session, pushes a charging period every tick and finally the
completed session and its CDR.

Besides the forced misbehaviour (set_behaviour), a well-behaved START_SESSION still fails the
way a real charge point would: EVSE_OCCUPIED on an EVSE that is charging, blocked, reserved
or promised to another start, EVSE_INOPERATIVE on one that is out of order (SIM-GBG-2).
Without evse_uid the first free EVSE of the location is used; without connector_id its
first connector.

The simulator speaks the version whose credentials endpoint the eMSP registered at (see
cpo_simulator.dialect for what differs). With 2.2.1 it sends routing headers so it works
behind a hub: a session, its CDR and a command's result are addressed to the eMSP they
belong to (the token's owner, else the command's sender), EVSE status changes to the
registered peer's own party, which behind a hub makes them a Broadcast Push.
"""

from __future__ import annotations

import hmac
import logging
import math
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import requests

from cpo_simulator import persistence
from cpo_simulator.app import create_app
from cpo_simulator.demo_data import build_locations, build_tariffs
from cpo_simulator.dialect import Dialect, make_dialect
from cpo_simulator.jsonio import dumps, loads
from cpo_simulator.model import (
    PartyRef,
    PeerCredentials,
    Period,
    SimSession,
    StartCommand,
    StopRequest,
)
from cpo_simulator.settings import Behaviour, SimulatorSettings
from ocpi.transport import (
    OcpiError,
    StatusCode,
    new_request_id,
    now_utc,
    routing_headers,
)
from ocpi.wire import (
    CommandResponseType,
    CommandResultType,
    Connector,
    Evse,
    EvseStatus,
    Location,
    PowerType,
    Tariff,
)

logger = logging.getLogger(__name__)

BUSINESS_NAME = "ScanCharge CPO Simulator"
DEFAULT_CURRENCY = "SEK"
WH = Decimal("0.001")  # meters report whole watt-hours
MAX_LOG_ENTRIES = 10_000
# Finished sessions (completed, CDR delivered) the state file keeps, newest first: the file is
# rewritten whole on every change, so it must not grow with every charge ever made. Older
# ones are forgotten at the next restart; the eMSP has their CDRs already.
MAX_KEPT_FINISHED = 200

_OCCUPIED = {EvseStatus.CHARGING, EvseStatus.BLOCKED, EvseStatus.RESERVED}
_FORCED_START_RESULTS = {
    "failed": CommandResultType.FAILED,
    "timeout_result": CommandResultType.TIMEOUT,
    "evse_occupied": CommandResultType.EVSE_OCCUPIED,
}


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


class Simulator:
    """One simulated CPO platform speaking OCPI 2.2.1 and/or 2.1.1 to one eMSP."""

    def __init__(self, settings: SimulatorSettings) -> None:
        self.settings = settings
        self._dialects: dict[str, Dialect] = {
            version: make_dialect(version, report_vat_included=settings.report_vat_included)
            for version in settings.versions
        }
        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._log: list[dict[str, Any]] = []
        self._behaviour = Behaviour.defaults(settings)
        self._peer: Peer | None = None
        self._locations: dict[str, Location] = {
            loc.id: loc for loc in build_locations(settings.country_code, settings.party_id,
                                                    settings.prefix)
        }
        self._tariffs: dict[str, Tariff] = {
            t.id: t for t in build_tariffs(settings.country_code, settings.party_id)
        }
        self._sessions: dict[str, SimSession] = {}
        self._cdrs: dict[str, CdrRecord] = {}
        # EVSEs promised to an accepted START_SESSION whose session is not open yet.
        self._busy: set[tuple[str, str]] = set()
        # START_SESSIONs answered ACCEPTED whose CommandResult (and, for a start the charge
        # point accepts, its session) is still to come, by uid: kept so a restart finishes them.
        self._pending: dict[str, PendingStart] = {}
        self._state = (persistence.StateFile(settings.state_path)
                       if settings.state_path else None)
        self._sequence = 0
        self._finished_docs: dict[str, dict[str, Any]] = {}
        # What a state file brought back, for resume() to carry on with (once).
        self._loaded: tuple[list[PendingStart], list[str], list[str]] | None = None
        if self._state is not None:
            document = self._state.load()
            if document is not None:
                self._restore(document)
        self.app = create_app(self)

    # --- versions -----------------------------------------------------------------------

    @property
    def versions(self) -> tuple[str, ...]:
        return self.settings.versions

    def dialect_for(self, version: str) -> Dialect | None:
        """The dialect of an offered version, None for one the simulator does not offer."""
        return self._dialects.get(version)

    @property
    def dialect(self) -> Dialect:
        """The version spoken with the registered eMSP; before registration the highest
        offered (what the simulator would like to be spoken to in)."""
        with self._lock:
            if self._peer is not None:
                return self._peer.dialect
        return self._dialects[max(self.versions, key=_version_key)]

    # --- control ----------------------------------------------------------------------

    @property
    def behaviour(self) -> Behaviour:
        with self._lock:
            return self._behaviour

    def set_behaviour(self, **changes: Any) -> Behaviour:
        """Change what the charge points do next: start, stop, cdr, result_delay,
        command_timeout, time_factor, session_max_kwh. ValueError on unknown keys/values."""
        with self._lock:
            self._behaviour = self._behaviour.updated(changes)
            return self._behaviour

    def reset(self) -> None:
        """Back to well-behaved and an empty message log; registration, sessions and CDRs
        stay, so a connected eMSP keeps working."""
        with self._lock:
            self._behaviour = Behaviour.defaults(self.settings)
            self._log.clear()

    def shutdown(self) -> None:
        """Stop every background thread (sessions stay as they are, ACTIVE ones too)."""
        self._stopping.set()
        with self._lock:
            for session in self._sessions.values():
                session.wake.set()
            threads = list(self._threads)
        for thread in threads:
            thread.join(timeout=2)

    @property
    def registered(self) -> bool:
        with self._lock:
            return self._peer is not None

    @property
    def version(self) -> str | None:
        """The version the registered eMSP speaks, None while unregistered."""
        with self._lock:
            return self._peer.dialect.version if self._peer else None

    @property
    def log(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._log)

    @property
    def sessions(self) -> list[dict[str, Any]]:
        """Every session as OCPI JSON of the spoken version (numbers as Decimal)."""
        with self._lock:
            return [self._session_doc(s) for s in self._sessions.values()]

    @property
    def cdrs(self) -> list[dict[str, Any]]:
        """Every CDR as OCPI JSON of the spoken version, including ones never sent."""
        with self._lock:
            return [self._cdr_doc(record) for record in self._cdrs.values()]

    def cdr_location(self, cdr_id: str) -> str | None:
        """The Location header the eMSP answered when the CDR was posted."""
        with self._lock:
            record = self._cdrs.get(cdr_id)
            return record.emsp_location if record else None

    def state(self) -> dict[str, Any]:
        with self._lock:
            peer = self._peer
            return {
                "registered": peer is not None,
                "versions": list(self.versions),
                "emsp": None if peer is None else {
                    "version": peer.dialect.version,
                    "versions_url": peer.versions_url,
                    "country_code": peer.country_code,
                    "party_id": peer.party_id,
                    "endpoints": [
                        {"identifier": ident, "role": role or None, "url": url}
                        for (ident, role), url in peer.endpoints.items()
                    ],
                },
                "behaviour": self._behaviour.to_json(),
                "sessions": [self._session_doc(s) for s in self._sessions.values()],
                "cdrs": [self._cdr_doc(record) for record in self._cdrs.values()],
                "cdr_locations": {
                    cdr_id: record.emsp_location for cdr_id, record in self._cdrs.items()
                },
            }

    def record(self, entry: dict[str, Any]) -> None:
        """Append to the message log, dropping the oldest entries past MAX_LOG_ENTRIES."""
        with self._lock:
            self._log.append(entry)
            if len(self._log) > MAX_LOG_ENTRIES:
                del self._log[: len(self._log) - MAX_LOG_ENTRIES]

    # --- authentication and registration -------------------------------------------------

    def authenticate(self, candidates: list[str]) -> str | None:
        """'peer' for token C, 'token_a' for token A while unregistered, else None."""
        with self._lock:
            if self._peer is not None:
                expected, who = self._peer.token_c, "peer"
            else:
                # Token A is thrown away once registered and valid again after DELETE.
                expected, who = self.settings.token_a, "token_a"
        for candidate in candidates:
            if hmac.compare_digest(candidate.encode(), expected.encode()):
                return who
        return None

    def own_credentials(self, versions_url: str, dialect: Dialect) -> dict[str, Any]:
        with self._lock:
            token = self._peer.token_c if self._peer else self.settings.token_a
        return dialect.credentials(
            token, versions_url, self.settings.country_code, self.settings.party_id,
            BUSINESS_NAME,
        )

    def register(
        self, body: Any, versions_url: str, dialect: Dialect, *, update: bool
    ) -> dict[str, Any]:
        """POST (update=False) or PUT (update=True) of the eMSP's credentials at `dialect`'s
        credentials endpoint: fetch its endpoints of that version with its token B, then
        answer our credentials with a new token C. From then on we speak that version."""
        credentials = dialect.parse_credentials(body)
        with self._lock:
            if (self._peer is not None) != update:
                raise OcpiError(StatusCode.CLIENT_ERROR, _REGISTRATION_STATE[update], 405)
        endpoints = self._fetch_peer_endpoints(credentials.url, credentials.token, dialect)
        token_c = secrets.token_urlsafe(32)
        with self._lock:
            # A concurrent POST/DELETE may have won while we were fetching.
            if (self._peer is not None) != update:
                raise OcpiError(StatusCode.CLIENT_ERROR, _REGISTRATION_STATE[update], 405)
            self._peer = Peer(
                token_b=credentials.token,
                token_c=token_c,
                versions_url=credentials.url,
                endpoints=endpoints,
                country_code=credentials.country_code,
                party_id=credentials.party_id,
                dialect=dialect,
            )
        self._save()
        return self.own_credentials(versions_url, dialect)

    def unregister(self) -> None:
        with self._lock:
            if self._peer is None:
                raise OcpiError(StatusCode.CLIENT_ERROR, _REGISTRATION_STATE[True], 405)
            self._peer = None
        self._save()

    def peer_credentials(self) -> PeerCredentials | None:
        """The registered eMSP as the simulator knows it: the token the simulator calls it
        with (token B), its versions URL and party; None while unregistered. Lets the host of
        a persistent simulator check the registration still matches the eMSP's side."""
        with self._lock:
            peer = self._peer
            if peer is None:
                return None
            return PeerCredentials(peer.token_b, peer.versions_url, peer.country_code,
                                   peer.party_id)

    def _fetch_peer_endpoints(
        self, versions_url: str, token_b: str, dialect: Dialect
    ) -> dict[tuple[str, str], str]:
        versions = self._fetch_data(versions_url, token_b, dialect)
        version_url = dialect.pick_version(versions)
        if version_url is None:
            raise OcpiError(
                StatusCode.UNSUPPORTED_VERSION,
                f"The eMSP at {versions_url} offers no OCPI {dialect.version}",
            )
        details = self._fetch_data(version_url, token_b, dialect)
        try:
            endpoints = dialect.parse_version_details(details)
        except (OcpiError, ValueError) as exc:
            message = getattr(exc, "message", str(exc))
            raise OcpiError(
                StatusCode.UNABLE_TO_USE_CLIENT_API,
                f"Unusable version details at {version_url}: {message}",
            ) from exc
        missing = [f"{i} {r}".rstrip() for i, r in dialect.required_peer_endpoints
                   if (i, r) not in endpoints]
        if missing:
            raise OcpiError(
                StatusCode.NO_MATCHING_ENDPOINTS,
                "The eMSP lacks endpoints this CPO needs: " + ", ".join(missing),
            )
        return endpoints

    def _fetch_data(self, url: str, token: str, dialect: Dialect) -> Any:
        reply = self._send("GET", url, "versions", token=token, routing=False, dialect=dialect)
        body = reply.body if reply else None
        if (
            reply is None
            or reply.http_status != 200
            or not isinstance(body, dict)
            or body.get("status_code") != StatusCode.SUCCESS
        ):
            why = "no answer" if reply is None else f"HTTP {reply.http_status}"
            if isinstance(body, dict) and "status_code" in body:
                why += f", OCPI status {body.get('status_code')}"
            raise OcpiError(StatusCode.UNABLE_TO_USE_CLIENT_API, f"GET {url} failed: {why}")
        return body.get("data")

    # --- catalogue ----------------------------------------------------------------------

    def location_items(self, dialect: Dialect) -> list[tuple[datetime, dict[str, Any]]]:
        """(last_updated, document) in creation order, for paginated GETs."""
        with self._lock:
            return [(loc.last_updated, dialect.location(loc))
                    for loc in self._locations.values()]

    def tariff_items(self, dialect: Dialect) -> list[tuple[datetime, dict[str, Any]]]:
        with self._lock:
            return [(t.last_updated, dialect.tariff(t)) for t in self._tariffs.values()]

    def session_items(self, dialect: Dialect) -> list[tuple[datetime, dict[str, Any]]]:
        with self._lock:
            return [(s.last_updated, self._session_doc(s, dialect))
                    for s in self._sessions.values()]

    def cdr_items(self, dialect: Dialect) -> list[tuple[datetime, dict[str, Any]]]:
        with self._lock:
            return [(r.last_updated, self._cdr_doc(r, dialect)) for r in self._cdrs.values()]

    def location_object(
        self, dialect: Dialect, location_id: str, evse_uid: str | None = None,
        connector_id: str | None = None,
    ) -> dict[str, Any]:
        """One Location, EVSE or Connector; OcpiError 2003/HTTP 404 when unknown."""
        with self._lock:
            location = _find(self._locations.values(), location_id, "id")
            if location is None:
                raise OcpiError(StatusCode.UNKNOWN_LOCATION,
                                f"Unknown location {location_id!r}", 404)
            if evse_uid is None:
                return dialect.location(location)
            evse = _find(location.evses or [], evse_uid, "uid")
            if evse is None:
                raise OcpiError(StatusCode.UNKNOWN_LOCATION,
                                f"Unknown EVSE {evse_uid!r} at {location.id}", 404)
            if connector_id is None:
                return dialect.evse(evse)
            connector = _find(evse.connectors, connector_id, "id")
            if connector is None:
                raise OcpiError(StatusCode.UNKNOWN_LOCATION,
                                f"Unknown connector {connector_id!r} on {evse.uid}", 404)
            return dialect.connector(connector)

    # --- commands -----------------------------------------------------------------------

    def command(
        self, name: str, body: Any, correlation_id: str, dialect: Dialect | None = None,
        requester: PartyRef | None = None,
    ) -> CommandOutcome:
        """Answer a command received in `dialect` (default: the spoken version); the
        requester (OCPI-from headers) is where results and sessions are routed to."""
        dialect = dialect or self.dialect
        handlers: dict[str, Callable[[Dialect, Any, str, PartyRef | None], CommandOutcome]] = {
            "START_SESSION": self._start_session,
            "STOP_SESSION": self._stop_session,
            "UNLOCK_CONNECTOR": self._unlock_connector,
        }
        handler = handlers.get(name.upper())
        if handler is None:
            return self._outcome(dialect, CommandResponseType.NOT_SUPPORTED,
                                 f"{name} is not supported by this CPO")
        return handler(dialect, body, correlation_id, requester)

    def _outcome(
        self, dialect: Dialect, result: CommandResponseType, message: str | None = None,
        status_code: int = StatusCode.SUCCESS,
    ) -> CommandOutcome:
        timeout = self.behaviour.command_timeout
        response = dialect.command_response(result, timeout, message)
        # On success the message belongs in the CommandResponse, unless the version has no
        # field for it (2.1.1): then the envelope's status_message carries it.
        in_envelope = status_code != StatusCode.SUCCESS or not dialect.command_messages
        return CommandOutcome(int(status_code), message if in_envelope else None, response)

    def _start_session(
        self, dialect: Dialect, body: Any, correlation_id: str, requester: PartyRef | None
    ) -> CommandOutcome:
        command = dialect.parse_start(body)
        with self._lock:
            behaviour = self._behaviour
            found = self._resolve(command.location_id, command.evse_uid, command.connector_id)
            if found is None:
                return self._outcome(
                    dialect,
                    CommandResponseType.REJECTED,
                    "Unknown location, EVSE or connector",
                    StatusCode.UNKNOWN_LOCATION,
                )
            location, evse, connector = found
            if behaviour.start == "reject":
                return self._outcome(dialect, CommandResponseType.REJECTED,
                                     "The CPO rejected the command")
            if behaviour.start == "no_result":
                # The charge point never answers: no result, no session, EVSE untouched.
                return self._outcome(dialect, CommandResponseType.ACCEPTED)
            result = _FORCED_START_RESULTS.get(behaviour.start) or self._availability(
                location, evse)
            if result is CommandResultType.ACCEPTED:
                self._busy.add((location.id, evse.uid))
            pending = PendingStart(
                command=command,
                location_id=location.id,
                evse_uid=evse.uid,
                connector_id=connector.id,
                result=result,
                correlation_id=correlation_id,
                result_delay=behaviour.result_delay,
                reply_to=requester,
                version=dialect.version,
            )
            self._pending[pending.uid] = pending
        self._save()
        self._spawn(self._start_worker, pending, dialect, name=f"sim-start-{evse.uid}")
        return self._outcome(dialect, CommandResponseType.ACCEPTED)

    def _resolve(
        self, location_id: str, evse_uid: str | None, connector_id: str | None
    ) -> tuple[Location, Evse, Connector] | None:
        location = _find(self._locations.values(), location_id, "id")
        if location is None or not location.evses:
            return None
        if evse_uid is None:
            # The charge point may choose: the first free EVSE, else the first at all (whose
            # state then decides the result).
            free = [e for e in location.evses
                    if self._availability(location, e) is CommandResultType.ACCEPTED]
            evse: Evse | None = (free or location.evses)[0]
        else:
            evse = _find(location.evses, evse_uid, "uid")
        if evse is None:
            return None
        if connector_id is None:
            return location, evse, evse.connectors[0]
        connector = _find(evse.connectors, connector_id, "id")
        return (location, evse, connector) if connector is not None else None

    def _availability(self, location: Location, evse: Evse) -> CommandResultType:
        if (location.id, evse.uid) in self._busy or evse.status in _OCCUPIED:
            return CommandResultType.EVSE_OCCUPIED
        if evse.status != EvseStatus.AVAILABLE:
            return CommandResultType.EVSE_INOPERATIVE
        return CommandResultType.ACCEPTED

    def _stop_session(
        self, dialect: Dialect, body: Any, correlation_id: str, requester: PartyRef | None
    ) -> CommandOutcome:
        command = dialect.parse_stop(body)
        with self._lock:
            behaviour = self._behaviour
            session = self._sessions.get(command.session_id)
            if session is None:
                return self._outcome(dialect, CommandResponseType.UNKNOWN_SESSION,
                                     f"Unknown session {command.session_id}")
            if behaviour.stop == "reject":
                return self._outcome(dialect, CommandResponseType.REJECTED,
                                     "The CPO rejected the command")
            if session.status != "ACTIVE" or session.stop is not None or session.finishing:
                return self._outcome(dialect, CommandResponseType.REJECTED,
                                     "The session is already completed or stopping")
            session.stop = StopRequest(
                response_url=command.response_url,
                correlation_id=correlation_id,
                result_delay=behaviour.result_delay,
                received=time.monotonic(),
                reply_to=requester or session.owner,
                version=dialect.version,
            )
            session.wake.set()
        self._save()
        return self._outcome(dialect, CommandResponseType.ACCEPTED)

    def _unlock_connector(
        self, dialect: Dialect, body: Any, correlation_id: str, requester: PartyRef | None
    ) -> CommandOutcome:
        command = dialect.parse_unlock(body)
        with self._lock:
            resolved = self._resolve(command.location_id, command.evse_uid,
                                     command.connector_id)
            delay = self._behaviour.result_delay
        if resolved is None:
            return self._outcome(dialect, CommandResponseType.REJECTED,
                                 "Unknown location, EVSE or connector",
                                 StatusCode.UNKNOWN_LOCATION)

        def answer() -> None:
            if not self._pause(delay):
                self._post_result(command.response_url, CommandResultType.ACCEPTED,
                                  correlation_id, requester, dialect)

        self._spawn(answer, name=f"sim-unlock-{command.evse_uid}")
        return self._outcome(dialect, CommandResponseType.ACCEPTED)

    # --- the charge point ---------------------------------------------------------------

    def _start_worker(
        self, pending: PendingStart, dialect: Dialect, delay: float | None = None
    ) -> None:
        key = (pending.location_id, pending.evse_uid)
        try:
            if self._pause(pending.result_delay if delay is None else delay):
                return  # shutting down: the start stays pending, for resume() after a restart
            # Killed after this and before the session opened, a restart posts the result
            # again: an eMSP keeps the first result of a command, so that is harmless.
            self._post_result(pending.command.response_url, pending.result,
                              pending.correlation_id, pending.reply_to, dialect)
            if pending.result is not CommandResultType.ACCEPTED:
                with self._lock:
                    self._pending.pop(pending.uid, None)
                self._save()
                return
            with self._lock:
                session = self._open_session(pending)
                # One snapshot holds the session and no longer the pending start, so a
                # restart can neither lose the start nor open it twice.
                self._pending.pop(pending.uid, None)
                document = self._session_doc(session)
            self._save()
        finally:
            with self._lock:
                self._busy.discard(key)  # from here the EVSE's CHARGING status guards it
        self._send("PUT", self._session_url(session.id), "sessions", document,
                   to=session.owner)
        self._push_evse_status(session.location_id, session.evse_uid, EvseStatus.CHARGING)
        self._run_session(session)

    def _open_session(self, pending: PendingStart) -> SimSession:
        location = self._locations[pending.location_id]
        evse = _find(location.evses or [], pending.evse_uid, "uid")
        assert evse is not None
        connector = _find(evse.connectors, pending.connector_id, "id")
        assert connector is not None
        tariff = next((self._tariffs[t] for t in connector.tariff_ids or []
                       if t in self._tariffs), None)
        token = pending.command.token
        start = now_utc().replace(microsecond=0)
        self._set_evse_status(location.id, evse.uid, EvseStatus.CHARGING)
        peer = self._peer.party if self._peer else None
        # The session is the token owner's (2.2.1 names it); a 2.1.1 token does not, so it
        # is whoever sent the command, or the eMSP we are registered with.
        owner = token.owner or pending.reply_to or peer
        assert owner is not None, "a command can only arrive from a registered eMSP"
        session = SimSession(
            id=str(uuid.uuid4()),
            location_id=location.id,
            evse_uid=evse.uid,
            connector_id=connector.id,
            token=token,
            authorization_reference=pending.command.authorization_reference,
            tariff=tariff,
            currency=tariff.currency if tariff else DEFAULT_CURRENCY,
            power_w=_power_w(connector),
            site=_site(location, evse, connector),
            owner=owner,
            start=start,
            last_updated=start,
        )
        self._sessions[session.id] = session
        return session

    def _run_session(self, session: SimSession) -> None:
        """Tick until stopped by command, by a full battery, or by shutdown."""
        while True:
            patch: dict[str, Any] | None = None
            full = False
            session.wake.wait(self.settings.tick_seconds)
            if self._stopping.is_set():
                return
            with self._lock:
                session.wake.clear()
                stop = session.stop
                if stop is None:
                    period, full = self._advance(session, self._tick_simulated_seconds())
                    patch = (self.dialect.session_progress(session, period)
                             if period is not None else None)
            if stop is not None:
                self._finish_stopped(session, stop)
                return
            # Each period is on disk before the eMSP hears of it: a restart carries on from
            # here and never re-charges a period it already pushed.
            self._save()
            if patch is not None:
                self._send("PATCH", self._session_url(session.id), "sessions", patch,
                           to=session.owner)
            if full:
                self._complete(session)
                return

    def _tick_simulated_seconds(self) -> int:
        # Whole seconds, because OCPI DateTimes carry seconds and periods must add up.
        return max(1, round(self.settings.tick_seconds * self._behaviour.time_factor))

    def _advance(self, session: SimSession, seconds: int) -> tuple[Period | None, bool]:
        """Charge at the connector's full power for `seconds` simulated seconds, up to the
        battery limit; returns the new period (None if already full) and whether it is full."""
        remaining = self._behaviour.session_max_kwh - session.kwh
        if remaining <= 0:
            session.finishing = True
            return None, True
        power_kw = Decimal(session.power_w) / 1000
        kwh = (power_kw * seconds / 3600).quantize(WH, rounding=ROUND_HALF_UP)
        full = kwh >= remaining
        if full:
            # Decided under the lock, so a STOP_SESSION racing the full battery is refused
            # rather than accepted and never answered.
            session.finishing = True
            kwh = remaining
            # The battery fills part-way through the tick: charge only as long as needed.
            seconds = max(1, math.ceil(kwh * 3600 / power_kw)) if power_kw > 0 else seconds
        period = Period(start=session.clock, kwh=kwh, seconds=seconds)
        session.periods.append(period)
        session.last_updated = session.clock
        session.last_tick = time.monotonic()
        return period, full

    def _finish_stopped(self, session: SimSession, stop: StopRequest) -> None:
        waited = time.monotonic() - stop.received
        if self._pause(max(0.0, stop.result_delay - waited)):
            return
        self._post_result(stop.response_url, CommandResultType.ACCEPTED, stop.correlation_id,
                          stop.reply_to, self.dialect_for(stop.version))
        with self._lock:
            # Energy flowed from the last tick until the stop arrived.
            real = max(0.0, stop.received - session.last_tick)
            seconds = int(real * self._behaviour.time_factor)
            if seconds >= 1:
                self._advance(session, seconds)
        self._complete(session)

    def _complete(self, session: SimSession) -> None:
        with self._lock:
            if not session.periods:
                # A CDR needs a charging period, even for a session that charged nothing.
                session.periods.append(Period(start=session.start, kwh=Decimal("0.000"),
                                              seconds=0))
            session.status = "COMPLETED"
            session.end = session.clock
            session.last_updated = session.end
            self._set_evse_status(session.location_id, session.evse_uid, EvseStatus.AVAILABLE)
            cdr_id = f"CDR-{uuid.uuid4().hex[:16].upper()}"
            session.cdr_id = cdr_id
            send_cdr = self._behaviour.cdr == "send"
            record = CdrRecord(id=cdr_id, session=session, last_updated=session.end,
                               pending=send_cdr)
            self._cdrs[cdr_id] = record
            document = self._session_doc(session)
        # The completed session and its CDR (marked pending) are on disk before any push,
        # so a restart delivers the CDR whatever instant the process died at.
        self._save()
        self._send("PUT", self._session_url(session.id), "sessions", document,
                   to=session.owner)
        self._push_evse_status(session.location_id, session.evse_uid, EvseStatus.AVAILABLE)
        if send_cdr:
            self._deliver_cdr(cdr_id)

    def _deliver_cdr(self, cdr_id: str) -> bool:
        """POST the CDR to the eMSP; True once it needs no further attempt: accepted, or
        refused for good (a 4xx or a 2xxx status: the eMSP can pull it instead). False when
        there was no answer, a server error, or no eMSP to send it to."""
        with self._lock:
            record = self._cdrs[cdr_id]
            cdr = self._cdr_doc(record)
            cdrs_url = self._peer.url("cdrs") if self._peer else None
            owner = record.session.owner
        if not cdrs_url:
            return False
        reply = self._send("POST", cdrs_url, "cdrs", cdr, to=owner)
        location = reply.headers.get("Location") if reply else None
        ocpi_status = reply.body.get("status_code") if reply and isinstance(
            reply.body, dict) else None
        done = (reply is not None and reply.http_status < 500
                and not (isinstance(ocpi_status, int) and ocpi_status >= 3000))
        with self._lock:
            if location:
                record.emsp_location = location
            if done:
                record.pending = False
        self._save()
        return done

    def _set_evse_status(self, location_id: str, evse_uid: str, status: EvseStatus) -> None:
        location = self._locations[location_id]
        evse = _find(location.evses or [], evse_uid, "uid")
        assert evse is not None
        # Status is real-world state, so it is stamped with real time; the parent Location's
        # last_updated moves too, as date_from filtering on Locations requires.
        now = now_utc().replace(microsecond=0)
        evse.status = status
        evse.last_updated = now
        location.last_updated = now

    def _push_evse_status(self, location_id: str, evse_uid: str, status: EvseStatus) -> None:
        """PATCH the EVSE's status to the peer. Addressed to the peer's own party: an eMSP
        directly, or through a hub a Broadcast Push to every eMSP behind it."""
        with self._lock:
            base = self._peer.url("locations") if self._peer else None
            evse = _find(self._locations[location_id].evses or [], evse_uid, "uid")
            if base is None or evse is None:
                return  # the eMSP pulls Locations instead
            url = (f"{base.rstrip('/')}/{self.settings.country_code}/"
                   f"{self.settings.party_id}/{location_id}/{evse_uid}")
            body = self.dialect.evse_status_patch(status.value, evse.last_updated)
        self._send("PATCH", url, "locations", body)

    def _session_doc(self, session: SimSession, dialect: Dialect | None = None) -> dict[str, Any]:
        return (dialect or self.dialect).session(session, self.settings.country_code,
                                                 self.settings.party_id)

    def _cdr_doc(self, record: CdrRecord, dialect: Dialect | None = None) -> dict[str, Any]:
        return (dialect or self.dialect).cdr(record.session, record.id,
                                             self.settings.country_code,
                                             self.settings.party_id)

    def _session_url(self, session_id: str) -> str | None:
        with self._lock:
            base = self._peer.url("sessions") if self._peer else None
        if base is None:
            return None
        return (f"{base.rstrip('/')}/{self.settings.country_code}/"
                f"{self.settings.party_id}/{session_id}")

    def _post_result(
        self, url: str, result: CommandResultType, correlation_id: str,
        reply_to: PartyRef | None, dialect: Dialect | None,
    ) -> None:
        body = (dialect or self.dialect).command_result(result)
        self._send("POST", url, "commands", body, correlation_id=correlation_id, to=reply_to)

    # --- outgoing HTTP ------------------------------------------------------------------

    def _send(
        self,
        method: str,
        url: str | None,
        module: str,
        body: Any = None,
        *,
        token: str | None = None,
        routing: bool = True,
        correlation_id: str | None = None,
        to: PartyRef | None = None,
        dialect: Dialect | None = None,
    ) -> Reply | None:
        """One request to the eMSP, logged; None if it could not be made or got no answer.
        Never raises for the eMSP's failures: a CPO carries on when an eMSP misbehaves.

        Routing headers (2.2.1 only) address `to`, by default the registered peer's party.
        """
        with self._lock:
            peer = self._peer
        dialect = dialect or (peer.dialect if peer else self.dialect)
        if token is None:
            if peer is None:
                return None  # unregistered: all automated communication has ended
            token = peer.token_b
        if url is None:
            return None
        headers = {
            "Authorization": dialect.authorization(token),
            "X-Request-ID": new_request_id(),
            "X-Correlation-ID": correlation_id or new_request_id(),
        }
        if routing and dialect.routing and peer is not None:
            target = to or peer.party
            headers.update(routing_headers(self.settings.country_code, self.settings.party_id,
                                           target.country_code, target.party_id))
        data = None
        if body is not None:
            data = dumps(body).encode("utf-8")
            headers["Content-Type"] = "application/json"
        entry: dict[str, Any] = {
            "direction": "out", "method": method, "url": url, "module": module,
            "http_status": None, "ocpi_status": None, "request": body, "response": None,
            "at": _stamp(),
        }
        try:
            response = requests.request(method, url, data=data, headers=headers,
                                        timeout=self.settings.http_timeout)
        except requests.RequestException as exc:
            entry["error"] = f"{type(exc).__name__}: {exc}"
            self.record(entry)
            return None
        try:
            parsed = loads(response.content) if response.content else None
        except ValueError:
            parsed = None
            entry["error"] = "the answer is not JSON: " + response.text[:200]
        entry["http_status"] = response.status_code
        entry["response"] = parsed
        if isinstance(parsed, dict) and isinstance(parsed.get("status_code"), int):
            entry["ocpi_status"] = parsed["status_code"]
        self.record(entry)
        return Reply(response.status_code, parsed, response.headers)

    # --- persistence --------------------------------------------------------------------
    # The behaviour (test misbehaviour) and the message log are not kept: after a restart the
    # charge points are well-behaved again and the log starts empty, like reset().

    def resume(self) -> None:
        """Carry on with what the state file brought back: finish the starts still pending,
        restart the charge point of every ACTIVE session (from its last persisted period:
        the time the simulator was down is not charged, as a charge point that lost power
        would not), and post again every CDR not yet acknowledged. Call it once the eMSP can
        be reached; only the first call does anything, and nothing without a state file."""
        with self._lock:
            loaded, self._loaded = self._loaded, None
        if loaded is None:
            return
        starts, session_ids, cdr_ids = loaded
        for pending in starts:
            delay = max(0.0, pending.result_delay - (time.time() - pending.accepted_at))
            dialect = self.dialect_for(pending.version) or self.dialect
            self._spawn(self._start_worker, pending, dialect, delay,
                        name=f"sim-start-{pending.evse_uid}")
        for session_id in session_ids:
            session = self._sessions[session_id]
            self._spawn(self._resume_session, session, name=f"sim-resume-{session.evse_uid}")
        if cdr_ids:
            self._spawn(self._redeliver, cdr_ids, name="sim-cdr-courier")

    def _resume_session(self, session: SimSession) -> None:
        with self._lock:
            full = session.finishing and session.stop is None
            document = self._session_doc(session)
        if full:  # killed between the battery filling up and the session's completion
            self._complete(session)
            return
        # The eMSP may have missed the last push (or the first, if the kill came right after
        # the session opened): tell it where the session stands before ticking on.
        self._send("PUT", self._session_url(session.id), "sessions", document,
                   to=session.owner)
        self._push_evse_status(session.location_id, session.evse_uid, EvseStatus.CHARGING)
        self._run_session(session)

    def _redeliver(self, cdr_ids: list[str]) -> None:
        """Post the loaded undelivered CDRs, each after its completed session (which the
        eMSP may have missed as well), retrying with backoff while the eMSP does not answer;
        the eMSP's CDR receiver keeps a CDR once, so a repeat is harmless."""
        remaining = list(cdr_ids)
        for cdr_id in remaining:
            with self._lock:
                session = self._cdrs[cdr_id].session
                document = self._session_doc(session)
            self._send("PUT", self._session_url(session.id), "sessions", document,
                       to=session.owner)
        delay = 1.0
        while remaining:
            remaining = [cdr_id for cdr_id in remaining if not self._deliver_cdr(cdr_id)]
            if remaining and self._pause(delay):
                return
            delay = min(delay * 2, 30.0)

    def _save(self) -> None:
        """Write the state file (no-op without one). Never raises: a CPO whose disk fails
        carries on, and says so in the log."""
        if self._state is None:
            return
        with self._lock:
            self._sequence += 1
            sequence = self._sequence
            document = self._snapshot()
        try:
            self._state.save(document, sequence)
        except OSError:
            logger.exception("could not write the simulator state to %s", self._state.path)

    def _snapshot(self) -> dict[str, Any]:
        """The whole state worth keeping as one JSON document; called under the lock."""
        peer = self._peer
        kept = self._kept_sessions()
        kept_ids = {s.id for s in kept}
        return {
            "format": persistence.FORMAT,
            "saved_at": _stamp(),
            "peer": None if peer is None else {
                "token_b": peer.token_b,
                "token_c": peer.token_c,
                "versions_url": peer.versions_url,
                "endpoints": [[ident, role, url]
                              for (ident, role), url in peer.endpoints.items()],
                "country_code": peer.country_code,
                "party_id": peer.party_id,
                "version": peer.dialect.version,
            },
            # Only what changes of the demo network: EVSE statuses and the stamps they move.
            "locations": {
                location.id: {
                    "last_updated": location.last_updated.isoformat(),
                    "evses": {evse.uid: {"status": evse.status.value,
                                         "last_updated": evse.last_updated.isoformat()}
                              for evse in location.evses or []},
                }
                for location in self._locations.values()
            },
            "pending_starts": [
                {
                    "uid": pending.uid,
                    "command": persistence.start_command_doc(pending.command),
                    "location_id": pending.location_id,
                    "evse_uid": pending.evse_uid,
                    "connector_id": pending.connector_id,
                    "result": pending.result.value,
                    "correlation_id": pending.correlation_id,
                    "result_delay": pending.result_delay,
                    "reply_to": persistence.party_doc(pending.reply_to),
                    "version": pending.version,
                    "accepted_at": pending.accepted_at,
                }
                for pending in self._pending.values()
            ],
            "sessions": [self._stored_session(s) for s in kept],
            "cdrs": [
                {"id": record.id, "session_id": record.session.id,
                 "last_updated": record.last_updated.isoformat(),
                 "emsp_location": record.emsp_location, "pending": record.pending}
                for record in self._cdrs.values() if record.session.id in kept_ids
            ],
        }

    def _kept_sessions(self) -> list[SimSession]:
        """The sessions worth a place in the state file: every one still open or with a
        CDR to deliver, and the newest MAX_KEPT_FINISHED finished ones."""
        pending_cdrs = {r.session.id for r in self._cdrs.values() if r.pending}
        finished = [s for s in self._sessions.values()
                    if s.status != "ACTIVE" and s.id not in pending_cdrs]
        dropped = {s.id for s in finished[:max(0, len(finished) - MAX_KEPT_FINISHED)]}
        return [s for s in self._sessions.values() if s.id not in dropped]

    def _stored_session(self, session: SimSession) -> dict[str, Any]:
        # A completed session never changes again, so its document is made once: snapshots
        # are taken on every tick of every charge point.
        if session.status == "ACTIVE":
            return persistence.session_doc(session)
        document = self._finished_docs.get(session.id)
        if document is None:
            document = self._finished_docs[session.id] = persistence.session_doc(session)
        return document

    def _restore(self, document: dict[str, Any]) -> None:
        """Take over a snapshot written by _snapshot, before any thread runs."""
        peer = document.get("peer")
        if peer:
            dialect = self._dialects.get(peer["version"])
            if dialect is None:
                logger.warning("the stored registration speaks OCPI %s, no longer offered: "
                               "dropped, the eMSP must register again", peer["version"])
            else:
                self._peer = Peer(
                    token_b=peer["token_b"],
                    token_c=peer["token_c"],
                    versions_url=peer["versions_url"],
                    endpoints={(ident, role): url for ident, role, url in peer["endpoints"]},
                    country_code=peer["country_code"],
                    party_id=peer["party_id"],
                    dialect=dialect,
                )
        for location_id, stored in document.get("locations", {}).items():
            location = self._locations.get(location_id)
            if location is None:
                continue  # the demo network changed since: what is gone stays gone
            location.last_updated = datetime.fromisoformat(stored["last_updated"])
            for evse in location.evses or []:
                evse_state = stored["evses"].get(evse.uid)
                if evse_state is not None:
                    evse.status = EvseStatus(evse_state["status"])
                    evse.last_updated = datetime.fromisoformat(evse_state["last_updated"])
        for data in document.get("sessions", []):
            session = persistence.session_from(data)
            self._sessions[session.id] = session
        for data in document.get("cdrs", []):
            session = self._sessions.get(data["session_id"])
            if session is None:
                continue
            self._cdrs[data["id"]] = CdrRecord(
                id=data["id"], session=session,
                last_updated=datetime.fromisoformat(data["last_updated"]),
                emsp_location=data.get("emsp_location"), pending=bool(data.get("pending")),
            )
        for data in document.get("pending_starts", []):
            pending = PendingStart(
                command=persistence.start_command_from(data["command"]),
                location_id=data["location_id"],
                evse_uid=data["evse_uid"],
                connector_id=data["connector_id"],
                result=CommandResultType(data["result"]),
                correlation_id=data["correlation_id"],
                result_delay=float(data["result_delay"]),
                reply_to=persistence.party_from(data.get("reply_to")),
                version=data.get("version", ""),
                accepted_at=float(data["accepted_at"]),
                uid=data["uid"],
            )
            self._pending[pending.uid] = pending
            if pending.result is CommandResultType.ACCEPTED:
                self._busy.add((pending.location_id, pending.evse_uid))
        self._loaded = (
            list(self._pending.values()),
            [s.id for s in self._sessions.values() if s.status == "ACTIVE"],
            [r.id for r in self._cdrs.values() if r.pending],
        )
        logger.info("simulator state loaded from %s: %d sessions (%d active), %d CDRs to "
                    "deliver, %d starts pending", self.settings.state_path,
                    len(self._sessions), len(self._loaded[1]), len(self._loaded[2]),
                    len(self._loaded[0]))

    # --- threads ------------------------------------------------------------------------

    def _pause(self, seconds: float) -> bool:
        """Sleep, waking early on shutdown; True means: shutting down, stop working."""
        return self._stopping.wait(max(0.0, seconds))

    def _spawn(self, target: Callable[..., None], *args: Any, name: str) -> None:
        def guarded() -> None:
            try:
                target(*args)
            except Exception:  # a broken session must not take the simulator down
                logger.exception("simulator thread %s failed", name)

        thread = threading.Thread(target=guarded, name=name, daemon=True)
        with self._lock:
            self._threads = [t for t in self._threads if t.is_alive()]
            self._threads.append(thread)
        thread.start()


_REGISTRATION_STATE = {
    False: "Already registered: use PUT to update or DELETE to unregister",
    True: "Not registered: use POST to register",
}


def _find(items: Any, key: str, attribute: str) -> Any:
    """The item whose `attribute` equals `key`, compared as the spec's CiStrings are."""
    wanted = key.casefold()
    return next((i for i in items if str(getattr(i, attribute)).casefold() == wanted), None)


def _site(location: Location, evse: Evse, connector: Connector) -> Location:
    """A frozen copy of the Location with only this EVSE and connector, as both versions'
    Sessions and CDRs describe where the charge happened."""
    only_evse = evse.model_copy(deep=True, update={"connectors": [connector.model_copy()]})
    return location.model_copy(deep=True, update={"evses": [only_evse]})


def _power_w(connector: Connector) -> int:
    if connector.max_electric_power:
        return connector.max_electric_power
    phases = 3 if connector.power_type == PowerType.AC_3_PHASE else 1
    return connector.max_voltage * connector.max_amperage * phases


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


def _stamp() -> str:
    return now_utc().isoformat(timespec="milliseconds").replace("+00:00", "Z")


def create_simulator(settings: SimulatorSettings) -> Simulator:
    return Simulator(settings)
