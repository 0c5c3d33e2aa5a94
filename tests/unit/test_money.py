"""Money rules: minor units with half-up rounding per currency exponent, no floats, the
formats drivers read, and VAT arithmetic."""

from __future__ import annotations

from decimal import Decimal

import pytest

from payments.money import Money, exponent, from_minor, net_from_gross, to_minor, vat_split

NBSP = "\u00a0"


@pytest.mark.parametrize(
    ("currency", "expected"),
    [("SEK", 2), ("EUR", 2), ("sek", 2), ("JPY", 0), ("KRW", 0), ("KWD", 3), ("BHD", 3)],
)
def test_exponent(currency: str, expected: int) -> None:
    assert exponent(currency) == expected


@pytest.mark.parametrize(
    ("amount", "currency", "minor"),
    [
        # two decimals: half up at the third
        (Decimal("4.40"), "SEK", 440),
        (Decimal("1.005"), "SEK", 101),
        (Decimal("1.004999"), "SEK", 100),
        (Decimal("0.125"), "EUR", 13),  # half up, not half even (which would give 12)
        (Decimal("0.135"), "EUR", 14),
        (Decimal("0.145"), "EUR", 15),
        (Decimal("0.005"), "EUR", 1),
        (Decimal("0.0049"), "EUR", 0),
        ("12.345", "SEK", 1235),
        ("0", "SEK", 0),
        (7, "SEK", 700),
        (Decimal("1E+2"), "SEK", 10000),
        # no decimals
        (Decimal("1234"), "JPY", 1234),
        (Decimal("2.5"), "JPY", 3),
        (Decimal("3.5"), "JPY", 4),
        (Decimal("2.49"), "JPY", 2),
        # three decimals
        (Decimal("1.2345"), "KWD", 1235),
        (Decimal("1.2344"), "KWD", 1234),
        (Decimal("0.0005"), "KWD", 1),
        ("10", "KWD", 10000),
    ],
)
def test_to_minor_rounds_half_up(amount: Decimal | str | int, currency: str, minor: int) -> None:
    result = to_minor(amount, currency)
    assert result == minor
    assert type(result) is int


@pytest.mark.parametrize(
    ("amount", "currency", "minor"),
    [
        # negative amounts (refunds, credit CDRs) round half away from zero, symmetrically
        (Decimal("-4.40"), "SEK", -440),
        (Decimal("-1.005"), "SEK", -101),
        (Decimal("-1.004"), "SEK", -100),
        (Decimal("-2.5"), "JPY", -3),
        (Decimal("-1.2345"), "KWD", -1235),
        ("-0.001", "EUR", 0),
    ],
)
def test_to_minor_negative(amount: Decimal | str, currency: str, minor: int) -> None:
    assert to_minor(amount, currency) == minor
    assert to_minor(amount, currency) == -to_minor(str(-Decimal(amount)), currency)


@pytest.mark.parametrize(
    ("minor", "currency", "amount"),
    [
        (440, "SEK", "4.40"),
        (123450, "EUR", "1234.50"),
        (1, "EUR", "0.01"),
        (0, "SEK", "0.00"),
        (-101, "SEK", "-1.01"),
        (1234, "JPY", "1234"),
        (-3, "JPY", "-3"),
        (1235, "KWD", "1.235"),
        (-1, "KWD", "-0.001"),
    ],
)
def test_from_minor(minor: int, currency: str, amount: str) -> None:
    result = from_minor(minor, currency)
    assert isinstance(result, Decimal)
    assert result == Decimal(amount)
    assert str(result) == amount  # the currency's exponent is kept: 0.00, not 0
    assert to_minor(result, currency) == minor


@pytest.mark.parametrize("amount", [1.5, 0.1, -2.0, float("nan")])
def test_float_is_refused(amount: float) -> None:
    with pytest.raises(TypeError, match="never a float"):
        to_minor(amount, "SEK")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        Money.of(amount, "SEK")  # type: ignore[arg-type]


def test_money_of_and_amount() -> None:
    money = Money.of("1234.505", "sek")
    assert money == Money(123451, "SEK")
    assert money.amount == Decimal("1234.51")
    assert Money.of(Decimal("2.5"), "JPY") == Money(3, "JPY")


@pytest.mark.parametrize(
    ("money", "language", "text"),
    [
        (Money(123450, "SEK"), "sv", f"1{NBSP}234,50 kr"),
        (Money(123450, "SEK"), "en", "SEK 1,234.50"),
        (Money(440, "SEK"), "sv", "4,40 kr"),
        (Money(440, "SEK"), "en", "SEK 4.40"),
        (Money(0, "SEK"), "sv", "0,00 kr"),
        (Money(123456789, "SEK"), "sv", f"1{NBSP}234{NBSP}567,89 kr"),
        (Money(123456789, "SEK"), "en", "SEK 1,234,567.89"),
        (Money(-123450, "SEK"), "sv", f"-1{NBSP}234,50 kr"),
        (Money(-123450, "SEK"), "en", "SEK -1,234.50"),
        (Money(123450, "EUR"), "sv", f"1{NBSP}234,50 EUR"),
        (Money(123450, "EUR"), "en", "EUR 1,234.50"),
        (Money(1234, "JPY"), "en", "JPY 1,234"),
        (Money(1234, "JPY"), "sv", f"1{NBSP}234 JPY"),
        (Money(1234567, "KWD"), "en", "KWD 1,234.567"),
        (Money(1234567, "KWD"), "sv", f"1{NBSP}234,567 KWD"),
    ],
)
def test_format(money: Money, language: str, text: str) -> None:
    assert money.format(language) == text


def test_format_default_is_english() -> None:
    assert Money(123450, "SEK").format() == "SEK 1,234.50"


@pytest.mark.parametrize(
    ("gross", "net"),
    [
        (12500, 10000),  # 125.00 incl. 25 % VAT = 100.00 net
        (440, 352),
        (100, 80),
        (1, 1),  # 0.8 rounds up
        (3, 2),  # 2.4 rounds down
        (4, 3),  # 3.2
        (7, 6),  # 5.6
        (0, 0),
        (-12500, -10000),
        (30000, 24000),
    ],
)
def test_net_from_gross_at_25_percent(gross: int, net: int) -> None:
    assert net_from_gross(gross, Decimal(25)) == net
    assert net_from_gross(gross, Decimal("25.0")) == net


def test_net_from_gross_rounds_half_up() -> None:
    # 106 * 100 / 112 = 94.6428... -> 95; 21 * 100 / 105 = 20 exactly; 63 / 1.26 = 50.
    assert net_from_gross(106, Decimal(12)) == 95
    assert net_from_gross(21, Decimal(5)) == 20
    assert net_from_gross(63, Decimal(26)) == 50
    # 1.5 exactly: 3 * 100 / 200 -> 2 (half up)
    assert net_from_gross(3, Decimal(100)) == 2
    assert net_from_gross(12500, Decimal(0)) == 12500


def test_vat_split() -> None:
    net = net_from_gross(12500, Decimal(25))
    assert vat_split(12500, net) == (10000, 2500)
    assert vat_split(440, 352) == (352, 88)
    assert sum(vat_split(441, net_from_gross(441, Decimal(25)))) == 441
