"""The receipt's arithmetic (payments/receipt_lines.py): each line is its printed quantity
× its printed unit price, the adjustment makes the lines the amount charged, and VAT per
rate adds up to the total, exactly, in minor units."""

from __future__ import annotations

import random
from decimal import Decimal

import pytest

from payments.receipt_lines import Line, adjustment, group, line, vat_rows


def test_a_line_is_its_quantity_times_its_unit_price() -> None:
    energy = line("ENERGY", Decimal("21.4567"), Decimal("3.60"), Decimal(25), "SEK")
    # 21.457 kWh (as printed) × 4.50 kr/kWh = 96.5565 -> 96.56 kr
    assert (energy.quantity, energy.unit_price, energy.amount_minor) == \
        (Decimal("21.457"), Decimal("4.5"), 9656)
    time = line("TIME", Decimal("1.23456789"), Decimal("48"), Decimal(25), "SEK")
    # 1.2346 h × 60 kr/h = 74.076 -> 74.08 kr
    assert (time.quantity, time.unit_price, time.amount_minor) == \
        (Decimal("1.2346"), Decimal("60"), 7408)
    fee = line("FLAT", Decimal(1), Decimal("4.00"), Decimal(25), "SEK")
    assert fee.amount_minor == 500


def test_slices_at_one_price_are_one_line_and_the_start_fee_comes_first() -> None:
    lines = group([("ENERGY", Decimal("5"), Decimal("3.60"), Decimal(25)),
                   ("ENERGY", Decimal("2.5"), Decimal("3.60"), Decimal(25)),
                   ("ENERGY", Decimal("1"), Decimal("2.00"), Decimal(25)),
                   ("FLAT", Decimal(1), Decimal("4.00"), Decimal(25)),
                   ("TIME", Decimal(0), Decimal("10"), Decimal(25))], "SEK")
    assert [(x.kind, x.quantity, x.amount_minor) for x in lines] == [
        ("FLAT", Decimal(1), 500), ("ENERGY", Decimal("1.000"), 250),
        ("ENERGY", Decimal("7.500"), 3375)]


def test_the_adjustment_makes_the_lines_the_amount_charged() -> None:
    lines = group([("FLAT", Decimal(1), Decimal("4.00"), Decimal(25)),
                   ("ENERGY", Decimal("30"), Decimal("3.60"), Decimal(25))], "SEK")
    assert sum(x.amount_minor for x in lines) == 14000
    assert adjustment(lines, 10400) == -3600  # the hold cut it to 104 kr
    assert adjustment(lines, 14000) == 0


def test_vat_per_rate_on_one_rate() -> None:
    lines = [line("ENERGY", Decimal(10), Decimal("3.40"), Decimal(25), "SEK")]
    (row,) = vat_rows(lines, 4250, Decimal(25))
    assert (row.gross_minor, row.net_minor, row.vat_minor) == (4250, 3400, 850)


@pytest.mark.parametrize("seed", range(200))
def test_lines_adjustment_and_vat_always_add_up_exactly(seed: int) -> None:
    rng = random.Random(seed)
    parts = [(rng.choice(["ENERGY", "TIME", "PARKING_TIME", "FLAT"]),
              Decimal(rng.randint(0, 90000)) / 1000, Decimal(rng.randint(1, 900)) / 100,
              Decimal(rng.choice([0, 6, 12, 25, "25.5"]))) for _ in range(rng.randint(1, 6))]
    lines = group(parts, "SEK")
    for x in lines:  # each line checks with a calculator
        assert Decimal(x.amount_minor) / 100 == \
            (x.quantity * x.unit_price).quantize(Decimal("0.01"), rounding="ROUND_HALF_UP")
        assert Line.from_json(x.to_json()) == x
    total = max(0, sum(x.amount_minor for x in lines) + rng.randint(-5000, 2000))
    assert sum(x.amount_minor for x in lines) + adjustment(lines, total) == total
    rows = vat_rows(lines, total, Decimal(25))
    assert sum(r.gross_minor for r in rows) == total
    assert all(r.net_minor + r.vat_minor == r.gross_minor for r in rows)
    assert len({r.rate for r in rows}) == len(rows)
