"""A breakdown the engine makes leaves its dimensions and hours to be made when first read
(tariffs.results._breakdown): it still reads, equals, prints and copies as the
breakdown of all its fields made at once."""

from __future__ import annotations

import copy
import dataclasses
from decimal import getcontext, localcontext

import pytest

from tariffs import DimensionCost, PriceBreakdown
from tests.tariff_reference import cases

CASE = next(c for c in cases() if c.name == "complex-03")
LATER = ("energy", "flat", "time", "parking_time", "reservation", "charging_hours",
         "parking_hours", "reservation_hours")


def _eager(breakdown: PriceBreakdown) -> PriceBreakdown:
    return PriceBreakdown(**{f.name: getattr(breakdown, f.name)
                             for f in dataclasses.fields(PriceBreakdown)})


def test_the_dimensions_are_made_when_first_read_and_then_kept() -> None:
    breakdown = CASE.price()
    assert breakdown.total.incl_vat > 0
    assert "_later" in vars(breakdown) and "energy" not in vars(breakdown)
    energy = breakdown.energy
    assert isinstance(energy, DimensionCost) and energy.cost.incl_vat > 0
    assert "_later" not in vars(breakdown)
    assert all(name in vars(breakdown) for name in LATER)
    assert breakdown.energy is energy


def test_made_later_it_is_the_breakdown_made_at_once() -> None:
    lazy, eager = CASE.price(), _eager(CASE.price())
    assert lazy == eager and eager == lazy
    assert hash(CASE.price()) == hash(eager)
    assert repr(CASE.price()) == repr(eager)
    assert CASE.price().to_json() == eager.to_json()
    assert dataclasses.replace(CASE.price(), lines=()) == dataclasses.replace(eager, lines=())
    assert dataclasses.asdict(CASE.price()) == dataclasses.asdict(eager)


def test_made_later_it_is_made_with_the_engines_arithmetic() -> None:
    eager = _eager(CASE.price())
    lazy = CASE.price()
    with localcontext() as ctx:  # a caller's coarse context changes nothing
        ctx.prec = 3
        assert lazy.charging_hours == eager.charging_hours
        assert lazy.energy == eager.energy
    assert getcontext().prec != 3


def test_it_copies_whole() -> None:
    eager = _eager(CASE.price())
    for made in (copy.copy(CASE.price()), copy.deepcopy(CASE.price())):
        assert "_later" not in vars(made)
        assert made == eager


def test_other_attributes_are_still_missing() -> None:
    breakdown = CASE.price()
    with pytest.raises(AttributeError, match="no attribute 'energie'"):
        breakdown.energie  # noqa: B018
    assert not hasattr(breakdown, "_later_than_that")


def test_a_second_reader_finishing_first_is_no_error() -> None:
    """Two threads reading a field at once both make the fields; the one that finishes
    second must not fail for the maker being gone (simulated: the first reader's maker lets
    a second reader in and finish before it returns)."""
    breakdown = CASE.price()
    fields = vars(breakdown)
    make = fields["_later"]

    def first_reader() -> dict[str, object]:
        fields["_later"] = make
        assert breakdown.flat is not None  # the second reader, done first
        assert "_later" not in fields
        return make()

    fields["_later"] = first_reader
    assert breakdown.energy == _eager(CASE.price()).energy
    assert "_later" not in fields
