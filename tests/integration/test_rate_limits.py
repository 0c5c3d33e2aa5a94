"""Rate limits (ratelimits.py), the demo gateway's refusal after failed cards, and at most
one open unpaid charge per EVSE and client (charging/unpaid.py).

Every limit is set tight here; TestConfig loosens them for the rest of the suite.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from charge_factory import seed_chargers

from charging.models import Charge
from extensions import db
from ocpi.transport import now_utc
from payments.models import DemoPaymentIntent
from tests import workers

# Drivers whose phones read Swedish (without it they would read English, the fallback).
DRIVER_A = {"REMOTE_ADDR": "198.51.100.7", "HTTP_ACCEPT_LANGUAGE": "sv-SE,sv;q=0.9"}
DRIVER_B = {"REMOTE_ADDR": "203.0.113.9", "HTTP_ACCEPT_LANGUAGE": "sv-SE,sv;q=0.9"}
DRIVER_C = {"REMOTE_ADDR": "192.0.2.44", "HTTP_ACCEPT_LANGUAGE": "sv-SE,sv;q=0.9"}
# Moved by the xdist worker's number, so parallel workers never share a database.
REDIS_URL = workers.redis_url(os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/5"))


@pytest.fixture
def limited(make_app: Callable[..., Any]) -> Iterator[Callable[..., Any]]:
    """limited(**settings): an app with these settings, its chargers stored, in context."""
    contexts: list[Any] = []

    def build(**settings: Any) -> Any:
        app = make_app(**settings)
        context = app.app_context()
        context.push()
        contexts.append(context)
        if not db.session.scalar(db.text("select count(*) from ocpi_parties")):
            seed_chargers()
        return app

    yield build
    for context in reversed(contexts):
        db.session.remove()
        db.engine.dispose()
        context.pop()


def post_charge(client: Any, env: dict[str, str], evse: str = "SE*SIM*E00001",
                **body: Any) -> Any:
    return client.post("/api/v1/charges", json={"evse_id": evse, **body}, environ_base=env)


def assert_limited(response: Any, message_start: str) -> None:
    assert response.status_code == 429, response.get_data(as_text=True)
    retry_after = int(response.headers["Retry-After"])
    assert 1 <= retry_after <= 3600
    if response.is_json:
        error = response.json["error"]
        assert error["code"] == "rate_limited"
        assert error["message"].startswith(message_start), error["message"]
    else:
        assert message_start in response.get_data(as_text=True)


# --- Charge creation --------------------------------------------------------------------


def test_charges_per_client_answer_429_after_the_limit_in_the_drivers_language(
    limited: Callable[..., Any]
) -> None:
    app = limited(RATE_LIMIT_CHARGES_PER_CLIENT="3/hour")
    client = app.test_client()
    for evse in ("SE*SIM*E00001", "SE*SIM*E00002"):
        assert post_charge(client, DRIVER_A, evse).status_code == 201
    assert post_charge(client, DRIVER_A, "nowhere").status_code == 404  # a bad one counts too
    assert_limited(post_charge(client, DRIVER_A, "SE*SIM*E00003"),
                   "Du har startat många laddningar")
    english = client.post("/api/v1/charges?lang=en", json={"evse_id": "SE*SIM*E00003"},
                          environ_base=DRIVER_A)
    assert_limited(english, "You have started many charges")
    # Another client is counted apart.
    assert post_charge(client, DRIVER_B, "SE*SIM*E00003").status_code == 201
    assert db.session.scalar(db.select(db.func.count()).select_from(Charge)) == 3


def test_charges_per_evse_count_holds_from_every_client_and_each_evse_apart(
    limited: Callable[..., Any]
) -> None:
    app = limited(RATE_LIMIT_CHARGES_PER_EVSE="2/hour")
    client = app.test_client()
    assert post_charge(client, DRIVER_A).status_code == 201
    assert post_charge(client, DRIVER_A).status_code == 200  # the same open charge: no hold
    assert post_charge(client, DRIVER_B).status_code == 201
    response = client.post("/api/v1/charges", json={"evse_id": "se-sim-e00001"},
                           environ_base=DRIVER_C, headers={"Accept-Language": "en"})
    assert_limited(response, "This charger has had too many payments")
    assert post_charge(client, DRIVER_C, "SE*SIM*E00002").status_code == 201


def test_refused_requests_do_not_use_up_a_charger(limited: Callable[..., Any]) -> None:
    app = limited(RATE_LIMIT_CHARGES_PER_EVSE="1/hour")
    client = app.test_client()
    for _ in range(3):
        assert post_charge(client, DRIVER_A, max_amount="0,01").status_code == 400
    assert post_charge(client, DRIVER_B).status_code == 201


# --- Payment confirmation ---------------------------------------------------------------


def confirm(client: Any, payment: dict[str, Any], card: str, **kw: Any) -> Any:
    return client.post("/payments/demo/confirm", json={
        "payment_intent": payment["payment_intent"], "client_secret": payment["client_secret"],
        "card_number": card}, environ_base=DRIVER_A, **kw)


def test_confirmations_per_charge_answer_429_in_json(limited: Callable[..., Any]) -> None:
    app = limited(RATE_LIMIT_CONFIRM_PER_CHARGE="3/hour", DEMO_MAX_FAILED_CARDS=100)
    client = app.test_client()
    payment = post_charge(client, DRIVER_A).json["payment"]
    for n in range(3):
        answer = confirm(client, payment, f"400000000000{n:04d}")
        assert answer.status_code == 200
        assert answer.json["status"] == "requires_payment_method"
    limited_answer = confirm(client, payment, "4242424242424242",
                             headers={"Accept-Language": "en-GB,en;q=0.9"})
    assert_limited(limited_answer, "Too many payment attempts")
    # Another charge's PaymentIntent is counted apart.
    other = post_charge(client, DRIVER_B, "SE*SIM*E00002").json["payment"]
    assert confirm(client, other, "4242424242424242").json["status"] == "requires_capture"


def test_the_demo_gateway_refuses_an_intent_after_three_failed_cards(
    limited: Callable[..., Any]
) -> None:
    app = limited(DEMO_MAX_FAILED_CARDS=3)
    client = app.test_client()
    payment = post_charge(client, DRIVER_A).json["payment"]
    assert confirm(client, payment, "4000000000000002").json == {
        "status": "requires_payment_method", "decline_message": "Your card was declined."}
    assert confirm(client, payment, "1234123412341234").json["status"] == \
        "requires_payment_method"
    assert confirm(client, payment, "4000000000000002").json["status"] == \
        "requires_payment_method"
    # A good card now: refused unasked, as Stripe reports it.
    refused = confirm(client, payment, "4242424242424242")
    assert refused.status_code == 200
    assert refused.json["status"] == "requires_payment_method"
    assert refused.json["code"] == "card_decline_rate_limit_exceeded"
    assert "declined too many times" in refused.json["decline_message"]
    intent = db.session.scalar(db.select(DemoPaymentIntent).where(
        DemoPaymentIntent.intent_id == payment["payment_intent"]))
    db.session.refresh(intent)
    assert (intent.status, intent.failed_cards, intent.amount_capturable_minor) == \
        ("requires_payment_method", 3, 0)
    # A fresh intent takes the good card.
    other = post_charge(client, DRIVER_B, "SE*SIM*E00002").json["payment"]
    assert confirm(client, other, "4242424242424242").json["status"] == "requires_capture"


def test_a_failed_authentication_counts_as_a_failed_card(limited: Callable[..., Any]) -> None:
    app = limited(DEMO_MAX_FAILED_CARDS=1)
    client = app.test_client()
    payment = post_charge(client, DRIVER_A).json["payment"]
    assert confirm(client, payment, "4000002500003155").json["status"] == "requires_action"
    answer = client.post("/payments/demo/confirm", json={
        "action": "authenticate", "payment_intent": payment["payment_intent"],
        "client_secret": payment["client_secret"], "approve": False})
    assert answer.json["decline_message"] == "Authentication failed."
    assert confirm(client, payment, "4242424242424242").json["code"] == \
        "card_decline_rate_limit_exceeded"


# --- Look-ups ---------------------------------------------------------------------------


def test_charge_and_receipt_lookups_per_client(limited: Callable[..., Any]) -> None:
    app = limited(RATE_LIMIT_LOOKUPS_PER_CLIENT="4/minute")
    client = app.test_client()
    charge_id = post_charge(client, DRIVER_A).json["id"]
    assert client.get(f"/api/v1/charges/{charge_id}", environ_base=DRIVER_A).status_code == 200
    assert client.get("/api/v1/charges/guessed", environ_base=DRIVER_A).status_code == 404
    assert client.get(f"/charge/{charge_id}", environ_base=DRIVER_A).status_code == 200
    assert client.get("/r/guessed", environ_base=DRIVER_A).status_code == 404
    api = client.get(f"/api/v1/charges/{charge_id}", environ_base=DRIVER_A)
    assert_limited(api, "För många förfrågningar")
    page = client.get(f"/charge/{charge_id}?lang=en", environ_base=DRIVER_A)
    assert page.mimetype == "text/html"
    assert_limited(page, "Too many requests in a short time")
    receipt = client.get("/r/guessed.pdf", environ_base=DRIVER_A)
    assert_limited(receipt, "För många förfrågningar")
    assert client.get(f"/api/v1/charges/{charge_id}", environ_base=DRIVER_B).status_code == 200


# --- Dashboard sign-in ------------------------------------------------------------------


def sign_in(client: Any, email: str, password: str, env: dict[str, str]) -> Any:
    import re

    page = client.get("/dashboard/login", environ_base=env).get_data(as_text=True)
    token = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    return client.post("/dashboard/login", data={"email": email, "password": password,
                                                 "csrf": token}, environ_base=env)


def test_sign_in_attempts_per_client(limited: Callable[..., Any]) -> None:
    from dashboard.models import set_operator

    app = limited(RATE_LIMIT_LOGIN_PER_CLIENT="3/hour")
    set_operator("ops@example.com", "correct horse")
    client = app.test_client()
    for _ in range(3):
        assert sign_in(client, "ops@example.com", "wrong", DRIVER_A).status_code == 200
    refused = sign_in(client, "ops@example.com", "correct horse", DRIVER_A)
    # In the browser's language (Swedish): the dashboard speaks the driver's languages.
    assert_limited(refused, "För många inloggningsförsök")
    assert sign_in(app.test_client(), "ops@example.com", "correct horse",
                   DRIVER_B).status_code == 302


def test_failed_sign_ins_per_email_from_any_client(limited: Callable[..., Any]) -> None:
    from dashboard.models import set_operator

    app = limited(RATE_LIMIT_LOGIN_PER_EMAIL="2/hour")
    set_operator("ops@example.com", "correct horse")
    set_operator("other@example.com", "battery staple")
    for _ in range(3):  # successful sign-ins do not count
        assert sign_in(app.test_client(), "ops@example.com", "correct horse",
                       DRIVER_A).status_code == 302
    assert sign_in(app.test_client(), "OPS@example.com", "guess", DRIVER_A).status_code == 200
    assert sign_in(app.test_client(), "ops@example.com", "guess", DRIVER_B).status_code == 200
    assert_limited(sign_in(app.test_client(), "ops@example.com", "correct horse", DRIVER_C),
                   "För många inloggningsförsök")
    assert sign_in(app.test_client(), "other@example.com", "battery staple",
                   DRIVER_C).status_code == 302


# --- The client key ---------------------------------------------------------------------


def test_the_charge_stores_a_keyed_hash_of_the_client_never_its_address(
    limited: Callable[..., Any]
) -> None:
    app = limited()
    client = app.test_client()
    charge_id = post_charge(client, DRIVER_A).json["id"]
    charge = db.session.scalar(db.select(Charge).where(Charge.public_id == charge_id))
    expected = hmac.new(b"test", b"client:198.51.100.7", hashlib.sha256).hexdigest()
    assert charge.client_key == expected
    assert len(charge.client_key) == 64
    assert "198.51.100.7" not in charge.client_key
    assert charge.client_key != hashlib.sha256(b"198.51.100.7").hexdigest()


def test_forwarded_addresses_count_only_behind_configured_proxies(
    limited: Callable[..., Any]
) -> None:
    proxy = {"REMOTE_ADDR": "10.0.0.2"}
    direct = limited(RATE_LIMIT_CHARGES_PER_CLIENT="1/hour").test_client()
    assert post_charge(direct, proxy).status_code == 201
    # Without TRUSTED_PROXIES the header is the client's own words: the socket decides.
    spoofed = direct.post("/api/v1/charges", json={"evse_id": "SE*SIM*E00002"},
                          environ_base=proxy, headers={"X-Forwarded-For": "192.0.2.200"})
    assert spoofed.status_code == 429

    behind = limited(TRUSTED_PROXIES=1, RATE_LIMIT_CHARGES_PER_CLIENT="1/hour").test_client()
    for address in ("192.0.2.1", "192.0.2.2"):
        answer = behind.post("/api/v1/charges", json={"evse_id": "SE*SIM*E00003"},
                             environ_base=proxy, headers={"X-Forwarded-For": address})
        assert answer.status_code in (200, 201), answer.json
    again = behind.post("/api/v1/charges", json={"evse_id": "SE*SIM*E00004"},
                        environ_base=proxy, headers={"X-Forwarded-For": "192.0.2.1"})
    assert again.status_code == 429


# --- Storage ----------------------------------------------------------------------------


def test_storage_follows_the_queue_unless_set() -> None:
    from ratelimits import storage_url

    assert storage_url({"QUEUE_URL": "sqlite:///q.db"}) == "memory://"
    assert storage_url({"QUEUE_URL": "redis://r:6379/0"}) == "redis://r:6379/0"
    assert storage_url({"QUEUE_URL": "redis://r:6379/0",
                        "RATE_LIMIT_STORAGE_URL": "redis://other:6379/3"}) == \
        "redis://other:6379/3"


@pytest.fixture
def redis_db() -> Iterator[Any]:
    redis = pytest.importorskip("redis", reason="the redis package is needed")
    connection = redis.Redis.from_url(REDIS_URL)
    try:
        connection.ping()
    except Exception as exc:
        pytest.skip(f"Redis at {REDIS_URL} is not reachable: {exc}")
    yield connection
    for key in connection.scan_iter("scancharge-limits*"):
        connection.delete(key)


def test_redis_storage_is_shared_between_two_app_instances(
    limited: Callable[..., Any], redis_db: Any
) -> None:
    # A fresh SECRET_KEY: this run's client keys are new to Redis.
    settings = {"RATE_LIMIT_STORAGE_URL": REDIS_URL, "RATE_LIMIT_LOOKUPS_PER_CLIENT": "3/minute",
                "SECRET_KEY": secrets.token_hex(16)}
    first, second = limited(**settings), limited(**settings)
    assert first.extensions["rate_limits"] is not second.extensions["rate_limits"]
    one, two = first.test_client(), second.test_client()
    assert one.get("/api/v1/charges/x", environ_base=DRIVER_A).status_code == 404
    assert two.get("/api/v1/charges/x", environ_base=DRIVER_A).status_code == 404
    assert one.get("/api/v1/charges/x", environ_base=DRIVER_A).status_code == 404
    assert_limited(two.get("/api/v1/charges/x", environ_base=DRIVER_A),
                   "För många förfrågningar")
    assert one.get("/api/v1/charges/x", environ_base=DRIVER_B).status_code == 404
    assert any(redis_db.scan_iter("scancharge-limits*"))


# --- One open unpaid charge per EVSE and client -----------------------------------------


def test_a_retried_create_returns_the_open_charge_and_its_payment(
    limited: Callable[..., Any]
) -> None:
    app = limited()
    client = app.test_client()
    first = post_charge(client, DRIVER_A, connector_id="1", language="en")
    again = post_charge(client, DRIVER_A, connector_id="1", language="en")
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json["id"] == first.json["id"]
    assert again.json["payment"] == first.json["payment"]
    assert again.json["status"] == "CREATED"
    assert db.session.scalar(db.select(db.func.count()).select_from(DemoPaymentIntent)) == 1
    # Another client at the same charger, and this client at another: new charges.
    assert post_charge(client, DRIVER_B).json["id"] != first.json["id"]
    assert post_charge(client, DRIVER_A, "SE*SIM*E00002").status_code == 201


def test_another_request_while_one_is_unpaid_is_refused_naming_it(
    limited: Callable[..., Any]
) -> None:
    app = limited()
    client = app.test_client()
    first = post_charge(client, DRIVER_A).json
    other_cap = post_charge(client, DRIVER_A, max_amount="100")
    assert other_cap.status_code == 409
    assert other_cap.json["error"]["code"] == "unpaid_charge_open"
    assert other_cap.json["error"]["detail"] == first["id"]
    assert other_cap.json["error"]["message"].startswith("Du har redan en obetald laddning")
    # Once that one is cancelled, the new request gets its own charge.
    assert client.post(f"/api/v1/charges/{first['id']}/cancel",
                       environ_base=DRIVER_A).status_code == 200
    assert post_charge(client, DRIVER_A, max_amount="100").status_code == 201


def test_paid_or_expired_charges_are_not_reused(limited: Callable[..., Any]) -> None:
    app = limited()
    client = app.test_client()
    first = post_charge(client, DRIVER_A).json
    confirm(client, first["payment"], "4242424242424242")
    charge = db.session.scalar(db.select(Charge).where(Charge.public_id == first["id"]))
    charge.status = "AUTHORIZED"  # as the gateway's event makes it
    db.session.commit()
    second = post_charge(client, DRIVER_A, "SE*SIM*E00002").json
    stale = db.session.scalar(db.select(Charge).where(Charge.public_id == second["id"]))
    stale.created_at = now_utc() - timedelta(seconds=app.config["UNPAID_CHARGE_TTL"] + 1)
    db.session.commit()
    third = post_charge(client, DRIVER_A, "SE*SIM*E00002")
    assert third.status_code == 201
    assert third.json["id"] != second["id"]


def test_two_simultaneous_creates_make_one_charge_and_one_hold(
    limited: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from charging import unpaid
    from payments.demo import DemoGateway

    app = limited()
    placed = DemoGateway.create_hold
    waits_for_hold = unpaid._with_hold
    second_arrived = threading.Event()

    def slow_hold(self: Any, *args: Any, **kwargs: Any) -> Any:
        # The hold is placed only once the second request has found the first's charge
        # and waits for this very hold: the two are simultaneous for certain.
        second_arrived.wait(10)
        return placed(self, *args, **kwargs)

    def second_waits(charge_pk: int) -> Any:
        second_arrived.set()
        return waits_for_hold(charge_pk)

    monkeypatch.setattr(DemoGateway, "create_hold", slow_hold)
    monkeypatch.setattr(unpaid, "_with_hold", second_waits)
    db.session.commit()
    barrier = threading.Barrier(2)
    answers: list[Any] = []

    def driver_taps() -> None:
        client = app.test_client()
        barrier.wait()
        answers.append(post_charge(client, DRIVER_A, connector_id="1"))

    threads = [threading.Thread(target=driver_taps) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(a.status_code for a in answers) == [200, 201], [a.json for a in answers]
    assert answers[0].json["id"] == answers[1].json["id"]
    assert answers[0].json["payment"] == answers[1].json["payment"]
    db.session.expire_all()
    assert db.session.scalar(db.select(db.func.count()).select_from(Charge)) == 1
    assert db.session.scalar(db.select(db.func.count()).select_from(DemoPaymentIntent)) == 1
    assert second_arrived.is_set()  # the second request waited for the first's hold
