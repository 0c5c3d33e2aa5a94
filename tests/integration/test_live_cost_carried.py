"""The live cost carried from one Session update to the next (charging/pricing.py): each
update reads only the periods since the last (ocpi.store.charging_periods from an index
on) and comes to the full price of the whole session; a new tariff version or replaced
periods are priced again from the first period."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from charge_factory import charging_under

from charging import pricing, sessions
from charging.models import Charge
from extensions import db
from ocpi import store
from ocpi.models import OcpiSession, Party
from tariffs import price_session

D = Decimal
START = datetime(2026, 11, 21, 15, 0, tzinfo=UTC)  # 16:00 in Stockholm


def _tariff(peak: str, last_updated: str = "2026-01-01T00:00:00Z") -> dict[str, Any]:
    return {
        "country_code": "SE", "party_id": "SIM", "id": "TOD", "currency": "SEK",
        "elements": [
            {"price_components": [{"type": "FLAT", "price": D(4), "vat": D(25), "step_size": 1}]},
            {"price_components": [{"type": "ENERGY", "price": D(peak), "vat": D(25),
                                   "step_size": 100}],
             "restrictions": {"start_time": "17:00", "end_time": "20:00"}},
            {"price_components": [{"type": "ENERGY", "price": D("2.10"), "vat": D(25),
                                   "step_size": 100}]},
            {"price_components": [{"type": "TIME", "price": D(12), "vat": D(25),
                                   "step_size": 300}],
             "restrictions": {"min_duration": 3600}}],
        "last_updated": last_updated,
    }


@pytest.fixture
def charging(app: Any) -> Charge:
    return charging_under(_tariff("4.40"), hold_minor=500000)


def _period(n: int, kwh: str = "5.5") -> dict[str, Any]:
    at = START + timedelta(minutes=20 * n)
    return {"start_date_time": at.isoformat().replace("+00:00", "Z"),
            "dimensions": [{"type": "ENERGY", "volume": D(kwh)},
                           {"type": "MAX_CURRENT", "volume": D(32)}],
            "tariff_id": "TOD"}


def _session(periods: list[dict[str, Any]], last_updated: datetime) -> dict[str, Any]:
    return {
        "country_code": "SE", "party_id": "SIM", "id": "S1",
        "start_date_time": START.isoformat(), "kwh": D(0),
        "cdr_token": {"country_code": "SE", "party_id": "SCN", "uid": "TOK1",
                      "type": "AD_HOC_USER", "contract_id": "C1"},
        "auth_method": "COMMAND", "authorization_reference": "REF1", "location_id": "LOC1",
        "evse_uid": "EVSE1", "connector_id": "1", "currency": "SEK", "status": "ACTIVE",
        "charging_periods": periods, "last_updated": last_updated.isoformat(),
    }


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The index each read of a Session's periods starts from."""
    seen: list[int] = []
    real = store.charging_periods

    def spy(row: OcpiSession, start: int = 0) -> list[dict[str, Any]]:
        seen.append(start)
        return real(row, start)

    monkeypatch.setattr(pricing.ocpi_store, "charging_periods", spy)
    return seen


def _update(row_pk: int) -> Decimal:
    sessions.on_session_updated(row_pk, "ACTIVE", "REF1", "TOK1")
    db.session.expire_all()
    cost = db.session.get_one(Charge, 1).cost_incl_vat
    assert cost is not None
    return cost


def _full(tariff: dict[str, Any], periods: list[dict[str, Any]], end: datetime) -> Decimal:
    return price_session(tariff, periods, time_zone="Europe/Stockholm", session_start=START,
                         session_end=end).total.incl_vat


def test_each_update_reads_only_its_new_periods_and_costs_the_full_price(
        app: Any, charging: Charge, reads: list[int]) -> None:
    party = db.session.get_one(Party, charging.party_pk)
    periods = [_period(0)]
    row, _ = store.put_session(party, _session(periods, START + timedelta(minutes=5)))
    db.session.commit()
    assert _update(row.pk) == _full(_tariff("4.40"), periods, START + timedelta(minutes=5))
    for n in range(1, 12):  # 16:00 to 19:40: across the peak and past an hour
        end = START + timedelta(minutes=20 * n + 5)
        stored = db.session.get_one(OcpiSession, row.pk)
        store.patch_session(stored, {"charging_periods": [_period(n)],
                                     "last_updated": end.isoformat()})
        db.session.commit()
        periods.append(_period(n))
        assert _update(row.pk) == _full(_tariff("4.40"), periods, end)
    # The first update read every period (one); each later one from the last period the
    # carried state priced (to check it is unchanged) on: never the whole session again.
    assert reads == [0, 0, *range(0, 10)]


def test_a_new_tariff_version_or_replaced_periods_are_priced_from_the_start(
        app: Any, charging: Charge, reads: list[int]) -> None:
    party = db.session.get_one(Party, charging.party_pk)
    periods = [_period(n) for n in range(4)]
    end = START + timedelta(minutes=70)
    row, _ = store.put_session(party, _session(periods, end))
    db.session.commit()
    _update(row.pk)
    assert db.session.get_one(Charge, charging.pk).live_cost_state
    # The CPO changes its tariff (a new last_updated): priced again with the new one.
    store.upsert_tariff(party, _tariff("6.00", "2026-11-21T15:30:00Z"))
    periods.append(_period(4))
    end += timedelta(minutes=20)
    store.put_session(party, _session(periods, end))
    db.session.commit()
    reads.clear()
    assert _update(row.pk) == _full(_tariff("6.00", "2026-11-21T15:30:00Z"), periods, end)
    assert reads == [2, 0]  # the carried state refused, every period read
    # A PUT that corrects the last period already priced: priced again from the start.
    periods[3] = _period(3, kwh="9.9")
    periods.append(_period(5))
    end += timedelta(minutes=20)
    store.put_session(party, _session(periods, end))
    db.session.commit()
    reads.clear()
    cost = _update(row.pk)
    assert cost == _full(_tariff("6.00", "2026-11-21T15:30:00Z"), periods, end)
    assert reads == [3, 0]
