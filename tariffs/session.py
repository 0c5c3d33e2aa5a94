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
