"""The OCPI tariff engine: what a charging session costs, before, during and after it.

Pure Python (no Flask, no database). Every amount is a Decimal; the one rounding rule is
`round_money`. docs/tariffs.md explains the engine's reading of the spec where the spec is
ambiguous; the comments here say why, the doc says what was decided.

How a session is priced
-----------------------
1. Each charging period lasts until the next one starts (the last until `session_end`).
   Within a period, reservation time comes first, then charging time, then parking time,
   each taking a share of the period's real elapsed time in proportion to its volume. The
   period's energy is spread evenly over its charging time.
2. Those spans are cut wherever a restriction could change its answer: local times of day
   named by the tariff (and local midnight), daylight-saving switches, session durations
   named by min/max_duration, and the moments the session's energy reaches a min/max_kwh.
   Energy is split at a cut in proportion to time (equivalently: constant power within a
   period), so a CPO that did not cut its periods at a price change is still priced fairly.
3. For each piece and each dimension the first element that has a component for that
   dimension and whose restrictions all hold supplies the price (mod_tariffs: per dimension).
4. step_size is applied once, to session totals (mod_cdrs): once for ENERGY, once for TIME
   and PARKING_TIME together (the dimension of the last priced time-based piece is the one
   rounded), once for reservation time; the extra volume is billed at the last component.
5. VAT per component; then min_price and max_price; then round_money.
"""

from __future__ import annotations

import functools
import math
import re
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import (
    ROUND_CEILING,
    ROUND_HALF_EVEN,
    ROUND_HALF_UP,
    Context,
    Decimal,
    localcontext,
)
from typing import Any, Literal, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ocpi import wire
from ocpi.transport import OcpiError
from payments.money import from_minor, to_minor

__all__ = [
    "DIMENSIONS",
    "DimensionCost",
    "Money2",
    "PeriodLine",
    "PriceBreakdown",
    "TariffError",
    "TariffText",
    "convert_211",
    "describe",
    "hold_for",
    "price_cdr",
    "price_plan",
    "price_session",
    "round_money",
]

DIMENSIONS = ("ENERGY", "FLAT", "TIME", "PARKING_TIME")
# Reservation costs are reported apart, as the CDR does (total_reservation_cost).
_BUCKETS = ("ENERGY", "FLAT", "TIME", "PARKING_TIME", "RESERVATION")
_DAYS = ("MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY", "SUNDAY")
_RESERVATION_VALUES = ("RESERVATION", "RESERVATION_EXPIRES")

CHARGING = "CHARGING"
PARKING = "PARKING"
RESERVATION = "RESERVATION"

# 50 significant digits: dividing by 3600 and splitting periods proportionally are the only
# inexact steps, and their last-digit noise sits far below _GUARD.
_CTX = Context(prec=50, rounding=ROUND_HALF_EVEN)
_GUARD = Decimal("1e-20")
_STEP_GUARD = Decimal("1e-9")
_MICRO = Decimal("0.000001")
_LINE_Q = Decimal("0.0001")
_HOURS_Q = Decimal("0.000001")
_ZERO = Decimal(0)
_ONE = Decimal(1)
_HOUR = Decimal(3600)
_THOUSAND = Decimal(1000)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MIDNIGHT = time(0, 0)
_TIME_RE = re.compile(r"^([01][0-9]|2[0-3]):[0-5][0-9]$")
# One phase at 230 V: the sum of phase currents is power / 230 V whatever the phase count.
_VOLTS_PER_PHASE = Decimal(230)
_MAX_SPAN_DAYS = 3700
_F = TypeVar("_F", bound=Callable[..., Any])


def _exact(fn: _F) -> _F:
    """Run a public entry point under the engine's 50-digit decimal context, whatever
    context the caller has (the default one has 28 digits)."""
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with localcontext(_CTX):
            return fn(*args, **kwargs)
    return wrapper  # type: ignore[return-value]


class TariffError(ValueError):
    """A tariff, period or CDR the engine cannot price honestly; the message says why."""


# --- Results ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Money2:
    excl_vat: Decimal
    incl_vat: Decimal

    def to_json(self) -> dict[str, Decimal]:
        return {"excl_vat": self.excl_vat, "incl_vat": self.incl_vat}


@dataclass(frozen=True)
class DimensionCost:
    """One dimension's cost, rounded to the minor unit from its exact value.

    volume: what was priced (kWh; hours; 1 per FLAT fee charged); billed_volume: after
    step_size. Hours are shown to 6 decimals; the cost is computed from exact seconds.
    """

    dimension: str
    cost: Money2
    volume: Decimal
    billed_volume: Decimal


@dataclass(frozen=True)
class PeriodLine:
    """One priced slice of one charging period. Costs here are informational (4 decimals);
    the totals are computed from exact values, so lines need not add up to the cent."""

    period_index: int
    kind: str  # CHARGING, PARKING or RESERVATION
    dimension: str
    start: datetime
    end: datetime
    tariff_id: str
    element_index: int
    price: Decimal  # per unit, excl. VAT: per kWh, per hour, or the flat fee
    vat: Decimal | None
    volume: Decimal
    billed_volume: Decimal
    cost: Money2

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "period_index": self.period_index,
            "kind": self.kind,
            "dimension": self.dimension,
            "start_date_time": self.start,
            "end_date_time": self.end,
            "tariff_id": self.tariff_id,
            "element_index": self.element_index,
            "price": self.price,
            "volume": self.volume,
            "billed_volume": self.billed_volume,
            "cost": self.cost.to_json(),
        }
        if self.vat is not None:
            out["vat"] = self.vat
        return out


@dataclass(frozen=True)
class PriceBreakdown:
    currency: str
    total: Money2
    energy: DimensionCost
    flat: DimensionCost
    time: DimensionCost
    parking_time: DimensionCost
    reservation: DimensionCost  # reservation TIME and FLAT (CDR total_reservation_cost)
    total_before_limits: Money2
    min_price_applied: bool
    max_price_applied: bool
    # Consumed volumes, priced or not.
    energy_kwh: Decimal
    charging_hours: Decimal
    parking_hours: Decimal
    reservation_hours: Decimal
    lines: tuple[PeriodLine, ...] = ()
    unpriced: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def dimensions(self) -> dict[str, DimensionCost]:
        return {
            "ENERGY": self.energy,
            "FLAT": self.flat,
            "TIME": self.time,
            "PARKING_TIME": self.parking_time,
            "RESERVATION": self.reservation,
        }

    @property
    def total_minor(self) -> int:
        """The total incl. VAT in minor units (what a card is charged)."""
        return to_minor(self.total.incl_vat, self.currency)

    def to_json(self) -> dict[str, Any]:
        """CDR-like names (total_cost, total_energy_cost, ...), Decimals as exact numbers."""
        return {
            "currency": self.currency,
            "total_cost": self.total.to_json(),
            "total_fixed_cost": self.flat.cost.to_json(),
            "total_energy_cost": self.energy.cost.to_json(),
            "total_time_cost": self.time.cost.to_json(),
            "total_parking_cost": self.parking_time.cost.to_json(),
            "total_reservation_cost": self.reservation.cost.to_json(),
            "total_energy": self.energy_kwh,
            "total_time": _q(self.charging_hours + self.parking_hours, _HOURS_Q),
            "total_charging_time": self.charging_hours,
            "total_parking_time": self.parking_hours,
            "total_reservation_time": self.reservation_hours,
            "dimensions": {
                name: {
                    **dim.cost.to_json(),
                    "volume": dim.volume,
                    "billed_volume": dim.billed_volume,
                }
                for name, dim in self.dimensions.items()
            },
            "total_before_limits": self.total_before_limits.to_json(),
            "min_price_applied": self.min_price_applied,
            "max_price_applied": self.max_price_applied,
            "periods": [line.to_json() for line in self.lines],
            "unpriced": list(self.unpriced),
            "notes": list(self.notes),
        }


