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

import functools
from decimal import ROUND_CEILING, Decimal
from typing import Any
from zoneinfo import ZoneInfo

from tariffs.clock import _dt
from tariffs.decimals import _HOUR, _HOURS_Q, _LINE_Q, _ONE, _STEP_GUARD, _THOUSAND, _ZERO, _q
from tariffs.model import _BUCKETS, TariffError, _Compiled
from tariffs.periods import _Period
from tariffs.results import (
    DimensionCost,
    Lines,
    Money2,
    PeriodLine,
    PriceBreakdown,
    _breakdown,
    _money2,
    _round_in_engine,
    round_money,
)
from tariffs.running import _TIMED, _Run
from tariffs.steps import _Line
from tariffs.vat import _apply_limits


def _price(periods: list[_Period], *, zone: ZoneInfo, session_start: Decimal | None,
           expired: bool | None, limits_from: _Compiled | None, notes: list[str],
           tariff: _Compiled | None = None) -> PriceBreakdown:
    """A whole session priced: every period fed to one run, which is then finished.
    `tariff`: the one tariff of every period, when the caller gave one (not read from
    each period)."""
    if tariff is not None:
        tariffs, currency = {id(tariff): tariff}, (limits_from or tariff).currency
    else:
        tariffs, currency = _tariffs_of(periods, limits_from)
    origin, charging_origin, expired = _origins(periods, session_start, expired)
    run = _Run(tariffs, zone, origin, charging_origin, expired, keep_lines=True)
    run.feed_all(periods)
    return _finish(run, currency, limits_from, notes)


def _tariffs_of(periods: list[_Period], limits_from: _Compiled | None
                ) -> tuple[dict[int, _Compiled], str]:
    """The session's tariffs by identity and its one currency."""
    tariffs = {id(p.tariff): p.tariff for p in periods if p.tariff is not None}
    currencies = {t.currency for t in tariffs.values()}
    if len(currencies) > 1:
        raise TariffError(f"one session cannot be priced in several currencies: "
                          f"{', '.join(sorted(currencies))}")
    if limits_from is None and not tariffs:
        raise TariffError("no tariff to price with")
    currency = (limits_from.currency if limits_from else next(iter(currencies)))
    return tariffs, currency


def _origins(periods: list[_Period], session_start: Decimal | None, expired: bool | None
             ) -> tuple[Decimal, Decimal, bool]:
    """Where durations count from (the session's, the charging session's) and whether a
    reservation expired, when not told."""
    origin = session_start if session_start is not None else periods[0].start
    has_reservation = False
    for p in periods:  # mostly none: the rest is not looked for
        if p.reservation > 0:
            has_reservation = True
            break
    if not has_reservation:
        return origin, origin, False if expired is None else expired
    # Durations of the charging session count from its first non-reservation period; a CDR's
    # start_date_time is the reservation's start when there was one (mod_cdrs).
    first_charging = next((p for p in periods if p.reservation == 0 or p.charging > 0
                           or p.parking > 0), None)
    charging_origin = first_charging.start if first_charging is not None else origin
    if expired is None:
        expired = not any(p.charging > 0 or p.parking > 0 or p.energy > 0 for p in periods)
    return origin, charging_origin, expired


