"""The payment's failure branches, each with the fault injected at its exact step: a late
webhook (the gateway is asked before expiring, and on the driver's return), the capture
deadline from capture_before, a lapsed authorisation, refund failures, closed disputes, a
capture without a CDR and its receipt, concurrent captures on the demo gateway, and a cut
database connection. Through the demo gateway and through the real `stripe` library
against the HTTP stand-in."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from charge_factory import (
    captured_charge,
    deliver_demo_events,
    drop_queue,
    ended_charge,
    pending,
)
from stripe_standin import StripeStandin, event_payload, sign_webhook

import wiring
from charging import payment_events, refunds, settlement, sweeper
from charging.models import Charge, ChargeEvent
from charging.states import ChargeStatus as S
from extensions import db
from ocpi.transport import now_utc
from payments.demo import DemoGateway
from payments.gateway import PaymentError
from payments.models import DemoPaymentIntent, Receipt, RefundRecord

WEBHOOK_SECRET = "whsec_payment_failures"
OPERATOR = "anna@operator.example"


@pytest.fixture(autouse=True)
def _receivers() -> None:
    wiring.connect()


# --- helpers ------------------------------------------------------------------------------


def reload(charge: Charge) -> Charge:
    db.session.expire_all()
    return db.session.get(Charge, charge.pk)


def timeline(charge: Charge) -> list[ChargeEvent]:
    db.session.expire_all()
    return list(db.session.scalars(
        db.select(ChargeEvent).where(ChargeEvent.charge_pk == charge.pk).order_by(ChargeEvent.pk)
    ))


def authorised_moves(charge: Charge) -> int:
    return sum(1 for e in timeline(charge)
               if e.to_status == "AUTHORIZED" and e.from_status == "CREATED")


def unpaid_charge(n: int = 1) -> Charge:
    """A CREATED charge with its hold placed and not yet confirmed by the driver."""
    charge = ended_charge(n=n, confirm=lambda pi: None)
    charge.status, charge.cdr_pk = S.CREATED.value, None
    db.session.commit()
    return charge


def waiting_for_cdr(n: int = 1, cost: str | None = "12.50", **kwargs: Any) -> Charge:
    """An ENDED charge with its hold authorised and no CDR yet."""
    from ocpi.models import OcpiCdr

    charge = ended_charge(n=n, **kwargs)
    # The factory's CDR is kept aside (not this charge's), so nothing finds it on its own.
    db.session.get(OcpiCdr, charge.cdr_pk).authorization_reference = f"ELSEWHERE{n}"
    charge.cdr_pk = None
    charge.cost_incl_vat = Decimal(cost) if cost else None
    charge.session_id = f"S{n}"
    db.session.commit()
    return charge


def intent(hold_id: str) -> DemoPaymentIntent:
    db.session.expire_all()
    return db.session.scalar(
        db.select(DemoPaymentIntent).where(DemoPaymentIntent.intent_id == hold_id))


# --- 1. The late webhook: ask the gateway ---------------------------------------------------


def test_expire_unpaid_finds_the_hold_authorised_and_starts_instead(app: Any) -> None:
    charge = unpaid_charge()
    secret = intent(charge.hold_id).client_secret
    DemoGateway().confirm(charge.hold_id, secret, "4242424242424242")
    # Fault: the webhook (the demo's queued event) has not arrived when the TTL runs out.
    payment_events.expire_unpaid(charge.pk)
    charge = reload(charge)
    assert charge.status == "AUTHORIZED"
    assert charge.capture_before is not None
    assert "charging.start" in pending(app) and "charging.release_hold" not in pending(app)
    # The webhook comes later: nothing happens twice.
    deliver_demo_events(app)
    assert reload(charge).status == "AUTHORIZED" and authorised_moves(charge) == 1
    assert intent(charge.hold_id).status == "requires_capture"  # the money stays held


def test_expire_unpaid_still_expires_an_unpaid_charge(app: Any) -> None:
    charge = unpaid_charge()
    payment_events.expire_unpaid(charge.pk)
    assert reload(charge).status == "EXPIRED"
    assert "charging.release_hold" in pending(app)


def test_expire_unpaid_waits_when_the_gateway_cannot_say(
    app: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    charge = unpaid_charge()

    def unreachable(self: Any, hold_id: str) -> Any:
        raise PaymentError("Could not reach the gateway", retryable=True, code="connection")

    monkeypatch.setattr(DemoGateway, "retrieve", unreachable)
    with pytest.raises(PaymentError):
        payment_events.expire_unpaid(charge.pk)
    assert reload(charge).status == "CREATED"  # the sweeper asks again; nothing released
    assert "charging.release_hold" not in pending(app)


def test_the_driver_returning_from_3ds_starts_the_charge(app: Any, client: Any) -> None:
    charge = unpaid_charge()
    secret = intent(charge.hold_id).client_secret
    gateway = DemoGateway()
    assert gateway.confirm(charge.hold_id, secret, "4000002500003155").status == \
        "requires_action"
    gateway.authenticate(charge.hold_id, secret, approve=True)
    drop_queue(app)  # the webhook is late
    page = client.get(f"/charge/{charge.public_id}?payment_intent={charge.hold_id}"
                      f"&payment_intent_client_secret={secret}&redirect_status=succeeded")
    assert page.status_code == 200
    assert reload(charge).status == "AUTHORIZED"
    assert "charging.start" in pending(app)
    # Another charge's payment_intent in the query changes nothing.
    other = unpaid_charge(n=2)
    client.get(f"/charge/{other.public_id}?payment_intent={charge.hold_id}")
    assert reload(other).status == "CREATED"


# --- 2. The capture deadline ----------------------------------------------------------------


def test_the_deadline_is_capture_before_less_the_margin(app: Any) -> None:
    charge = waiting_for_cdr()
    now = now_utc()
    charge.capture_before = now + timedelta(hours=13)
    assert not sweeper.capture_deadline_passed(charge, now)
    charge.capture_before = now + timedelta(hours=11)
    assert sweeper.capture_deadline_passed(charge, now)
    app.config["CAPTURE_SAFETY_MARGIN_HOURS"] = 10
    assert not sweeper.capture_deadline_passed(charge, now)


def test_without_capture_before_the_deadline_counts_from_the_charge(app: Any) -> None:
    """From the charge's creation, which is at most UNPAID_CHARGE_TTL before the
    authorisation: never later than the card's window, and no timeline query per charge
    in the sweeper (charging/deadlines.py)."""
    charge = waiting_for_cdr()
    charge.capture_before = None
    now = now_utc()
    charge.created_at = now - timedelta(hours=143)
    db.session.commit()
    assert not sweeper.capture_deadline_passed(charge, now)
    assert sweeper.capture_deadline_passed(charge, now + timedelta(hours=2))


def test_the_sweeper_captures_before_a_short_capture_window_closes(app: Any) -> None:
    short = waiting_for_cdr(n=1)
    short.capture_before = now_utc() + timedelta(hours=11)  # e.g. a scheme with a short window
    roomy = waiting_for_cdr(n=2)
    roomy.capture_before = now_utc() + timedelta(days=5)
    db.session.commit()
    app.config.update(SWEEP_GRACE_SECONDS=0, CDR_WAIT_SECONDS=10**6)
    sweeper.sweep()
    names = pending(app)
    assert names.count("charging.settle_without_cdr") == 1
    deliver_demo_events(app)
    settlement.settle_without_cdr(short.pk)
    assert reload(short).status == "CAPTURED" and reload(roomy).status == "ENDED"


# --- 3. A lapsed authorisation ----------------------------------------------------------------


def test_a_lapse_while_waiting_for_the_cdr_releases_and_flags(app: Any) -> None:
    charge = waiting_for_cdr(cost="12.50")
    drop_queue(app)
    DemoGateway().lapse(charge.hold_id)
    deliver_demo_events(app)
    charge = reload(charge)
    assert (charge.status, charge.failure_code) == ("RELEASED", "AUTHORIZATION_LAPSED")
    assert "SEK 12.50" in timeline(charge)[-1].note
    pi = intent(charge.hold_id)
    assert (pi.status, pi.amount_received_minor) == ("canceled", 0)


def test_a_lapse_while_charging_stops_the_session_and_never_captures(app: Any) -> None:
    charge = waiting_for_cdr(cost="40.00")
    charge.status = S.CHARGING.value
    db.session.commit()
    drop_queue(app)
    DemoGateway().lapse(charge.hold_id)
    others = deliver_demo_events(app)
    charge = reload(charge)
    assert (charge.status, charge.failure_code) == ("CHARGING", "AUTHORIZATION_LAPSED")
    assert "charging.stop_unpaid_session" in others
    # The session ends and its CDR comes: released, the CDR's cost on the timeline.
    from ocpi.models import OcpiCdr

    charge.status = S.ENDED.value
    charge.cdr_pk = db.session.scalar(db.select(OcpiCdr.pk).where(OcpiCdr.cdr_id == "CDR-1"))
    db.session.commit()
    settlement.settle(charge.pk)
    charge = reload(charge)
    assert (charge.status, charge.captured_minor) == ("RELEASED", None)
    assert "not captured" in timeline(charge)[-1].note
    assert intent(charge.hold_id).amount_received_minor == 0


def test_a_lapse_whose_webhook_never_came_is_found_at_the_capture(app: Any) -> None:
    charge = ended_charge()  # ENDED, CDR linked
    drop_queue(app)
    DemoGateway().lapse(charge.hold_id)
    drop_queue(app)  # the canceled event is lost
    settlement.settle(charge.pk)
    charge = reload(charge)
    assert (charge.status, charge.failure_code) == ("RELEASED", "AUTHORIZATION_LAPSED")
    assert charge.receipt_pk is None and charge.captured_minor is None


def test_our_own_release_is_not_taken_for_a_lapse(app: Any) -> None:
    charge = waiting_for_cdr(cost=None)
    drop_queue(app)
    # release_hold has canceled the hold and not yet recorded it when the webhook lands.
    DemoGateway().cancel(charge.hold_id, idempotency_key=f"charge-{charge.public_id}-release")
    db.session.commit()
    deliver_demo_events(app)
    charge = reload(charge)
    assert (charge.status, charge.failure_code) == ("ENDED", None)


# --- 5. Captured without a CDR: the receipt -----------------------------------------------------


def test_a_capture_without_a_cdr_issues_a_receipt_that_says_what_it_rests_on(
    app: Any, client: Any
) -> None:
    from payments.mail import receipt_message
    from payments.receipt_document import build, plain_text

    charge = waiting_for_cdr(cost="23.50", language="en")
    charge.session_started_at = datetime(2026, 11, 21, 16, 5, tzinfo=UTC)
    charge.session_ended_at = datetime(2026, 11, 21, 16, 50, tzinfo=UTC)
    charge.session_updated_at = datetime(2026, 11, 21, 16, 50, tzinfo=UTC)
    charge.energy_kwh = Decimal("5.2")
    db.session.commit()
    settlement.settle_without_cdr(charge.pk)
    charge = reload(charge)
    assert (charge.status, charge.captured_minor, charge.failure_code) == (
        "CAPTURED", 2350, "CAPTURED_WITHOUT_CDR")
    receipt = db.session.get(Receipt, charge.receipt_pk)
    assert receipt.total_minor == 2350 and receipt.net_minor + receipt.vat_minor == 2350
    assert receipt.details["based_on"]["kind"] == "last_session"

    english = "Based on the last Session update at 17:50 CET on 21 Nov 2026; the CPO sent no CDR."
    swedish = "Baserat på den senaste uppdateringen av laddsessionen kl. 17:50 CET den 21 nov. 2026"
    api = client.get(f"/api/v1/charges/{charge.public_id}").get_json()
    assert api["receipt_url"]
    page = client.get(f"/r/{receipt.public_token}?lang=en")
    assert page.status_code == 200 and english in page.get_data(as_text=True)
    assert swedish in client.get(f"/r/{receipt.public_token}?lang=sv").get_data(as_text=True)
    pdf = client.get(f"/r/{receipt.public_token}.pdf")
    assert pdf.status_code == 200 and pdf.data.startswith(b"%PDF")
    assert english in plain_text(build(receipt, "en"))
    message = receipt_message(receipt, "driver@example.com")
    bodies = [part.get_content() for part in message.walk()
              if part.get_content_type() in {"text/plain", "text/html"}]
    assert all(english in body for body in bodies) and len(bodies) == 2
    # An ordinary receipt says nothing of the kind.
    ordinary = captured_charge(n=2)
    assert build(db.session.get(Receipt, ordinary.receipt_pk), "en").basis is None


# --- 6. The demo gateway under concurrency --------------------------------------------------------


def _concurrently(app: Any, count: int, call: Callable[[int], Any]) -> list[Any]:
    results: list[Any] = [None] * count
    barrier = threading.Barrier(count)

    def run(i: int) -> None:
        with app.app_context():
            try:
                barrier.wait()
                results[i] = call(i)
                db.session.commit()
            except PaymentError as exc:
                db.session.rollback()
                results[i] = exc
            finally:
                db.session.remove()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return results


def _succeeded_events(app: Any) -> int:
    import json

    return sum(1 for t in app.extensions["queue"].huey.pending()
               if t.name == "payments.deliver_demo_event"
               and json.loads(t.args[0])["type"] == "payment_intent.succeeded")


def test_concurrent_captures_with_one_key_capture_once(app: Any) -> None:
    charge = ended_charge()
    drop_queue(app)
    hold_id = charge.hold_id
    db.session.remove()
    results = _concurrently(app, 8, lambda i: DemoGateway().capture(
        hold_id, 4500, idempotency_key="charge-x-capture"))
    assert all(not isinstance(r, Exception) for r in results), results
    pi = intent(hold_id)
    assert (pi.status, pi.amount_received_minor, pi.applied_keys) == (
        "succeeded", 4500, ["charge-x-capture"])
    assert _succeeded_events(app) == 1


def test_concurrent_captures_with_different_keys_capture_at_most_once(app: Any) -> None:
    charge = ended_charge()
    drop_queue(app)
    hold_id = charge.hold_id
    db.session.remove()
    results = _concurrently(app, 8, lambda i: DemoGateway().capture(
        hold_id, 1000 + i, idempotency_key=f"key-{i}"))
    captured = [r for r in results if not isinstance(r, Exception)]
    refused = [r for r in results if isinstance(r, PaymentError)]
    assert len(captured) == 1 and len(refused) == 7
    assert all(r.code == "payment_intent_unexpected_state" for r in refused)
    pi = intent(hold_id)
    assert pi.amount_received_minor == captured[0].amount_received_minor
    assert len(pi.applied_keys) == 1 and _succeeded_events(app) == 1


def test_a_cancel_racing_a_capture_leaves_one_outcome(app: Any) -> None:
    charge = ended_charge()
    drop_queue(app)
    hold_id = charge.hold_id
    db.session.remove()
    results = _concurrently(app, 2, lambda i: DemoGateway().capture(
        hold_id, 4500, idempotency_key="cap") if i == 0 else DemoGateway().cancel(
        hold_id, idempotency_key="rel"))
    pi = intent(hold_id)
    assert len(pi.applied_keys) == 1
    assert sum(isinstance(r, PaymentError) for r in results) == 1
    assert (pi.status, pi.amount_received_minor) in {("succeeded", 4500), ("canceled", 0)}


# --- 7. A cut database connection ----------------------------------------------------------------


def test_a_killed_pooled_connection_does_not_fail_the_next_request(app: Any) -> None:
    url = os.environ.get("TEST_DATABASE_URL", "")
    if not url.startswith("postgresql"):
        pytest.skip("needs PostgreSQL (TEST_DATABASE_URL): SQLite has no server-side "
                    "connection to kill")
    from sqlalchemy import create_engine, text
    from sqlalchemy.pool import NullPool

    client = app.test_client()
    assert client.get("/api/v1/charges/none").status_code == 404  # a pooled connection now
    db.session.remove()
    pid = db.session.execute(text("select pg_backend_pid()")).scalar()
    db.session.remove()
    assert db.engine.pool.checkedin() == 1  # the one the next request draws
    killer = create_engine(url, poolclass=NullPool)
    with killer.begin() as conn:
        assert conn.execute(text("select pg_terminate_backend(:pid)"), {"pid": pid}).scalar()
    killer.dispose()
    answer = client.get("/api/v1/charges/none")
    assert answer.status_code == 404 and answer.get_json()["error"]["code"] == "unknown_charge"
    assert db.session.execute(text("select pg_backend_pid()")).scalar() != pid


# --- Through the real `stripe` library and the stand-in ------------------------------------------


@pytest.fixture
def stripe_app(make_app: Callable[..., Any], standin: StripeStandin) -> Iterator[Any]:
    application = make_app(
        STRIPE_SECRET_KEY="sk_test_failures", STRIPE_PUBLISHABLE_KEY="pk_test_failures",
        STRIPE_API_BASE=standin.url, STRIPE_WEBHOOK_SECRET=WEBHOOK_SECRET,
    )
    with application.app_context():
        yield application
        db.session.remove()
        db.engine.dispose()


def deliver(app: Any, event_type: str, obj: dict[str, Any]) -> Any:
    payload = event_payload(event_type, obj)
    answer = app.test_client().post(
        "/payments/stripe/webhook", data=payload, content_type="application/json",
        headers={"Stripe-Signature": sign_webhook(payload, WEBHOOK_SECRET)},
    )
    assert answer.status_code == 200, answer.get_data(as_text=True)
    return answer


def card(standin: StripeStandin) -> Callable[[str], Any]:
    return lambda pi: standin.confirm(pi, "4242424242424242")


def test_stripe_expire_unpaid_reads_the_intent_and_its_capture_before(
    stripe_app: Any, standin: StripeStandin
) -> None:
    charge = unpaid_charge()
    authorised = standin.confirm(charge.hold_id, "4242424242424242")
    payment_events.expire_unpaid(charge.pk)
    charge = reload(charge)
    assert charge.status == "AUTHORIZED"
    asked = standin.requests_to("GET", f"/v1/payment_intents/{charge.hold_id}")
    assert asked and "latest_charge" in asked[-1].params["expand"]
    window = standin.charges[authorised["latest_charge"]]["payment_method_details"]["card"]
    assert int(charge.capture_before.timestamp()) == window["capture_before"]
    assert standin.requests_to("POST", f"/v1/payment_intents/{charge.hold_id}/cancel") == []
    deliver(stripe_app, "payment_intent.amount_capturable_updated", authorised)  # late
    assert reload(charge).status == "AUTHORIZED" and authorised_moves(charge) == 1


def test_stripe_webhook_authorisation_then_capture_before_is_read(
    stripe_app: Any, standin: StripeStandin
) -> None:
    charge = unpaid_charge()
    deliver(stripe_app, "payment_intent.amount_capturable_updated",
            standin.confirm(charge.hold_id, "4242424242424242"))
    charge = reload(charge)
    assert charge.status == "AUTHORIZED" and charge.capture_before is None  # not expanded
    assert "charging.record_capture_before" in pending(stripe_app)
    payment_events.record_capture_before(charge.pk)
    assert reload(charge).capture_before is not None


def test_stripe_lapsed_authorisation_is_flagged_and_never_captured(
    stripe_app: Any, standin: StripeStandin
) -> None:
    charge = waiting_for_cdr(cost="31.25", confirm=card(standin))
    deliver(stripe_app, "payment_intent.canceled", standin.lapse(charge.hold_id))
    charge = reload(charge)
    assert (charge.status, charge.failure_code) == ("RELEASED", "AUTHORIZATION_LAPSED")
    assert "automatic" in timeline(charge)[-1].note and "SEK 31.25" in timeline(charge)[-1].note
    assert standin.requests_to("POST", f"/v1/payment_intents/{charge.hold_id}/capture") == []
    settlement.settle_without_cdr(charge.pk)  # the sweeper's deadline changes nothing now
    assert standin.requests_to("POST", f"/v1/payment_intents/{charge.hold_id}/capture") == []


@pytest.mark.parametrize("status", ["failed", "canceled"])
def test_stripe_a_refund_that_fails_later_is_marked_and_flagged(
    stripe_app: Any, standin: StripeStandin, status: str
) -> None:
    charge = captured_charge(confirm=card(standin))
    done = refunds.refund(charge.public_id, 1000, "charger fault", OPERATOR)
    failed = standin.fail_refund(done.gateway_refund_id, status=status)
    deliver(stripe_app, "charge.refund.updated", failed)
    deliver(stripe_app, "charge.refund.updated", failed)  # another delivery: told once
    row = db.session.scalar(db.select(RefundRecord))
    db.session.refresh(row)
    assert (row.state, row.gateway_status) == ("failed", status)
    assert "expired_or_canceled_card" in row.error
    charge = reload(charge)
    assert charge.failure_code == "REFUND_FAILED"
    notes = [e.note for e in timeline(charge) if "REFUND_FAILED" in (e.note or "")]
    assert len(notes) == 1 and "expired_or_canceled_card" in notes[0]


@pytest.mark.parametrize(("outcome", "flag"), [("lost", "DISPUTE_LOST"), ("won", None)])
def test_stripe_a_closed_dispute_is_recorded(
    stripe_app: Any, standin: StripeStandin, outcome: str, flag: str | None
) -> None:
    charge = captured_charge(confirm=card(standin))
    dispute = standin.open_dispute(charge.hold_id)
    deliver(stripe_app, "charge.dispute.created", dispute)
    assert reload(charge).failure_code == "DISPUTED"
    deliver(stripe_app, "charge.dispute.closed", standin.close_dispute(dispute, outcome))
    charge = reload(charge)
    assert charge.failure_code == flag
    assert f"dispute {dispute['id']} {outcome}" in timeline(charge)[-1].note
    assert charge.status == "CAPTURED"