# --- The rounding rule, written once ----------------------------------------------------


def round_money(amount: Decimal, currency: str) -> Decimal:
    """An exact amount to the currency's minor unit, half up (as payments.money.to_minor).

    The amount is first brought to 20 decimal places, which removes the last-digit noise of
    the engine's only inexact steps (dividing by 3600 s/h, splitting a period in proportion)
    so that an amount that is exactly on a half (0.125) rounds up as it should.
    """
    guarded = amount.quantize(_GUARD, context=_CTX)
    return from_minor(to_minor(guarded, currency), currency)


def _q(value: Decimal, quantum: Decimal) -> Decimal:
    return value.quantize(quantum, rounding=ROUND_HALF_EVEN, context=_CTX)


# --- Tariffs compiled for pricing -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Component:
    element: int
    dimension: str
    price: Decimal
    vat: Decimal | None
    step_size: int
    factor: Decimal  # excl -> incl VAT


@dataclass(frozen=True, slots=True)
class _Restrictions:
    start_time: time | None
    end_time: time | None  # None also for "00:00": until the end of the day
    start_date: date | None
    end_date: date | None
    min_kwh: Decimal | None
    max_kwh: Decimal | None
    min_current: Decimal | None
    max_current: Decimal | None
    min_power: Decimal | None
    max_power: Decimal | None
    min_duration: Decimal | None
    max_duration: Decimal | None
    days: frozenset[int] | None
    reservation: str | None

    @property
    def local(self) -> bool:
        return bool(
            self.start_time or self.end_time or self.start_date or self.end_date
            or self.days is not None
        )

    @property
    def session_bound(self) -> bool:
        """Depends on the session itself rather than on the clock."""
        return any(
            v is not None
            for v in (
                self.min_kwh, self.max_kwh, self.min_current, self.max_current,
                self.min_power, self.max_power, self.min_duration, self.max_duration,
            )
        )


@dataclass(slots=True)
class _Element:
    index: int
    restrictions: _Restrictions | None
    components: dict[str, _Component]


@dataclass(slots=True)
class _Compiled:
    source: wire.Tariff
    id: str
    currency: str
    elements: list[_Element]
    by_dimension: dict[str, list[_Element]]
    times_of_day: tuple[time, ...]
    has_local: bool
    durations: tuple[Decimal, ...]
    kwh_marks: tuple[Decimal, ...]
    notes: list[str]


def _as_tariff(tariff: wire.Tariff | Mapping[str, Any]) -> wire.Tariff:
    if isinstance(tariff, wire.Tariff):
        return tariff
    if not isinstance(tariff, Mapping):
        raise TariffError(f"expected a Tariff object, got {type(tariff).__name__}")
    try:
        return wire.parse(wire.Tariff, dict(tariff))
    except OcpiError as exc:
        raise TariffError(exc.message) from exc


def _parse_time(value: str, what: str, *, end: bool) -> time | None:
    # "24:00" is not in the regex but is what some CPOs write for "end of day".
    if end and value == "24:00":
        return None
    if not _TIME_RE.match(value):
        raise TariffError(f"{what} {value!r} is not a time of day HH:MM")
    parsed = time(int(value[:2]), int(value[3:]))
    if end and parsed == _MIDNIGHT:
        return None  # mod_tariffs: "To stop at end of the day use: 00:00."
    return parsed


def _parse_date(value: str, what: str) -> date:
    try:
        if len(value) != 10:
            raise ValueError
        return date.fromisoformat(value)
    except ValueError:
        raise TariffError(f"{what} {value!r} is not a date YYYY-MM-DD") from None


def _compile_restrictions(r: wire.TariffRestrictions, where: str) -> _Restrictions:
    days: frozenset[int] | None = None
    if r.day_of_week is not None:
        picked = set()
        for name in r.day_of_week:
            if str(name).upper() not in _DAYS:
                raise TariffError(f"{where}: day_of_week {name!r} is not a DayOfWeek")
            picked.add(_DAYS.index(str(name).upper()))
        days = frozenset(picked)
    if r.reservation is not None and r.reservation not in _RESERVATION_VALUES:
        raise TariffError(f"{where}: reservation {r.reservation!r} is not "
                          "RESERVATION or RESERVATION_EXPIRES")
    return _Restrictions(
        start_time=(_parse_time(r.start_time, f"{where}: start_time", end=False)
                    if r.start_time else None),
        end_time=_parse_time(r.end_time, f"{where}: end_time", end=True) if r.end_time else None,
        start_date=_parse_date(r.start_date, f"{where}: start_date") if r.start_date else None,
        end_date=_parse_date(r.end_date, f"{where}: end_date") if r.end_date else None,
        min_kwh=r.min_kwh,
        max_kwh=r.max_kwh,
        min_current=r.min_current,
        max_current=r.max_current,
        min_power=r.min_power,
        max_power=r.max_power,
        min_duration=Decimal(r.min_duration) if r.min_duration is not None else None,
        max_duration=Decimal(r.max_duration) if r.max_duration is not None else None,
        days=days,
        reservation=r.reservation,
    )


def _compile(tariff: wire.Tariff | Mapping[str, Any]) -> _Compiled:
    source = _as_tariff(tariff)
    notes: list[str] = []
    elements: list[_Element] = []
    by_dimension: dict[str, list[_Element]] = {d: [] for d in DIMENSIONS}
    times_of_day: set[time] = set()
    durations: set[Decimal] = set()
    kwh_marks: set[Decimal] = set()
    has_local = False
    for index, el in enumerate(source.elements):
        where = f"tariff {source.id} element {index}"
        restrictions = (
            _compile_restrictions(el.restrictions, where) if el.restrictions is not None else None
        )
        if restrictions is not None:
            if restrictions.local:
                has_local = True
            for t in (restrictions.start_time, restrictions.end_time):
                if t is not None:
                    times_of_day.add(t)
            for d in (restrictions.min_duration, restrictions.max_duration):
                if d is not None:
                    durations.add(d)
            for k in (restrictions.min_kwh, restrictions.max_kwh):
                if k is not None:
                    kwh_marks.add(k)
        components: dict[str, _Component] = {}
        for pc in el.price_components:
            dim = str(pc.type)
            if dim in components:
                # Only one component per dimension can be active; the first one is.
                notes.append(f"{where} has two {dim} components; the first is used")
                continue
            if pc.vat is not None and pc.vat < 0:
                raise TariffError(f"{where}: negative VAT {pc.vat}")
            factor = _ONE + pc.vat / 100 if pc.vat is not None else _ONE
            components[dim] = _Component(index, dim, pc.price, pc.vat, pc.step_size, factor)
        element = _Element(index, restrictions, components)
        elements.append(element)
        for dim in components:
            by_dimension[dim].append(element)
    if has_local:
        times_of_day.add(_MIDNIGHT)
    return _Compiled(
        source=source,
        id=source.id,
        currency=source.currency.upper(),
        elements=elements,
        by_dimension=by_dimension,
        times_of_day=tuple(sorted(times_of_day)),
        has_local=has_local,
        durations=tuple(sorted(durations)),
        kwh_marks=tuple(sorted(kwh_marks)),
        notes=notes,
    )


