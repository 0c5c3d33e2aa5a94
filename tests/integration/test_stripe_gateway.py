"""StripeGateway through the real `stripe` library, against the HTTP stand-in on 127.0.0.1.

Nothing inside the gateway or the library is faked: requests cross a real socket as form
posts and come back as Stripe-shaped JSON. The only patch is the library's retry backoff
(HTTPClient.INITIAL_DELAY / MAX_DELAY, at least 0.5 s per retry) so retry tests stay fast.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator

import pytest
import stripe

from payments.gateway import HoldStatus, PaymentError
from payments.stripe_gateway import (
    StripeGateway,
    WebhookSignatureError,
    hold_from_payment_intent,
    verify_webhook,
)
from servers import ServerThread
from tests.stripe_standin import (
    StripeStandin,
    create_stripe_standin,
    event_payload,
    sign_webhook,
)

SECRET_KEY = "sk_test_51ScanChargeStandin"
PUBLISHABLE_KEY = "pk_test_51ScanChargeStandin"
WEBHOOK_SECRET = "whsec_scancharge_standin_secret"
PI_PATH = "/v1/payment_intents"


@pytest.fixture(autouse=True)
def _no_retry_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stripe.HTTPClient, "INITIAL_DELAY", 0.0)
    monkeypatch.setattr(stripe.HTTPClient, "MAX_DELAY", 0.0)


@pytest.fixture(scope="module")
def _served() -> Iterator[tuple[StripeStandin, ServerThread]]:
    # One server for the module: each ServerThread.stop() waits out a 0.5 s poll.
    standin = create_stripe_standin()
    with ServerThread(standin.app) as running:
        yield standin, running


@pytest.fixture
def standin(_served: tuple[StripeStandin, ServerThread]) -> StripeStandin:
    _served[0].reset()
    return _served[0]


@pytest.fixture
def server(_served: tuple[StripeStandin, ServerThread], standin: StripeStandin) -> ServerThread:
    return _served[1]


@pytest.fixture
def gateway(server: ServerThread) -> StripeGateway:
    return StripeGateway(SECRET_KEY, PUBLISHABLE_KEY, api_base=server.url, max_network_retries=2)


def _create(gateway: StripeGateway, key: str = "charge-1:hold", amount: int = 50_000):
    return gateway.create_hold(
        amount,
        "SEK",
        description="Charging at Kungsgatan 12, EVSE SE*ABC*E1",
        metadata={"charge_id": "1", "evse_uid": "SE*ABC*E1"},
        idempotency_key=key,
    )


# -- holds ----------------------------------------------------------------------------------


def test_create_hold_asks_for_a_manual_capture_card_only_intent_without_receipt_email(
    gateway: StripeGateway, standin: StripeStandin
) -> None:
    hold = _create(gateway)

    sent = standin.last_request
    assert (sent.method, sent.path) == ("POST", PI_PATH)
    assert sent.headers["Idempotency-Key"] == "charge-1:hold"
    assert sent.headers["Authorization"] == f"Bearer {SECRET_KEY}"
    assert sent.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert sent.params == {
        "amount": "50000",
        "currency": "sek",
        "capture_method": "manual",
        # Only what fits a hold (the wallets pay as cards); Stripe sends no receipt of its
        # own beside ScanCharge's numbered one.
        "payment_method_types": ["card"],
        "description": "Charging at Kungsgatan 12, EVSE SE*ABC*E1",
        "metadata": {"charge_id": "1", "evse_uid": "SE*ABC*E1"},
    }

    assert hold.id.startswith("pi_")
    assert hold.status is HoldStatus.REQUIRES_PAYMENT_METHOD
    assert (hold.amount_minor, hold.currency) == (50_000, "SEK")
    assert hold.client_secret is not None and hold.client_secret.startswith(f"{hold.id}_secret_")
    assert hold.amount_capturable_minor == 0 and hold.amount_received_minor == 0
    assert hold.metadata == {"charge_id": "1", "evse_uid": "SE*ABC*E1"}
    assert standin.payment_intents[hold.id]["receipt_email"] is None
    assert standin.payment_intents[hold.id]["payment_method_types"] == ["card"]


def test_the_page_config_matches_the_intent_the_server_creates(gateway: StripeGateway) -> None:
    # The deferred-intent Elements are created with these before the PaymentIntent exists;
    # Stripe refuses confirmPayment when they differ from the intent's.
    assert gateway.page_config() == {"kind": "stripe", "publishable_key": PUBLISHABLE_KEY,
                                     "capture_method": "manual",
                                     "payment_method_types": ["card"]}


def test_confirmed_hold_is_read_back_with_card_brand_and_last4(
    gateway: StripeGateway, standin: StripeStandin
) -> None:
    hold = _create(gateway)
    standin.confirm(hold.id, "4242424242424242")

    hold = gateway.retrieve(hold.id)

    assert standin.last_request.params == {"expand": ["latest_charge", "payment_method"]}
    assert hold.status is HoldStatus.REQUIRES_CAPTURE
    assert hold.amount_capturable_minor == 50_000
    assert (hold.payment_method_brand, hold.payment_method_last4) == ("visa", "4242")
    assert hold.decline_message is None


def test_partial_capture_takes_the_amount_and_releases_the_rest(
    gateway: StripeGateway, standin: StripeStandin
) -> None:
    hold = _create(gateway)
    standin.confirm(hold.id, "5555555555554444")

    captured = gateway.capture(hold.id, 31_250, idempotency_key="charge-1:capture")

    sent = standin.last_request
    assert sent.path == f"{PI_PATH}/{hold.id}/capture"
    assert sent.params["amount_to_capture"] == "31250"
    assert sent.headers["Idempotency-Key"] == "charge-1:capture"
    assert captured.status is HoldStatus.SUCCEEDED
    assert captured.amount_received_minor == 31_250
    assert captured.amount_capturable_minor == 0
    assert (captured.payment_method_brand, captured.payment_method_last4) == ("mastercard", "4444")
    charge = standin.charges[standin.payment_intents[hold.id]["latest_charge"]]
    assert charge["amount_captured"] == 31_250
    assert charge["amount_refunded"] == 50_000 - 31_250


def test_capturing_more_than_capturable_is_refused_and_not_retryable(
    gateway: StripeGateway, standin: StripeStandin
) -> None:
    hold = _create(gateway)
    standin.confirm(hold.id, "4242424242424242")

    with pytest.raises(PaymentError) as caught:
        gateway.capture(hold.id, 50_001, idempotency_key="charge-1:capture")

    assert caught.value.retryable is False
    assert caught.value.code == "amount_too_large"
    assert "amount_to_capture" in str(caught.value)
    assert standin.payment_intents[hold.id]["status"] == "requires_capture"


def test_capture_retried_with_the_same_key_is_replayed_not_repeated(
    gateway: StripeGateway, standin: StripeStandin
) -> None:
    hold = _create(gateway)
    standin.confirm(hold.id, "4242424242424242")

    first = gateway.capture(hold.id, 20_000, idempotency_key="charge-1:capture")
    again = gateway.capture(hold.id, 20_000, idempotency_key="charge-1:capture")

    assert again == first
    attempts = standin.requests_to("POST", f"{PI_PATH}/{hold.id}/capture")
    assert [a.replayed for a in attempts] == [False, True]


def test_cancel_releases_the_hold(gateway: StripeGateway, standin: StripeStandin) -> None:
    hold = _create(gateway)
    standin.confirm(hold.id, "4242424242424242")

    canceled = gateway.cancel(hold.id, idempotency_key="charge-1:cancel")

    assert standin.last_request.params["cancellation_reason"] == "abandoned"
    assert standin.last_request.headers["Idempotency-Key"] == "charge-1:cancel"
    assert canceled.status is HoldStatus.CANCELED
    assert canceled.amount_capturable_minor == 0
    stored = standin.payment_intents[hold.id]
    assert stored["cancellation_reason"] == "abandoned" and stored["canceled_at"]


def test_cancel_after_capture_is_refused(gateway: StripeGateway, standin: StripeStandin) -> None:
    hold = _create(gateway)
    standin.confirm(hold.id, "4242424242424242")
    gateway.capture(hold.id, 10_000, idempotency_key="charge-1:capture")

    with pytest.raises(PaymentError) as caught:
        gateway.cancel(hold.id, idempotency_key="charge-1:cancel")

    assert caught.value.retryable is False
    assert caught.value.code == "payment_intent_unexpected_state"


def test_declined_card_leaves_a_decline_message(
    gateway: StripeGateway, standin: StripeStandin
) -> None:
    hold = _create(gateway)
    answer = standin.confirm(hold.id, "4000000000000002")
    assert answer["error"]["decline_code"] == "generic_decline"
    assert answer["error"]["payment_intent"]["status"] == "requires_payment_method"

    hold = gateway.retrieve(hold.id)

    assert hold.status is HoldStatus.REQUIRES_PAYMENT_METHOD
    assert hold.decline_message == "Your card was declined."
    assert hold.amount_capturable_minor == 0


def test_three_d_secure_card_requires_action_until_completed(
    gateway: StripeGateway, standin: StripeStandin
) -> None:
    hold = _create(gateway)
    standin.confirm(hold.id, "4000002500003155")

    waiting = gateway.retrieve(hold.id)
    assert waiting.status is HoldStatus.REQUIRES_ACTION
    # No charge yet: brand and last4 come from the expanded payment method.
    assert (waiting.payment_method_brand, waiting.payment_method_last4) == ("visa", "3155")

    standin.complete_action(hold.id)
    assert gateway.retrieve(hold.id).status is HoldStatus.REQUIRES_CAPTURE


def test_confirm_endpoint_for_pages_under_test(
    gateway: StripeGateway, server: ServerThread
) -> None:
    import requests

    hold = _create(gateway)
    answer = requests.post(
        f"{server.url}/_standin/confirm/{hold.id}",
        data={"card": "4242 4242 4242 4242"},
        timeout=5,
    )
    assert answer.status_code == 200 and answer.json()["status"] == "requires_capture"


def test_unknown_hold_is_not_retryable(gateway: StripeGateway) -> None:
    with pytest.raises(PaymentError) as caught:
        gateway.retrieve("pi_doesnotexist")
    assert caught.value.retryable is False
    assert caught.value.code == "resource_missing"


# -- idempotency ----------------------------------------------------------------------------


def test_create_with_the_same_key_replays_the_same_payment_intent(
    gateway: StripeGateway, standin: StripeStandin
) -> None:
    first = _create(gateway, key="charge-7:hold")
    second = _create(gateway, key="charge-7:hold")

    assert second == first
    assert len(standin.payment_intents) == 1
    assert [r.replayed for r in standin.requests_to("POST", PI_PATH)] == [False, True]


def test_same_key_with_other_parameters_is_an_idempotency_error(
    gateway: StripeGateway, standin: StripeStandin
) -> None:
    _create(gateway, key="charge-7:hold", amount=50_000)

    with pytest.raises(PaymentError) as caught:
        _create(gateway, key="charge-7:hold", amount=60_000)

    assert caught.value.retryable is False
    assert caught.value.code == "idempotency_error"
    assert len(standin.payment_intents) == 1


# -- retries and failures -------------------------------------------------------------------


def test_lock_timeout_429_is_retried_by_the_library_with_the_same_key(
    gateway: StripeGateway, standin: StripeStandin
) -> None:
    standin.fail_next(429, code="lock_timeout")

    hold = _create(gateway)

    attempts = standin.requests_to("POST", PI_PATH)
    assert [a.status for a in attempts] == [429, 200]
    assert {a.idempotency_key for a in attempts} == {"charge-1:hold"}
    assert hold.id in standin.payment_intents


def test_plain_rate_limit_429_is_left_to_us_and_retryable(
    gateway: StripeGateway, standin: StripeStandin
) -> None:
    # Without Stripe-Should-Retry: true the library does not retry a 429 itself.
    standin.fail_next(429)

    with pytest.raises(PaymentError) as caught:
        _create(gateway)

    assert caught.value.retryable is True
    assert caught.value.code == "rate_limit"
    assert len(standin.requests_to("POST", PI_PATH)) == 1


def test_persistent_429_gives_up_after_max_network_retries_as_retryable(
    gateway: StripeGateway, standin: StripeStandin
) -> None:
    standin.fail_next(429, count=10, code="lock_timeout")

    with pytest.raises(PaymentError) as caught:
        _create(gateway)

    assert caught.value.retryable is True
    assert len(standin.requests_to("POST", PI_PATH)) == 3  # 1 + max_network_retries


def test_one_500_is_retried_by_the_library(gateway: StripeGateway, standin: StripeStandin) -> None:
    hold = _create(gateway)
    standin.confirm(hold.id, "4242424242424242")
    standin.fail_next(500)

    captured = gateway.capture(hold.id, 10_000, idempotency_key="charge-1:capture")

    assert captured.status is HoldStatus.SUCCEEDED
    attempts = standin.requests_to("POST", f"{PI_PATH}/{hold.id}/capture")
    assert [a.status for a in attempts] == [500, 200]
    assert {a.idempotency_key for a in attempts} == {"charge-1:capture"}


def test_persistent_500_is_a_retryable_payment_error(
    gateway: StripeGateway, standin: StripeStandin
) -> None:
    standin.fail_next(500, count=10)

    with pytest.raises(PaymentError) as caught:
        gateway.retrieve("pi_whatever")

    assert caught.value.retryable is True
    assert caught.value.code == "api_error"
    assert len(standin.requests) == 3


def test_connection_refused_is_a_retryable_payment_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    gateway = StripeGateway(SECRET_KEY, PUBLISHABLE_KEY, api_base=f"http://127.0.0.1:{closed_port}")

    started = time.monotonic()
    with pytest.raises(PaymentError) as caught:
        _create(gateway)

    assert caught.value.retryable is True
    assert caught.value.code == "connection"
    assert time.monotonic() - started < 5


def test_wrong_api_key_is_not_retryable(server: ServerThread) -> None:
    gateway = StripeGateway("sk_live_not_for_tests", PUBLISHABLE_KEY, api_base=server.url)
    with pytest.raises(PaymentError) as caught:
        _create(gateway)
    assert caught.value.retryable is False


def test_api_base_may_end_in_v1(server: ServerThread, standin: StripeStandin) -> None:
    gateway = StripeGateway(SECRET_KEY, PUBLISHABLE_KEY, api_base=f"{server.url}/v1/")
    hold = _create(gateway)
    assert standin.last_request.path == PI_PATH and hold.id in standin.payment_intents


def test_money_is_integer_minor_units_only(gateway: StripeGateway, standin: StripeStandin) -> None:
    with pytest.raises(TypeError):
        gateway.create_hold(
            12.5,  # type: ignore[arg-type]
            "SEK",
            description="d",
            metadata={},
            idempotency_key="k",
        )
    assert standin.requests == []


def test_page_config(gateway: StripeGateway) -> None:
    assert gateway.page_config()["kind"] == "stripe"
    assert gateway.kind == "stripe"


# -- PaymentIntent JSON to Hold ---------------------------------------------------------------


def test_hold_from_a_webhook_copy_has_no_card_details(
    gateway: StripeGateway, standin: StripeStandin
) -> None:
    hold = _create(gateway)
    standin.confirm(hold.id, "4242424242424242")
    snapshot = dict(standin.payment_intents[hold.id])  # latest_charge is an id here

    parsed = hold_from_payment_intent(snapshot)

    assert parsed.status is HoldStatus.REQUIRES_CAPTURE
    assert parsed.amount_capturable_minor == 50_000 and parsed.currency == "SEK"
    assert parsed.payment_method_brand is None and parsed.payment_method_last4 is None


def test_unknown_status_is_refused() -> None:
    with pytest.raises(PaymentError):
        hold_from_payment_intent(
            {"id": "pi_1", "status": "requires_source", "amount": 100, "currency": "sek"}
        )


# -- webhooks -------------------------------------------------------------------------------


@pytest.fixture
def signed_event(gateway: StripeGateway, standin: StripeStandin) -> bytes:
    hold = _create(gateway)
    standin.confirm(hold.id, "4242424242424242")
    return event_payload(
        "payment_intent.amount_capturable_updated",
        standin.payment_intents[hold.id],
        idempotency_key="charge-1:hold",
    )


def test_standin_signs_exactly_as_stripe_does() -> None:
    payload = b'{"id": "evt_1", "object": "event"}'
    ours = sign_webhook(payload, WEBHOOK_SECRET, timestamp=1_700_000_000)
    library = stripe.WebhookSignature.generate_signature_header(
        payload.decode(), WEBHOOK_SECRET, timestamp=1_700_000_000
    )
    assert ours == library


def test_valid_signature_gives_the_event(signed_event: bytes) -> None:
    header = sign_webhook(signed_event, WEBHOOK_SECRET)

    event = verify_webhook(signed_event, header, WEBHOOK_SECRET)

    assert event == json.loads(signed_event)
    assert isinstance(event, dict) and event["object"] == "event"
    assert event["type"] == "payment_intent.amount_capturable_updated"
    hold = hold_from_payment_intent(event["data"]["object"])
    assert hold.status is HoldStatus.REQUIRES_CAPTURE
    # The method on the gateway is the same check.
    assert StripeGateway.verify_webhook(signed_event, header, WEBHOOK_SECRET) == event


def test_any_matching_v1_signature_is_enough_during_secret_rotation(signed_event: bytes) -> None:
    now = int(time.time())
    old = sign_webhook(signed_event, "whsec_old_secret", now).split(",")[1]
    header = f"{sign_webhook(signed_event, WEBHOOK_SECRET, now)},{old}"
    assert verify_webhook(signed_event, header, WEBHOOK_SECRET)["object"] == "event"


def _reason(payload: bytes, header: str | None, secret: str = WEBHOOK_SECRET) -> str:
    with pytest.raises(WebhookSignatureError) as caught:
        verify_webhook(payload, header, secret)
    assert isinstance(caught.value, ValueError)
    return caught.value.reason


def test_tampered_payload_is_refused(signed_event: bytes) -> None:
    header = sign_webhook(signed_event, WEBHOOK_SECRET)
    tampered = signed_event.replace(b'"amount_capturable": 50000', b'"amount_capturable": 5')
    assert tampered != signed_event
    assert _reason(tampered, header) == "signature_mismatch"


def test_wrong_secret_is_refused(signed_event: bytes) -> None:
    header = sign_webhook(signed_event, "whsec_someone_else")
    assert _reason(signed_event, header) == "signature_mismatch"


@pytest.mark.parametrize("header", [None, ""])
def test_missing_header_is_refused(signed_event: bytes, header: str | None) -> None:
    assert _reason(signed_event, header) == "missing_header"


@pytest.mark.parametrize(
    "header",
    [
        "garbage",
        "t=notanumber,v1=abcdef",
        "v1=abcdef0123",  # no timestamp
        "t=1700000000",  # no v1 signature
        "t=1700000000,v0=abcdef",  # only the legacy test-mode scheme
        "t=1700000000,v1=not-hex",
    ],
)
def test_malformed_header_is_refused(signed_event: bytes, header: str) -> None:
    assert _reason(signed_event, header) == "malformed_header"


def test_old_timestamp_is_refused(signed_event: bytes) -> None:
    header = sign_webhook(signed_event, WEBHOOK_SECRET, timestamp=int(time.time()) - 301)
    assert _reason(signed_event, header) == "timestamp_outside_tolerance"
    recent = sign_webhook(signed_event, WEBHOOK_SECRET, timestamp=int(time.time()) - 200)
    assert verify_webhook(signed_event, recent, WEBHOOK_SECRET)["object"] == "event"


def test_no_secret_configured_never_falls_back_to_unsigned(signed_event: bytes) -> None:
    header = sign_webhook(signed_event, "")
    assert _reason(signed_event, header, secret="") == "missing_secret"


def test_zero_tolerance_is_not_allowed(signed_event: bytes) -> None:
    header = sign_webhook(signed_event, WEBHOOK_SECRET)
    with pytest.raises(ValueError, match="tolerance"):
        verify_webhook(signed_event, header, WEBHOOK_SECRET, tolerance=0)


def test_signed_payload_that_is_not_an_event_is_refused() -> None:
    payload = b'{"object": "payment_intent"}'
    assert _reason(payload, sign_webhook(payload, WEBHOOK_SECRET)) == "not_an_event"


# -- refunds --------------------------------------------------------------------------------


def _captured(gateway: StripeGateway, standin: StripeStandin, amount: int = 31_250) -> str:
    hold = _create(gateway)
    standin.confirm(hold.id, "4242424242424242")
    gateway.capture(hold.id, amount, idempotency_key="charge-1:capture")
    return hold.id


def test_refund_sends_the_payment_intent_amount_stripe_reason_and_our_reason_in_metadata(
    gateway: StripeGateway, standin: StripeStandin
) -> None:
    pi = _captured(gateway, standin)

    refund = gateway.refund(
        pi, 1_250, reason="Laddaren slutade leverera efter 5 min", category="duplicate",
        idempotency_key="charge-1-refund-1", metadata={"charge": "1", "operator": "op@x.se"},
    )

    sent = standin.last_request
    assert (sent.method, sent.path) == ("POST", "/v1/refunds")
    assert sent.idempotency_key == "charge-1-refund-1"
    assert sent.params == {
        "payment_intent": pi,
        "amount": "1250",
        "reason": "duplicate",
        "metadata": {"charge": "1", "operator": "op@x.se",
                     "reason": "Laddaren slutade leverera efter 5 min"},
    }
    assert refund.id.startswith("re_") and refund.id in standin.refunds
    assert (refund.amount_minor, refund.currency, refund.status, refund.reason) == (
        1_250, "SEK", "succeeded", "duplicate")
    charge = standin.charge_of(pi)
    # The released rest of the hold (50 000 - 31 250) plus the refund.
    assert charge["amount_refunded"] == 18_750 + 1_250 and charge["refunded"] is False


def test_refund_retried_with_the_same_key_refunds_once(
    gateway: StripeGateway, standin: StripeStandin
) -> None:
    pi = _captured(gateway, standin)

    first = gateway.refund(pi, 10_000, reason="r", idempotency_key="charge-1-refund-1")
    again = gateway.refund(pi, 10_000, reason="r", idempotency_key="charge-1-refund-1")
    second = gateway.refund(pi, 10_000, reason="r", idempotency_key="charge-1-refund-2")

    assert again == first and second.id != first.id
    assert [r.replayed for r in standin.requests_to("POST", "/v1/refunds")] == [
        False, True, False]
    assert len(standin.refunds) == 2
    assert standin.charge_of(pi)["amount_refunded"] == 18_750 + 20_000


def test_refund_of_more_than_is_left_is_amount_too_large_and_not_retryable(
    gateway: StripeGateway, standin: StripeStandin
) -> None:
    pi = _captured(gateway, standin)
    gateway.refund(pi, 30_000, reason="r", idempotency_key="charge-1-refund-1")

    with pytest.raises(PaymentError) as caught:
        gateway.refund(pi, 1_251, reason="r", idempotency_key="charge-1-refund-2")

    assert caught.value.retryable is False
    assert caught.value.code == "amount_too_large"
    assert "SEK 12.51" in str(caught.value) and "SEK 12.50" in str(caught.value)
    gateway.refund(pi, 1_250, reason="r", idempotency_key="charge-1-refund-3")
    with pytest.raises(PaymentError) as caught:
        gateway.refund(pi, 1, reason="r", idempotency_key="charge-1-refund-4")
    assert caught.value.code == "charge_already_refunded"
    assert standin.charge_of(pi)["refunded"] is True


def test_refund_of_an_uncaptured_hold_is_refused(
    gateway: StripeGateway, standin: StripeStandin
) -> None:
    hold = _create(gateway)
    standin.confirm(hold.id, "4242424242424242")

    with pytest.raises(PaymentError) as caught:
        gateway.refund(hold.id, 100, reason="r", idempotency_key="charge-1-refund-1")

    assert caught.value.code == "charge_not_refundable" and caught.value.retryable is False
    assert standin.refunds == {}


def test_refund_after_a_500_is_retried_by_the_library_with_the_same_key(
    gateway: StripeGateway, standin: StripeStandin
) -> None:
    pi = _captured(gateway, standin)
    standin.fail_next(500)

    refund = gateway.refund(pi, 500, reason="r", idempotency_key="charge-1-refund-1")

    attempts = standin.requests_to("POST", "/v1/refunds")
    assert [a.status for a in attempts] == [500, 200]
    assert {a.idempotency_key for a in attempts} == {"charge-1-refund-1"}
    assert list(standin.refunds) == [refund.id]


def test_refund_is_integer_minor_units_and_a_known_category(gateway: StripeGateway) -> None:
    with pytest.raises(TypeError):
        gateway.refund("pi_x", 12.5, reason="r", idempotency_key="k")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        gateway.refund("pi_x", 100, reason="r", idempotency_key="k",
                       category="expired_uncaptured_charge")  # type: ignore[arg-type]


def test_charge_refunded_and_dispute_payloads_verify_as_events(
    gateway: StripeGateway, standin: StripeStandin
) -> None:
    pi = _captured(gateway, standin)
    gateway.refund(pi, 1_000, reason="r", idempotency_key="charge-1-refund-1")
    refunded = event_payload("charge.refunded", standin.charge_of(pi),
                             previous_attributes={"amount_refunded": 18_750})
    dispute = event_payload("charge.dispute.created", standin.open_dispute(pi))

    event = verify_webhook(refunded, sign_webhook(refunded, WEBHOOK_SECRET), WEBHOOK_SECRET)
    assert event["data"]["object"]["object"] == "charge"
    assert event["data"]["object"]["payment_intent"] == pi
    assert "refunds" not in event["data"]["object"]
    disputed = verify_webhook(dispute, sign_webhook(dispute, WEBHOOK_SECRET), WEBHOOK_SECRET)
    assert disputed["data"]["object"]["payment_intent"] == pi
    assert disputed["data"]["object"]["amount"] == 31_250
