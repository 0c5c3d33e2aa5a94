"""The simulated CPO's whole state as one JSON document, written on every change that
matters and taken over again at start (persistence.StateFile keeps it on disk).

The behaviour (test misbehaviour) and the message log are not kept: after a restart the
charge points are well-behaved again and the log starts empty, like reset().
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

import cpo_simulator.persistence as persistence
from cpo_simulator.model import SimSession
from cpo_simulator.records import MAX_KEPT_FINISHED, CdrRecord, Peer, PendingStart, stamp
from cpo_simulator.state import SimulatorState
from ocpi.modules.commands import CommandResultType
from ocpi.modules.locations import EvseStatus

logger = logging.getLogger(__name__)


class Snapshots(SimulatorState):
    """Saving and restoring the state file."""

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
            "saved_at": stamp(),
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
            completed = self._sessions.get(data["session_id"])
            if completed is None:
                continue
            self._cdrs[data["id"]] = CdrRecord(
                id=data["id"], session=completed,
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
