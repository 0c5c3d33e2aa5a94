"""The simulated CPO's state, all in memory behind one lock, and what its test controls read
and change of it (behaviour, reset, log, state); the threads its charge points run in.

The lock is never held while talking HTTP, so a slow or dead eMSP cannot stall the
simulator's own API. The parts of the simulator (registration, commands, charge points,
pushing, snapshots) are layers over this class, put together in cpo_simulator.core.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import cpo_simulator.persistence as persistence
from cpo_simulator.demo_data import build_locations, build_tariffs
from cpo_simulator.dialect import Dialect, make_dialect
from cpo_simulator.model import SimSession
from cpo_simulator.records import MAX_LOG_ENTRIES, CdrRecord, Peer, PendingStart, version_key
from cpo_simulator.settings import Behaviour, SimulatorSettings
from ocpi.modules.locations import Location
from ocpi.modules.tariffs import Tariff

logger = logging.getLogger(__name__)


class SimulatorState:
    """The state of one simulated CPO platform and the operations every part needs."""

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
        return self._dialects[max(self.versions, key=version_key)]

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

    # --- documents in the spoken version ---------------------------------------------

    def _session_doc(self, session: SimSession, dialect: Dialect | None = None) -> dict[str, Any]:
        return (dialect or self.dialect).session(session, self.settings.country_code,
                                                 self.settings.party_id)

    def _cdr_doc(self, record: CdrRecord, dialect: Dialect | None = None) -> dict[str, Any]:
        return (dialect or self.dialect).cdr(record.session, record.id,
                                             self.settings.country_code,
                                             self.settings.party_id)

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
