"""A session's charging periods as the engine reads them (stored JSON read without a model
instance), and each period's spans of reservation, charging and parking time."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Context, Decimal, InvalidOperation, Rounded
from typing import Any, NamedTuple

from pydantic import Field

from tariffs.choice import plan_of
from tariffs.clock import _secs, _secs_of_text
from tariffs.decimals import _CTX, _HOUR, _MICRO, _ZERO, _q
from tariffs.model import (
    _MAX_NUMBER,
    _MAX_PLACES,
    CHARGING,
    PARKING,
    RESERVATION,
    Number,
    OcpiObject,
    TariffError,
    _Compiled,
    _json_number,
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


def _seconds(hours: Decimal, kind: str, index: int, notes: list[str]) -> Decimal:
    if hours < 0:
        notes.append(f"period {index}: negative {kind} taken as zero")
        return _ZERO
    return _q(hours * _HOUR, _MICRO)


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
    if p.reservation <= 0 and p.parking <= 0:  # the usual period: charging only
        if p.charging > 0 or p.energy > 0:
            return [(CHARGING, p.start, p.end, p.charging, p.energy)]
        return [(CHARGING, p.start, p.end, _ZERO, _ZERO)]
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


class _Read(NamedTuple):
    """A charging period as read: what pricing needs of it, without a model instance.
    A tuple, made by tuple.__new__ in _read_all (no Python call per period)."""

    start: Decimal
    dimensions: dict[str, Decimal]  # by type in upper case, the first of each
    repeated: list[str] | tuple[()]  # types given again (noted, not used); mostly ()
    tariff_id: str | None


_tuple_new = tuple.__new__


# model._json_number's checks of a Decimal (finite, under _MAX_NUMBER in magnitude, at most
# _MAX_PLACES decimal places) told by one quantize to 10**-_MAX_PLACES under a context that
# traps: a coefficient of more than _LIMIT_DIGITS digits there (12 before the point, 40
# after) is InvalidOperation, and so is an infinity or a signalling NaN; a dropped digit,
# even a zero, is Rounded. What it does not tell: a quiet NaN (is_finite first) and a zero
# with too many places (quantize drops no digit of it; its adjusted() is its exponent).
# It replaces is_finite, two comparisons and as_tuple() (which makes a tuple of every digit:
# most of reading a 28-digit volume); tests/unit/test_tariff_reading.py checks that exactly
# the model's numbers are refused.
_LIMIT_DIGITS = _MAX_NUMBER.adjusted() + _MAX_PLACES  # _MAX_NUMBER is a power of ten
_LIMITS = Context(prec=_LIMIT_DIGITS, traps=[Rounded, InvalidOperation])
_PLACES_Q = Decimal(1).scaleb(-_MAX_PLACES)


def _number_ok(volume: Decimal) -> bool:
    """Whether model._json_number takes this Decimal (what _read_fast tells inline)."""
    if not volume.is_finite():
        return False
    try:
        _LIMITS.quantize(volume, _PLACES_Q)
    except (Rounded, InvalidOperation):
        return False
    return bool(volume) or volume.adjusted() >= -_MAX_PLACES


def _read_fast(data: Any) -> _Read | None:
    """One period as _read_all reads it without the model (None: for the model to read)."""
    try:
        return _read_all([data], 0, _not_by_model)[0]
    except _ForTheModel:
        return None


class _ForTheModel(Exception):
    pass


def _not_by_model(_data: Any, _index: int) -> _Read:
    raise _ForTheModel


_BY_MODEL = _Read(Decimal(0), {}, (), None)  # _read_all's mark: read by the model instead


def _read_all(raw: Sequence[Any], first_index: int,
              by_model: Callable[[Any, int], _Read] | None = None) -> list[_Read]:
    """The periods read, in bulk. A period given as plain JSON data (the usual case: a
    stored Session) is read here without pydantic; anything else by the model (which
    explains what is wrong with it), so both ways accept exactly the same periods."""
    by_model = by_model or _read_by_model
    out: list[_Read] = []
    quantize = _LIMITS.quantize
    places_q = _PLACES_Q
    decimal_type = Decimal
    for data in raw:
        read = _BY_MODEL
        # A loop run once, left by `break` as soon as the model must read the period.
        for _ in _ONCE:
            if type(data) is not dict:
                break
            when = data.get("start_date_time")
            dims = data.get("dimensions")
            tariff_id = data.get("tariff_id")
            if type(when) is not str or len(when) > 64 or type(dims) is not list or not dims \
                    or not (tariff_id is None or type(tariff_id) is str):
                break
            values: dict[str, Decimal] = {}
            repeated: list[str] | tuple[()] = ()  # a list only when one is repeated
            for d in dims:
                if type(d) is not dict:
                    break
                try:  # a missing field is no str and no number: refused below as it would be
                    kind, volume = d["type"], d["volume"]
                except KeyError:
                    break
                if type(kind) is not str:
                    break
                if type(volume) is decimal_type:
                    # _number_ok, inline: this runs for every number of every period
                    if not volume.is_finite():
                        break
                    try:
                        quantize(volume, places_q)
                    except (Rounded, InvalidOperation):
                        break
                    if not volume and volume.adjusted() < -_MAX_PLACES:
                        break
                elif type(volume) is int:
                    try:
                        volume = _json_number(volume)
                    except ValueError:
                        break
                else:
                    break
                kind = _KINDS.get(kind) or kind.upper()
                if kind in values:
                    if not repeated:
                        repeated = []
                    repeated.append(kind)
                else:
                    values[kind] = volume
            else:
                try:
                    start = _secs_of_text(when)
                except (ValueError, OverflowError):
                    break
                read = _tuple_new(_Read, (start, values, repeated, tariff_id))
        if read is _BY_MODEL:
            read = by_model(data, first_index + len(out))
        out.append(read)
    return out


_ONCE = (None,)
# OCPI 2.2.1's CdrDimensionType values, as most CPOs send them: taken as the engine's own
# strings (what upper() makes of them, without a new string to make and hash each time).
_KINDS = {kind: kind for kind in (
    "CURRENT", "ENERGY", "ENERGY_EXPORT", "ENERGY_IMPORT", "MAX_CURRENT", "MIN_CURRENT",
    "MAX_POWER", "MIN_POWER", "PARKING_TIME", "POWER", "RESERVATION_TIME", "STATE_OF_CHARGE",
    "TIME")}


def _read_by_model(period: ChargingPeriod | Mapping[str, Any], index: int) -> _Read:
    cp = _as_period(period, index)
    dims: dict[str, Decimal] = {}
    repeated: list[str] = []
    for d in cp.dimensions:
        kind = str(d.type).upper()
        if kind in dims:
            repeated.append(kind)
        else:
            dims[kind] = d.volume
    return _Read(_secs(cp.start_date_time), dims, repeated, cp.tariff_id)


def _in_order(reads: list[_Read], first_index: int,
              notes: list[str]) -> tuple[list[int] | range, list[_Read]]:
    """The periods' indexes and the periods, in order of start (noted when they were not)."""
    indexes: list[int] | range = range(first_index, first_index + len(reads))
    previous = None
    for cp in reads:
        if previous is not None and previous > cp.start:
            notes.append("charging periods were out of order; priced in order of start")
            indexed = sorted(zip(indexes, reads, strict=True), key=lambda item: item[1].start)
            return [i for i, _ in indexed], [cp for _, cp in indexed]
        previous = cp.start
    return indexes, reads


