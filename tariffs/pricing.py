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

from bisect import bisect_left, bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_CEILING, Decimal
from typing import Any
from zoneinfo import ZoneInfo

from ocpi import wire
from ocpi.transport import OcpiError
from payments.money import from_minor, to_minor
from tariffs.clock import _aware, _dt, _local_cuts, _secs, _zone
from tariffs.decimals import (
    _CTX,
    _GUARD,
    _HOUR,
    _HOURS_Q,
    _LINE_Q,
    _MICRO,
    _ONE,
    _STEP_GUARD,
    _THOUSAND,
    _ZERO,
    _exact,
    _q,
)
from tariffs.model import (
    _BUCKETS,
    CHARGING,
    DIMENSIONS,
    PARKING,
    RESERVATION,
    TariffError,
    _compile,
    _Compiled,
    _Component,
)
from tariffs.restrictions import _choose, _Context
from tariffs.vat import _apply_limits, _vat_ratio

__all__ = [
    "DIMENSIONS",
    "DimensionCost",
    "Money2",
    "PeriodLine",
    "PriceBreakdown",
    "TariffError",
    "convert_211",
    "hold_for",
    "price_cdr",
    "price_plan",
    "price_session",
    "round_money",
]

# One phase at 230 V: the sum of phase currents is power / 230 V whatever the phase count.
_VOLTS_PER_PHASE = Decimal(230)

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
