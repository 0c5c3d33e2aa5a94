"""The simulated CPO's Commands Receiver: START_SESSION, STOP_SESSION, UNLOCK_CONNECTOR.

Besides the forced misbehaviour (set_behaviour), a well-behaved START_SESSION still fails the
way a real charge point would: EVSE_OCCUPIED on an EVSE that is charging, blocked, reserved
or promised to another start, EVSE_INOPERATIVE on one that is out of order (SIM-GBG-2).
Without evse_uid the first free EVSE of the location is used; without connector_id its
first connector.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from cpo_simulator.charge_point import ChargePoints
from cpo_simulator.dialect import Dialect
from cpo_simulator.model import PartyRef, StopRequest
from cpo_simulator.records import CommandOutcome, PendingStart, find
from ocpi.modules.commands import CommandResponseType, CommandResultType
from ocpi.modules.locations import Connector, Evse, EvseStatus, Location
from ocpi.transport import StatusCode

_OCCUPIED = {EvseStatus.CHARGING, EvseStatus.BLOCKED, EvseStatus.RESERVED}
_FORCED_START_RESULTS = {
    "failed": CommandResultType.FAILED,
    "timeout_result": CommandResultType.TIMEOUT,
    "evse_occupied": CommandResultType.EVSE_OCCUPIED,
}


class Commands(ChargePoints):
    """Answering commands; the charge points carry out what was accepted."""

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
        location = find(self._locations.values(), location_id, "id")
        if location is None or not location.evses:
            return None
        if evse_uid is None:
            # The charge point may choose: the first free EVSE, else the first at all (whose
            # state then decides the result).
            free = [e for e in location.evses
                    if self._availability(location, e) is CommandResultType.ACCEPTED]
            evse: Evse | None = (free or location.evses)[0]
        else:
            evse = find(location.evses, evse_uid, "uid")
        if evse is None:
            return None
        if connector_id is None:
            return location, evse, evse.connectors[0]
        connector = find(evse.connectors, connector_id, "id")
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
