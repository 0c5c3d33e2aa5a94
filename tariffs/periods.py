"""A session's charging periods as the engine reads them, and cut into pieces wherever a
restriction could change its answer."""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import Field

from tariffs.clock import _local_cuts, _secs
from tariffs.decimals import _HOUR, _MICRO, _ONE, _ZERO, _q
from tariffs.model import (
    CHARGING,
    PARKING,
    RESERVATION,
    Number,
    OcpiObject,
    TariffError,
    _Compiled,
    read,
)


class CdrDimension(OcpiObject):
    type: str
    volume: Number


class ChargingPeriod(OcpiObject):
    start_date_time: datetime
    dimensions: list[CdrDimension] = Field(min_length=1)
    tariff_id: str | None = None


@dataclass(slots=True)
class _Period:
    index: int
    start: Decimal
    end: Decimal
    energy: Decimal
    charging: Decimal  # seconds
    parking: Decimal
    reservation: Decimal
    power: Decimal | None
    current: Decimal | None
    tariff: _Compiled | None


def _as_period(period: ChargingPeriod | Mapping[str, Any], index: int
               ) -> ChargingPeriod:
    if isinstance(period, ChargingPeriod):
        return period
    if not isinstance(period, Mapping):
        raise TariffError(f"charging period {index}: expected an object")
    try:
        return read(ChargingPeriod, dict(period))
    except TariffError as exc:
        raise TariffError(f"charging period {index}: {exc}") from exc


def _midpoint(low: Decimal | None, high: Decimal | None) -> Decimal | None:
    if low is not None and high is not None:
        return (low + high) / 2
    return low if low is not None else high


def _period_values(cp: ChargingPeriod, index: int, start: Decimal, end: Decimal,
                   tariff: _Compiled | None, notes: list[str]) -> _Period:
    dims: dict[str, Decimal] = {}
    for d in cp.dimensions:
        kind = str(d.type).upper()
        if kind in dims:
            notes.append(f"period {index}: {kind} given twice; the first value is used")
            continue
        dims[kind] = d.volume
    elapsed = end - start

    energy = dims.get("ENERGY", dims.get("ENERGY_IMPORT"))
    if energy is not None and energy < 0:
        notes.append(f"period {index}: negative energy {energy} kWh (fed to the grid) is not "
                     "priced; tariffs have no price for it")
        energy = _ZERO

    def seconds(kind: str) -> Decimal | None:
        hours = dims.get(kind)
        if hours is None:
            return None
        if hours < 0:
            notes.append(f"period {index}: negative {kind} taken as zero")
            return _ZERO
        return _q(hours * _HOUR, _MICRO)

    charging, parking, reserved = seconds("TIME"), seconds("PARKING_TIME"), seconds(
        "RESERVATION_TIME")
    if charging is None and parking is None and reserved is None:
        # No time dimension: the period's own length is the time. Zero energy reported means
        # the vehicle took none: parking (mod_cdrs' PARKING_TIME); otherwise charging.
        if energy is not None and energy == 0 and elapsed > 0:
            parking = elapsed
        else:
            charging = elapsed
    charging = charging or _ZERO
    parking = parking or _ZERO
    reserved = reserved or _ZERO

    power = dims.get("POWER")
    if power is None and energy is not None and energy > 0 and charging > 0:
        power = energy * _HOUR / charging
    if power is None:
        power = _midpoint(dims.get("MIN_POWER"), dims.get("MAX_POWER"))
    current = dims.get("CURRENT")
    if current is None:
        current = _midpoint(dims.get("MIN_CURRENT"), dims.get("MAX_CURRENT"))
    return _Period(index, start, end, energy or _ZERO, charging, parking, reserved, power,
                   current, tariff)


# --- Pieces: periods cut where a restriction may change ---------------------------------


@dataclass(slots=True)
class _Piece:
    period: _Period
    kind: str
    t0: Decimal
    t1: Decimal
    seconds: Decimal
    energy: Decimal
    kwh_start: Decimal
    mid: Decimal
    kwh_mid: Decimal


