"""The tariff engine at work: the price shown before paying, the hold, the live cost when
the CPO sends none, stopping before the hold or the driver's cap, and the CDR check."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from charge_factory import charging_under
from conftest import LiveStack

from charging import pricing, sessions, unit_of_work
from charging.models import Charge, ChargeEvent
from extensions import db
from ocpi import store
from ocpi.models import OcpiTariff, Party

AC_TARIFF = {
    "country_code": "SE", "party_id": "SIM", "id": "AC-ADHOC", "currency": "SEK",
    "type": "AD_HOC_PAYMENT",
    "elements": [{"price_components": [
        {"type": "FLAT", "price": 4.00, "vat": 25, "step_size": 1},
        {"type": "ENERGY", "price": 3.60, "vat": 25, "step_size": 1}]}],
    "last_updated": "2026-01-01T00:00:00Z",
}


def test_the_charger_shows_the_price_in_words_and_a_sized_hold(live_stack: LiveStack) -> None:
    info = live_stack.api("GET", f"/api/v1/chargers/{live_stack.evse_id}?lang=sv").json()
    connector = info["connectors"][0]
    text = connector["tariff"]["text"]
    assert text["summary"] == "4,50 kr/kWh · 5 kr start"
    assert text["example"].startswith("ungefär ")
    # A plausible longest session: 60 min at 22 kW under the tariff = 22 × 4.50 + 5 kr.
    assert connector["hold"]["amount_minor"] == 10400
    english = live_stack.api("GET", f"/api/v1/chargers/{live_stack.evse_id}?lang=en").json()
    assert english["connectors"][0]["tariff"]["text"]["summary"].startswith("SEK 4.50/kWh")


def test_the_drivers_cap_limits_the_hold_and_stops_charging(live_stack: LiveStack) -> None:
    stack = live_stack
    created = stack.api("POST", "/api/v1/charges", json={
        "evse_id": stack.evse_id, "language": "en", "max_amount": "20 kr"})
    assert created.status_code == 201, created.text
    charge = created.json()
    assert charge["hold"]["amount_minor"] == 2000
    stack.api("POST", "/payments/demo/confirm", json={
        "payment_intent": charge["payment"]["payment_intent"],
        "client_secret": charge["payment"]["client_secret"], "card_number": "4242424242424242"})
    # Nobody presses Stop: ScanCharge stops before the cost passes the 20 kr held.
    done = stack.wait_status(charge["id"], "CAPTURED", timeout=30)
    assert done["captured"]["amount_minor"] <= 2000
    with stack.app.app_context():
        stops = db.session.scalars(db.select(ChargeEvent).where(
            ChargeEvent.to_status == "STOPPING", ChargeEvent.from_status == "CHARGING")).all()
        assert [e.cause for e in stops] == ["system"]
        assert "near the hold" in stops[0].note


@pytest.mark.parametrize("amount", ["0", "-5", "abc", "1000000"])
def test_an_unreadable_cap_is_refused(live_stack: LiveStack, amount: str) -> None:
    answer = live_stack.api("POST", "/api/v1/charges", json={
        "evse_id": live_stack.evse_id, "max_amount": amount, "language": "en"})
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "invalid_amount"


def test_a_cap_below_the_minimum_price_is_refused(live_stack: LiveStack) -> None:
    answer = live_stack.api("POST", "/api/v1/charges", json={
        "evse_id": live_stack.evse_id, "max_amount_minor": 50, "language": "en"})
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "cap_too_low"


@pytest.fixture
def charging(app: Any) -> Charge:
    return charging_under(AC_TARIFF, hold_minor=5000)


def _session(kwh: str, periods: list[tuple[str, str]]) -> dict[str, Any]:
    return {
        "country_code": "SE", "party_id": "SIM", "id": "S1",
        "start_date_time": "2026-11-21T10:00:00Z", "kwh": Decimal(kwh),
        "cdr_token": {"country_code": "SE", "party_id": "SCN", "uid": "TOK1",
                      "type": "AD_HOC_USER", "contract_id": "C1"},
        "auth_method": "COMMAND", "authorization_reference": "REF1", "location_id": "LOC1",
        "evse_uid": "EVSE1", "connector_id": "1", "currency": "SEK", "status": "ACTIVE",
        "charging_periods": [
            {"start_date_time": start, "dimensions": [{"type": "ENERGY", "volume": Decimal(v)}],
             "tariff_id": "AC-ADHOC"} for start, v in periods],
        "last_updated": "2026-11-21T10:20:00Z",
    }


def test_live_cost_is_priced_from_the_periods_when_the_cpo_sends_none(
    app: Any, charging: Charge
) -> None:
    party = db.session.get(Party, charging.party_pk)
    row, _ = store.put_session(party, _session("4", [("2026-11-21T10:00:00Z", "4")]))
    db.session.commit()
    sessions.on_session_updated(row.pk, "ACTIVE", "REF1", "TOK1")
    db.session.expire_all()
    charge = db.session.get(Charge, charging.pk)
    # 4 kWh × 3.60 × 1.25 + 4.00 × 1.25 = 18.00 + 5.00 kr
    assert charge.cost_incl_vat == Decimal("23.0000")
    assert charge.status == "CHARGING"


def test_charging_stops_when_the_cost_nears_the_hold(app: Any, charging: Charge) -> None:
    party = db.session.get(Party, charging.party_pk)
    # 9.5 kWh: 9.5 × 4.50 + 5 = 47.75 kr, 95.5 % of the 50 kr held.
    row, _ = store.put_session(party, _session("9.5", [("2026-11-21T10:00:00Z", "9.5")]))
    db.session.commit()
    sessions.on_session_updated(row.pk, "ACTIVE", "REF1", "TOK1")
    db.session.expire_all()
    assert db.session.get(Charge, charging.pk).status == "STOPPING"
    assert "charging.send_stop" in [t.name for t in app.extensions["queue"].huey.pending()]


def test_a_cdr_that_disagrees_with_its_tariff_is_flagged(app: Any, charging: Charge) -> None:
    from tests.integration.test_settle_concurrency import CDR

    party = db.session.get(Party, charging.party_pk)
    # The tariff: 4.00 start + 10 kWh × 3.60 = 40.00 excl., 50.00 incl. VAT.
    wrong = {**CDR, "tariffs": [AC_TARIFF],
             "total_cost": {"excl_vat": 36.00, "incl_vat": 45.00}}
    cdr, _ = store.store_cdr(party, wrong)
    charge = unit_of_work.lock_charge(charging.pk)
    pricing.check_cdr_price(charge, cdr)
    db.session.commit()
    charge = db.session.get(Charge, charging.pk)
    assert charge.failure_code == "CDR_PRICE_MISMATCH"
    assert "CDR SEK 45.00, tariff SEK 50.00" in charge.failure_detail
    right = {**CDR, "id": "CDR-OK", "tariffs": [AC_TARIFF],
             "total_cost": {"excl_vat": 40.00, "incl_vat": 50.00}}
    ok, _ = store.store_cdr(party, right)
    charge.failure_code = None
    pricing.check_cdr_price(unit_of_work.lock_charge(charging.pk), ok)
    db.session.commit()
    assert db.session.get(Charge, charging.pk).failure_code is None
    assert db.session.scalar(db.select(OcpiTariff)) is not None
