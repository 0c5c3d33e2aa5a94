"""The simulated charge points: an accepted START_SESSION played out in a daemon thread.

The thread posts the command result, opens the session, pushes a charging period every tick
(in simulated time) and finally the completed session and its CDR. resume() carries on
after a restart with what the state file brought back.
"""

from __future__ import annotations

import math
import time
import uuid
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from cpo_simulator.dialect import Dialect
from cpo_simulator.model import Period, SimSession, StopRequest
from cpo_simulator.pushing import Pushing
from cpo_simulator.records import (
    DEFAULT_CURRENCY,
    WH,
    CdrRecord,
    PendingStart,
    find,
    power_w,
    site_of,
)
from ocpi.modules.commands import CommandResultType
from ocpi.modules.locations import EvseStatus
from ocpi.transport import now_utc


class ChargePoints(Pushing):
    """Starts, ticks, stops and completions of sessions."""

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
        evse = find(location.evses or [], pending.evse_uid, "uid")
        assert evse is not None
        connector = find(evse.connectors, pending.connector_id, "id")
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
            power_w=power_w(connector),
            site=site_of(location, evse, connector),
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

    def _set_evse_status(self, location_id: str, evse_uid: str, status: EvseStatus) -> None:
        location = self._locations[location_id]
        evse = find(location.evses or [], evse_uid, "uid")
        assert evse is not None
        # Status is real-world state, so it is stamped with real time; the parent Location's
        # last_updated moves too, as date_from filtering on Locations requires.
        now = now_utc().replace(microsecond=0)
        evse.status = status
        evse.last_updated = now
        location.last_updated = now

    # --- after a restart -----------------------------------------------------------------

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
