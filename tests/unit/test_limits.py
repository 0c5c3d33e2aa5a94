"""The limits a driver is told before paying: how much energy an amount buys at a
connector, and the smallest cap worth starting with (tariffs.energy_for,
tariffs.meaningful_minimum)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from tariffs import energy_for, meaningful_minimum, price_plan

AT = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def tariff(**extra: object) -> dict:
    return {
        "country_code": "SE", "party_id": "SIM", "id": "T", "currency": "SEK",
        "elements": [{"price_components": [
            {"type": "FLAT", "price": 4, "vat": 25, "step_size": 1},
            {"type": "ENERGY", "price": Decimal("3.60"), "vat": 25, "step_size": 1},
        ]}],
        "last_updated": "2026-01-01T00:00:00Z", **extra,
    }


def test_energy_for_an_amount_is_the_edge_of_what_it_buys() -> None:
    # 5 kr start fee + 4.50 kr/kWh incl. VAT: 95 kr buys (95 - 5) / 4.5 = 20 kWh.
    assert energy_for(tariff(), 9500, power_kw=Decimal(11), currency="SEK", at=AT) == \
        Decimal("20.00")
    # 100 kr: 21.11 kWh costs 99.995 -> 100.00 kr (half up), 21.12 costs 100.04.
    kwh = energy_for(tariff(), 10000, power_kw=Decimal(11), currency="SEK", at=AT)
    assert kwh == Decimal("21.11")


@pytest.mark.parametrize("amount", [600, 2345, 9999, 45000])
def test_the_energy_found_never_costs_more_and_a_step_more_does(amount: int) -> None:
    kwh = energy_for(tariff(), amount, power_kw=Decimal(22), currency="SEK", at=AT)
    assert kwh is not None

    def cost(energy: Decimal) -> Decimal:
        from datetime import timedelta
        return price_plan(tariff(), start=AT, energy_kwh=energy, power_kw=Decimal(22),
                          duration=timedelta(seconds=int(energy * 3600 / 22) + 1),
                          time_zone="UTC").total.incl_vat

    assert cost(kwh) <= Decimal(amount) / 100
    assert cost(kwh + Decimal("0.02")) > Decimal(amount) / 100


def test_an_amount_below_the_start_fee_buys_nothing() -> None:
    assert energy_for(tariff(), 400, power_kw=Decimal(11), currency="SEK", at=AT) == 0


def test_a_max_price_below_the_amount_means_no_energy_limit() -> None:
    capped = tariff(max_price={"excl_vat": 40, "incl_vat": 50})
    assert energy_for(capped, 9500, power_kw=Decimal(11), currency="SEK", at=AT) is None


def test_the_meaningful_minimum_is_the_start_fee_and_a_kwh_rounded_up() -> None:
    # 5.00 + 4.50 = 9.50 kr, typed as whole kronor: 10 kr.
    assert meaningful_minimum(tariff(), power_kw=Decimal(11), currency="SEK", at=AT) == 1000
    with_min = tariff(min_price={"excl_vat": 16, "incl_vat": 20})
    assert meaningful_minimum(with_min, power_kw=Decimal(11), currency="SEK", at=AT) == 2000
