"""The card hold: what a plausible longest session under a tariff would cost."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from payments.money import to_minor
from tariffs.clock import _aware
from tariffs.decimals import _HOUR, _exact
from tariffs.model import TariffError, TariffLike, _compile, _Compiled
from tariffs.pricing import price_plan
from tariffs.vat import _vat_ratio


def _preauthorize_amount(tariff: _Compiled) -> Decimal | None:
    # OCPI 2.3.0 Tariff.preauthorize_amount: what the CPO asks to be held, when it says.
    amount = tariff.source.preauthorize_amount
    if amount is not None and amount < 0:
        raise TariffError(f"preauthorize_amount {amount} is negative")
    return amount


@_exact
def hold_for(
    tariff: TariffLike,
    *,
    power_kw: Decimal,
    max_session: timedelta,
    cap_minor: int | None,
    currency: str,
    at: datetime | None = None,
    time_zone: str = "UTC",
) -> int:
    """The card hold in minor units.

    OCPI 2.3's preauthorize_amount when the tariff has one; else the price (incl. VAT) of
    a plausible maximum session: charging at power_kw for max_session from `at` (default
    now), with the tariff's max_price respected. Never below min_price incl. VAT; then
    capped by cap_minor (the configured cap or the driver's own), which wins over both.
    """
    compiled = _compile(tariff)
    if compiled.currency != currency.upper():
        raise TariffError(f"the tariff is in {compiled.currency}, the hold in {currency}")
    amount = _preauthorize_amount(compiled)
    if amount is not None:
        hold = to_minor(amount, currency)
    else:
        power = Decimal(power_kw)
        hours = Decimal(max_session.days * 86400 + max_session.seconds) / _HOUR
        start = _aware(at) if at is not None else datetime.now(UTC)
        plan = price_plan(compiled, start=start, energy_kwh=power * hours,
                          duration=max_session, power_kw=power, time_zone=time_zone)
        hold = to_minor(plan.total.incl_vat, currency)
    minimum = compiled.source.min_price
    if minimum is not None:
        gross = minimum.incl_vat if minimum.incl_vat is not None else (
            minimum.excl_vat * _vat_ratio(compiled))
        hold = max(hold, to_minor(gross, currency))
    if cap_minor is not None:
        hold = min(hold, cap_minor)
    return hold


# The energy search: 0.01 kWh is finer than any meter a driver reads, and 2000 kWh more
# than any car holds (a tariff still cheaper there has a max_price: no energy limit).
_ENERGY_STEP = Decimal("0.01")
_ENERGY_CEILING = Decimal(2000)


def _plan_minor(compiled: _Compiled, energy: Decimal, power: Decimal, start: datetime,
                time_zone: str, currency: str) -> int:
    seconds = energy * _HOUR / power
    plan = price_plan(compiled, start=start, energy_kwh=energy,
                      duration=timedelta(microseconds=int(seconds * 1_000_000)),
                      power_kw=power, time_zone=time_zone)
    return to_minor(plan.total.incl_vat, currency)


@_exact
def energy_for(
    tariff: TariffLike,
    amount_minor: int,
    *,
    power_kw: Decimal,
    currency: str,
    at: datetime | None = None,
    time_zone: str = "UTC",
) -> Decimal | None:
    """The most energy (kWh, to 0.01) that costs no more than amount_minor incl. VAT when
    charging at power_kw from `at`; None when no amount of energy reaches it (a max_price
    below it). The cost never falls as energy grows, so a bisection finds the edge."""
    compiled = _compile(tariff)
    power = Decimal(power_kw)
    if power <= 0:
        raise TariffError("the energy an amount buys needs a positive power")
    start = _aware(at) if at is not None else datetime.now(UTC)

    def cost(energy: Decimal) -> int:
        return _plan_minor(compiled, energy, power, start, time_zone, currency)

    if cost(_ENERGY_CEILING) <= amount_minor:
        return None
    if cost(_ENERGY_STEP) > amount_minor:  # a start fee above the amount: no energy at all
        return Decimal("0.00")
    low, high = _ENERGY_STEP, _ENERGY_CEILING
    while high - low > _ENERGY_STEP:
        middle = ((low + high) / 2).quantize(_ENERGY_STEP)
        if middle in (low, high):
            break
        if cost(middle) <= amount_minor:
            low = middle
        else:
            high = middle
    return low


@_exact
def meaningful_minimum(
    tariff: TariffLike,
    *,
    power_kw: Decimal,
    currency: str,
    energy_kwh: Decimal = Decimal(1),
    at: datetime | None = None,
    time_zone: str = "UTC",
) -> int:
    """What the smallest charge worth starting costs, in minor units incl. VAT: energy_kwh
    at power_kw with every fee the tariff adds (a start fee, its min_price), rounded up to
    a whole unit of the currency so the driver can type it."""
    compiled = _compile(tariff)
    power = Decimal(power_kw)
    if power <= 0:
        raise TariffError("a minimum charge needs a positive power")
    start = _aware(at) if at is not None else datetime.now(UTC)
    amount = _plan_minor(compiled, Decimal(energy_kwh), power, start, time_zone, currency)
    unit = to_minor(Decimal(1), currency)
    return -(-amount // unit) * unit
