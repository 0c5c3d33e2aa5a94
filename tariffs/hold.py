"""The card hold: what a plausible longest session under a tariff would cost."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from payments.money import to_minor
from tariffs.clock import _aware
from tariffs.decimals import _HOUR, _exact
from tariffs.model import Tariff, TariffError, _compile, _Compiled
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
    tariff: Tariff | Mapping[str, Any],
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
        plan = price_plan(compiled.source, start=start, energy_kwh=power * hours,
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
