"""Time as exact seconds, and the local moments (times of day, DST switches) a tariff cuts at."""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from tariffs.model import _MIDNIGHT, TariffError

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Microseconds times 1E-6 is what scaleb(-6) makes of them (the same coefficient, exponent
# -6, rounded alike), without scaleb's keyword parsing: once for every period.
_MICRO = Decimal("1E-6")
_MAX_SPAN_DAYS = 3700


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
    # Whole microseconds, scaled: always six decimal places, as whole seconds plus
    # microseconds would be, in one Decimal instead of three.
    return Decimal((delta.days * 86400 + delta.seconds) * 1_000_000
                   + delta.microseconds) * _MICRO


def _secs_of_text(value: str) -> Decimal:
    """_secs(model.parse_datetime(value)) in one step: an aware time less the epoch is the
    same instant whatever its offset, so it is not converted to UTC first."""
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    parsed = datetime.fromisoformat(text)
    if not 1 < parsed.year < 9999:  # where converting to UTC could overflow: as it does
        parsed = parsed.astimezone(UTC) if parsed.tzinfo is not None else parsed
    delta = (parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)) - _EPOCH
    return Decimal((delta.days * 86400 + delta.seconds) * 1_000_000
                   + delta.microseconds) * _MICRO


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
    tods = tuple(times_of_day)
    cuts: list[Decimal] = []
    day = first
    while day <= last:
        cuts.extend(x for x in _day_cuts(zone, tods, day) if a < x < b)
        day += timedelta(days=1)
    return cuts


@functools.lru_cache(maxsize=8192)
def _day_cuts(zone: ZoneInfo, times_of_day: tuple[time, ...], day: date
              ) -> tuple[Decimal, ...]:
    """One local day's cut instants, whatever the session: computed once per zone, tariff
    times and day (the same days recur in every session of a day)."""
    cuts: list[Decimal] = []
    for tod in times_of_day:
        for fold in (0, 1):
            wall = datetime.combine(day, tod, tzinfo=zone).replace(fold=fold)
            x = _secs(wall)
            # A wall time the clock skips does not round-trip; the switch covers it.
            if _dt(x).astimezone(zone).replace(tzinfo=None) == wall.replace(tzinfo=None) \
                    and x not in cuts:
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
        cuts.append(Decimal(hi))
    return tuple(cuts)
