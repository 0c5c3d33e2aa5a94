"""A tariff is compiled once per version (tariffs.model._compile): the cache is keyed by
country, party, id and last_updated, but a tariff changed without a new last_updated is
still priced as given, and the cache stays bounded."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from tariffs import compile_tariff, hold_for, price_session
from tariffs import model as tariff_model

D = Decimal
TARIFF: dict[str, Any] = {
          "country_code": "SE", "party_id": "SCA", "id": "cached", "currency": "SEK",
          "last_updated": "2024-01-01T00:00:00Z",
          "elements": [{"price_components": [{"type": "ENERGY", "price": D("3.00"),
                                              "vat": D(25), "step_size": 1}]}]}
PERIODS = [{"start_date_time": "2024-06-03T14:00:00Z",
            "dimensions": [{"type": "ENERGY", "volume": D(10)}]}]
END = datetime(2024, 6, 3, 15, 0, tzinfo=UTC)


def _total(tariff: dict[str, Any]) -> Decimal:
    return price_session(tariff, PERIODS, time_zone="UTC", session_end=END).total.incl_vat


def test_one_version_is_compiled_once() -> None:
    assert compile_tariff(TARIFF) is compile_tariff(copy.deepcopy(TARIFF))


def test_a_tariff_changed_without_a_new_last_updated_is_priced_as_given() -> None:
    assert _total(TARIFF) == D("37.50")
    dearer = copy.deepcopy(TARIFF)
    dearer["elements"][0]["price_components"][0]["price"] = D("4.00")
    assert _total(dearer) == D("50.00")
    assert _total(TARIFF) == D("37.50")


def test_changing_the_callers_dict_afterwards_changes_nothing_cached() -> None:
    mine = copy.deepcopy(TARIFF)
    mine["id"] = "mutated"
    assert _total(mine) == D("37.50")
    mine["elements"][0]["price_components"][0]["price"] = D("5.00")
    assert _total(mine) == D("62.50")


def test_a_dict_and_its_model_do_not_push_each_other_out() -> None:
    compiled = compile_tariff(TARIFF)
    hold_for(TARIFF, power_kw=D(22), max_session=timedelta(hours=1), cap_minor=None,
             currency="SEK")  # prices a plan with the compiled tariff's model inside
    assert compile_tariff(TARIFF) is compiled


def test_the_cache_is_bounded() -> None:
    for n in range(tariff_model._CACHE_SIZE + 20):
        compile_tariff({**TARIFF, "id": f"many-{n}"})
    assert len(tariff_model._cache) <= tariff_model._CACHE_SIZE
