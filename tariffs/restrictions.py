"""Whether an element's restrictions hold for a moment of the session, and which element prices."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time
from decimal import Decimal

from tariffs.model import RESERVATION, _Compiled, _Component, _Restrictions


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
