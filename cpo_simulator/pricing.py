"""The simulator's own, deliberately small, tariff pricing (not ScanCharge's tariff engine).

Rules, all in Decimal:
- For each dimension (FLAT, ENERGY, TIME) the first tariff element without restrictions that
  has a price component of that type is used, as the spec orders elements. Elements with
  restrictions and PARKING_TIME are not priced, nor are min_price/max_price applied: the
  demo tariffs have none of these, and the simulated car never idles after charging.
- step_size is applied once to the session totals: energy rounded up to whole steps of Wh,
  time rounded up to whole steps of seconds.
- excl. VAT: flat price + billed kWh x energy price + billed hours x time price.
  incl. VAT: each of those plus its own component's VAT percentage.
- Only the reported amounts are rounded, each to 2 decimals half up: the total from the
  unrounded sum, and each sub-total from its own unrounded value.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal

from ocpi.modules.common import Price
from ocpi.modules.tariffs import PriceComponent, Tariff, TariffDimensionType

CENT = Decimal("0.01")
HUNDRED = Decimal(100)
SECONDS_PER_HOUR = Decimal(3600)


@dataclass(frozen=True)
class Amount:
    excl_vat: Decimal
    incl_vat: Decimal

    def rounded(self) -> Amount:
        return Amount(_round(self.excl_vat), _round(self.incl_vat))

    def __add__(self, other: Amount) -> Amount:
        return Amount(self.excl_vat + other.excl_vat, self.incl_vat + other.incl_vat)

    def to_price(self) -> Price:
        return Price(excl_vat=self.excl_vat, incl_vat=self.incl_vat)


@dataclass(frozen=True)
class Costs:
    """Rounded amounts; a sub-total is None when the tariff has no component for it."""

    total: Amount
    fixed: Amount | None
    energy: Amount | None
    time: Amount | None


def _round(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def _steps_up(value: Decimal, step: int) -> Decimal:
    """`value` rounded up to a whole number of `step`s (a step below 1 counts as 1)."""
    step_d = Decimal(max(step, 1))
    return (value / step_d).to_integral_value(rounding=ROUND_CEILING) * step_d


def _component(tariff: Tariff, kind: TariffDimensionType) -> PriceComponent | None:
    for element in tariff.elements:
        if element.restrictions is not None:
            continue
        for component in element.price_components:
            if component.type == kind:
                return component
    return None


def _with_vat(excl: Decimal, component: PriceComponent) -> Amount:
    vat = component.vat if component.vat is not None else Decimal(0)
    return Amount(excl, excl * (HUNDRED + vat) / HUNDRED)


def price_session(tariff: Tariff, kwh: Decimal, seconds: int) -> Costs:
    """Cost of a session that charged `kwh` over `seconds` under `tariff`."""
    parts: dict[TariffDimensionType, Amount] = {}

    flat = _component(tariff, TariffDimensionType.FLAT)
    if flat is not None:
        parts[TariffDimensionType.FLAT] = _with_vat(flat.price, flat)

    energy = _component(tariff, TariffDimensionType.ENERGY)
    if energy is not None:
        billed_kwh = _steps_up(kwh * 1000, energy.step_size) / 1000
        parts[TariffDimensionType.ENERGY] = _with_vat(billed_kwh * energy.price, energy)

    time = _component(tariff, TariffDimensionType.TIME)
    if time is not None:
        billed_hours = _steps_up(Decimal(seconds), time.step_size) / SECONDS_PER_HOUR
        parts[TariffDimensionType.TIME] = _with_vat(billed_hours * time.price, time)

    unrounded = Amount(Decimal(0), Decimal(0))
    for amount in parts.values():
        unrounded = unrounded + amount

    def sub(kind: TariffDimensionType) -> Amount | None:
        return parts[kind].rounded() if kind in parts else None

    return Costs(
        total=unrounded.rounded(),
        fixed=sub(TariffDimensionType.FLAT),
        energy=sub(TariffDimensionType.ENERGY),
        time=sub(TariffDimensionType.TIME),
    )
