"""Whether an element's restrictions hold for a moment of the session, and which element prices."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, time
from decimal import Decimal
from zoneinfo import ZoneInfo

from tariffs.clock import _dt
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
    # The local time made only when a restriction reads it (local is None until then).
    at: Decimal | None = None
    zone: ZoneInfo | None = None

    def local_time(self) -> datetime:
        if self.local is None:
            assert self.at is not None and self.zone is not None
            self.local = _dt(self.at).astimezone(self.zone)
        return self.local


def _holds(r: _Restrictions | None, c: _Context) -> bool:
    if r is None:
        return c.kind != RESERVATION
    checks = r.checks
    if checks is None:
        checks = _checks_of(r)
        object.__setattr__(r, "checks", checks)  # worked out once per tariff element
    for check in checks:  # noqa: SIM110 - a plain loop: all() over a generator costs more here
        if not check(c):
            return False
    return True


_Check = Callable[[_Context], bool]


def _checks_of(r: _Restrictions) -> tuple[_Check, ...]:
    """The element's restrictions as the checks that apply, in the order they are read
    (which matters: an unknown power or current is noted only when reached)."""
    checks: list[_Check] = []
    if r.reservation is None:
        checks.append(lambda c: c.kind != RESERVATION)
    elif r.reservation == "RESERVATION_EXPIRES":
        # An expired reservation is priced by RESERVATION_EXPIRES elements first and by
        # RESERVATION elements for what those lack (mod_tariffs, ReservationRestrictionType).
        checks.append(lambda c: c.kind == RESERVATION and c.expired)
    else:
        checks.append(lambda c: c.kind == RESERVATION)
    if r.local:
        checks.append(lambda c: _local_holds(r, c.local_time()))
    for low, high, what in ((r.min_kwh, r.max_kwh, "kwh"),
                            (r.min_duration, r.max_duration, "duration")):
        if low is not None or high is not None:
            checks.append(_within(what, low, high))
    for low, high, what in ((r.min_power, r.max_power, "power"),
                            (r.min_current, r.max_current, "current")):
        if low is not None or high is not None:
            checks.append(_measured(what, low, high))
    return tuple(checks)


def _local_holds(r: _Restrictions, local: datetime) -> bool:
    if (r.start_time or r.end_time) and not _time_of_day_holds(r, local.time()):
        return False
    day = local.date()
    if r.start_date is not None and day < r.start_date:
        return False
    if r.end_date is not None and day >= r.end_date:
        return False
    return not (r.days is not None and local.weekday() not in r.days)


def _within(what: str, low: Decimal | None, high: Decimal | None) -> _Check:
    def check(c: _Context) -> bool:
        value = getattr(c, what)
        return not ((low is not None and value < low) or (high is not None and value >= high))
    return check


def _measured(what: str, low: Decimal | None, high: Decimal | None) -> _Check:
    """A power or current restriction: one the periods do not answer is noted, and the
    element taken as not applying."""
    def check(c: _Context) -> bool:
        value = getattr(c, what)
        if value is None:
            c.unknown.add(what)
            return False
        return not ((low is not None and value < low) or (high is not None and value >= high))
    return check


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
