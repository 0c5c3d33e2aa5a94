"""The production payment path end to end: the real `stripe` library against the HTTP
stand-in, signed webhooks into ScanCharge, the CPO simulator over OCPI."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import pytest
import requests
import stripe
from conftest import LiveStack, running_stack
from stripe_standin import create_stripe_standin, event_payload, sign_webhook

from extensions import db
from payments.models import PaymentEvent
from servers import ServerThread

WEBHOOK_SECRET = "whsec_test_scancharge"


@pytest.fixture
def standin() -> Iterator[Any]:
    stand = create_stripe_standin()
    server = ServerThread(stand.app).start()
    stand.url = server.url
    try:
        yield stand
    finally:
        server.stop()


@pytest.fixture
def stripe_stack(
    make_app: Callable[..., Any], standin: Any, monkeypatch: pytest.MonkeyPatch
) -> Iterator[LiveStack]:
    monkeypatch.setattr(stripe.HTTPClient, "INITIAL_DELAY", 0)
    monkeypatch.setattr(stripe.HTTPClient, "MAX_DELAY", 0)
    with running_stack(
        make_app,
        STRIPE_SECRET_KEY="sk_test_scancharge",
        STRIPE_PUBLISHABLE_KEY="pk_test_scancharge",
        STRIPE_WEBHOOK_SECRET=WEBHOOK_SECRET,
        STRIPE_API_BASE=standin.url,
    ) as stack:
        yield stack


def deliver(
    stack: LiveStack, event_type: str, obj: dict[str, Any], secret: str = WEBHOOK_SECRET
) -> requests.Response:
    payload = event_payload(event_type, obj)
    return requests.post(
        f"{stack.base_url}/payments/stripe/webhook",
        data=payload,
        timeout=10,
        headers={
            "Stripe-Signature": sign_webhook(payload, secret),
            "Content-Type": "application/json",
        },
    )


def card_of(stack: LiveStack, public_id: str) -> tuple[str | None, str | None, int | None]:
    from sqlalchemy import select

    from charging.models import Charge
    from extensions import db

    with stack.app.app_context():
        row = db.session.scalar(select(Charge).where(Charge.public_id == public_id))
        if row is None:
            return None, None, None
        return row.card_brand, row.card_last4, row.captured_minor


def test_stripe_hold_webhook_charge_and_capture(stripe_stack: LiveStack, standin: Any) -> None:
    stack = stripe_stack
    created = stack.api(
        "POST", "/api/v1/charges",
        json={"evse_id": stack.evse_id, "language": "en", "email": "driver@example.se"},
    )
    assert created.status_code == 201, created.text
    charge = created.json()
    payment = charge["payment"]
    assert payment["kind"] == "stripe"
    assert payment["publishable_key"] == "pk_test_scancharge"
    pi_id = payment["payment_intent"]
    assert payment["client_secret"].startswith(pi_id)

    sent = standin.requests_to("POST", "/v1/payment_intents")[0]
    assert sent.params["capture_method"] == "manual"
    assert sent.params["amount"] == str(charge["hold"]["amount_minor"])
    assert sent.params["metadata"]["charge"] == charge["id"]
    assert sent.idempotency_key == f"charge-{charge['id']}-hold"
    # Cards and the wallets only; ScanCharge mails its own receipt, Stripe none.
    assert sent.params["payment_method_types"] == ["card"]
    assert "receipt_email" not in sent.params

    # The driver confirms on the page (Stripe.js); Stripe tells us through the webhook.
    authorised = standin.confirm(pi_id, "4242424242424242")
    assert authorised["status"] == "requires_capture"
    assert deliver(stack, "payment_intent.amount_capturable_updated", authorised).status_code == 200
    stack.wait_status(charge["id"], "CHARGING")
    # The webhook names the card's charge by id only: the brand and last four are read back
    # (expanded) and kept on the charge before any capture, for the operator and the receipt.
    seen = stack.wait_for(lambda: card_of(stack, charge["id"])[0] and card_of(stack, charge["id"]))
    assert seen == ("visa", "4242", None)  # known before the capture, not from it
    stack.wait_for(lambda: Decimal(stack.charge_status(charge["id"])["energy_kwh"]) > 0)
    assert stack.api("POST", f"/api/v1/charges/{charge['id']}/stop").status_code == 202

    done = stack.wait_status(charge["id"], "CAPTURED", timeout=20)
    cdr = stack.simulator.cdrs[-1]
    expected = int(Decimal(str(cdr["total_cost"]["incl_vat"])) * 100)
    assert done["captured"]["amount_minor"] == expected
    capture = standin.requests_to("POST", f"/v1/payment_intents/{pi_id}/capture")
    assert len(capture) == 1
    assert capture[0].params["amount_to_capture"] == str(expected)
    assert capture[0].idempotency_key == f"charge-{charge['id']}-capture"
    assert standin.payment_intents[pi_id]["status"] == "succeeded"
    assert standin.payment_intents[pi_id]["amount_received"] == expected
    receipt = stack.api("GET", f"/api/v1/charges/{charge['id']}/receipt").json()
    assert receipt["card"] == {"brand": "visa", "last4": "4242"}


def test_webhook_is_applied_once_and_unsigned_ones_are_refused(
    stripe_stack: LiveStack, standin: Any
) -> None:
    stack = stripe_stack
    charge = stack.api("POST", "/api/v1/charges", json={"evse_id": stack.evse_id}).json()
    authorised = standin.confirm(charge["payment"]["payment_intent"], "4242424242424242")

    forged = deliver(
        stack, "payment_intent.amount_capturable_updated", authorised, secret="whsec_wrong"
    )
    assert forged.status_code == 400
    assert stack.charge_status(charge["id"])["status"] == "CREATED"

    payload = event_payload("payment_intent.amount_capturable_updated", authorised)
    headers = {"Stripe-Signature": sign_webhook(payload, WEBHOOK_SECRET)}
    first = requests.post(
        f"{stack.base_url}/payments/stripe/webhook", data=payload, headers=headers, timeout=10
    )
    again = requests.post(
        f"{stack.base_url}/payments/stripe/webhook", data=payload, headers=headers, timeout=10
    )
    assert first.json() == {"received": True, "applied": True}
    assert again.json() == {"received": True, "applied": False}
    stack.wait_status(charge["id"], "CHARGING")
    with stack.app.app_context():
        events = db.session.scalars(db.select(PaymentEvent)).all()
        assert len(events) == 1
        assert json.loads(events[0].payload)["id"] == json.loads(payload)["id"]
        timeline = stack.api("GET", f"/api/v1/charges/{charge['id']}").json()
    assert timeline["status"] in {"CHARGING", "STOPPING"}


def test_declined_card_keeps_the_charge_open(stripe_stack: LiveStack, standin: Any) -> None:
    stack = stripe_stack
    charge = stack.api("POST", "/api/v1/charges", json={"evse_id": stack.evse_id}).json()
    failed = standin.confirm(charge["payment"]["payment_intent"], "4000000000000002")
    assert deliver(stack, "payment_intent.payment_failed", failed).status_code == 200
    assert stack.charge_status(charge["id"])["status"] == "CREATED"


def test_rejected_start_cancels_the_payment_intent(stripe_stack: LiveStack, standin: Any) -> None:
    stack = stripe_stack
    stack.simulator.set_behaviour(start="reject")
    charge = stack.api("POST", "/api/v1/charges", json={"evse_id": stack.evse_id}).json()
    pi_id = charge["payment"]["payment_intent"]
    authorised = standin.confirm(pi_id, "4242424242424242")
    deliver(stack, "payment_intent.amount_capturable_updated", authorised)
    final = stack.wait_status(charge["id"], "RELEASED")
    assert final["failure"]["code"] == "START_REJECTED"
    assert standin.payment_intents[pi_id]["status"] == "canceled"
    cancel = standin.requests_to("POST", f"/v1/payment_intents/{pi_id}/cancel")
    assert cancel[0].idempotency_key == f"charge-{charge['id']}-release"


def test_the_same_webhook_delivered_ten_times_at_once_is_applied_once(
    stripe_stack: LiveStack, standin: Any
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from charging.models import ChargeEvent

    stack = stripe_stack
    charge = stack.api("POST", "/api/v1/charges", json={"evse_id": stack.evse_id}).json()
    authorised = standin.confirm(charge["payment"]["payment_intent"], "4242424242424242")
    payload = event_payload("payment_intent.amount_capturable_updated", authorised)
    headers = {"Stripe-Signature": sign_webhook(payload, WEBHOOK_SECRET)}

    def post(_: int) -> dict[str, Any]:
        return requests.post(f"{stack.base_url}/payments/stripe/webhook", data=payload,
                             headers=headers, timeout=20).json()

    with ThreadPoolExecutor(max_workers=10) as pool:
        answers = list(pool.map(post, range(10)))
    assert sum(1 for a in answers if a.get("applied")) == 1
    assert all(a.get("received") for a in answers)
    stack.wait_status(charge["id"], "CHARGING")
    with stack.app.app_context():
        moves = db.session.scalars(
            db.select(ChargeEvent).where(ChargeEvent.to_status == "AUTHORIZED")
        ).all()
        assert len(moves) == 1


@pytest.mark.parametrize(("behaviour", "code"), [
    ("timeout_result", "START_TIMEOUT"), ("evse_occupied", "START_EVSE_OCCUPIED"),
    ("failed", "START_FAILED"), ("no_result", "START_NO_RESULT"),
])
def test_every_failed_start_leaves_stripe_with_a_canceled_intent(
    stripe_stack: LiveStack, standin: Any, behaviour: str, code: str
) -> None:
    stack = stripe_stack
    stack.simulator.set_behaviour(start=behaviour, command_timeout=1)
    charge = stack.api("POST", "/api/v1/charges", json={"evse_id": stack.evse_id}).json()
    pi_id = charge["payment"]["payment_intent"]
    deliver(stack, "payment_intent.amount_capturable_updated",
            standin.confirm(pi_id, "4242424242424242"))
    final = stack.wait_status(charge["id"], "RELEASED", timeout=15)
    assert final["failure"]["code"] == code
    assert standin.payment_intents[pi_id]["status"] == "canceled"
    assert standin.requests_to("POST", f"/v1/payment_intents/{pi_id}/capture") == []


def test_a_driver_who_gives_up_while_the_payment_goes_through_is_not_charged(
    stripe_stack: LiveStack, standin: Any
) -> None:
    stack = stripe_stack
    charge = stack.api("POST", "/api/v1/charges", json={"evse_id": stack.evse_id}).json()
    pi_id = charge["payment"]["payment_intent"]
    # The card is authorised, but the driver presses Cancel before Stripe's webhook lands.
    authorised = standin.confirm(pi_id, "4242424242424242")
    cancelled = stack.api("POST", f"/api/v1/charges/{charge['id']}/cancel").json()
    assert cancelled["status"] == "CANCELLED"
    stack.wait_for(lambda: standin.payment_intents[pi_id]["status"] == "canceled",
                   what="the hold to be released")
    # The late webhook changes nothing: no charging starts, the hold stays released.
    assert deliver(stack, "payment_intent.amount_capturable_updated", authorised).ok
    with stack.app.app_context():
        from charging.models import ChargeEvent

        stack.wait_for(lambda: db.session.scalar(db.select(db.func.count()).select_from(
            ChargeEvent).where(ChargeEvent.note.like("authorised after%"))) == 1)
        db.session.remove()
    assert stack.charge_status(charge["id"])["status"] == "CANCELLED"
    assert standin.payment_intents[pi_id]["status"] == "canceled"
    assert standin.requests_to("POST", f"/v1/payment_intents/{pi_id}/capture") == []
    assert not [m for m in stack.simulator.log if m["module"] == "commands"]
