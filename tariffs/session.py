"""The pricing of a session: its periods, cut into pieces, matched to tariff elements and summed.

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

from dataclasses import dataclass, field
from decimal import Decimal
from zoneinfo import ZoneInfo

from tariffs.clock import _dt
from tariffs.decimals import _HOUR, _HOURS_Q, _LINE_Q, _ONE, _ZERO, _q
from tariffs.model import (
    _BUCKETS,
    CHARGING,
    DIMENSIONS,
    PARKING,
    RESERVATION,
    TariffError,
    _Compiled,
)
from tariffs.periods import _cut, _Period, _Piece
from tariffs.restrictions import _choose, _Context
from tariffs.results import DimensionCost, Money2, PeriodLine, PriceBreakdown, round_money
from tariffs.steps import _apply_step_sizes, _Line
from tariffs.vat import _apply_limits


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
    tariffs, currency = _tariffs_of(periods, limits_from, notes)
    origin, charging_origin, expired = _origins(periods, session_start, expired)
    pieces = _cut(periods, zone, origin, charging_origin)
    matched = _match(pieces, tariffs, zone, origin, charging_origin, expired)
    _apply_step_sizes(matched.lines, notes)
    sums, out_lines = _sum(matched.lines)
    exact_excl = (sum(sums.excl_direct.values(), _ZERO)
                  + sum(sums.excl_time.values(), _ZERO) / _HOUR)
    exact_incl = (sum(sums.incl_direct.values(), _ZERO)
                  + sum(sums.incl_time.values(), _ZERO) / _HOUR)
    dims = _dimension_costs(sums, currency)

    before = Money2(round_money(exact_excl, currency), round_money(exact_incl, currency))
    limits = limits_from or next(iter(tariffs.values()))
    final_excl, final_incl, min_applied, max_applied = _apply_limits(
        limits, exact_excl, exact_incl, notes)
    total = Money2(round_money(final_excl, currency), round_money(final_incl, currency))

    unpriced = _unpriced_notes(matched, bool(pieces))
    for what in sorted(matched.unknown):
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
        energy_kwh=sum((p.energy for p in periods), _ZERO),
        charging_hours=_hours(sum((p.charging for p in periods), _ZERO)),
        parking_hours=_hours(sum((p.parking for p in periods), _ZERO)),
        reservation_hours=_hours(sum((p.reservation for p in periods), _ZERO)),
        lines=tuple(out_lines),
        unpriced=tuple(unpriced),
        notes=tuple(notes),
    )


def _hours(seconds: Decimal) -> Decimal:
    return _q(seconds / _HOUR, _HOURS_Q)


def _tariffs_of(periods: list[_Period], limits_from: _Compiled | None, notes: list[str]
                ) -> tuple[dict[int, _Compiled], str]:
    """The session's tariffs by identity and its one currency; their notes join the
    session's."""
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
    return tariffs, currency


def _origins(periods: list[_Period], session_start: Decimal | None, expired: bool | None
             ) -> tuple[Decimal, Decimal, bool]:
    """Where durations count from (the session's, the charging session's) and whether a
    reservation expired, when not told."""
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
    return origin, charging_origin, expired


@dataclass(slots=True)
class _Matched:
    """The session's pieces matched to tariff components, and what matched none."""

    lines: list[_Line] = field(default_factory=list)
    unknown: set[str] = field(default_factory=set)  # what a restriction asked, unanswered
    unpriced: dict[str, Decimal] = field(default_factory=dict)  # volume by dimension
    no_tariff: set[int] = field(default_factory=set)  # period indexes


def _match(pieces: list[_Piece], tariffs: dict[int, _Compiled], zone: ZoneInfo,
           origin: Decimal, charging_origin: Decimal, expired: bool) -> _Matched:
    matched = _Matched()
    tariff_dims = {d for t in tariffs.values() for d in DIMENSIONS if t.by_dimension[d]}
    flat_done: set[str] = set()
    for piece in pieces:
        tariff = piece.period.tariff
        phase = RESERVATION if piece.kind == RESERVATION else CHARGING
        if tariff is None:
            if piece.seconds > 0 or piece.energy > 0:
                matched.no_tariff.add(piece.period.index)
            flat_done.add(phase)
            continue
        base = origin if piece.kind == RESERVATION else charging_origin
        c = _context(piece, zone, piece.mid, piece.kwh_mid, base, expired, matched.unknown)
        _match_volumes(matched, piece, tariff, c, tariff_dims)
        if phase not in flat_done:
            # FLAT is a fee per session (a start fee), so it is looked up once: at the start
            # of the charging session, and once more at the start of a reservation.
            flat_done.add(phase)
            start_c = _context(piece, zone, piece.t0, piece.kwh_start, base, expired,
                               matched.unknown)
            component = _choose(tariff, "FLAT", start_c, {})
            if component is not None:
                bucket = "RESERVATION" if phase == RESERVATION else "FLAT"
                matched.lines.append(
                    _Line(piece, "FLAT", bucket, "FLAT", component, tariff.id, _ONE))
    return matched


