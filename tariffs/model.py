"""The tariff as the engine reads it: the OCPI objects as the engine's own types, checked
and compiled for pricing.

The engine reads OCPI 2.2.1 objects (as JSON-like dicts, or as the models below) without the
protocol edge: what it checks is what it needs to price honestly (required fields, JSON
numbers, enumerations it prices by). Whether an object is valid OCPI in every other respect
(string lengths, CiStrings, URLs) is the edge's business (ocpi.modules).
"""

from __future__ import annotations

import copy
import dataclasses
import re
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictInt,
    ValidationError,
    field_validator,
)
from pydantic_core import PydanticCustomError

from tariffs.decimals import _ONE

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


# --- The OCPI objects the engine reads --------------------------------------------------

# The same bounds as the protocol edge's numbers: beyond them no real price or volume lies,
# and 1E-999999 would make exact arithmetic crawl.
_MAX_NUMBER = Decimal(10) ** 12
_MAX_PLACES = 40
_INT_LIMIT = 2**31


def _json_number(value: Any) -> Decimal:
    # A JSON number (read as Decimal or int, or a float from Python callers); a string or a
    # boolean (an int in Python) is no OCPI number.
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise PydanticCustomError("decimal_type",
                                  "Input should be a valid decimal (a JSON number)")
    number = value if isinstance(value, Decimal) else Decimal(str(value))
    if not number.is_finite():
        raise ValueError("must be a finite number")
    if abs(number) >= _MAX_NUMBER:
        raise ValueError(f"must be less than {_MAX_NUMBER:,f} in magnitude")
    exponent = number.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -_MAX_PLACES:
        raise ValueError(f"more than {_MAX_PLACES} decimal places")
    return number


Number = Annotated[Decimal, BeforeValidator(_json_number)]
Int = Annotated[StrictInt, Field(ge=-_INT_LIMIT, lt=_INT_LIMIT)]


def parse_datetime(value: str) -> datetime:
    """An OCPI DateTime; a value without offset is UTC (types.asciidoc)."""
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def format_datetime(value: datetime) -> str:
    """An OCPI DateTime as written: UTC, ISO 8601, 'Z', whole seconds."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class OcpiObject(BaseModel):
    """An OCPI object as the engine reads it: unknown fields ignored, nulls as absent."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    @field_validator("*", mode="before")
    @classmethod
    def _datetimes(cls, value: Any, info: Any) -> Any:
        field = cls.model_fields.get(info.field_name)
        if field is None or field.annotation not in (datetime, datetime | None):
            return value
        if isinstance(value, str):
            if len(value) > 64:  # RFC 3339 text is 20-35 characters; parse no essays
                raise ValueError("not an OCPI DateTime: too long")
            try:
                return parse_datetime(value)
            except (ValueError, OverflowError) as exc:
                raise ValueError(f"not an OCPI DateTime: {value!r}") from exc
        if value is not None and not isinstance(value, datetime):
            # pydantic would read a number as Unix time; an OCPI DateTime is always text.
            raise ValueError(f"not an OCPI DateTime: {value!r}")
        return value

    def to_json(self) -> dict[str, Any]:
        """The object as OCPI JSON: DateTimes in UTC with Z, no nulls, numbers as the exact
        Decimals they were."""
        return _jsonable(self.model_dump(mode="python", exclude_none=True))


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime):
        return format_datetime(value)
    if isinstance(value, StrEnum):
        return value.value
    return value


_O = TypeVar("_O", bound=OcpiObject)


def read(model: type[_O], data: Any) -> _O:
    """Read `data` as `model`, or raise TariffError naming the offending fields."""
    if not isinstance(data, dict):
        raise TariffError(f"expected a {model.__name__} object")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors()[:5]:
            where = ".".join(str(p) for p in error["loc"]) or model.__name__
            problems.append(f"{where}: {error['msg']}")
        raise TariffError(f"Invalid {model.__name__}: " + "; ".join(problems)) from exc


class DisplayText(OcpiObject):
    language: str
    text: str


class Price(OcpiObject):
    excl_vat: Number
    incl_vat: Number | None = None


class PriceComponent(OcpiObject):
    type: Literal["ENERGY", "FLAT", "PARKING_TIME", "TIME"]
    price: Number
    vat: Number | None = None
    step_size: Int


class TariffRestrictions(OcpiObject):
    start_time: str | None = None
    end_time: str | None = None
    start_date: str | None = None
    end_date: str | None = None
    min_kwh: Number | None = None
    max_kwh: Number | None = None
    min_current: Number | None = None
    max_current: Number | None = None
    min_power: Number | None = None
    max_power: Number | None = None
    min_duration: Int | None = None
    max_duration: Int | None = None
    day_of_week: list[str] | None = None
    reservation: str | None = None


