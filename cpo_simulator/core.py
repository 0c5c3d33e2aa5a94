"""The simulated CPO: one platform, put together from its parts, and its catalogue.

Each part is a layer over cpo_simulator.state.SimulatorState, in its own file:
cpo_simulator.snapshot (the state file), .pushing (requests to the eMSP), .charge_point
(sessions in simulated time), .commands (the Commands Receiver) and .registration
(credentials). All state lives in memory behind one lock. With a state_path every change
that matters is also written to disk before the eMSP hears of it, so a simulator built again
on the same file, then resume()d, carries on after even a kill -9.

The simulator speaks the version whose credentials endpoint the eMSP registered at (see
cpo_simulator.dialect for what differs).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import Flask

from cpo_simulator.commands import Commands
from cpo_simulator.dialect import Dialect
from cpo_simulator.records import find
from cpo_simulator.registration import Registration
from cpo_simulator.settings import SimulatorSettings
from ocpi.transport import OcpiError, StatusCode


class Simulator(Registration, Commands):
    """One simulated CPO platform speaking OCPI 2.2.1 and/or 2.1.1 to one eMSP."""

    # Its HTTP face, given by create_simulator (cpo_simulator.app needs this class, so this
    # class does not import it).
    app: Flask

    def __init__(self, settings: SimulatorSettings) -> None:
        super().__init__(settings)
        if self._state is not None:
            document = self._state.load()
            if document is not None:
                self._restore(document)

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
            location = find(self._locations.values(), location_id, "id")
            if location is None:
                raise OcpiError(StatusCode.UNKNOWN_LOCATION,
                                f"Unknown location {location_id!r}", 404)
            if evse_uid is None:
                return dialect.location(location)
            evse = find(location.evses or [], evse_uid, "uid")
            if evse is None:
                raise OcpiError(StatusCode.UNKNOWN_LOCATION,
                                f"Unknown EVSE {evse_uid!r} at {location.id}", 404)
            if connector_id is None:
                return dialect.evse(evse)
            connector = find(evse.connectors, connector_id, "id")
            if connector is None:
                raise OcpiError(StatusCode.UNKNOWN_LOCATION,
                                f"Unknown connector {connector_id!r} on {evse.uid}", 404)
            return dialect.connector(connector)
