"""What a session costs, before, during and after it: the engine's public pricing API.

Pure Python (no Flask, no database, nothing of the protocol edge). Every amount is a
Decimal; the one rounding rule is `round_money`. docs/tariffs.md explains the engine's
reading of the spec where the spec is ambiguous; tariffs.session says how a session is
priced.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from pydantic import Field

from tariffs.clock import _dt, _secs, _zone
from tariffs.decimals import _HOUR, _MICRO, _THOUSAND, _ZERO, _exact, _q
from tariffs.model import OcpiObject, Tariff, TariffError, TariffLike, _compile, _Compiled, read
from tariffs.periods import ChargingPeriod, _Period, _periods
from tariffs.results import PriceBreakdown
from tariffs.session import _price

# One phase at 230 V: the sum of phase currents is power / 230 V whatever the phase count.
_VOLTS_PER_PHASE = Decimal(230)


class Cdr(OcpiObject):
    """The parts of an OCPI 2.2.1 CDR (mod_cdrs) that price it."""

    start_date_time: datetime
    end_date_time: datetime
    currency: str
    tariffs: list[Tariff] | None = None
    charging_periods: list[ChargingPeriod] = Field(min_length=1)


@_exact
def price_session(
    tariff: TariffLike,
    periods: Sequence[ChargingPeriod | Mapping[str, Any]],
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
                          notes, tariff=compiled)
    start = _secs(session_start) if session_start is not None else None
    _validity_note(compiled, start if start is not None else normalized[0].start, notes)
    return _price(normalized, zone=zone, session_start=start, expired=reservation_expired,
                  limits_from=compiled, notes=notes, tariff=compiled)


def _validity_note(t: _Compiled, session_start: Decimal, notes: list[str]) -> None:
    """The driver accepts the tariff valid when the session starts (mod_tariffs note on
    start_date_time); a session outside that window is still priced, and said so."""
    src = t.source
    if src.start_date_time is None and src.end_date_time is None:
        return  # valid whenever: the usual tariff
    start = _dt(session_start)
    if src.start_date_time is not None and start < src.start_date_time:
        notes.append(f"tariff {t.id} is valid only from {src.start_date_time.isoformat()}")
    if src.end_date_time is not None and start > src.end_date_time:
        notes.append(f"tariff {t.id} was valid only until {src.end_date_time.isoformat()}")


@_exact
def price_cdr(
    cdr: Cdr | Mapping[str, Any],
    *,
    time_zone: str,
    tariffs: Sequence[TariffLike] | None = None,
) -> PriceBreakdown:
    """Price a CDR from its charging periods: with `tariffs` when given (one tariff prices
    every period), else with the CDR's own tariffs, chosen per period by tariff_id."""
    if not isinstance(cdr, Cdr):
        if not isinstance(cdr, Mapping):
            raise TariffError("expected a CDR object")
        cdr = read(Cdr, dict(cdr))
    notes: list[str] = []
    explicit = tariffs is not None
    compiled = [_compile(t) for t in (tariffs if tariffs is not None else cdr.tariffs or [])]
    if not compiled:
        raise TariffError("the CDR carries no tariffs; give one to price it with")
    by_id = {t.id.lower(): t for t in compiled}
    only = compiled[0] if len(compiled) == 1 else None
    told: set[str] = set()

    def tariff_for(cp: ChargingPeriod | None, index: int) -> _Compiled | None:
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
    tariff: TariffLike,
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
                  limits_from=compiled, notes=notes, tariff=compiled)
