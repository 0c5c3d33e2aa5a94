"""What the simulated CPO sends the eMSP: one logged request at a time that never raises for
the eMSP's failures, and on top of it session pushes, EVSE status, command results and CDRs.

With 2.2.1 it sends routing headers so it works behind a hub: a session, its CDR and a
command's result are addressed to the eMSP they belong to, EVSE status changes to the
registered peer's own party, which behind a hub makes them a Broadcast Push.
"""

from __future__ import annotations

from typing import Any

import requests

from cpo_simulator.dialect import Dialect
from cpo_simulator.jsonio import dumps, loads
from cpo_simulator.model import PartyRef
from cpo_simulator.records import Reply, find, stamp
from cpo_simulator.snapshot import Snapshots
from ocpi.modules.commands import CommandResultType
from ocpi.modules.locations import EvseStatus
from ocpi.transport import new_request_id, routing_headers


class Pushing(Snapshots):
    """Outgoing HTTP toward the registered eMSP."""

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
            "at": stamp(),
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

    def _push_evse_status(self, location_id: str, evse_uid: str, status: EvseStatus) -> None:
        """PATCH the EVSE's status to the peer. Addressed to the peer's own party: an eMSP
        directly, or through a hub a Broadcast Push to every eMSP behind it."""
        with self._lock:
            base = self._peer.url("locations") if self._peer else None
            evse = find(self._locations[location_id].evses or [], evse_uid, "uid")
            if base is None or evse is None:
                return  # the eMSP pulls Locations instead
            url = (f"{base.rstrip('/')}/{self.settings.country_code}/"
                   f"{self.settings.party_id}/{location_id}/{evse_uid}")
            body = self.dialect.evse_status_patch(status.value, evse.last_updated)
        self._send("PATCH", url, "locations", body)

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