def _electric(plan: Any, get: Callable[[str], Decimal | None], energy: Decimal | None,
              charging: Decimal) -> tuple[Decimal | None, Decimal | None]:
    """A period's power and current, for a tariff whose restrictions read them."""
    power = current = None
    if plan.power:
        power = get("POWER")
        if power is None and energy is not None and energy > 0 and charging > 0:
            power = energy * _HOUR / charging
        if power is None:
            power = _midpoint(get("MIN_POWER"), get("MAX_POWER"))
    if plan.current:
        current = get("CURRENT")
        if current is None:
            current = _midpoint(get("MIN_CURRENT"), get("MAX_CURRENT"))
    return power, current


def _periods(raw: Sequence[ChargingPeriod | Mapping[str, Any]], session_end: datetime,
             session_start: datetime | None, tariff_for: Any, notes: list[str],
             first_index: int = 0, marks: list[int] | None = None,
             tariff: _Compiled | None = None) -> list[_Period]:
    """The periods as the engine prices them; indexes count from first_index (a later
    part of a session priced on from where it was left). `marks` gets the number of notes
    after each period, so a caller can tell which period said what. `tariff`: what
    tariff_for returns for every period, when the caller knows (it is not asked then)."""
    indexes, reads = _in_order(_read_all(raw, first_index), first_index, notes)
    end = _secs(session_end)
    if not reads:
        # No period yet (a session that just started): one empty period, so a start fee
        # and a minimum price still show.
        start = _secs(session_start) if session_start is not None else end
        return [_Period(0, start, max(start, end), _ZERO, max(end - start, _ZERO), _ZERO,
                        _ZERO, None, None, tariff if tariff is not None
                        else tariff_for(None, 0))]
    out = []
    last = len(reads) - 1
    for n, cp in enumerate(reads):
        # Runs for every period of every session: written out without helpers.
        index = indexes[n]
        start, dimensions, repeated, _ = cp
        end_ = reads[n + 1][0] if n < last else end
        if end_ < start:
            notes.append(f"period {index} starts after the session ends; taken as empty")
            end_ = start
        period_tariff = tariff if tariff is not None else tariff_for(cp, index)
        if repeated:
            for kind in repeated:
                notes.append(f"period {index}: {kind} given twice; the first value is used")
        get = dimensions.get
        elapsed = end_ - start

        energy = get("ENERGY")
        if energy is None:
            energy = get("ENERGY_IMPORT")
        if energy is not None and energy < 0:
            notes.append(f"period {index}: negative energy {energy} kWh (fed to the grid) is "
                         "not priced; tariffs have no price for it")
            energy = _ZERO

        # Hours given for a time dimension, as exact seconds (in this order: notes say so).
        charging = get("TIME")
        if charging is not None:  # _seconds, inline: half the periods give TIME
            if charging < 0:
                notes.append(f"period {index}: negative TIME taken as zero")
                charging = _ZERO
            else:
                charging = _CTX.quantize(charging * _HOUR, _MICRO)
        parking = get("PARKING_TIME")
        if parking is not None:
            parking = _seconds(parking, "PARKING_TIME", index, notes)
        reserved = get("RESERVATION_TIME")
        if reserved is not None:
            reserved = _seconds(reserved, "RESERVATION_TIME", index, notes)
        if charging is None and parking is None and reserved is None:
            # No time dimension: the period's own length is the time. Zero energy reported
            # means the vehicle took none: parking (mod_cdrs' PARKING_TIME); otherwise
            # charging.
            if energy is not None and energy == 0 and elapsed > 0:
                parking = elapsed
            else:
                charging = elapsed
        charging = charging or _ZERO
        parking = parking or _ZERO
        reserved = reserved or _ZERO

        # Power and current are read only by power and current restrictions: not worked
        # out (a 50-digit division) for a tariff that has none.
        power = current = None
        if period_tariff is not None:
            plan = period_tariff.plan or plan_of(period_tariff)
            if plan.power or plan.current:
                power, current = _electric(plan, get, energy, charging)
        out.append(_Period(index, start, end_, energy or _ZERO, charging, parking, reserved,
                           power, current, period_tariff))
        if marks is not None:
            marks.append(len(notes))
    return out
