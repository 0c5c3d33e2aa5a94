"""A period's numbers are held to the model's limit of 40 decimal places when read without
the model (tariffs.periods._places_ok, which avoids as_tuple where it can): exactly the
numbers the model refuses are refused, trailing zeros counted as the model counts them."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from tariffs import TariffError, price_session
from tariffs.periods import _places_ok

D = Decimal
TARIFF = {"country_code": "SE", "party_id": "REF", "id": "t", "currency": "SEK",
          "last_updated": "2024-01-01T00:00:00Z",
          "elements": [{"price_components": [{"type": "ENERGY", "price": D(1),
                                              "step_size": 1}]}]}


def test_the_places_are_told_as_the_exponent_tells_them() -> None:
    rng = random.Random(40)
    for _ in range(50_000):
        digits = rng.randint(1, 70)
        number = D(rng.randint(-10**digits, 10**digits)).scaleb(-rng.randint(0, 80))
        if rng.random() < 0.3:  # trailing zeros: places the value does not need
            text = format(number, "f")
            number = D(text + ("" if "." in text else ".") + "0" * rng.randint(0, 20))
        if rng.random() < 0.05:
            number = D(0).scaleb(-rng.randint(0, 60))
        assert _places_ok(number) == (number.as_tuple().exponent >= -40), number  # type: ignore[operator]


@pytest.mark.parametrize("volume", ["1." + "0" * 41, "0." + "0" * 40 + "1", "0E-41",
                                    "12345678901." + "1" * 41])
def test_a_period_with_more_than_40_places_is_refused(volume: str) -> None:
    period = {"start_date_time": "2024-06-03T14:00:00Z",
              "dimensions": [{"type": "ENERGY", "volume": D(volume)}]}
    with pytest.raises(TariffError, match="decimal places"):
        price_session(TARIFF, [period], time_zone="Europe/Stockholm",
                      session_end=datetime(2024, 6, 3, 15, tzinfo=UTC))


@pytest.mark.parametrize("volume", ["1." + "0" * 40, "0." + "0" * 39 + "1", "0E-40",
                                    "4.166666666666666666666666667"])
def test_a_period_with_40_places_or_fewer_is_priced(volume: str) -> None:
    period = {"start_date_time": "2024-06-03T14:00:00Z",
              "dimensions": [{"type": "ENERGY", "volume": D(volume)}]}
    priced = price_session(TARIFF, [period], time_zone="Europe/Stockholm",
                           session_end=datetime(2024, 6, 3, 15, tzinfo=UTC))
    assert priced.energy_kwh == D(volume)
