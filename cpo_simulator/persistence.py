"""The simulator's state on disk, so the embedded default survives a restart (even a kill -9).

The state is one JSON document, rewritten whole on every change that matters: written to a
temporary file in the same folder, flushed and fsynced, then moved over the previous one with
os.replace, and the folder fsynced. A rename within one file system is atomic, so whatever
instant the process dies at, the path holds either the previous complete document or the new
complete one, never a mix; a torn write can only ever be a leftover temporary file, which
load() ignores and removes. Why not SQLite: the state is small (a handful of locations and
sessions), is always read whole at start and is naturally one consistent snapshot taken under
the simulator's lock, so a single document needs no schema, no migrations and no mapping of
every object to rows, and stays readable with a text editor when a demo goes wrong.

This module only knows the file and the codecs of cpo_simulator.model's types; which
objects make up the state is cpo_simulator.snapshot's business (Snapshots._snapshot/_restore).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
import threading
import time
from dataclasses import asdict
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from cpo_simulator.jsonio import dumps, loads, plain
from cpo_simulator.model import (
    DriverToken,
    PartyRef,
    Period,
    SimSession,
    StartCommand,
    StopRequest,
)
from ocpi.modules.common import parse
from ocpi.modules.locations import Location
from ocpi.modules.tariffs import Tariff

logger = logging.getLogger(__name__)

# Bumped when the document's shape changes incompatibly; an unknown format is refused rather
# than half-read (delete the file to start afresh).
FORMAT = 1


class StateError(RuntimeError):
    """The state file exists but cannot be used; its message says how to reset it."""


class StateFile:
    """One JSON document at `path`, replaced atomically; see the module docstring."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        # Serialises writers; the sequence check makes sure an older snapshot written late
        # never replaces a newer one already on disk.
        self._write_lock = threading.Lock()
        self._written = 0

    def load(self) -> dict[str, Any] | None:
        """The stored document, None if there is none yet. StateError if it is unreadable
        (only something outside the simulator can make it so: it never writes in place)."""
        self._remove_leftovers()
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        try:
            document = json.loads(text)
        except ValueError as exc:
            raise StateError(f"{self.path} is not valid JSON ({exc}); delete it to start the "
                             "simulator afresh") from exc
        if not isinstance(document, dict) or document.get("format") != FORMAT:
            raise StateError(f"{self.path} is not a simulator state of format {FORMAT}; "
                             "delete it to start the simulator afresh")
        return document

    def save(self, document: dict[str, Any], sequence: int) -> bool:
        """Write `document`, snapshot number `sequence`, unless a newer one is already on
        disk (False then). Raises OSError when the disk refuses."""
        data = json.dumps(document, separators=(",", ":"), sort_keys=True).encode("utf-8")
        with self._write_lock:
            if sequence <= self._written:
                return False
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.",
                                       suffix=".tmp")
            try:
                with os.fdopen(fd, "wb") as handle:
                    handle.write(data)
                    handle.flush()
                    # The bytes reach the disk before the rename can: after a power cut the
                    # new name never points at a file that was not written yet.
                    os.fsync(handle.fileno())
                os.replace(tmp, self.path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
            _fsync_dir(self.path.parent)
            self._written = sequence
            return True

    def _remove_leftovers(self) -> None:
        for leftover in self.path.parent.glob(f".{self.path.name}.*.tmp"):
            with contextlib.suppress(OSError):
                leftover.unlink()
                logger.info("removed %s, a state write cut short", leftover)


def _fsync_dir(folder: Path) -> None:
    # The rename itself is durable only once the directory entry is on disk.
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return  # e.g. Windows cannot open a directory; the rename is still atomic there
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# --- clocks -----------------------------------------------------------------------------
# Monotonic readings mean nothing in another process, so they are stored as wall time.


def wall_of(monotonic: float) -> float:
    return time.time() - (time.monotonic() - monotonic)


def monotonic_of(wall: float) -> float:
    return time.monotonic() - max(0.0, time.time() - wall)


# --- codecs -----------------------------------------------------------------------------


def _ocpi(stored: Any) -> Any:
    """An OCPI object as stored: its own JSON text, numbers as Decimal."""
    return loads(stored) if isinstance(stored, str) else stored


def _dt(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _parse_dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value is not None else None


def party_doc(party: PartyRef | None) -> dict[str, str] | None:
    return asdict(party) if party is not None else None


def party_from(data: dict[str, str] | None) -> PartyRef | None:
    return PartyRef(**data) if data else None


def token_from(data: dict[str, Any]) -> DriverToken:
    return DriverToken(**data)


def start_command_doc(command: StartCommand) -> dict[str, Any]:
    return asdict(command)


def start_command_from(data: dict[str, Any]) -> StartCommand:
    return StartCommand(**{**data, "token": token_from(data["token"])})


def session_doc(session: SimSession) -> dict[str, Any]:
    stop = session.stop
    return {
        "id": session.id,
        "location_id": session.location_id,
        "evse_uid": session.evse_uid,
        "connector_id": session.connector_id,
        "token": asdict(session.token),
        "authorization_reference": session.authorization_reference,
        # The tariff and the site are frozen at the start, so they are stored as they were
        # rather than looked up again: the price of a session never changes under it.
        # As OCPI JSON text of their own (jsonio), so prices stay exact numbers: parse
        # on loading, and ScanCharge in the CDR, refuse a price written as text, and the
        # rest of the document keeps plain floats (its wall-clock times).
        "tariff": (dumps(plain(session.tariff.model_dump(mode="python", exclude_none=True)))
                   if session.tariff is not None else None),
        "currency": session.currency,
        "power_w": session.power_w,
        "site": dumps(plain(session.site.model_dump(mode="python", exclude_none=True))),
        "owner": party_doc(session.owner),
        "start": _dt(session.start),
        "last_updated": _dt(session.last_updated),
        "status": session.status,
        "end": _dt(session.end),
        "periods": [{"start": _dt(p.start), "kwh": str(p.kwh), "seconds": p.seconds}
                    for p in session.periods],
        "stop": None if stop is None else {
            "response_url": stop.response_url,
            "correlation_id": stop.correlation_id,
            "result_delay": stop.result_delay,
            "received_wall": wall_of(stop.received),
            "reply_to": party_doc(stop.reply_to),
            "version": stop.version,
        },
        "finishing": session.finishing,
        "last_tick_wall": wall_of(session.last_tick),
        "cdr_id": session.cdr_id,
    }


def session_from(data: dict[str, Any]) -> SimSession:
    """A session as stored, its clocks set for carrying on now: the time the simulator was
    down is not charged (the charge point simply continues from its last persisted period),
    but a stop that had arrived keeps its distance from the last tick, so the energy of that
    last partial period is still billed."""
    resumed_tick = time.monotonic()
    stop_data = data.get("stop")
    stop = None
    if stop_data:
        since_tick = max(0.0, stop_data["received_wall"] - data["last_tick_wall"])
        stop = StopRequest(
            response_url=stop_data["response_url"],
            correlation_id=stop_data["correlation_id"],
            result_delay=float(stop_data["result_delay"]),
            received=resumed_tick + since_tick,
            reply_to=party_from(stop_data.get("reply_to")),
            version=stop_data.get("version", ""),
        )
    start = _parse_dt(data["start"])
    last_updated = _parse_dt(data["last_updated"])
    assert start is not None and last_updated is not None
    return SimSession(
        id=data["id"],
        location_id=data["location_id"],
        evse_uid=data["evse_uid"],
        connector_id=data["connector_id"],
        token=token_from(data["token"]),
        authorization_reference=data.get("authorization_reference"),
        tariff=parse(Tariff, _ocpi(data["tariff"])) if data.get("tariff") else None,
        currency=data["currency"],
        power_w=int(data["power_w"]),
        site=parse(Location, _ocpi(data["site"])),
        owner=party_from(data["owner"]),  # type: ignore[arg-type]  # always stored
        start=start,
        last_updated=last_updated,
        status=data["status"],
        end=_parse_dt(data.get("end")),
        periods=[Period(start=_parse_dt(p["start"]), kwh=Decimal(p["kwh"]),  # type: ignore[arg-type]
                        seconds=int(p["seconds"])) for p in data["periods"]],
        stop=stop,
        finishing=bool(data.get("finishing")),
        last_tick=resumed_tick,
        cdr_id=data.get("cdr_id"),
    )
