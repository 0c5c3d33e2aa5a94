"""A period's numbers are held to the model's limits (finite, under 10**12 in magnitude, at
most 40 decimal places) when read without the model (tariffs.periods._number_ok and its
copy inline in _read_fast, one quantize instead of as_tuple): exactly the numbers the model
refuses are refused, trailing zeros counted as the model counts them."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from tariffs import TariffError, price_session
from tariffs.model import _MAX_NUMBER
from tariffs.periods import _number_ok, _read_fast

D = Decimal
TARIFF = {"country_code": "SE", "party_id": "REF", "id": "t", "currency": "SEK",
          "last_updated": "2024-01-01T00:00:00Z",
          "elements": [{"price_components": [{"type": "ENERGY", "price": D(1),
                                              "step_size": 1}]}]}


def _model_takes(number: Decimal) -> bool:
    """model._json_number's rule, its magnitude compared exactly (its abs() rounds to the
    context's precision: 999999999999.99... in 52 digits is 1E+12 there)."""
    exponent = number.as_tuple().exponent
    return (number.is_finite() and -_MAX_NUMBER < number < _MAX_NUMBER
            and isinstance(exponent, int) and exponent >= -40)


def _read_takes(number: Decimal) -> bool:
    return _read_fast({"start_date_time": "2024-06-03T14:00:00Z",
                       "dimensions": [{"type": "ENERGY", "volume": number}]}) is not None


_EDGES = ["0E-41", "0E-40", "-0E-41", "-0", "0E+100", "0E-9999999", "1E+12", "-1E+12",
          "999999999999." + "9" * 40, "999999999999." + "9" * 41, "-999999999999.5",
          "1000000000000.0", "9.99E+11", "1E+100", "1E-40", "1E-41", "1E-999999",
          "1E+999999", "Infinity", "-Infinity", "NaN", "-NaN", "sNaN"]


@pytest.mark.parametrize("text", _EDGES)
def test_the_edges_are_told_as_the_model_tells_them(text: str) -> None:
    number = D(text)
    assert _number_ok(number) == _model_takes(number) == _read_takes(number), number


def test_the_numbers_are_told_as_the_model_tells_them() -> None:
    rng = random.Random(40)
    for _ in range(50_000):
        digits = rng.randint(1, 70)
        number = D(rng.randint(-10**digits, 10**digits)).scaleb(rng.randint(-80, 30))
        if rng.random() < 0.3:  # trailing zeros: places the value does not need
            text = format(number, "f")
            number = D(text + ("" if "." in text else ".") + "0" * rng.randint(0, 20))
        if rng.random() < 0.05:
            number = D(0).scaleb(rng.randint(-60, 20))
        model = _model_takes(number)
        assert _number_ok(number) == model, number
        assert _read_takes(number) == model, number


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


@pytest.mark.parametrize("precision", [50, 28, 12])
def test_a_start_is_the_scaled_microseconds_to_the_digit(precision: int) -> None:
    """clock._secs/_secs_of_text multiply whole microseconds by 1E-6 instead of scaleb(-6):
    the same coefficient and exponent, in the engine's context and in coarser ones."""
    from datetime import timedelta
    from decimal import Context, localcontext

    from tariffs.clock import _EPOCH, _secs, _secs_of_text

    rng = random.Random(precision)
    with localcontext(Context(prec=precision)):
        for _ in range(2_000):
            micro = rng.randint(-10**16, 2 * 10**17)
            moment = _EPOCH + timedelta(microseconds=micro)
            expected = D(micro).scaleb(-6)
            for got in (_secs(moment), _secs_of_text(moment.isoformat())):
                assert got.as_tuple() == expected.as_tuple(), (micro, got)