def _zone(time_zone: str) -> ZoneInfo:
    try:
        return ZoneInfo(time_zone)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise TariffError(f"unknown time zone {time_zone!r} (use an IANA name such as "
                          "Europe/Stockholm)") from None


# --- Time as exact seconds --------------------------------------------------------------


def _aware(value: datetime) -> datetime:
    # OCPI: a DateTime without an offset is UTC.
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _secs(value: datetime) -> Decimal:
    delta = _aware(value) - _EPOCH
    return Decimal(delta.days * 86400 + delta.seconds) + Decimal(delta.microseconds).scaleb(-6)


def _dt(seconds: Decimal) -> datetime:
    micro = math.floor(seconds * 1_000_000)  # down to the microsecond a datetime holds
    return _EPOCH + timedelta(microseconds=micro)


def _offset_at(zone: ZoneInfo, seconds: int) -> timedelta | None:
    return (_EPOCH + timedelta(seconds=seconds)).astimezone(zone).utcoffset()


def _local_cuts(zone: ZoneInfo, times_of_day: Sequence[time], a: Decimal, b: Decimal
                ) -> list[Decimal]:
    """Instants in (a, b) where a local-time restriction can change its answer: each named
    time of day (both occurrences when the clock goes back), local midnight, and the
    daylight-saving switches themselves (a time inside a skipped hour is crossed there)."""
    first = _dt(a).astimezone(zone).date() - timedelta(days=1)
    last = _dt(b).astimezone(zone).date() + timedelta(days=1)
    if (last - first).days > _MAX_SPAN_DAYS:
        raise TariffError("a session spanning more than ten years cannot be priced")
    cuts: list[Decimal] = []
    day = first
    while day <= last:
        for tod in times_of_day:
            for fold in (0, 1):
                wall = datetime.combine(day, tod, tzinfo=zone).replace(fold=fold)
                x = _secs(wall)
                # A wall time the clock skips does not round-trip; the switch covers it.
                if a < x < b and _dt(x).astimezone(zone).replace(tzinfo=None) == \
                        wall.replace(tzinfo=None) and x not in cuts:
                    cuts.append(x)
        lo = int(_secs(datetime.combine(day, _MIDNIGHT, tzinfo=zone)))
        hi = int(_secs(datetime.combine(day + timedelta(days=1), _MIDNIGHT, tzinfo=zone)))
        before = _offset_at(zone, lo)
        if before != _offset_at(zone, hi):
            while hi - lo > 1:  # the first second on the new offset
                mid = (lo + hi) // 2
                if _offset_at(zone, mid) == before:
                    lo = mid
                else:
                    hi = mid
            x = Decimal(hi)
            if a < x < b:
                cuts.append(x)
        day += timedelta(days=1)
    return cuts


# --- Periods ----------------------------------------------------------------------------


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


def _as_period(period: wire.ChargingPeriod | Mapping[str, Any], index: int
               ) -> wire.ChargingPeriod:
    if isinstance(period, wire.ChargingPeriod):
        return period
    if not isinstance(period, Mapping):
        raise TariffError(f"charging period {index}: expected an object")
    try:
        return wire.parse(wire.ChargingPeriod, dict(period))
    except OcpiError as exc:
        raise TariffError(f"charging period {index}: {exc.message}") from exc


def _midpoint(low: Decimal | None, high: Decimal | None) -> Decimal | None:
    if low is not None and high is not None:
        return (low + high) / 2
    return low if low is not None else high


