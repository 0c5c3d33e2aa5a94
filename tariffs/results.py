"""What a priced session comes to: totals per dimension, priced lines, and the one
money rounding rule."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal, localcontext
from typing import TYPE_CHECKING, Any, overload

from payments.money import exponent, from_minor, to_minor
from tariffs.decimals import _CTX, _CTX_HALF_UP, _GUARD, _HOURS_Q, _q


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


class Lines(Sequence[PeriodLine]):
    """A breakdown's priced lines, made when first read: the live cost, the hold and the
    price display never read them, and making them is a sixth of pricing a session. Reads
    as the tuple of lines it stands for (and equals it)."""

    __slots__ = ("_made", "_make")

    def __init__(self, make: Callable[[], tuple[PeriodLine, ...]]) -> None:
        self._make: Callable[[], tuple[PeriodLine, ...]] | None = make
        self._made: tuple[PeriodLine, ...] = ()

    def _lines(self) -> tuple[PeriodLine, ...]:
        if self._make is not None:
            with localcontext(_CTX):  # made later, but with the engine's exact arithmetic
                self._made, self._make = self._make(), None
        return self._made

    @overload
    def __getitem__(self, index: int) -> PeriodLine: ...
    @overload
    def __getitem__(self, index: slice) -> tuple[PeriodLine, ...]: ...

    def __getitem__(self, index: int | slice) -> PeriodLine | tuple[PeriodLine, ...]:
        return self._lines()[index]

    def __len__(self) -> int:
        return len(self._lines())

    def __iter__(self) -> Iterator[PeriodLine]:
        return iter(self._lines())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Lines):
            other = other._lines()
        return self._lines() == other

    def __hash__(self) -> int:
        return hash(self._lines())

    def __repr__(self) -> str:
        return repr(self._lines())


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
    lines: Sequence[PeriodLine] = ()
    unpriced: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    if not TYPE_CHECKING:  # mypy keeps checking attribute names
        def __getattr__(self, name: str) -> Any:
            # Only reached for a field the engine left to be made when first read
            # (_breakdown): the dimensions and hours, made all at once, then kept.
            later = self.__dict__.get("_later")
            if later is None or name not in _LATER:
                raise AttributeError(f"{type(self).__name__!r} object has no attribute "
                                     f"{name!r}")
            with localcontext(_CTX):  # made later, but with the engine's exact arithmetic
                made = later()
            # Two threads reading at once both make the same fields: either may finish first.
            self.__dict__.update(made)
            self.__dict__.pop("_later", None)
            return made[name]

    def __getstate__(self) -> dict[str, Any]:
        # Copied whole: every field made, no maker kept.
        for name in _LATER:
            getattr(self, name)
        return self.__dict__

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


# The fields of a breakdown the engine makes when first read: the live cost, the hold and
# the price display read the total only, and the five dimensions' costs and volumes (ten
# roundings, five objects) and the three hours were a sixth of pricing a session.
_LATER = frozenset(("energy", "flat", "time", "parking_time", "reservation",
                    "charging_hours", "parking_hours", "reservation_hours"))
_new = object.__new__


def _breakdown(later: Callable[[], dict[str, Any]], **made: Any) -> PriceBreakdown:
    """A PriceBreakdown of the fields in `made`, the rest (_LATER) made by `later` when
    one of them is first read: it equals, hashes, prints and reads as the breakdown of all
    the fields would."""
    out = _new(PriceBreakdown)
    out.__dict__.update(made, _later=later)
    return out


def _money2(excl_vat: Decimal, incl_vat: Decimal) -> Money2:
    """Money2(excl_vat, incl_vat) as the engine makes it, a few times a session: the same
    object, without a frozen dataclass's setting of each field through object.__setattr__."""
    out = _new(Money2)
    fields = out.__dict__
    fields["excl_vat"] = excl_vat
    fields["incl_vat"] = incl_vat
    return out


# --- The rounding rule, written once ----------------------------------------------------


def round_money(amount: Decimal, currency: str) -> Decimal:
    """An exact amount to the currency's minor unit, half up (as payments.money.to_minor).

    The amount is first brought to 20 decimal places, which removes the last-digit noise of
    the engine's only inexact steps (dividing by 3600 s/h, splitting a period in proportion)
    so that an amount that is exactly on a half (0.125) rounds up as it should.
    """
    if not amount:  # most of a session's dimensions cost nothing
        return _zero_of(currency)
    guarded = amount.quantize(_GUARD, context=_CTX)
    places = _places(currency)
    # payments.money.to_minor then from_minor, with the exponent looked up once.
    minor = int(guarded.scaleb(places).quantize(_UNIT, rounding=ROUND_HALF_UP))
    return Decimal(minor).scaleb(-places)


def _round_in_engine(amount: Decimal, currency: str) -> Decimal:
    """round_money as the engine calls it (under its 50-digit context, tariffs.decimals),
    in two quantizes: the same two roundings to the same digits, without going through
    minor units, and zero always unsigned as from_minor makes it."""
    if not amount:
        return _zero_of(currency)
    places = _places(currency)
    # amount.quantize(_GUARD, context=_CTX).quantize(_quantum(places),
    # rounding=ROUND_HALF_UP, context=_CTX), by the contexts' methods (no keyword parsing).
    rounded = _CTX_HALF_UP.quantize(_CTX.quantize(amount, _GUARD), _quantum(places))
    return rounded if rounded else _zero_of(currency)


@functools.lru_cache(maxsize=16)
def _quantum(places: int) -> Decimal:
    return Decimal(1).scaleb(-places)


@functools.lru_cache(maxsize=64)
def _places(currency: str) -> int:
    return exponent(currency)


@functools.lru_cache(maxsize=64)
def _zero_of(currency: str) -> Decimal:
    return from_minor(to_minor(_ZERO_AMOUNT, currency), currency)


_UNIT = Decimal(1)
_ZERO_AMOUNT = Decimal(0)
