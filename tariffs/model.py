"""The tariff as the engine reads it: parsed, checked and compiled for pricing."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, time
from decimal import Decimal
from typing import Any

from ocpi import wire
from ocpi.transport import OcpiError
from tariffs.decimals import _ONE

Tariff = wire.Tariff

DIMENSIONS = ("ENERGY", "FLAT", "TIME", "PARKING_TIME")
# Reservation costs are reported apart, as the CDR does (total_reservation_cost).
_BUCKETS = ("ENERGY", "FLAT", "TIME", "PARKING_TIME", "RESERVATION")
_DAYS = ("MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY", "SUNDAY")
_RESERVATION_VALUES = ("RESERVATION", "RESERVATION_EXPIRES")

CHARGING = "CHARGING"
PARKING = "PARKING"
RESERVATION = "RESERVATION"
_MIDNIGHT = time(0, 0)
_TIME_RE = re.compile(r"^([01][0-9]|2[0-3]):[0-5][0-9]$")


class TariffError(ValueError):
    """A tariff, period or CDR the engine cannot price honestly; the message says why."""


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