def _period_values(cp: wire.ChargingPeriod, index: int, start: Decimal, end: Decimal,
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


# --- Restrictions -----------------------------------------------------------------------


def _time_of_day_holds(r: _Restrictions, now: time) -> bool:
    start, end = r.start_time, r.end_time  # end None = end of day
    if start is None:
        return end is None or now < end
    if end is None:
        return now >= start
    if start < end:
        return start <= now < end
    if start > end:  # wraps past midnight
        return now >= start or now < end
    return True  # equal: the whole day (a zero-length window would be pointless)


@dataclass(slots=True)
class _Context:
    local: datetime | None
    duration: Decimal
    kwh: Decimal
    power: Decimal | None
    current: Decimal | None
    kind: str
    expired: bool
    unknown: set[str]


def _holds(r: _Restrictions | None, c: _Context) -> bool:
    if r is None:
        return c.kind != RESERVATION
    if r.reservation is None:
        if c.kind == RESERVATION:
            return False
    else:
        if c.kind != RESERVATION:
            return False
        # An expired reservation is priced by RESERVATION_EXPIRES elements first and by
        # RESERVATION elements for what those lack (mod_tariffs, ReservationRestrictionType).
        if r.reservation == "RESERVATION_EXPIRES" and not c.expired:
            return False
    if r.local:
        local = c.local
        assert local is not None
        if (r.start_time or r.end_time) and not _time_of_day_holds(r, local.time()):
            return False
        day = local.date()
        if r.start_date is not None and day < r.start_date:
            return False
        if r.end_date is not None and day >= r.end_date:
            return False
        if r.days is not None and local.weekday() not in r.days:
            return False
    if r.min_kwh is not None and c.kwh < r.min_kwh:
        return False
    if r.max_kwh is not None and c.kwh >= r.max_kwh:
        return False
    if r.min_duration is not None and c.duration < r.min_duration:
        return False
    if r.max_duration is not None and c.duration >= r.max_duration:
        return False
    if r.min_power is not None or r.max_power is not None:
        if c.power is None:
            c.unknown.add("power")
            return False
        if r.min_power is not None and c.power < r.min_power:
            return False
        if r.max_power is not None and c.power >= r.max_power:
            return False
    if r.min_current is not None or r.max_current is not None:
        if c.current is None:
            c.unknown.add("current")
            return False
        if r.min_current is not None and c.current < r.min_current:
            return False
        if r.max_current is not None and c.current >= r.max_current:
            return False
    return True


def _choose(tariff: _Compiled, dimension: str, c: _Context, cache: dict[int, bool]
            ) -> _Component | None:
    candidates = tariff.by_dimension[dimension]
    if c.kind == RESERVATION and c.expired:
        # mod_tariffs: an expired reservation is priced by the RESERVATION_EXPIRES element
        # when both kinds have the dimension, whatever their order in the list.
        candidates = sorted(candidates, key=lambda e: not (
            e.restrictions is not None and e.restrictions.reservation == "RESERVATION_EXPIRES"))
    for element in candidates:
        ok = cache.get(element.index)
        if ok is None:
            ok = cache[element.index] = _holds(element.restrictions, c)
        if ok:
            return element.components[dimension]
    return None


# --- Pricing ----------------------------------------------------------------------------


@dataclass(slots=True)
class _Line:
    piece: _Piece
    dimension: str
    bucket: str
    group: str
    component: _Component
    tariff_id: str
    volume: Decimal  # kWh, seconds, or 1 for FLAT
    extra: Decimal = _ZERO


def _context(piece: _Piece, zone: ZoneInfo, at: Decimal, kwh: Decimal, origin: Decimal,
             expired: bool, unknown: set[str]) -> _Context:
    tariff = piece.period.tariff
    local = _dt(at).astimezone(zone) if tariff is not None and tariff.has_local else None
    return _Context(local=local, duration=max(at - origin, _ZERO), kwh=kwh,
                    power=piece.period.power, current=piece.period.current, kind=piece.kind,
                    expired=expired, unknown=unknown)


def _price(periods: list[_Period], *, zone: ZoneInfo, session_start: Decimal | None,
           expired: bool | None, limits_from: _Compiled | None, notes: list[str]
           ) -> PriceBreakdown:
    tariffs = {id(p.tariff): p.tariff for p in periods if p.tariff is not None}
    currencies = {t.currency for t in tariffs.values()}
    if len(currencies) > 1:
        raise TariffError(f"one session cannot be priced in several currencies: "
                          f"{', '.join(sorted(currencies))}")
    if limits_from is None and not tariffs:
        raise TariffError("no tariff to price with")
    currency = (limits_from.currency if limits_from else next(iter(currencies)))
    for t in tariffs.values():
        notes.extend(n for n in t.notes if n not in notes)

    origin = session_start if session_start is not None else periods[0].start
    # Durations of the charging session count from its first non-reservation period; a CDR's
    # start_date_time is the reservation's start when there was one (mod_cdrs).
    first_charging = next((p for p in periods if p.reservation == 0 or p.charging > 0
                           or p.parking > 0), None)
    has_reservation = any(p.reservation > 0 for p in periods)
    charging_origin = (first_charging.start if has_reservation and first_charging is not None
                       else origin)
    if expired is None:
        expired = has_reservation and not any(
            p.charging > 0 or p.parking > 0 or p.energy > 0 for p in periods)

    pieces = _cut(periods, zone, origin, charging_origin)

    lines: list[_Line] = []
    unknown: set[str] = set()
    unpriced: dict[str, Decimal] = {}
    tariff_dims = {d for t in tariffs.values() for d in DIMENSIONS if t.by_dimension[d]}
    no_tariff: set[int] = set()
    flat_done: set[str] = set()
    for piece in pieces:
        tariff = piece.period.tariff
        phase = RESERVATION if piece.kind == RESERVATION else CHARGING
        if tariff is None:
            if piece.seconds > 0 or piece.energy > 0:
                no_tariff.add(piece.period.index)
            flat_done.add(phase)
            continue
        base = origin if piece.kind == RESERVATION else charging_origin
        cache: dict[int, bool] = {}
        c = _context(piece, zone, piece.mid, piece.kwh_mid, base, expired, unknown)
        wanted: list[tuple[str, Decimal, str, str]] = []  # dimension, volume, bucket, group
        if piece.kind == CHARGING:
            wanted = [("ENERGY", piece.energy, "ENERGY", "ENERGY"),
                      ("TIME", piece.seconds, "TIME", "TIME")]
        elif piece.kind == PARKING:
            wanted = [("PARKING_TIME", piece.seconds, "PARKING_TIME", "TIME")]
        else:  # a reservation only has FLAT and TIME (mod_tariffs: reservation)
            wanted = [("TIME", piece.seconds, "RESERVATION", "RESERVATION")]
        for dimension, volume, bucket, group in wanted:
            if volume <= 0:
                continue
            component = _choose(tariff, dimension, c, cache)
            if component is None:
                if dimension in tariff_dims:
                    key = "RESERVATION_TIME" if piece.kind == RESERVATION else dimension
                    unpriced[key] = unpriced.get(key, _ZERO) + volume
                continue
            lines.append(_Line(piece, dimension, bucket, group, component, tariff.id, volume))
        if phase not in flat_done:
            # FLAT is a fee per session (a start fee), so it is looked up once: at the start
            # of the charging session, and once more at the start of a reservation.
            flat_done.add(phase)
            start_c = _context(piece, zone, piece.t0, piece.kwh_start, base, expired, unknown)
            component = _choose(tariff, "FLAT", start_c, {})
            if component is not None:
                bucket = "RESERVATION" if phase == RESERVATION else "FLAT"
                lines.append(_Line(piece, "FLAT", bucket, "FLAT", component, tariff.id, _ONE))

    _apply_step_sizes(lines, notes)

    # Exact sums: direct amounts (energy, flat) and time numerators (seconds x price per
    # hour), divided by 3600 once so that the only inexact step happens once.
    excl_direct = dict.fromkeys(_BUCKETS, _ZERO)
    incl_direct = dict.fromkeys(_BUCKETS, _ZERO)
    excl_time = dict.fromkeys(_BUCKETS, _ZERO)
    incl_time = dict.fromkeys(_BUCKETS, _ZERO)
    volume = dict.fromkeys(_BUCKETS, _ZERO)
    billed = dict.fromkeys(_BUCKETS, _ZERO)
    out_lines: list[PeriodLine] = []
    for line in lines:
        comp = line.component
        amount = (line.volume + line.extra) * comp.price
        timed = line.dimension in ("TIME", "PARKING_TIME")
        if timed:
            excl_time[line.bucket] += amount
            incl_time[line.bucket] += amount * comp.factor
            line_excl = amount / _HOUR
        else:
            excl_direct[line.bucket] += amount
            incl_direct[line.bucket] += amount * comp.factor
            line_excl = amount
        if line.dimension != "FLAT" or line.bucket == "FLAT":  # reservation volume: hours
            volume[line.bucket] += line.volume if not timed else line.volume / _HOUR
            billed[line.bucket] += (line.volume + line.extra) / (_HOUR if timed else _ONE)
        unit_q = _HOURS_Q if timed else None
        out_lines.append(PeriodLine(
            period_index=line.piece.period.index,
            kind=line.piece.kind,
            dimension=line.dimension,
            start=_dt(line.piece.t0),
            # A flat fee is charged at a moment, not over the piece.
            end=_dt(line.piece.t0 if line.dimension == "FLAT" else line.piece.t1),
            tariff_id=line.tariff_id,
            element_index=comp.element,
            price=comp.price,
            vat=comp.vat,
            volume=_q(line.volume / _HOUR, unit_q) if unit_q else line.volume,
            billed_volume=(_q((line.volume + line.extra) / _HOUR, unit_q) if unit_q
                           else line.volume + line.extra),
            cost=Money2(_q(line_excl, _LINE_Q), _q(line_excl * comp.factor, _LINE_Q)),
        ))
    exact_excl = sum(excl_direct.values(), _ZERO) + sum(excl_time.values(), _ZERO) / _HOUR
    exact_incl = sum(incl_direct.values(), _ZERO) + sum(incl_time.values(), _ZERO) / _HOUR

    dims: dict[str, DimensionCost] = {}
    for bucket in _BUCKETS:
        e = excl_direct[bucket] + excl_time[bucket] / _HOUR
        i = incl_direct[bucket] + incl_time[bucket] / _HOUR
        timed_bucket = bucket in ("TIME", "PARKING_TIME", "RESERVATION")
        dims[bucket] = DimensionCost(
            dimension=bucket,
            cost=Money2(round_money(e, currency), round_money(i, currency)),
            volume=_q(volume[bucket], _HOURS_Q) if timed_bucket else volume[bucket],
            billed_volume=_q(billed[bucket], _HOURS_Q) if timed_bucket else billed[bucket],
        )

    before = Money2(round_money(exact_excl, currency), round_money(exact_incl, currency))
    limits = limits_from or next(iter(tariffs.values()))
    final_excl, final_incl, min_applied, max_applied = _apply_limits(
        limits, exact_excl, exact_incl, notes)
    total = Money2(round_money(final_excl, currency), round_money(final_incl, currency))

    energy_kwh = sum((p.energy for p in periods), _ZERO)
    charging_h = _q(sum((p.charging for p in periods), _ZERO) / _HOUR, _HOURS_Q)
    parking_h = _q(sum((p.parking for p in periods), _ZERO) / _HOUR, _HOURS_Q)
    reservation_h = _q(sum((p.reservation for p in periods), _ZERO) / _HOUR, _HOURS_Q)

    unpriced_notes = []
    for dim, amount in unpriced.items():
        what = f"{amount} kWh" if dim == "ENERGY" else f"{_q(amount / _HOUR, _HOURS_Q)} h"
        unpriced_notes.append(f"{dim}: {what} matched no tariff element and costs nothing")
    for index in sorted(no_tariff):
        unpriced_notes.append(f"period {index}: no tariff applies to it; not priced")
    if not lines and pieces and not no_tariff:
        unpriced_notes.append("no tariff element matched this session")
    for what in sorted(unknown):
        notes.append(f"a restriction on {what} could not be checked: the charging periods "
                     f"give no {what}; the element was taken as not applying")

    return PriceBreakdown(
        currency=currency,
        total=total,
        energy=dims["ENERGY"],
        flat=dims["FLAT"],
        time=dims["TIME"],
        parking_time=dims["PARKING_TIME"],
        reservation=dims["RESERVATION"],
        total_before_limits=before,
        min_price_applied=min_applied,
        max_price_applied=max_applied,
        energy_kwh=energy_kwh,
        charging_hours=charging_h,
        parking_hours=parking_h,
        reservation_hours=reservation_h,
        lines=tuple(out_lines),
        unpriced=tuple(unpriced_notes),
        notes=tuple(notes),
    )


def _apply_step_sizes(lines: list[_Line], notes: list[str]) -> None:
    """mod_cdrs step_size: once per session on the total of ENERGY, once on TIME and
    PARKING_TIME combined, with the step_size of the last relevant component, the extra
    billed at that component. Reservation time is its own group (it is a separate phase
    that the spec's reservation examples round on its own)."""
    for group in ("ENERGY", "TIME", "RESERVATION"):
        relevant = [ln for ln in lines if ln.group == group and ln.volume > 0]
        if not relevant:
            continue
        last = relevant[-1]
        step = last.component.step_size
        if step <= 0:
            notes.append(f"{last.dimension} step_size {step} taken as no rounding")
            continue
        # Only the last piece's dimension is rounded: when charging is followed by
        # parking, charging time is not rounded (mod_cdrs' 21 + 16 minutes example).
        total = sum((ln.volume for ln in relevant if ln.dimension == last.dimension), _ZERO)
        units = total * _THOUSAND if group == "ENERGY" else total
        # The guard absorbs proportional-split noise so 1000.000...01 Wh is 1000 Wh.
        steps = (units.quantize(_STEP_GUARD) / step).to_integral_value(ROUND_CEILING)
        rounded = steps * step
        if group == "ENERGY":
            rounded = rounded / _THOUSAND
        last.extra = rounded - total


def _vat_ratio(tariff: _Compiled) -> Decimal:
    """incl/excl for a price limit given without incl_vat: the tariff's VAT when its
    components agree on one, else the lowest of them (the driver is not charged VAT the
    tariff may not mean). One figure per tariff, not the session's own mix, so that a
    bigger session never meets a lower limit."""
    factors = {c.factor for el in tariff.elements for c in el.components.values()}
    return min(factors) if factors else _ONE


def _apply_limits(tariff: _Compiled, excl: Decimal, incl: Decimal, notes: list[str]
                  ) -> tuple[Decimal, Decimal, bool, bool]:
    """min_price then max_price, each on excl. and incl. VAT separately (mod_tariffs: "they
    both apply"). max_price is applied last, so a cap always holds: a driver never pays more
    than the maximum, even in a tariff whose minimum is above its maximum."""
    source = tariff.source
    ratio = _vat_ratio(tariff)
    min_applied = max_applied = False
    if source.min_price is not None:
        low_excl = source.min_price.excl_vat
        low_incl = (source.min_price.incl_vat if source.min_price.incl_vat is not None
                    else low_excl * ratio)
        if excl < low_excl:
            excl, min_applied = low_excl, True
        if incl < low_incl:
            incl, min_applied = low_incl, True
    if source.max_price is not None:
        high_excl = source.max_price.excl_vat
        high_incl = (source.max_price.incl_vat if source.max_price.incl_vat is not None
                     else high_excl * ratio)
        if excl > high_excl:
            excl, max_applied = high_excl, True
        if incl > high_incl:
            incl, max_applied = high_incl, True
    if (source.min_price is not None and source.max_price is not None
            and source.min_price.excl_vat > source.max_price.excl_vat):
        notes.append("the tariff's min_price is above its max_price; max_price wins")
    return excl, incl, min_applied, max_applied


# --- Public pricing API -----------------------------------------------------------------


def _periods(raw: Sequence[wire.ChargingPeriod | Mapping[str, Any]], session_end: datetime,
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


@_exact
def price_session(
    tariff: wire.Tariff | Mapping[str, Any],
    periods: Sequence[wire.ChargingPeriod | Mapping[str, Any]],
    *,
    time_zone: str,
    session_start: datetime | None = None,
    session_end: datetime,
    reservation_expired: bool | None = None,
) -> PriceBreakdown:
    """Price a session from its charging periods against one tariff.

    time_zone is the Location's IANA time_zone: every local-time restriction is read there.
    session_start is where min/max_duration count from (default: the first period's start).
    reservation_expired: None infers it (reservation periods and nothing after them).
    """
    compiled = _compile(tariff)
    zone = _zone(time_zone)
    notes: list[str] = []
    normalized = _periods(periods, session_end, session_start, lambda _cp, _i: compiled,
                          notes)
    start = _secs(session_start) if session_start is not None else None
    _validity_note(compiled, start if start is not None else normalized[0].start, notes)
    return _price(normalized, zone=zone, session_start=start, expired=reservation_expired,
                  limits_from=compiled, notes=notes)


def _validity_note(t: _Compiled, session_start: Decimal, notes: list[str]) -> None:
    """The driver accepts the tariff valid when the session starts (mod_tariffs note on
    start_date_time); a session outside that window is still priced, and said so."""
    start = _dt(session_start)
    src = t.source
    if src.start_date_time is not None and start < src.start_date_time:
        notes.append(f"tariff {t.id} is valid only from {src.start_date_time.isoformat()}")
    if src.end_date_time is not None and start > src.end_date_time:
        notes.append(f"tariff {t.id} was valid only until {src.end_date_time.isoformat()}")


@_exact
def price_cdr(
    cdr: wire.Cdr | Mapping[str, Any],
    *,
    time_zone: str,
    tariffs: Sequence[wire.Tariff | Mapping[str, Any]] | None = None,
) -> PriceBreakdown:
    """Price a CDR from its charging periods: with `tariffs` when given (one tariff prices
    every period), else with the CDR's own tariffs, chosen per period by tariff_id."""
    if not isinstance(cdr, wire.Cdr):
        if not isinstance(cdr, Mapping):
            raise TariffError("expected a CDR object")
        try:
            cdr = wire.parse(wire.Cdr, dict(cdr))
        except OcpiError as exc:
            raise TariffError(exc.message) from exc
    notes: list[str] = []
    explicit = tariffs is not None
    compiled = [_compile(t) for t in (tariffs if tariffs is not None else cdr.tariffs or [])]
    if not compiled:
        raise TariffError("the CDR carries no tariffs; give one to price it with")
    by_id = {t.id.lower(): t for t in compiled}
    only = compiled[0] if len(compiled) == 1 else None
    told: set[str] = set()

    def tariff_for(cp: wire.ChargingPeriod | None, index: int) -> _Compiled | None:
        wanted = cp.tariff_id if cp is not None else None
        if explicit and only is not None:
            if wanted and wanted.lower() != only.id.lower() and "explicit" not in told:
                told.add("explicit")
                notes.append(f"periods name tariff {wanted!r}; priced with the tariff given, "
                             f"{only.id!r}")
            return only
        if wanted is None:
            if only is not None:
                if "missing" not in told:
                    told.add("missing")
                    notes.append(f"periods without tariff_id priced with the CDR's only "
                                 f"tariff {only.id!r}")
                return only
            return None  # mod_cdrs: no tariff_id, no tariff relevant to the period
        found = by_id.get(wanted.lower())
        if found is None:
            notes.append(f"period {index} names tariff {wanted!r}, which the CDR lacks")
        return found

    zone = _zone(time_zone)
    normalized = _periods(cdr.charging_periods, cdr.end_date_time, cdr.start_date_time,
                          tariff_for, notes)
    first = next((p.tariff for p in normalized if p.tariff is not None), None)
    if first is None:
        raise TariffError("no charging period of the CDR has a tariff to price it with")
    _validity_note(first, _secs(cdr.start_date_time), notes)
    if cdr.currency.upper() != first.currency:
        notes.append(f"the CDR is in {cdr.currency} but the tariff in {first.currency}")
    return _price(normalized, zone=zone, session_start=_secs(cdr.start_date_time),
                  expired=None, limits_from=first, notes=notes)


@_exact
def price_plan(
    tariff: wire.Tariff | Mapping[str, Any],
    *,
    start: datetime,
    energy_kwh: Decimal,
    duration: timedelta,
    power_kw: Decimal,
    time_zone: str,
    current_a: Decimal | None = None,
) -> PriceBreakdown:
    """Price a planned session: charging at power_kw until energy_kwh is in (or the duration
    is over), parked for the rest. current_a defaults to power / 230 V (summed phases)."""
    for name, value in (("energy_kwh", energy_kwh), ("power_kw", power_kw)):
        if isinstance(value, float):
            raise TypeError(f"{name} must be a Decimal, not a float")
    energy = Decimal(energy_kwh)
    power = Decimal(power_kw)
    if energy < 0 or power < 0 or duration < timedelta(0):
        raise TariffError("a planned session needs non-negative energy, power and duration")
    compiled = _compile(tariff)
    zone = _zone(time_zone)
    notes: list[str] = []
    begin = _secs(start)
    total = _secs(start + duration) - begin
    _validity_note(compiled, begin, notes)
    if energy > 0 and power > 0:
        charging = min(total, _q(energy * _HOUR / power, _MICRO))
    else:
        charging = total if energy > 0 else _ZERO
    current = current_a
    if current is None and power > 0:
        current = power * _THOUSAND / _VOLTS_PER_PHASE
        if any(el.restrictions is not None and (el.restrictions.min_current is not None
               or el.restrictions.max_current is not None) for el in compiled.elements):
            notes.append(f"current estimated as {_q(current, Decimal('0.1'))} A from "
                         f"{power} kW at 230 V per phase")
    periods = [_Period(0, begin, begin + charging, energy, charging, _ZERO, _ZERO,
                       power if power > 0 else None, current, compiled)]
    if total > charging:
        periods.append(_Period(1, begin + charging, begin + total, _ZERO, _ZERO,
                               total - charging, _ZERO, None, None, compiled))
    return _price(periods, zone=zone, session_start=begin, expired=False,
                  limits_from=compiled, notes=notes)


# --- OCPI 2.1.1 -------------------------------------------------------------------------

_RESTRICTIONS_211 = ("start_time", "end_time", "start_date", "end_date", "min_kwh", "max_kwh",
                     "min_power", "max_power", "min_duration", "max_duration", "day_of_week")


def _number(value: Any, where: str) -> Decimal:
    if isinstance(value, bool) or value is None:
        raise TariffError(f"{where}: expected a number, got {value!r}")
    if isinstance(value, float):
        return Decimal(repr(value))  # the shortest text that reads back as this float
    try:
        return Decimal(value)
    except Exception:
        raise TariffError(f"{where}: expected a number, got {value!r}") from None


def convert_211(
    tariff_211: Mapping[str, Any],
    *,
    country_code: str | None = None,
    party_id: str | None = None,
    vat: Decimal | None = None,
) -> wire.Tariff:
    """An OCPI 2.1.1 Tariff as a 2.2.1 wire.Tariff, so the same engine prices it.

    2.1.1 has no owner fields (country_code/party_id: given here, else kept from the object,
    else "ZZ"/"ZZZ"), no VAT (give `vat` to set it on every component; absent means no
    VAT, as in 2.2.1), no min/max price, no tariff type, no current or reservation
    restrictions. Its "first element with matching restrictions is used" is read per
    dimension as 2.2.1 clarified, else its own complex example would charge only the start
    fee. Unknown fields are dropped.
    """
    if not isinstance(tariff_211, Mapping):
        raise TariffError("expected a 2.1.1 Tariff object")
    for required in ("id", "currency", "elements", "last_updated"):
        if tariff_211.get(required) in (None, "", []):
            raise TariffError(f"2.1.1 Tariff: {required} is required (mod_tariffs 3.1)")
    elements = []
    raw_elements = tariff_211["elements"]
    if not isinstance(raw_elements, list):
        raise TariffError("2.1.1 Tariff: elements must be a list")
    for i, el in enumerate(raw_elements):
        if not isinstance(el, Mapping) or not isinstance(el.get("price_components"), list):
            raise TariffError(f"2.1.1 Tariff element {i}: price_components must be a list")
        components = []
        for j, pc in enumerate(el["price_components"]):
            where = f"2.1.1 Tariff element {i} component {j}"
            if not isinstance(pc, Mapping):
                raise TariffError(f"{where}: expected an object")
            out: dict[str, Any] = {
                "type": pc.get("type"),
                "price": _number(pc.get("price"), f"{where} price"),
                "step_size": pc.get("step_size"),
            }
            if vat is not None:
                out["vat"] = Decimal(vat)
            components.append(out)
        element: dict[str, Any] = {"price_components": components}
        restrictions = el.get("restrictions")
        if isinstance(restrictions, Mapping):
            kept = {k: restrictions[k] for k in _RESTRICTIONS_211
                    if restrictions.get(k) is not None}
            for k in ("min_kwh", "max_kwh", "min_power", "max_power"):
                if k in kept:
                    kept[k] = _number(kept[k], f"2.1.1 Tariff element {i} {k}")
            if kept:
                element["restrictions"] = kept
        elements.append(element)
    data: dict[str, Any] = {
        "country_code": country_code or tariff_211.get("country_code") or "ZZ",
        "party_id": party_id or tariff_211.get("party_id") or "ZZZ",
        "id": tariff_211["id"],
        "currency": tariff_211["currency"],
        "elements": elements,
        "last_updated": tariff_211["last_updated"],
    }
    for key in ("tariff_alt_text", "tariff_alt_url", "energy_mix"):
        if tariff_211.get(key) is not None:
            data[key] = tariff_211[key]
    # Pre-2.2 drafts spelled these without the underscore.
    for old, new in (("start_datetime", "start_date_time"), ("end_datetime", "end_date_time"),
                     ("start_date_time", "start_date_time"), ("end_date_time", "end_date_time")):
        if tariff_211.get(old) is not None:
            data[new] = tariff_211[old]
    try:
        return wire.parse(wire.Tariff, data)
    except OcpiError as exc:
        raise TariffError(f"2.1.1 Tariff: {exc.message}") from exc


# --- Driver's price display -------------------------------------------------------------

Language = Literal["sv", "en"]

_WORDS: dict[str, dict[str, str]] = {
    "sv": {
        "kwh": "/kWh", "min": "/min", "h": "/h", "start": "start", "parking": "parkering",
        "after_min": "efter {n} min", "first_min": "första {n} min",
        "after_kwh": "efter {n} kWh", "first_kwh": "upp till {n} kWh",
        "from_kw": "från {n} kW", "below_kw": "under {n} kW",
        "from_a": "från {n} A", "below_a": "under {n} A",
        "otherwise": "annars", "free": "gratis", "free_charging": "Gratis laddning",
        "from": "från {t}", "example": "ungefär {amount} för {kwh} kWh",
        "min_price": "minst {amount} per laddning", "max_price": "högst {amount} per laddning",
        "ENERGY": "el", "TIME": "laddtid", "PARKING_TIME": "parkering", "FLAT": "startavgift",
        "neutral": "Priset beror på hur och när du laddar; se operatörens prisinformation.",
        "incl_vat": "inkl. moms",
    },
    "en": {
        "kwh": "/kWh", "min": "/min", "h": "/h", "start": "start fee", "parking": "parking",
        "after_min": "after {n} min", "first_min": "first {n} min",
        "after_kwh": "after {n} kWh", "first_kwh": "up to {n} kWh",
        "from_kw": "from {n} kW", "below_kw": "below {n} kW",
        "from_a": "from {n} A", "below_a": "below {n} A",
        "otherwise": "otherwise", "free": "free", "free_charging": "Free charging",
        "from": "from {t}", "example": "about {amount} for {kwh} kWh",
        "min_price": "minimum {amount} per session", "max_price": "maximum {amount} per session",
        "ENERGY": "energy", "TIME": "charging time", "PARKING_TIME": "parking",
        "FLAT": "start fee",
        "neutral": "The price depends on how and when you charge; see the operator's price "
                   "information.",
        "incl_vat": "incl. VAT",
    },
}


@dataclass(frozen=True)
class TariffText:
    """The price as a driver reads it, VAT included.

    summary: what applies now ("4,50 kr/kWh · 0,50 kr/min efter 60 min · 5 kr start");
    changes: what changes later today ("från 17:00: 5,50 kr/kWh"); alt_text: the tariff's
    own text in this language; example: "ungefär 135 kr för 30 kWh"; limits: min/max price.
    structured is False when the tariff could not be summarised honestly and the summary is
    the alt text or a neutral sentence.
    """

    language: str
    summary: str
    changes: tuple[str, ...] = ()
    alt_text: str | None = None
    example: str | None = None
    limits: tuple[str, ...] = ()
    url: str | None = None
    structured: bool = True
    notes: tuple[str, ...] = field(default=(), compare=False)

    def lines(self) -> list[str]:
        out = [self.summary, *self.changes, *self.limits]
        if self.example:
            out.append(self.example)
        if self.alt_text and self.alt_text != self.summary:
            out.append(self.alt_text)
        return out


def _number_text(value: Decimal, language: str) -> str:
    """4.5 -> "4,50" (sv) / "4.50" (en); whole amounts without decimals ("5"); up to four
    decimals when a price has them (0.275 stays 0,275 rather than being misstated)."""
    value = value.quantize(_LINE_Q, rounding=ROUND_HALF_UP, context=_CTX).normalize(_CTX)
    if value == value.to_integral_value():
        text = f"{int(value):,}"
    else:
        places = max(2, -value.as_tuple().exponent)  # type: ignore[operator]
        text = f"{value:,.{places}f}"
    if language == "sv":
        return text.replace(",", "\u00a0").replace(".", ",")
    return text


def _money_text(value: Decimal, currency: str, language: str) -> str:
    number = _number_text(value, language)
    if language == "sv":
        return f"{number} kr" if currency == "SEK" else f"{number} {currency}"
    return f"{currency} {number}"


def _unit_price(c: _Component, currency: str, language: str) -> str:
    w = _WORDS[language]
    gross = c.price * c.factor
    if c.dimension == "ENERGY":
        return _money_text(gross, currency, language) + w["kwh"]
    if c.dimension == "FLAT":
        return f"{_money_text(gross, currency, language)} {w['start']}"
    per_minute = gross / 60
    # Per minute when that is a plain price (30 kr/h -> 0,50 kr/min), else per hour.
    if per_minute == per_minute.quantize(Decimal("0.01")):
        text = _money_text(per_minute, currency, language) + w["min"]
    else:
        text = _money_text(gross, currency, language) + w["h"]
    return f"{w['parking']} {text}" if c.dimension == "PARKING_TIME" else text


def _minutes(seconds: Decimal) -> str:
    return _number_text(seconds / 60, "en").replace(",", "")


def _qualifiers(r: _Restrictions | None, power_kw: Decimal, language: str
                ) -> list[str] | None:
    """Words for the session-bound restrictions, or None when the element cannot apply at
    this connector (min_power above its power)."""
    if r is None:
        return []
    w = _WORDS[language]
    out = []
    if r.min_duration is not None and r.min_duration > 0:
        out.append(w["after_min"].format(n=_minutes(r.min_duration)))
    if r.max_duration is not None:
        out.append(w["first_min"].format(n=_minutes(r.max_duration)))
    if r.min_kwh is not None and r.min_kwh > 0:
        out.append(w["after_kwh"].format(n=_number_text(r.min_kwh, language)))
    if r.max_kwh is not None:
        out.append(w["first_kwh"].format(n=_number_text(r.max_kwh, language)))
    if r.min_power is not None and r.min_power > 0:
        if power_kw > 0 and r.min_power > power_kw:
            return None
        out.append(w["from_kw"].format(n=_number_text(r.min_power, language)))
    # A maximum the connector cannot reach always holds, so it needs no words.
    if r.max_power is not None and not (power_kw > 0 and r.max_power > power_kw):
        out.append(w["below_kw"].format(n=_number_text(r.max_power, language)))
    if r.min_current is not None and r.min_current > 0:
        out.append(w["from_a"].format(n=_number_text(r.min_current, language)))
    if r.max_current is not None:
        out.append(w["below_a"].format(n=_number_text(r.max_current, language)))
    return out


_MAX_CANDIDATES = 3


def _segments(t: _Compiled, local: datetime, power_kw: Decimal, language: str
              ) -> dict[str, str] | None:
    """Per dimension, the text of what applies at this local moment; None when too complex
    to say in a line."""
    w = _WORDS[language]
    ctx = _Context(local=local, duration=_ZERO, kwh=_ZERO, power=None, current=None,
                   kind=CHARGING, expired=False, unknown=set())
    out: dict[str, str] = {}
    for dim in ("ENERGY", "TIME", "PARKING_TIME", "FLAT"):
        parts: list[str] = []
        previous: list[str] | None = None
        previous_r: _Restrictions | None = None
        for el in t.by_dimension[dim]:
            r = el.restrictions
            if r is not None and r.reservation is not None:
                continue  # reservations are not part of an ad-hoc session
            if r is not None and r.local:
                clock_only = _Restrictions(
                    r.start_time, r.end_time, r.start_date, r.end_date, None, None, None,
                    None, None, None, None, None, r.days, None)
                if not _holds(clock_only, ctx):
                    continue
            quals = _qualifiers(r, power_kw, language)
            if quals is None:
                continue
            if dim == "FLAT" and quals:
                return None  # a start fee that depends on the session: not for one line
            component = el.components[dim]
            text = _unit_price(component, t.currency, language)
            if component.price == 0:
                text = w["free"] if dim != "PARKING_TIME" else f"{w['parking']} {w['free']}"
            if quals:
                text = f"{text} {' '.join(quals)}"
            elif previous:
                # After a "first 30 min" or "up to 20 kWh" part, say when this one starts.
                assert previous_r is not None
                if previous_r.max_duration is not None and len(previous) == 1:
                    text = f"{text} {w['after_min'].format(n=_minutes(previous_r.max_duration))}"
                elif previous_r.max_kwh is not None and len(previous) == 1:
                    kwh = _number_text(previous_r.max_kwh, language)
                    text = f"{text} {w['after_kwh'].format(n=kwh)}"
                else:
                    text = f"{w['otherwise']} {text}"
            parts.append(text)
            previous, previous_r = quals, r
            if not quals:
                break
        if len(parts) > _MAX_CANDIDATES:
            return None
        # A dimension that is free throughout is not worth a word.
        if parts and not all(p in (w["free"], f"{w['parking']} {w['free']}") for p in parts):
            out[dim] = " · ".join(parts)
    return out


@_exact
def describe(
    tariff: wire.Tariff | Mapping[str, Any],
    *,
    language: Language,
    at: datetime,
    time_zone: str,
    power_kw: Decimal,
    example_kwh: Decimal = Decimal(30),
) -> TariffText:
    """The driver's price display in plain words, VAT included, at `at` at this connector."""
    if language not in _WORDS:
        raise TariffError(f"language {language!r}: only 'sv' and 'en' are written")
    w = _WORDS[language]
    compiled = _compile(tariff)
    zone = _zone(time_zone)
    local = _aware(at).astimezone(zone)
    currency = compiled.currency
    source = compiled.source

    alt = next((d.text for d in source.tariff_alt_text or [] if d.language.lower() == language),
               None)
    any_alt = alt or next((d.text for d in source.tariff_alt_text or []), None)

    now = _segments(compiled, local, Decimal(power_kw), language)
    structured = now is not None
    changes: list[str] = []
    if now is not None:
        summary = " · ".join(now[d] for d in ("ENERGY", "TIME", "PARKING_TIME", "FLAT")
                             if d in now) or w["free_charging"]
        state = now
        for tod in compiled.times_of_day:
            if tod <= local.time().replace(tzinfo=None):
                continue
            moment = datetime.combine(local.date(), tod, tzinfo=zone)
            later = _segments(compiled, moment, Decimal(power_kw), language)
            if later is None:
                structured = False
                break
            changed = [later.get(d) or f"{w[d]} {w['free']}"
                       for d in ("ENERGY", "TIME", "PARKING_TIME", "FLAT")
                       if later.get(d) != state.get(d)]
            if changed:
                changes.append(f"{w['from'].format(t=tod.strftime('%H:%M'))}: "
                               + " · ".join(changed))
            state = later
    if not structured:
        summary = any_alt if any_alt else w["neutral"]
        changes = []

    limits = []
    ratio = _vat_ratio(compiled)
    uniform = len({c.factor for el in compiled.elements for c in el.components.values()}) <= 1
    for key, price in (("min_price", source.min_price), ("max_price", source.max_price)):
        if price is None:
            continue
        gross = price.incl_vat if price.incl_vat is not None else (
            price.excl_vat * ratio if uniform else None)
        if gross is not None:
            limits.append(w[key].format(amount=_money_text(gross, currency, language)))

    example = None
    notes: list[str] = []
    if power_kw and Decimal(power_kw) > 0 and example_kwh > 0:
        seconds = _q(Decimal(example_kwh) * _HOUR / Decimal(power_kw), _MICRO)
        plan = price_plan(compiled.source, start=_aware(at), energy_kwh=Decimal(example_kwh),
                          duration=timedelta(microseconds=int(seconds * 1_000_000)),
                          power_kw=Decimal(power_kw), time_zone=time_zone)
        whole = plan.total.incl_vat.quantize(_ONE, rounding=ROUND_HALF_UP)
        example = w["example"].format(amount=_money_text(whole, currency, language),
                                      kwh=_number_text(Decimal(example_kwh), language))
        notes.extend(plan.notes)
    return TariffText(
        language=language,
        summary=summary,
        changes=tuple(changes),
        alt_text=alt,
        example=example,
        limits=tuple(limits),
        url=source.tariff_alt_url,
        structured=structured,
        notes=tuple(notes),
    )


# --- The hold ---------------------------------------------------------------------------


def _preauthorize_amount(tariff: wire.Tariff | Mapping[str, Any]) -> Decimal | None:
    # OCPI 2.3.0 Tariff.preauthorize_amount; wire.Tariff (2.2.1) does not keep it yet, so
    # it is read from the JSON when the tariff is given as a dict.
    if isinstance(tariff, Mapping):
        value = tariff.get("preauthorize_amount")
    else:
        value = getattr(tariff, "preauthorize_amount", None)
        if value is None and tariff.model_extra:
            value = tariff.model_extra.get("preauthorize_amount")
    if value is None:
        return None
    amount = _number(value, "preauthorize_amount")
    if amount < 0:
        raise TariffError(f"preauthorize_amount {amount} is negative")
    return amount


@_exact
def hold_for(
    tariff: wire.Tariff | Mapping[str, Any],
    *,
    power_kw: Decimal,
    max_session: timedelta,
    cap_minor: int | None,
    currency: str,
    at: datetime | None = None,
    time_zone: str = "UTC",
) -> int:
    """The card hold in minor units.

    OCPI 2.3's preauthorize_amount when the tariff has one; else the price (incl. VAT) of
    a plausible maximum session: charging at power_kw for max_session from `at` (default
    now), with the tariff's max_price respected. Never below min_price incl. VAT; then
    capped by cap_minor (the configured cap or the driver's own), which wins over both.
    """
    compiled = _compile(tariff)
    if compiled.currency != currency.upper():
        raise TariffError(f"the tariff is in {compiled.currency}, the hold in {currency}")
    amount = _preauthorize_amount(tariff)
    if amount is not None:
        hold = to_minor(amount, currency)
    else:
        power = Decimal(power_kw)
        hours = Decimal(max_session.days * 86400 + max_session.seconds) / _HOUR
        start = _aware(at) if at is not None else datetime.now(UTC)
        plan = price_plan(compiled.source, start=start, energy_kwh=power * hours,
                          duration=max_session, power_kw=power, time_zone=time_zone)
        hold = to_minor(plan.total.incl_vat, currency)
    minimum = compiled.source.min_price
    if minimum is not None:
        gross = minimum.incl_vat if minimum.incl_vat is not None else (
            minimum.excl_vat * _vat_ratio(compiled))
        hold = max(hold, to_minor(gross, currency))
    if cap_minor is not None:
        hold = min(hold, cap_minor)
    return hold
