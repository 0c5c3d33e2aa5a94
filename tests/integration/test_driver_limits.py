"""Honest limits and a cap that makes sense (issue 11): before paying the hold and where
charging stops by itself (about how many kWh at this connector), an example that never
promises more, caps refused below a meaningful charge and told when above the hold; while
charging how close the cost is to the stop; at the end why it ended."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from conftest import LiveStack

from charging.models import Charge
from charging.states import ChargeStatus as S
from driver.api import charge_limit_json, end_json


def limits(stack: LiveStack, max_amount: str = "", lang: str = "en") -> Any:
    return stack.api("GET", "/api/v1/limits", params={
        "evse_id": stack.evse_id, "max_amount": max_amount, "lang": lang})


def test_the_charger_says_where_charging_stops_and_the_example_fits(
    live_stack: LiveStack,
) -> None:
    info = live_stack.api("GET", f"/api/v1/chargers/{live_stack.evse_id}?lang=en").json()
    connector = info["connectors"][0]
    limit = connector["limit"]
    # 60 min at 22 kW: a hold of 22 × 4.50 + 5 = 104 kr; stopped at 95 % = 98.80 kr, which
    # buys (98.80 - 5) / 4.50 = 20.84 kWh.
    assert limit["hold"]["amount_minor"] == 10400
    assert limit["stop_at"]["amount_minor"] == 9880
    assert Decimal(limit["stop_kwh"]) == Decimal("20.84")
    assert limit["stop_sentence"] == \
        "Charging stops by itself at SEK 98.80 (about 20 kWh at this charger)."
    # Not "about 140 kr for 30 kWh": the example is what the hold's stop point allows.
    assert connector["tariff"]["text"]["example"] == "about SEK 95 for 20 kWh"
    assert (limit["min_cap"]["amount_minor"], limit["max_cap"]["amount_minor"]) == (1100, 10400)

    page = live_stack.api("GET", f"/c/{live_stack.evse_id}?lang=sv").text.replace("\u00a0", " ")
    assert "Laddningen stoppas av sig själv vid 98,80 kr (cirka 20 kWh" in page
    assert "Mellan 11,00 kr och 104,00 kr." in page


def test_the_hold_sentence_follows_the_cap_typed(live_stack: LiveStack) -> None:
    ok = limits(live_stack, "50").json()
    assert ok["cap"] == {"state": "ok", "message": None}
    assert ok["hold_sentence"] == "We hold SEK 50.00 on your card."
    assert ok["stop_sentence"] == \
        "Charging stops by itself at SEK 47.50 (about 9 kWh at this charger)."

    low = limits(live_stack, "8", "sv").json()
    assert low["cap"]["state"] == "too_low"
    assert low["cap"]["message"].replace("\u00a0", " ").startswith(
        "Den lägsta gränsen vid den här laddaren är 11,00 kr")

    high = limits(live_stack, "500").json()
    assert high["cap"] == {"state": "above_max", "message":
                           "We never hold more than SEK 104.00 here, so that is your limit."}
    assert high["hold"]["amount_minor"] == 10400

    unreadable = limits(live_stack, "lots")
    assert unreadable.status_code == 400
    assert unreadable.json()["error"]["code"] == "invalid_amount"
    assert limits(live_stack).json()["cap"]["state"] == "none"


@pytest.mark.parametrize("cap", ["2", "10,99"])
def test_a_cap_below_a_meaningful_charge_is_refused_naming_the_minimum(
    live_stack: LiveStack, cap: str
) -> None:
    answer = live_stack.api("POST", "/api/v1/charges?lang=en", json={
        "evse_id": live_stack.evse_id, "language": "en", "max_amount": cap})
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert error["code"] == "cap_too_low"
    assert error["amount"]["amount_minor"] == 1100
    assert "SEK 11.00" in error["message"]


def test_a_cap_at_the_minimum_and_one_above_the_hold_are_taken(live_stack: LiveStack) -> None:
    at_min = live_stack.api("POST", "/api/v1/charges", json={
        "evse_id": live_stack.evse_id, "language": "en", "max_amount": "11"})
    assert at_min.status_code == 201, at_min.text
    assert at_min.json()["hold"]["amount_minor"] == 1100
    live_stack.api("POST", f"/api/v1/charges/{at_min.json()['id']}/cancel")
    above = live_stack.api("POST", "/api/v1/charges", json={
        "evse_id": live_stack.evse_id, "language": "en", "max_amount": "900"})
    assert above.status_code == 201, above.text
    assert above.json()["hold"]["amount_minor"] == 10400  # never more than the hold


def charge(**values: Any) -> Charge:
    return Charge(currency="SEK", hold_minor=10000, energy_kwh=Decimal("12.5"), **values)


def test_how_close_to_the_limit_while_charging(app: Any) -> None:
    with app.app_context():
        half = charge_limit_json(charge(status=S.CHARGING.value,
                                        cost_incl_vat=Decimal("47.50")), "en")
        assert half is not None
        assert (half["stop_at"]["amount_minor"], half["percent"]) == (9500, 50)
        assert half["text"] == "Charging stops by itself at SEK 95.00: 50 % of it used."
        over = charge_limit_json(charge(status=S.STOPPING.value,
                                        cost_incl_vat=Decimal("99")), "sv")
        assert over is not None and over["percent"] == 100
        assert charge_limit_json(charge(status=S.CAPTURED.value), "en") is None


@pytest.mark.parametrize(("status", "end_reason", "failure", "reason", "words"), [
    (S.CAPTURED, "DRIVER_STOPPED", None, "driver", "You stopped charging."),
    (S.CAPTURED, "LIMIT_REACHED", None, "limit", "the limit of the SEK 100.00 held"),
    (S.CAPTURED, "CPO_ENDED", None, "car", "the battery was full"),
    (S.ENDED, "OPERATOR_STOPPED", None, "operator", "The operator stopped charging."),
    (S.CAPTURED, "SESSION_INVALID", None, "charger", "reported an error"),
    (S.CAPTURED, "CPO_SILENT", None, "charger", "stopped reporting"),
    (S.RELEASED, None, "START_REJECTED", "start_failed", "The charger did not start."),
    (S.START_FAILED, None, "START_TIMEOUT", "start_failed", "Nothing was charged."),
])
def test_why_it_ended_and_what_was_charged(
    app: Any, status: S, end_reason: str | None, failure: str | None, reason: str, words: str
) -> None:
    captured = 4321 if status == S.CAPTURED else None
    with app.app_context():
        end = end_json(charge(status=status.value, end_reason=end_reason, failure_code=failure,
                              captured_minor=captured), "en")
    assert end is not None
    assert end["reason"] == reason
    assert words in end["message"]
    if captured:
        assert end["charged"] == "Charged: SEK 43.21 for 12.50 kWh."


def test_no_end_reason_while_it_runs(app: Any) -> None:
    with app.app_context():
        assert end_json(charge(status=S.CHARGING.value), "en") is None
        assert end_json(charge(status=S.CANCELLED.value), "en") is None


def test_an_operators_stop_is_told_as_the_operators(live_stack: LiveStack) -> None:
    stack = live_stack
    public_id = stack.pay_and_charge(stack.evse_id)
    stack.wait_status(public_id, "CHARGING")
    runner = stack.app.test_cli_runner()
    result = runner.invoke(args=["charges", "stop", "--yes", "--", public_id])
    assert result.exit_code == 0, result.output
    assert f"Stop requested for charge {public_id}" in result.output
    done = stack.wait_status(public_id, "CAPTURED", timeout=30)
    assert done["end"]["reason"] == "operator"
    assert done["end"]["message"] == "The operator stopped charging."
    again = runner.invoke(args=["charges", "stop", "--yes", "--", public_id])
    assert again.exit_code == 1 and "is CAPTURED: nothing to stop" in again.output