def _wanted(piece: _Piece) -> list[tuple[str, Decimal, str, str]]:
    """What a piece is priced by: (dimension, volume, bucket, step_size group)."""
    if piece.kind == CHARGING:
        return [("ENERGY", piece.energy, "ENERGY", "ENERGY"),
                ("TIME", piece.seconds, "TIME", "TIME")]
    if piece.kind == PARKING:
        return [("PARKING_TIME", piece.seconds, "PARKING_TIME", "TIME")]
    # A reservation only has FLAT and TIME (mod_tariffs: reservation).
    return [("TIME", piece.seconds, "RESERVATION", "RESERVATION")]


def _match_volumes(matched: _Matched, piece: _Piece, tariff: _Compiled, c: _Context,
                   tariff_dims: set[str]) -> None:
    cache: dict[int, bool] = {}
    for dimension, volume, bucket, group in _wanted(piece):
        if volume <= 0:
            continue
        component = _choose(tariff, dimension, c, cache)
        if component is None:
            if dimension in tariff_dims:
                key = "RESERVATION_TIME" if piece.kind == RESERVATION else dimension
                matched.unpriced[key] = matched.unpriced.get(key, _ZERO) + volume
            continue
        matched.lines.append(_Line(piece, dimension, bucket, group, component, tariff.id,
                                   volume))


@dataclass(slots=True)
class _Sums:
    """Exact sums per bucket: direct amounts (energy, flat) and time numerators (seconds x
    price per hour), divided by 3600 once so that the only inexact step happens once."""

    excl_direct: dict[str, Decimal]
    incl_direct: dict[str, Decimal]
    excl_time: dict[str, Decimal]
    incl_time: dict[str, Decimal]
    volume: dict[str, Decimal]
    billed: dict[str, Decimal]


def _sum(lines: list[_Line]) -> tuple[_Sums, list[PeriodLine]]:
    sums = _Sums(*(dict.fromkeys(_BUCKETS, _ZERO) for _ in range(6)))
    out_lines: list[PeriodLine] = []
    for line in lines:
        comp = line.component
        amount = (line.volume + line.extra) * comp.price
        timed = line.dimension in ("TIME", "PARKING_TIME")
        if timed:
            sums.excl_time[line.bucket] += amount
            sums.incl_time[line.bucket] += amount * comp.factor
            line_excl = amount / _HOUR
        else:
            sums.excl_direct[line.bucket] += amount
            sums.incl_direct[line.bucket] += amount * comp.factor
            line_excl = amount
        if line.dimension != "FLAT" or line.bucket == "FLAT":  # reservation volume: hours
            sums.volume[line.bucket] += line.volume if not timed else line.volume / _HOUR
            sums.billed[line.bucket] += (line.volume + line.extra) / (_HOUR if timed else _ONE)
        out_lines.append(_period_line(line, line_excl, timed))
    return sums, out_lines


def _period_line(line: _Line, line_excl: Decimal, timed: bool) -> PeriodLine:
    comp = line.component
    unit_q = _HOURS_Q if timed else None
    return PeriodLine(
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
    )


def _dimension_costs(sums: _Sums, currency: str) -> dict[str, DimensionCost]:
    dims: dict[str, DimensionCost] = {}
    for bucket in _BUCKETS:
        e = sums.excl_direct[bucket] + sums.excl_time[bucket] / _HOUR
        i = sums.incl_direct[bucket] + sums.incl_time[bucket] / _HOUR
        timed_bucket = bucket in ("TIME", "PARKING_TIME", "RESERVATION")
        volume, billed = sums.volume[bucket], sums.billed[bucket]
        dims[bucket] = DimensionCost(
            dimension=bucket,
            cost=Money2(round_money(e, currency), round_money(i, currency)),
            volume=_q(volume, _HOURS_Q) if timed_bucket else volume,
            billed_volume=_q(billed, _HOURS_Q) if timed_bucket else billed,
        )
    return dims


def _unpriced_notes(matched: _Matched, any_pieces: bool) -> list[str]:
    notes = []
    for dim, amount in matched.unpriced.items():
        what = f"{amount} kWh" if dim == "ENERGY" else f"{_q(amount / _HOUR, _HOURS_Q)} h"
        notes.append(f"{dim}: {what} matched no tariff element and costs nothing")
    for index in sorted(matched.no_tariff):
        notes.append(f"period {index}: no tariff applies to it; not priced")
    if not matched.lines and any_pieces and not matched.no_tariff:
        notes.append("no tariff element matched this session")
    return notes
