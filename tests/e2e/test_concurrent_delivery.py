"""Everything arrives twice, at once: the same CDR POSTed ten times concurrently, and a
Stripe webhook redelivered while the CDR is being settled. Exactly one capture, one
receipt number, nothing lost. Runs on PostgreSQL too (TEST_DATABASE_URL)."""

from __future__ import annotations

import base64
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import requests
from conftest import LiveStack, running_stack

from extensions import db
from ocpi.models import OcpiCdr, Party, token_hash
from payments.models import DemoPaymentIntent, PaymentEvent, Receipt

CPO_TOKEN = "cpo-token-for-the-test"


def ended_without_cdr(stack: LiveStack) -> dict[str, Any]:
    """A charge whose session has ended and whose CDR the CPO has not pushed (yet)."""
    stack.simulator.set_behaviour(cdr="never")
    charge = stack.api("POST", "/api/v1/charges", json={"evse_id": stack.evse_id}).json()
    return charge


def pay_and_end(stack: LiveStack, charge: dict[str, Any]) -> None:
    stack.wait_status(charge["id"], "CHARGING")
    stack.api("POST", f"/api/v1/charges/{charge['id']}/stop")
    stack.wait_status(charge["id"], "ENDED")


def post_cdr_concurrently(stack: LiveStack, times: int) -> list[int]:
    # Play the CPO: give its connection a token the test knows.
    with stack.app.app_context():
        party = db.session.get(Party, stack.party_pk)
        party.incoming_token_hash = token_hash(CPO_TOKEN)
        db.session.commit()
    cdr = stack.simulator.cdrs[-1]
    from ocpi.transport import json_dumps

    body = json_dumps(cdr)
    headers = {"Authorization": "Token " + base64.b64encode(CPO_TOKEN.encode()).decode(),
               "Content-Type": "application/json"}

    def post(_: int) -> int:
        return requests.post(f"{stack.base_url}/ocpi/2.2.1/cdrs", data=body, headers=headers,
                             timeout=30).status_code

    with ThreadPoolExecutor(max_workers=times) as pool:
        return list(pool.map(post, range(times)))


def test_the_same_cdr_posted_ten_times_at_once(make_app: Callable[..., Any]) -> None:
    with running_stack(make_app) as stack:
        charge = ended_without_cdr(stack)
        stack.api("POST", "/payments/demo/confirm", json={
            "payment_intent": charge["payment"]["payment_intent"],
            "client_secret": charge["payment"]["client_secret"],
            "card_number": "4242424242424242"})
        pay_and_end(stack, charge)

        statuses = post_cdr_concurrently(stack, 10)

        assert sorted(statuses) == [200] * 9 + [201]
        done = stack.wait_status(charge["id"], "CAPTURED", timeout=20)
        with stack.app.app_context():
            assert db.session.scalar(db.select(db.func.count()).select_from(OcpiCdr)) == 1
            intent = db.session.scalar(db.select(DemoPaymentIntent))
            captures = [k for k in intent.applied_keys if k.endswith("-capture")]
            assert captures == [f"charge-{charge['id']}-capture"]
            assert intent.amount_received_minor == done["captured"]["amount_minor"]
            assert [r.number for r in db.session.scalars(db.select(Receipt))] == [1]


def test_a_webhook_redelivered_while_the_cdr_settles(make_app: Callable[..., Any]) -> None:
    import stripe
    from stripe_standin import create_stripe_standin, event_payload, sign_webhook

    from servers import ServerThread

    stand = create_stripe_standin()
    stand_server = ServerThread(stand.app).start()
    old_delay = stripe.HTTPClient.INITIAL_DELAY
    stripe.HTTPClient.INITIAL_DELAY = 0
    try:
        with running_stack(make_app, STRIPE_SECRET_KEY="sk_test_x",
                           STRIPE_PUBLISHABLE_KEY="pk_test_x", STRIPE_WEBHOOK_SECRET="whsec_t",
                           STRIPE_API_BASE=stand_server.url) as stack:
            charge = ended_without_cdr(stack)
            pi = charge["payment"]["payment_intent"]
            authorised = stand.confirm(pi, "4242424242424242")
            payload = event_payload("payment_intent.amount_capturable_updated", authorised)
            headers = {"Stripe-Signature": sign_webhook(payload, "whsec_t")}

            def deliver(_: int) -> int:
                return requests.post(f"{stack.base_url}/payments/stripe/webhook",
                                     data=payload, headers=headers, timeout=30).status_code

            assert deliver(0) == 200
            pay_and_end(stack, charge)
            # Stripe redelivers the same event while the CPO pushes its CDR, both at once.
            with ThreadPoolExecutor(max_workers=10) as pool:
                webhooks = pool.map(deliver, range(5))
                cdrs = pool.submit(post_cdr_concurrently, stack, 5)
                assert list(webhooks) == [200] * 5
                assert sorted(cdrs.result()) == [200] * 4 + [201]

            done = stack.wait_status(charge["id"], "CAPTURED", timeout=20)
            real = [r for r in stand.requests_to("POST", f"/v1/payment_intents/{pi}/capture")
                    if r.status == 200 and not r.replayed]
            assert len(real) == 1
            assert stand.payment_intents[pi]["amount_received"] == done["captured"]["amount_minor"]
            with stack.app.app_context():
                assert [r.number for r in db.session.scalars(db.select(Receipt))] == [1]
                events = db.session.scalars(db.select(PaymentEvent)).all()
                assert len(events) == 1 and events[0].applied_at is not None
    finally:
        stripe.HTTPClient.INITIAL_DELAY = old_delay
        stand_server.stop()
