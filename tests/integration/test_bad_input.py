"""Bad input is answered 400 (or 404) with a message, and nothing of it is stored.

The NUL cases matter on PostgreSQL, which refuses NUL in any text value: run this file
with TEST_DATABASE_URL too.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from sqlalchemy import func, select

from charging.models import Charge
from extensions import db
from payments.models import DemoPaymentIntent, PaymentEvent
from tests.stripe_standin import sign_webhook

WEBHOOK_SECRET = "whsec_bad_input_tests"


@pytest.fixture
def app(make_app: Any) -> Any:
    application = make_app(STRIPE_WEBHOOK_SECRET=WEBHOOK_SECRET)
    with application.app_context():
        yield application
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def client(app: Any) -> Any:
    return app.test_client()


def nothing_stored() -> None:
    db.session.rollback()
    for model in (Charge, DemoPaymentIntent, PaymentEvent):
        assert db.session.scalar(select(func.count()).select_from(model)) == 0, model


# -- control characters in paths and query arguments ---------------------------------------


@pytest.mark.parametrize("path", [
    "/api/v1/chargers/%00", "/api/v1/chargers/SE*SIM*E%001", "/api/v1/charges/%00",
    "/api/v1/charges/%00/receipt", "/api/v1/nowhere/%00",
])
def test_nul_in_an_api_path_is_a_json_400(client: Any, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error["code"] == "invalid_request" and "control character" in error["detail"]
    nothing_stored()


@pytest.mark.parametrize("path", ["/c/%00", "/c/SE*SIM%00", "/r/%00", "/r/%00.pdf",
                                  "/charge/%00", "/charge/abc%0a", "/c/%1b[31m",
                                  "/dashboard/charges/%00", "/dashboard/qr/%00.png"])
def test_nul_in_a_page_path_is_a_400_page(client: Any, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 400
    assert response.mimetype == "text/html"
    assert "control character" in response.get_data(as_text=True)
    nothing_stored()


def test_nul_in_a_payments_path_is_json(client: Any) -> None:
    response = client.post("/payments/demo/confirm%00", json={})
    assert response.status_code == 400
    assert "control character" in response.get_json()["error"]


@pytest.mark.parametrize("query", ["lang=%00", "lang=sv%00", "x%00=1", "page=%7f",
                                   "status=CHARGING%0d%0a"])
@pytest.mark.parametrize("path", ["/api/v1/chargers/SE*SIM*E00001", "/c/SE*SIM*E00001",
                                  "/dashboard/", "/dashboard/login"])
def test_control_characters_in_a_query_argument_are_refused(
    client: Any, path: str, query: str
) -> None:
    response = client.get(f"{path}?{query}")
    assert response.status_code == 400
    assert "query argument" in response.get_data(as_text=True)


def test_nul_in_a_form_field_is_refused(client: Any) -> None:
    response = client.post("/dashboard/login",
                           data={"email": "ops@example.com\x00", "password": "x"})
    assert response.status_code == 400
    assert "field &#39;email&#39; contains a control character" in response.get_data(as_text=True)


def test_a_non_ascii_csrf_token_is_the_expired_form_400(client: Any) -> None:
    client.get("/dashboard/login")  # a session with a CSRF token
    response = client.post("/dashboard/login", data={"email": "a@b.se", "password": "x",
                                                     "csrf": "\u00e5\u00e4\u00f6"})
    assert response.status_code == 400


def test_a_non_ascii_client_secret_is_the_gateway_s_400(client: Any) -> None:
    from payments.setup import current_gateway

    hold = current_gateway().create_hold(1000, "SEK", description="t", metadata={},
                                         idempotency_key="k1")
    db.session.commit()
    for action in ("confirm", "authenticate"):
        response = client.post("/payments/demo/confirm", json={
            "action": action, "payment_intent": hold.id, "client_secret": "\u0080",
            "card_number": "4242424242424242"})
        assert response.status_code == 400, action


def test_ocpi_keeps_its_own_envelope(client: Any) -> None:
    response = client.get("/ocpi/versions%00")
    assert response.status_code != 400 or "status_code" in response.get_json()
    assert response.status_code < 500


# -- over-long ids ----------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/c/", "/charge/", "/r/", "/dashboard/charges/"])
def test_an_id_longer_than_any_real_one_is_not_looked_up(client: Any, path: str) -> None:
    response = client.get(path + "A" * 65)
    assert response.status_code == 404
    nothing_stored()


def test_an_overlong_evse_id_in_the_api_is_a_json_404(client: Any) -> None:
    response = client.get("/api/v1/chargers/" + "SE*SIM*E" * 20)
    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "not_found"


def test_an_evse_id_just_within_the_limit_is_looked_up(client: Any) -> None:
    response = client.get("/api/v1/chargers/" + "A" * 64)
    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "unknown_charger"


# -- malformed JSON bodies --------------------------------------------------------------------


BAD_BODIES: list[tuple[bytes, str]] = [
    (b"913", "must be an object"),
    (b"[0]", "must be an object"),
    (b'"text"', "must be an object"),
    (b"null", "must be an object"),
    (b"{", "not valid JSON"),
    (b"\xff\xfe", "not valid JSON"),
    (b"", "JSON object body is required"),
    (b'{"evse_id": "SE*SIM\\u0000"}', "control character"),
    (b'{"a": ["\\u0000"]}', "control character"),
    (b"[" * 100 + b"]" * 100, "nests deeper than 32"),
]


@pytest.mark.parametrize("body,reason", BAD_BODIES)
def test_a_malformed_charge_body_is_a_json_400(client: Any, body: bytes, reason: str) -> None:
    response = client.post("/api/v1/charges", data=body, content_type="application/json")
    assert response.status_code == 400, response.get_data()
    assert reason in response.get_json()["error"]["detail"]
    nothing_stored()


@pytest.mark.parametrize("field,value,reason", [
    ("evse_id", 12, "evse_id must be a string, not a number"),
    ("evse_id", ["SE*SIM*E00001"], "evse_id must be a string, not an array"),
    ("evse_id", "E" * 65, "evse_id is longer than 64"),
    ("connector_id", {"id": 1}, "connector_id must be a string"),
    ("language", 5, "language must be a string"),
    ("max_amount", [200], "max_amount must be a string"),
    ("max_amount_minor", "200", "max_amount_minor must be a positive integer"),
])
def test_a_charge_field_of_the_wrong_type_says_which(
    client: Any, field: str, value: Any, reason: str
) -> None:
    body = {"evse_id": "SE*SIM*E00001", field: value}
    response = client.post("/api/v1/charges", json=body)
    assert response.status_code == 400
    assert reason in response.get_json()["error"]["detail"]
    nothing_stored()


@pytest.mark.parametrize("body,reason", BAD_BODIES)
def test_a_malformed_demo_confirm_body_is_a_json_400(
    client: Any, body: bytes, reason: str
) -> None:
    response = client.post("/payments/demo/confirm", data=body,
                           content_type="application/json")
    assert response.status_code == 400
    assert reason in response.get_json()["error"]
    nothing_stored()


@pytest.mark.parametrize("body,reason", [
    ({"payment_intent": 5}, "payment_intent must be a string"),
    ({"payment_intent": "pi", "client_secret": {}}, "client_secret must be a string"),
    ({"action": "authenticate", "approve": "yes"}, "approve must be true or false"),
    ({"card_number": 4242424242424242}, "card_number must be a string"),
])
def test_a_demo_confirm_field_of_the_wrong_type_says_which(
    client: Any, body: dict[str, Any], reason: str
) -> None:
    response = client.post("/payments/demo/confirm", json=body)
    assert response.status_code == 400
    assert reason in response.get_json()["error"]


def test_an_unknown_payment_intent_is_still_the_gateway_s_400(client: Any) -> None:
    response = client.post("/payments/demo/confirm",
                           json={"payment_intent": "pi_x", "client_secret": "s",
                                 "card_number": "4242424242424242"})
    assert response.status_code == 400


# -- signed webhooks of an unexpected shape ---------------------------------------------------


def post_signed(client: Any, event: Any) -> Any:
    payload = json.dumps(event).encode()
    return client.post("/payments/stripe/webhook", data=payload,
                       headers={"Stripe-Signature": sign_webhook(payload, WEBHOOK_SECRET,
                                                                 int(time.time()))},
                       content_type="application/json")


def stored() -> list[PaymentEvent]:
    db.session.rollback()
    return list(db.session.scalars(select(PaymentEvent)))


@pytest.mark.parametrize("event", [
    {"object": "event", "type": "payment_intent.succeeded", "data": {"object": {}}},
    {"object": "event", "id": 5, "type": "x", "data": {"object": {}}},
    {"object": "event", "id": "", "data": {}},
    {"object": "event", "id": "evt_\u0000", "data": {"object": {}}},
    {"object": "event", "id": "e" * 256, "data": {"object": {}}},
])
def test_an_event_without_a_usable_id_is_400_and_not_stored(client: Any, event: Any) -> None:
    response = post_signed(client, event)
    assert response.status_code == 400
    assert "not stored" in response.get_json()["error"]
    assert stored() == []


@pytest.mark.parametrize("event,reason", [
    ({"object": "event", "id": "evt_1", "type": "payment_intent.succeeded", "data": [0]},
     "data is not an object"),
    ({"object": "event", "id": "evt_1", "type": "payment_intent.succeeded", "data": "x"},
     "data is not an object"),
    ({"object": "event", "id": "evt_1", "type": "payment_intent.succeeded", "data": {}},
     "data.object is missing"),
    ({"object": "event", "id": "evt_1", "type": "charge.refunded", "data": {"object": 7}},
     "data.object is missing"),
    ({"object": "event", "id": "evt_1", "type": ["x"], "data": {"object": {}}},
     "type is not a string"),
    ({"object": "event", "id": "evt_1", "type": "t" * 65, "data": {"object": {}}},
     "type is not a string"),
    ({"object": "event", "id": "evt_1", "type": "payment_intent.succeeded",
      "data": {"object": {"object": "payment_intent", "id": "pi_\u0000"}}}, "NUL"),
])
def test_an_event_of_the_wrong_shape_is_stored_and_answered_400(
    client: Any, event: Any, reason: str
) -> None:
    response = post_signed(client, event)
    assert response.status_code == 400
    assert reason in response.get_json()["error"]
    [row] = stored()
    assert row.event_id == "evt_1" and row.applied_at is not None
    assert reason in row.error
    # Delivered again (Stripe retries 4xx too): the same answer, still one row.
    assert post_signed(client, event).status_code == 400
    assert len(stored()) == 1


@pytest.mark.parametrize("obj", [
    {"object": "payment_intent", "id": "pi_1", "status": "nonsense"},
    {"object": "payment_intent", "id": "pi_1", "status": "succeeded", "amount": "a lot"},
    {"object": "payment_intent", "status": "succeeded", "amount": 100},
    {"object": "payment_intent", "id": "pi_1", "status": "succeeded", "amount": 1,
     "currency": "sek", "metadata": [1]},
])
def test_a_payment_intent_that_cannot_be_read_is_400_and_kept(client: Any, obj: Any) -> None:
    event = {"object": "event", "id": "evt_pi", "type": "payment_intent.succeeded",
             "data": {"object": obj}}
    response = post_signed(client, event)
    assert response.status_code == 400, response.get_json()
    [row] = stored()
    assert row.applied_at is not None and row.error.startswith("malformed: ")


@pytest.mark.parametrize("obj", [
    {"object": "charge", "id": "ch_1", "amount": "1", "amount_captured": 1},
    {"object": "charge", "id": "ch_1", "payment_intent": {"id": "pi"}, "amount": 1},
])
def test_a_refund_that_cannot_be_read_is_400(client: Any, obj: Any) -> None:
    event = {"object": "event", "id": "evt_ch", "type": "charge.refunded",
             "data": {"object": obj}}
    assert post_signed(client, event).status_code == 400


def test_an_unknown_type_is_stored_and_acknowledged(client: Any) -> None:
    event = {"object": "event", "id": "evt_new", "type": "customer.created",
             "data": {"object": {"object": "customer", "id": "cus_1"}}}
    response = post_signed(client, event)
    assert response.status_code == 200
    [row] = stored()
    assert row.type == "customer.created" and row.error is None


def test_a_well_formed_event_still_applies(client: Any) -> None:
    event = {"object": "event", "id": "evt_ok", "type": "payment_intent.canceled",
             "data": {"object": {"object": "payment_intent", "id": "pi_unknown",
                                 "status": "canceled", "amount": 100, "currency": "sek"}}}
    response = post_signed(client, event)
    assert response.status_code == 200 and response.get_json()["applied"] is True


def test_a_sweep_does_not_re_drive_a_malformed_event(client: Any) -> None:
    from datetime import timedelta

    from charging import sweeper

    post_signed(client, {"object": "event", "id": "evt_1", "type": "x", "data": []})
    [row] = stored()
    row.received_at = row.received_at - timedelta(hours=1)
    db.session.commit()
    assert sweeper.sweep()["events"] == 0