def _finish(run: _Run, currency: str, limits_from: _Compiled | None, notes: list[str]
            ) -> PriceBreakdown:
    """What the session fed to `run` comes to: step sizes, totals, limits, rounding.
    `notes` are the session's own so far (its periods', the tariff's validity)."""
    for t in run.tariffs.values():
        if t.notes:
            notes.extend(n for n in t.notes if n not in notes)
    _apply_step_sizes(run, notes)
    exact_excl = (sum(run.excl_direct.values(), _ZERO)
                  + sum(run.excl_time.values(), _ZERO) / _HOUR)
    exact_incl = (sum(run.incl_direct.values(), _ZERO)
                  + sum(run.incl_time.values(), _ZERO) / _HOUR)

    before = _money2(_round_in_engine(exact_excl, currency),
                    _round_in_engine(exact_incl, currency))
    limits = limits_from or next(iter(run.tariffs.values()))
    final_excl, final_incl, min_applied, max_applied = _apply_limits(
        limits, exact_excl, exact_incl, notes)
    # Mostly no limit applied: the same amounts, already rounded once.
    total = _money2(before.excl_vat if final_excl is exact_excl
                   else _round_in_engine(final_excl, currency),
                   before.incl_vat if final_incl is exact_incl
                   else _round_in_engine(final_incl, currency))

    unpriced = _unpriced_notes(run)
    run_lines, extras = run.lines or [], run.extras
    for what in sorted(run.unknown):
        notes.append(f"a restriction on {what} could not be checked: the charging periods "
                     f"give no {what}; the element was taken as not applying")

    def later() -> dict[str, Any]:
        # The run is not fed again once finished: its sums are the session's.
        dims = _dimension_costs(run, currency)
        return {"energy": dims["ENERGY"], "flat": dims["FLAT"], "time": dims["TIME"],
                "parking_time": dims["PARKING_TIME"], "reservation": dims["RESERVATION"],
                "charging_hours": _hours(run.charging), "parking_hours": _hours(run.parking),
                "reservation_hours": _hours(run.reservation)}

    # In the dataclass's order of fields (a breakdown reads as one made all at once).
    return _breakdown(
        later,
        currency=currency,
        total=total,
        total_before_limits=before,
        min_price_applied=min_applied,
        max_price_applied=max_applied,
        energy_kwh=run.energy,
        lines=Lines(lambda: tuple(_period_line(line, extras.get(n, _ZERO))
                                  for n, line in enumerate(run_lines))),
        unpriced=tuple(unpriced),
        notes=tuple(notes),
    )


def _hours(seconds: Decimal) -> Decimal:
    if seconds.is_zero() and not seconds.is_signed():
        return _NO_HOURS  # parking and reservation, mostly: what the line below makes of 0
    return _q(seconds / _HOUR, _HOURS_Q)


_NO_HOURS = _q(_ZERO / _HOUR, _HOURS_Q)


def _apply_step_sizes(run: _Run, notes: list[str]) -> None:
    """mod_cdrs step_size: once per session on the total of ENERGY, once on TIME and
    PARKING_TIME combined, with the step_size of the last relevant component, the extra
    billed at that component. Reservation time is its own group (it is a separate phase
    that the spec's reservation examples round on its own)."""
    # Billed is priced volume plus the extra: the same sums as the run's volumes (a volume
    # divided by one, as billed was once summed, is that volume to the digit).
    run.billed = dict(run.volume)
    for group in ("ENERGY", "TIME", "RESERVATION"):
        last = run.step_last.get(group)
        if last is None:
            continue
        tariff_key, element, dimension, bucket = last
        component = run.tariffs[tariff_key].elements[element].components[dimension]
        step = component.step_size
        if step <= 0:
            notes.append(f"{dimension} step_size {step} taken as no rounding")
            continue
        # Only the last piece's dimension is rounded: when charging is followed by
        # parking, charging time is not rounded (mod_cdrs' 21 + 16 minutes example).
        total = run.step_volume[(group, dimension)]
        units = total * _THOUSAND if group == "ENERGY" else total
        # The guard absorbs proportional-split noise so 1000.000...01 Wh is 1000 Wh.
        steps = (units.quantize(_STEP_GUARD) / step).to_integral_value(ROUND_CEILING)
        rounded = steps * step
        if group == "ENERGY":
            rounded = rounded / _THOUSAND
        extra = rounded - total
        timed = dimension in _TIMED
        run.add_amount(bucket, extra * component.price, component.factor, timed=timed)
        run.billed[bucket] += extra / (_HOUR if timed else _ONE)
        if group in run.last_line:
            run.extras[run.last_line[group]] = extra