def _spans(p: _Period) -> list[tuple[str, Decimal, Decimal, Decimal, Decimal]]:
    """(kind, from, to, seconds, energy) in the order reservation, charging, parking."""
    elapsed = p.end - p.start
    volumes = [(RESERVATION, p.reservation), (CHARGING, p.charging), (PARKING, p.parking)]
    total = p.reservation + p.charging + p.parking
    spans = []
    at = p.start
    for kind, volume in volumes:
        if volume <= 0 and not (kind == CHARGING and p.energy > 0):
            continue
        length = elapsed * volume / total if total > 0 else _ZERO
        spans.append((kind, at, at + length, volume, p.energy if kind == CHARGING else _ZERO))
        at += length
    if spans:
        # The last span ends exactly at the period end, whatever the division left over.
        kind, a, _, volume, energy = spans[-1]
        spans[-1] = (kind, a, p.end, volume, energy)
    else:
        spans.append((CHARGING, p.start, p.end, _ZERO, _ZERO))
    return spans


def _cut(periods: list[_Period], zone: ZoneInfo, origin: Decimal, charging_origin: Decimal
         ) -> list[_Piece]:
    pieces: list[_Piece] = []
    cumulative = _ZERO
    # Local-time cuts once per tariff over the whole session, then picked per span.
    local_cuts: dict[int, list[Decimal]] = {}
    for p in periods:
        t = p.tariff
        if t is not None and t.has_local and id(t) not in local_cuts:
            mine = [q for q in periods if q.tariff is t]
            local_cuts[id(t)] = sorted(_local_cuts(
                zone, t.times_of_day, min(q.start for q in mine) - 1,
                max(q.end for q in mine) + 1))
    for p in periods:
        tariff = p.tariff
        for kind, a, b, volume, energy in _spans(p):
            fractions: set[Decimal] = set()
            if tariff is not None and b > a:
                instants: list[Decimal] = []
                if tariff.has_local:
                    cuts = local_cuts[id(tariff)]
                    instants += cuts[bisect_right(cuts, a):bisect_left(cuts, b)]
                base = origin if kind == RESERVATION else charging_origin
                instants += [base + d for d in tariff.durations if a < base + d < b]
                fractions.update((x - a) / (b - a) for x in instants)
            if tariff is not None and energy > 0:
                fractions.update((k - cumulative) / energy for k in tariff.kwh_marks
                                 if cumulative < k < cumulative + energy)
            bounds = [_ZERO, *sorted(f for f in fractions if _ZERO < f < _ONE), _ONE]
            used_seconds = used_energy = _ZERO
            t_prev = a
            for i in range(len(bounds) - 1):
                fa, fb = bounds[i], bounds[i + 1]
                last = i == len(bounds) - 2
                t1 = b if last else a + (b - a) * fb
                secs = volume - used_seconds if last else volume * (fb - fa)
                kwh = energy - used_energy if last else energy * (fb - fa)
                fm = (fa + fb) / 2
                pieces.append(_Piece(
                    period=p, kind=kind, t0=t_prev, t1=t1, seconds=secs, energy=kwh,
                    kwh_start=cumulative + used_energy,
                    mid=a + (b - a) * fm, kwh_mid=cumulative + energy * fm,
                ))
                used_seconds += secs
                used_energy += kwh
                t_prev = t1
            cumulative += energy
    return pieces


def _periods(raw: Sequence[ChargingPeriod | Mapping[str, Any]], session_end: datetime,
             session_start: datetime | None, tariff_for: Any, notes: list[str]
             ) -> list[_Period]:
    parsed = [_as_period(p, i) for i, p in enumerate(raw)]
    indexed = list(enumerate(parsed))
    if any(indexed[i][1].start_date_time > indexed[i + 1][1].start_date_time
           for i in range(len(indexed) - 1)):
        notes.append("charging periods were out of order; priced in order of start")
        indexed.sort(key=lambda item: item[1].start_date_time)
    end = _secs(session_end)
    if not indexed:
        # No period yet (a session that just started): one empty period, so a start fee
        # and a minimum price still show.
        start = _secs(session_start) if session_start is not None else end
        return [_Period(0, start, max(start, end), _ZERO, max(end - start, _ZERO), _ZERO,
                        _ZERO, None, None, tariff_for(None, 0))]
    out = []
    for n, (index, cp) in enumerate(indexed):
        start = _secs(cp.start_date_time)
        stop = _secs(indexed[n + 1][1].start_date_time) if n + 1 < len(indexed) else end
        if stop < start:
            notes.append(f"period {index} starts after the session ends; taken as empty")
            stop = start
        out.append(_period_values(cp, index, start, stop, tariff_for(cp, index), notes))
    return out