class TariffElement(OcpiObject):
    price_components: list[PriceComponent] = Field(min_length=1)
    restrictions: TariffRestrictions | None = None


class Tariff(OcpiObject):
    """OCPI 2.2.1 Tariff (mod_tariffs), with 2.3.0's preauthorize_amount when sent."""

    country_code: str
    party_id: str
    id: str
    currency: str
    type: Literal["AD_HOC_PAYMENT", "PROFILE_CHEAP", "PROFILE_FAST", "PROFILE_GREEN",
                  "REGULAR"] | None = None
    tariff_alt_text: list[DisplayText] | None = None
    tariff_alt_url: str | None = None
    min_price: Price | None = None
    max_price: Price | None = None
    preauthorize_amount: Number | None = None
    elements: list[TariffElement] = Field(min_length=1)
    start_date_time: datetime | None = None
    end_date_time: datetime | None = None
    energy_mix: dict[str, Any] | None = None
    last_updated: datetime


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
    # Whether any restriction reads the local clock: worked out once, as every piece of
    # every session checks it.
    local: bool = dataclasses.field(init=False, default=False)
    # The restrictions as checks (tariffs.restrictions), made on first use.
    checks: tuple[Any, ...] | None = dataclasses.field(init=False, default=None,
                                                        compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "local", bool(
            self.start_time or self.end_time or self.start_date or self.end_date
            or self.days is not None))

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
    source: Tariff
    id: str
    currency: str
    elements: list[_Element]
    by_dimension: dict[str, list[_Element]]
    times_of_day: tuple[time, ...]
    has_local: bool
    durations: tuple[Decimal, ...]
    kwh_marks: tuple[Decimal, ...]
    notes: list[str]
    vat_ratio: Decimal | None = None  # tariffs.vat, worked out on first use
    # tariffs.choice._Plan (its bounds and remembered choices), made on first use.
    plan: Any = dataclasses.field(default=None, compare=False, repr=False)


def _as_tariff(tariff: Tariff | Mapping[str, Any]) -> Tariff:
    if isinstance(tariff, Tariff):
        return tariff
    if not isinstance(tariff, Mapping):
        raise TariffError(f"expected a Tariff object, got {type(tariff).__name__}")
    return read(Tariff, dict(tariff))


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


def _compile_restrictions(r: TariffRestrictions, where: str) -> _Restrictions:
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


# Compiled tariffs by (country_code, party_id, id, last_updated): a CPO sends a new
# last_updated with every change, so a live session's every update finds its tariff here.
# Bounded: a process prices with a few hundred tariffs at most at any one time.
_CACHE_SIZE = 512
_cache: OrderedDict[tuple[Any, ...], tuple[Any, _Compiled]] = OrderedDict()
_cache_lock = threading.Lock()


def _cache_key(tariff: Any) -> tuple[Any, ...] | None:
    # The form is part of the key: a dict and the model read from it never compare equal,
    # and would otherwise push each other out of the cache.
    if type(tariff) is dict:
        key = ("dict", tariff.get("country_code"), tariff.get("party_id"), tariff.get("id"),
               tariff.get("last_updated"))
    elif isinstance(tariff, Tariff):
        key = ("model", tariff.country_code, tariff.party_id, tariff.id, tariff.last_updated)
    else:
        return None
    for k in key:  # a loop, not all() over a generator: this runs for every price
        if type(k) is not str and type(k) is not datetime:
            return None
    return key


# What every pricing function takes as its tariff.
TariffLike = Tariff | Mapping[str, Any] | _Compiled


def _compile(tariff: TariffLike) -> _Compiled:
    """The tariff compiled for pricing, once per version of it.

    The key alone is not trusted: the cached source must equal the one given (a deep
    comparison in C, microseconds), so a caller that changes a tariff without changing its
    last_updated (a test, a hand-written file) still gets what it gave."""
    if isinstance(tariff, _Compiled):
        return tariff
    key = _cache_key(tariff)
    if key is not None:
        with _cache_lock:
            hit = _cache.get(key)
            if hit is not None and hit[0] == tariff:
                _cache.move_to_end(key)
                return hit[1]
    compiled = _compile_source(_as_tariff(tariff))
    if key is not None:
        # A copy: the caller's dict may be changed after this call.
        kept = copy.deepcopy(tariff)
        with _cache_lock:
            _cache[key] = (kept, compiled)
            _cache.move_to_end(key)
            while len(_cache) > _CACHE_SIZE:
                _cache.popitem(last=False)
    return compiled


def compile_tariff(tariff: TariffLike) -> _Compiled:
    """The tariff read, checked and compiled for pricing (cached per version): every
    pricing function takes the result in place of the tariff, for a loop that prices
    often with one tariff."""
    return _compile(tariff)


def _compile_source(source: Tariff) -> _Compiled:
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
