"""End to end over real HTTP: ScanCharge and the CPO simulator on 127.0.0.1, the demo
gateway, the queue workers; each test walks one branch of DESIGN.md's flow and checks the
OCPI messages exchanged and where the money ended up."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from conftest import LiveStack

from extensions import db
from payments.models import DemoPaymentIntent, Receipt


def start_paid_charge(stack: LiveStack, card: str = "4242424242424242") -> dict[str, Any]:
    created = stack.api(
        "POST", "/api/v1/charges", json={"evse_id": stack.evse_id, "language": "en"}
    )
    assert created.status_code == 201, created.text
    charge = created.json()
    payment = charge["payment"]
    assert payment["kind"] == "demo"
    confirmed = stack.api(
        "POST",
        "/payments/demo/confirm",
        json={
            "payment_intent": payment["payment_intent"],
            "client_secret": payment["client_secret"],
            "card_number": card,
        },
    )
    assert confirmed.status_code == 200, confirmed.text
    return charge


def intent(stack: LiveStack, intent_id: str) -> DemoPaymentIntent:
    with stack.app.app_context():
        row = db.session.scalar(
            db.select(DemoPaymentIntent).where(DemoPaymentIntent.intent_id == intent_id)
        )
        db.session.expunge(row)
        return row


def messages(stack: LiveStack, module: str, direction: str | None = None) -> list[dict]:
    return [
        m
        for m in stack.simulator.log
        if m["module"] == module and (direction is None or m["direction"] == direction)
    ]


def test_happy_path_captures_the_cdr_total_and_issues_a_receipt(live_stack: LiveStack) -> None:
    stack = live_stack
    charge = start_paid_charge(stack)
    hold_id = charge["payment"]["payment_intent"]

    charging = stack.wait_status(charge["id"], "CHARGING")
    assert charging["can_stop"] is True

    # START_SESSION carried an AD_HOC_USER token, our authorization_reference and a
    # response_url unique to the command; the CommandResult came back to that URL.
    start = next(
        m for m in messages(stack, "commands", "in") if m["url"].endswith("/START_SESSION")
    )
    assert start["request"]["token"]["type"] == "AD_HOC_USER"
    assert start["request"]["authorization_reference"]
    assert "/ocpi/2.2.1/commands/START_SESSION/" in start["request"]["response_url"]
    assert start["response"]["data"]["result"] == "ACCEPTED"

    stack.wait_for(
        lambda: Decimal(stack.charge_status(charge["id"])["energy_kwh"]) > 0, what="energy to grow"
    )
    stopped = stack.api("POST", f"/api/v1/charges/{charge['id']}/stop")
    assert stopped.status_code == 202, stopped.text

    done = stack.wait_status(charge["id"], "CAPTURED", timeout=20)
    cdr = stack.simulator.cdrs[-1]
    expected = int((Decimal(str(cdr["total_cost"]["incl_vat"])) * 100).to_integral_value())
    assert done["captured"]["amount_minor"] == expected
    pi = intent(stack, hold_id)
    assert pi.status == "succeeded"
    assert pi.amount_received_minor == expected
    assert done["receipt_url"]

    with stack.app.app_context():
        receipt = db.session.scalar(db.select(Receipt))
        assert receipt.total_minor == expected
        assert receipt.vat_rate == Decimal("25")
        assert receipt.net_minor + receipt.vat_minor == expected
    # The OCPI traffic both ways: Session pushes and the CDR reached ScanCharge.
    assert any(m["method"] == "PUT" for m in messages(stack, "sessions", "out"))
    assert any(m["method"] == "PATCH" for m in messages(stack, "sessions", "out"))
    # The charge can be captured before the CDR's POST has returned to the simulator (the
    # receiver commits, then answers), so the simulator logs its request a moment later.
    stack.wait_for(lambda: [m["http_status"] for m in messages(stack, "cdrs", "out")] == [201],
                   what="the simulator to log its CDR POST answered 201")
    assert any(m["url"].endswith("/STOP_SESSION") for m in messages(stack, "commands", "in"))


@pytest.mark.parametrize(
    ("behaviour", "failure_code"),
    [
        ("reject", "START_REJECTED"),
        ("timeout_result", "START_TIMEOUT"),
        ("evse_occupied", "START_EVSE_OCCUPIED"),
        ("failed", "START_FAILED"),
    ],
)
def test_failed_start_releases_the_hold(
    live_stack: LiveStack, behaviour: str, failure_code: str
) -> None:
    stack = live_stack
    stack.simulator.set_behaviour(start=behaviour)
    charge = start_paid_charge(stack)
    final = stack.wait_status(charge["id"], "RELEASED")
    assert final["failure"]["code"] == failure_code
    assert "Nothing was charged" in final["failure"]["message"]
    assert intent(stack, charge["payment"]["payment_intent"]).status == "canceled"
    assert not messages(stack, "sessions", "out")
    start = next(m for m in messages(stack, "commands", "in")
                 if m["url"].endswith("/START_SESSION"))
    results = [m for m in messages(stack, "commands", "out") if "/START_SESSION/" in m["url"]]
    if behaviour == "reject":
        assert start["response"]["data"]["result"] == "REJECTED"
        assert results == []
    else:
        assert start["response"]["data"]["result"] == "ACCEPTED"
        expected = {"timeout_result": "TIMEOUT", "evse_occupied": "EVSE_OCCUPIED",
                    "failed": "FAILED"}[behaviour]
        assert [m["request"]["result"] for m in results] == [expected]
        assert results[0]["url"] == start["request"]["response_url"]
        assert results[0]["http_status"] == 200


def test_no_command_result_before_the_deadline_releases_the_hold(live_stack: LiveStack) -> None:
    stack = live_stack
    stack.simulator.set_behaviour(start="no_result", command_timeout=1)
    charge = start_paid_charge(stack)
    final = stack.wait_status(charge["id"], "RELEASED", timeout=10)
    assert final["failure"]["code"] == "START_NO_RESULT"
    assert intent(stack, charge["payment"]["payment_intent"]).status == "canceled"
    start = next(m for m in messages(stack, "commands", "in")
                 if m["url"].endswith("/START_SESSION"))
    assert start["response"]["data"] == {"result": "ACCEPTED", "timeout": 1}
    assert not [m for m in messages(stack, "commands", "out") if "/START_SESSION/" in m["url"]]


def test_declined_card_leaves_the_charge_waiting_for_another_card(live_stack: LiveStack) -> None:
    stack = live_stack
    charge = start_paid_charge(stack, card="4000000000000002")
    assert stack.charge_status(charge["id"])["status"] == "CREATED"
    retry = stack.api(
        "POST",
        "/payments/demo/confirm",
        json={
            "payment_intent": charge["payment"]["payment_intent"],
            "client_secret": charge["payment"]["client_secret"],
            "card_number": "4242424242424242",
        },
    )
    assert retry.json()["status"] == "requires_capture"
    stack.wait_status(charge["id"], "CHARGING")
