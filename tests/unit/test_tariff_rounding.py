"""The engine rounds money in two quantizes (results._round_in_engine) where round_money goes
through minor units: the same amount, to the digit and the exponent, under the engine's
context, for amounts on a half, near one and anywhere, positive and negative."""

from __future__ import annotations

import random
from decimal import Decimal, localcontext

import pytest

from tariffs import round_money
from tariffs.decimals import _CTX
from tariffs.results import _round_in_engine

D = Decimal


@pytest.mark.parametrize("currency", ["SEK", "EUR", "JPY", "BHD"])
def test_the_engines_rounding_is_round_money(currency: str) -> None:
    rng = random.Random(currency)
    with localcontext(_CTX):
        for _ in range(20_000):
            digits = rng.randint(1, 45)
            amount = D(rng.randint(-10**digits, 10**digits)).scaleb(
                -rng.randint(max(0, digits - 25), 48))
            if rng.random() < 0.3:  # on or next to a half of the minor unit
                amount = (D(rng.randint(-10**6, 10**6)).scaleb(-rng.randint(0, 4))
                          + D(5).scaleb(-rng.randint(1, 4)))
            if rng.random() < 0.05:
                amount = D(rng.choice(["0", "-0", "0.000", "-0.0001"]))
            assert repr(_round_in_engine(amount, currency)) == repr(
                round_money(amount, currency)), amount