def _period_line(line: _Line, extra: Decimal) -> PeriodLine:
    period_index, kind, t0, t1, dimension, _, _, comp, tariff_id, volume = line
    timed = dimension in _TIMED
    amount = (volume + extra) * comp.price
    line_excl = amount / _HOUR if timed else amount
    unit_q = _HOURS_Q if timed else None
    return PeriodLine(
        period_index=period_index,
        kind=kind,
        dimension=dimension,
        start=_dt(t0),
        # A flat fee is charged at a moment, not over the piece.
        end=_dt(t0 if dimension == "FLAT" else t1),
        tariff_id=tariff_id,
        element_index=comp.element,
        price=comp.price,
        vat=comp.vat,
        volume=_q(volume / _HOUR, unit_q) if unit_q else volume,
        billed_volume=(_q((volume + extra) / _HOUR, unit_q) if unit_q
                       else volume + extra),
        cost=Money2(_q(line_excl, _LINE_Q), _q(line_excl * comp.factor, _LINE_Q)),
    )


def _dimension_costs(run: _Run, currency: str) -> dict[str, DimensionCost]:
    dims: dict[str, DimensionCost] = {}
    for bucket in _BUCKETS:
        if (run.excl_direct[bucket] is _ZERO and run.excl_time[bucket] is _ZERO
                and run.incl_direct[bucket] is _ZERO and run.incl_time[bucket] is _ZERO
                and run.volume[bucket] is _ZERO and run.billed[bucket] is _ZERO):
            dims[bucket] = _nothing(bucket, currency)  # never priced: the same every time
            continue
        e = run.excl_direct[bucket] + _per_hour(run.excl_time[bucket])
        i = run.incl_direct[bucket] + _per_hour(run.incl_time[bucket])
        timed_bucket = bucket in ("TIME", "PARKING_TIME", "RESERVATION")
        volume, billed = run.volume[bucket], run.billed[bucket]
        dims[bucket] = DimensionCost(
            dimension=bucket,
            cost=Money2(_round_in_engine(e, currency), _round_in_engine(i, currency)),
            volume=_q(volume, _HOURS_Q) if timed_bucket else volume,
            billed_volume=_q(billed, _HOURS_Q) if timed_bucket else billed,
        )
    return dims


_ZERO_PER_HOUR = _ZERO / _HOUR


def _per_hour(amount: Decimal) -> Decimal:
    # A sum never added to (energy's and flat fees' time sums) divided once, not each time.
    return _ZERO_PER_HOUR if amount is _ZERO else amount / _HOUR


@functools.lru_cache(maxsize=256)
def _nothing(bucket: str, currency: str) -> DimensionCost:
    """A dimension nothing was priced in, as the arithmetic below makes it."""
    timed_bucket = bucket in ("TIME", "PARKING_TIME", "RESERVATION")
    zero = _ZERO + _ZERO / _HOUR
    cost = round_money(zero, currency)
    return DimensionCost(dimension=bucket, cost=Money2(cost, cost),
                         volume=_q(_ZERO, _HOURS_Q) if timed_bucket else _ZERO,
                         billed_volume=_q(_ZERO, _HOURS_Q) if timed_bucket else _ZERO)


def _unpriced_notes(run: _Run) -> list[str]:
    notes = []
    for dim, amount in run.unpriced.items():
        what = f"{amount} kWh" if dim == "ENERGY" else f"{_q(amount / _HOUR, _HOURS_Q)} h"
        notes.append(f"{dim}: {what} matched no tariff element and costs nothing")
    for index in sorted(run.no_tariff):
        notes.append(f"period {index}: no tariff applies to it; not priced")
    if not run.line_count and run.any_pieces and not run.no_tariff:
        notes.append("no tariff element matched this session")
    return notes
