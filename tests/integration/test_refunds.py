"""Refunds by an operator: full and partial, through the demo gateway and through the real
`stripe` library against the HTTP stand-in; credit notes in the receipts' number series;
the refund and dispute webhooks; the receipt page; the `charges` CLI."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import stripe
from charge_factory import captured_charge, ended_charge, stripe_captured
from stripe_standin import StripeStandin, event_payload, sign_webhook

import wiring
from charging import refunds
from charging.cli import parse_amount, register
from charging.models import Charge, ChargeEvent
from charging.refunds import RefundError
from extensions import db
from payments.models import DemoRefund, PaymentEvent, Receipt, RefundRecord
from payments.receipts import credit_split

OPERATOR = "anna@operator.example"
WEBHOOK_SECRET = "whsec_refund_tests"


@pytest.fixture(autouse=True)
def _receivers() -> None:
    wiring.connect()


def run_queue(app: Any) -> int:
    """Run what the queue holds now (demo events, e-mails), as a worker would."""
    huey = app.extensions["queue"].huey
    done = 0
    while (task := huey.dequeue()) is not None:
        huey.execute(task)
        done += 1
    return done


def timeline(charge: Charge) -> list[ChargeEvent]:
    db.session.expire_all()
    return list(db.session.scalars(
        db.select(ChargeEvent).where(ChargeEvent.charge_pk == charge.pk).order_by(ChargeEvent.pk)
    ))


def reload(charge: Charge) -> Charge:
    db.session.expire_all()
    return db.session.get(Charge, charge.pk)


def receipts() -> list[Receipt]:
    db.session.expire_all()
    return list(db.session.scalars(db.select(Receipt).order_by(Receipt.number)))


# --- The demo gateway ------------------------------------------------------------------------


def test_full_refund_moves_to_refunded_and_issues_a_credit_note(app: Any) -> None:
    charge = captured_charge()

    result = refunds.refund(charge.public_id, None, "Laddaren slutade efter 2 minuter", OPERATOR)

    assert (result.amount_minor, result.refunded_minor, result.captured_minor) == (4500, 4500, 4500)
    assert result.status == "REFUNDED" and result.remaining_minor == 0
    assert result.gateway_refund_id.startswith("re_demo_") and result.resumed is False
    charge = reload(charge)
    assert (charge.status, charge.refunded_minor) == ("REFUNDED", 4500)
    receipt, note = receipts()
    assert receipt.display_number == "SCN-000001"
    assert note.display_number == "SCN-000002" and note.credits_pk == receipt.pk
    assert (note.total_minor, note.net_minor, note.vat_minor) == (-4500, -3600, -900)
    assert note.vat_rate == receipt.vat_rate and note.currency == "SEK"
    assert note.details["reason"] == "Laddaren slutade efter 2 minuter"
    assert note.details["credits"] == "SCN-000001"
    row = db.session.scalar(db.select(RefundRecord))
    assert (row.state, row.sequence, row.amount_minor, row.operator) == (
        "refunded", 1, 4500, OPERATOR)
    assert row.idempotency_key == f"charge-{charge.public_id}-refund-1"
    assert (row.credit_note_pk, row.credit_note_number) == (note.pk, "SCN-000002")
    assert row.gateway_refund_id == result.gateway_refund_id
    last = timeline(charge)[-1]
    assert (last.from_status, last.to_status, last.cause, last.cause_ref) == (
        "CAPTURED", "REFUNDED", "operator", OPERATOR)
    assert "Laddaren slutade efter 2 minuter" in last.note and "SCN-000002" in last.note
    demo = db.session.scalar(db.select(DemoRefund))
    assert (demo.amount_minor, demo.idempotency_key) == (4500, row.idempotency_key)
    assert demo.metadata_["reason"] == "Laddaren slutade efter 2 minuter"


def test_partial_refunds_until_nothing_is_left(app: Any) -> None:
    charge = captured_charge()

    first = refunds.refund(charge.public_id, 333, "fel pris", OPERATOR)
    second = refunds.refund(charge.public_id, 1000, "kulans", "bo@operator.example")
    rest = refunds.refund(charge.public_id, None, "resten", OPERATOR)

    assert [r.sequence for r in (first, second, rest)] == [1, 2, 3]
    assert [r.amount_minor for r in (first, second, rest)] == [333, 1000, 3167]
    assert (first.status, first.refunded_minor, first.remaining_minor) == ("REFUNDED", 333, 4167)
    assert rest.refunded_minor == 4500
    keys = db.session.scalars(db.select(RefundRecord.idempotency_key)
                              .order_by(RefundRecord.sequence)).all()
    assert keys == [f"charge-{charge.public_id}-refund-{n}" for n in (1, 2, 3)]
    receipt, *notes = receipts()
    assert [n.number for n in notes] == [2, 3, 4]
    # VAT follows the receipt's share, rounded half up: 333 x 3600 / 4500 = 266.4 -> 266.
    assert [(n.total_minor, n.net_minor, n.vat_minor) for n in notes] == [
        (-333, -266, -67), (-1000, -800, -200), (-3167, -2534, -633)]
    # The last one takes what is left, so the receipt and its credit notes sum to zero.
    assert receipt.net_minor + sum(n.net_minor for n in notes) == 0
    assert receipt.vat_minor + sum(n.vat_minor for n in notes) == 0
    moves = [(e.from_status, e.to_status) for e in timeline(charge)]
    assert moves[-3:] == [("CAPTURED", "REFUNDED"), ("REFUNDED", "REFUNDED"),
                          ("REFUNDED", "REFUNDED")]
    assert timeline(charge)[-2].cause_ref == "bo@operator.example"


def test_credit_split_rounds_half_up() -> None:
    original = Receipt(total_minor=1000, net_minor=800, vat_minor=200)
    original.credit_notes = []  # type: ignore[misc]
    assert credit_split(original, 1) == (1, 0)  # 0.8 -> 1
    assert credit_split(original, 3) == (2, 1)  # 2.4 -> 2
    odd = Receipt(total_minor=4500, net_minor=3600, vat_minor=900)
    odd.credit_notes = []  # type: ignore[misc]
    assert credit_split(odd, 5) == (4, 1)  # 4.0
    assert credit_split(odd, 15) == (12, 3)
    half = Receipt(total_minor=1250, net_minor=1000, vat_minor=250)
    half.credit_notes = []  # type: ignore[misc]
    assert credit_split(half, 5) == (4, 1)  # 4.0
    assert credit_split(half, 10) == (8, 2)
    assert credit_split(half, 7) == (6, 1)  # 5.6 -> 6
    three = Receipt(total_minor=3, net_minor=1, vat_minor=2)
    three.credit_notes = []  # type: ignore[misc]
    assert credit_split(three, 1) == (0, 1)  # 0.333 -> 0
    eight = Receipt(total_minor=8, net_minor=4, vat_minor=4)
    eight.credit_notes = []  # type: ignore[misc]
    assert credit_split(eight, 1) == (1, 0)  # 0.5 -> 1: half up


def test_credit_notes_continue_the_receipts_number_series(app: Any) -> None:
    a = captured_charge(n=1)
    b = captured_charge(n=2)
    refunds.refund(a.public_id, 500, "a", OPERATOR)
    c = captured_charge(n=3)
    refunds.refund(b.public_id, 500, "b", OPERATOR)
    refunds.refund(a.public_id, 500, "a again", OPERATOR)

    numbered = [(r.number, r.reference, r.credits_pk is not None) for r in receipts()]
    assert numbered == [
        (1, f"charge:{a.public_id}", False),
        (2, f"charge:{b.public_id}", False),
        (3, f"refund:{a.public_id}:1", True),
        (4, f"charge:{c.public_id}", False),
        (5, f"refund:{b.public_id}:1", True),
        (6, f"refund:{a.public_id}:2", True),
    ]
    from payments.models import ReceiptSequence
    assert db.session.get(ReceiptSequence, "SCN").next_number == 7


def test_more_than_is_left_is_refused_before_the_gateway(app: Any) -> None:
    charge = captured_charge()
    refunds.refund(charge.public_id, 4000, "first", OPERATOR)

    with pytest.raises(RefundError) as caught:
        refunds.refund(charge.public_id, 501, "too much", OPERATOR)

    assert caught.value.code == "amount_too_large"
    assert "SEK 5.00" in str(caught.value) and "SEK 45.00 captured" in str(caught.value)
    assert db.session.scalar(db.select(db.func.count(RefundRecord.pk))) == 1
    assert db.session.scalar(db.select(db.func.count(DemoRefund.pk))) == 1
    refunds.refund(charge.public_id, 500, "the rest", OPERATOR)
    with pytest.raises(RefundError) as caught:
        refunds.refund(charge.public_id, None, "once more", OPERATOR)
    assert caught.value.code == "fully_refunded"
    assert reload(charge).refunded_minor == 4500


@pytest.mark.parametrize("status", ["ENDED", "RELEASED", "CHARGING", "CANCELLED"])
def test_a_charge_that_was_not_captured_cannot_be_refunded(app: Any, status: str) -> None:
    charge = ended_charge()
    charge.status = status
    db.session.commit()

    with pytest.raises(RefundError) as caught:
        refunds.refund(charge.public_id, 100, "why not", OPERATOR)

    assert caught.value.code == "not_refundable" and status in str(caught.value)
    assert db.session.scalar(db.select(db.func.count(RefundRecord.pk))) == 0
    assert db.session.scalar(db.select(db.func.count(DemoRefund.pk))) == 0


def test_a_refund_needs_a_reason_an_operator_and_a_positive_amount(app: Any) -> None:
    charge = captured_charge()
    cases = [(None, " ", OPERATOR, "reason_required"), (None, "r", "", "operator_required"),
             (0, "r", OPERATOR, "invalid_amount"), (-5, "r", OPERATOR, "invalid_amount")]
    for amount, reason, operator, code in cases:
        with pytest.raises(RefundError) as caught:
            refunds.refund(charge.public_id, amount, reason, operator)
        assert caught.value.code == code
    with pytest.raises(TypeError):
        refunds.refund(charge.public_id, 12.5, "r", OPERATOR)  # type: ignore[arg-type]
    with pytest.raises(RefundError) as caught:
        refunds.refund("no-such-charge", None, "r", OPERATOR)
    assert caught.value.code == "unknown_charge"
    assert reload(charge).status == "CAPTURED"


def test_the_demo_gateway_announces_charge_refunded_and_the_timeline_notes_it(app: Any) -> None:
    charge = captured_charge()
    run_queue(app)  # the capture's payment_intent.succeeded
    refunds.refund(charge.public_id, 1200, "kulans", OPERATOR)

    assert run_queue(app) == 1
    event = db.session.scalar(db.select(PaymentEvent).where(PaymentEvent.type == "charge.refunded"))
    assert event is not None and event.applied_at is not None and event.error is None
    body = json.loads(event.payload)["data"]["object"]
    assert body["object"] == "charge" and body["payment_intent"] == charge.hold_id
    # As on Stripe: the released rest of the hold (30000 - 4500) counts as refunded too.
    assert (body["amount_captured"], body["amount_refunded"]) == (4500, 25500 + 1200)
    last = timeline(charge)[-1]
    assert (last.cause, last.cause_ref) == ("payment", event.event_id)
    assert last.note == "gateway confirms SEK 12.00 refunded in total of SEK 45.00 captured"
    assert reload(charge).failure_code is None


def test_ten_refunds_at_once_never_refund_more_than_was_captured(app: Any) -> None:
    charge = captured_charge()
    barrier = threading.Barrier(10)
    results: list[Any] = []

    def run(i: int) -> None:
        with app.app_context():
            try:
                barrier.wait()
                results.append(refunds.refund(charge.public_id, 1000, f"reason {i}", OPERATOR))
            except BaseException as exc:
                results.append(exc)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    done = [r for r in results if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, BaseException)]
    assert len(results) == 10 and 1 <= len(done) <= 4
    # A refund under way makes a different one wait; more than is left is refused.
    assert all(isinstance(r, RefundError)
               and r.code in {"refund_unfinished", "amount_too_large"} for r in refused)
    assert sorted(r.sequence for r in done) == list(range(1, len(done) + 1))
    charge = reload(charge)
    assert charge.refunded_minor == 1000 * len(done) <= 4500
    assert db.session.scalar(db.select(db.func.sum(DemoRefund.amount_minor))) \
        == charge.refunded_minor
    rows = db.session.scalars(db.select(RefundRecord)).all()
    assert {r.state for r in rows} == {"refunded"} and len(rows) == len(done)
    assert [r.number for r in receipts()] == list(range(1, len(done) + 2))
    assert sum(r.total_minor for r in receipts()) == 4500 - charge.refunded_minor


def test_a_started_refund_run_again_is_finished_not_repeated(
    app: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    charge = captured_charge()
    monkeypatch.setattr(refunds, "issue_credit_note", lambda *a, **k: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        refunds.refund(charge.public_id, 700, "dubbel", OPERATOR)
    db.session.rollback()
    monkeypatch.undo()
    assert db.session.scalar(db.select(RefundRecord.state)) == "started"

    again = refunds.refund(charge.public_id, 700, "dubbel", OPERATOR)

    assert (again.resumed, again.sequence, again.refunded_minor) == (True, 1, 700)
    assert db.session.scalar(db.select(db.func.count(DemoRefund.pk))) == 1


# --- Stripe: the real library against the stand-in ------------------------------------------


@pytest.fixture
def stripe_app(make_app: Callable[..., Any], standin: StripeStandin) -> Iterator[Any]:
    application = make_app(
        STRIPE_SECRET_KEY="sk_test_refunds", STRIPE_PUBLISHABLE_KEY="pk_test_refunds",
        STRIPE_API_BASE=standin.url, STRIPE_WEBHOOK_SECRET=WEBHOOK_SECRET,
    )
    with application.app_context():
        yield application
        db.session.remove()
        db.engine.dispose()


def deliver(app: Any, event_type: str, obj: dict[str, Any]) -> Any:
    payload = event_payload(event_type, obj)
    return app.test_client().post(
        "/payments/stripe/webhook", data=payload, content_type="application/json",
        headers={"Stripe-Signature": sign_webhook(payload, WEBHOOK_SECRET)},
    ), payload


def test_stripe_partial_then_full_refund(stripe_app: Any, standin: StripeStandin) -> None:
    charge = stripe_captured(standin)
    pi = charge.hold_id

    first = refunds.refund(charge.public_id, 1250, "Kabeln var trasig", OPERATOR,
                           category="requested_by_customer")
    rest = refunds.refund(charge.public_id, None, "Resten tillbaka", OPERATOR)

    sent = standin.requests_to("POST", "/v1/refunds")
    assert [r.idempotency_key for r in sent] == [
        f"charge-{charge.public_id}-refund-1", f"charge-{charge.public_id}-refund-2"]
    assert sent[0].params == {
        "payment_intent": pi, "amount": "1250", "reason": "requested_by_customer",
        "metadata": {"charge": charge.public_id, "refund": "1", "operator": OPERATOR,
                     "reason": "Kabeln var trasig"},
    }
    assert sent[1].params["amount"] == "3250"
    assert first.gateway_refund_id in standin.refunds and first.gateway_status == "succeeded"
    assert (rest.refunded_minor, rest.status) == (4500, "REFUNDED")
    assert standin.charge_of(pi)["refunded"] is True
    assert [(r.number, r.total_minor) for r in receipts()] == [(1, 4500), (2, -1250), (3, -3250)]


def test_stripe_a_retry_after_a_crash_refunds_once(
    stripe_app: Any, standin: StripeStandin, monkeypatch: pytest.MonkeyPatch
) -> None:
    charge = stripe_captured(standin)

    def crash(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("the process died after Stripe refunded, before the commit")

    monkeypatch.setattr(refunds, "issue_credit_note", crash)
    with pytest.raises(RuntimeError):
        refunds.refund(charge.public_id, 2000, "dubbeldebitering", OPERATOR)
    db.session.rollback()
    monkeypatch.undo()
    assert len(standin.refunds) == 1  # Stripe refunded...
    row = db.session.scalar(db.select(RefundRecord))
    assert row.state == "started"  # ...and ScanCharge has not recorded it yet
    assert reload(charge).refunded_minor == 0

    # Another refund waits until this one is finished.
    with pytest.raises(RefundError) as caught:
        refunds.refund(charge.public_id, 500, "något annat", OPERATOR)
    assert caught.value.code == "refund_unfinished"

    again = refunds.refund(charge.public_id, 2000, "dubbeldebitering", OPERATOR)

    assert again.resumed is True and again.sequence == 1
    attempts = standin.requests_to("POST", "/v1/refunds")
    assert [a.replayed for a in attempts] == [False, True]
    assert len(standin.refunds) == 1 and again.gateway_refund_id in standin.refunds
    assert (reload(charge).refunded_minor, reload(charge).status) == (2000, "REFUNDED")
    second = refunds.refund(charge.public_id, 500, "något annat", OPERATOR)
    assert second.sequence == 2 and len(standin.refunds) == 2


def test_stripe_unreachable_leaves_the_refund_to_finish(
    stripe_app: Any, standin: StripeStandin
) -> None:
    charge = stripe_captured(standin)
    standin.fail_next(500, count=3)  # the library's own 2 retries are spent too

    with pytest.raises(RefundError) as caught:
        refunds.refund(charge.public_id, 1000, "kulans", OPERATOR)

    assert caught.value.code == "gateway_unavailable" and caught.value.retryable
    assert standin.refunds == {} and reload(charge).status == "CAPTURED"
    result = refunds.refund(charge.public_id, 1000, "kulans", OPERATOR)
    assert result.resumed and result.status == "REFUNDED"
    assert {a.idempotency_key for a in standin.requests_to("POST", "/v1/refunds")} == {
        f"charge-{charge.public_id}-refund-1"}


def test_stripe_refusal_is_recorded_as_failed_and_the_next_refund_gets_a_new_key(
    stripe_app: Any, standin: StripeStandin
) -> None:
    charge = stripe_captured(standin)
    # Someone refunded in the Stripe Dashboard: Stripe has less left than ScanCharge thinks.
    stripe.StripeClient("sk_test_dashboard", base_addresses={"api": standin.url}).v1.refunds \
        .create({"payment_intent": charge.hold_id, "amount": 4000})

    with pytest.raises(RefundError) as caught:
        refunds.refund(charge.public_id, 1000, "kulans", OPERATOR)

    assert caught.value.code == "gateway_refused"
    assert "greater than unrefunded amount" in str(caught.value)
    row = db.session.scalar(db.select(RefundRecord))
    assert (row.state, row.sequence) == ("failed", 1) and "amount_too_large" not in row.error
    charge = reload(charge)
    assert (charge.status, charge.refunded_minor) == ("CAPTURED", 0)
    last = timeline(charge)[-1]
    assert (last.cause, last.cause_ref) == ("operator", OPERATOR)
    assert "failed, nothing refunded" in last.note
    ok = refunds.refund(charge.public_id, 500, "det som är kvar", OPERATOR)
    assert ok.sequence == 2
    assert standin.last_request.idempotency_key == f"charge-{charge.public_id}-refund-2"


def test_charge_refunded_webhook_is_stored_applied_once_and_noted(
    stripe_app: Any, standin: StripeStandin
) -> None:
    charge = stripe_captured(standin)
    refunds.refund(charge.public_id, 1500, "kulans", OPERATOR)
    before = len(timeline(charge))

    answer, payload = deliver(stripe_app, "charge.refunded", standin.charge_of(charge.hold_id))
    again = stripe_app.test_client().post(
        "/payments/stripe/webhook", data=payload, content_type="application/json",
        headers={"Stripe-Signature": sign_webhook(payload, WEBHOOK_SECRET)})

    assert answer.status_code == 200 and answer.get_json() == {"received": True, "applied": True}
    assert again.get_json() == {"received": True, "applied": False}
    stored = db.session.scalars(db.select(PaymentEvent)).all()
    assert len(stored) == 1 and json.loads(stored[0].payload) == json.loads(payload)
    assert stored[0].type == "charge.refunded" and stored[0].object_id.startswith("ch_")
    events = timeline(charge)
    assert len(events) == before + 1
    assert events[-1].note == "gateway confirms SEK 15.00 refunded in total of SEK 45.00 captured"
    assert reload(charge).failure_code is None


def test_a_refund_made_outside_scancharge_is_flagged(
    stripe_app: Any, standin: StripeStandin
) -> None:
    charge = stripe_captured(standin)
    stripe.StripeClient("sk_test_dashboard", base_addresses={"api": standin.url}).v1.refunds \
        .create({"payment_intent": charge.hold_id, "amount": 1000})

    answer, _ = deliver(stripe_app, "charge.refunded", standin.charge_of(charge.hold_id))

    assert answer.status_code == 200
    charge = reload(charge)
    assert charge.failure_code == "REFUND_UNRECORDED"
    assert "SEK 10.00" in charge.failure_detail and charge.status == "CAPTURED"
    assert timeline(charge)[-1].note.endswith("ScanCharge recorded SEK 0.00: flagged")


def test_forged_charge_refunded_is_refused(stripe_app: Any, standin: StripeStandin) -> None:
    charge = stripe_captured(standin)
    payload = event_payload("charge.refunded", standin.charge_of(charge.hold_id))
    answer = stripe_app.test_client().post(
        "/payments/stripe/webhook", data=payload, content_type="application/json",
        headers={"Stripe-Signature": sign_webhook(payload, "whsec_forged")})
    assert answer.status_code == 400
    assert db.session.scalar(db.select(db.func.count(PaymentEvent.pk))) == 0


def test_dispute_created_flags_the_charge_disputed(
    stripe_app: Any, standin: StripeStandin
) -> None:
    charge = stripe_captured(standin)
    dispute = standin.open_dispute(charge.hold_id, reason="fraudulent")

    answer, payload = deliver(stripe_app, "charge.dispute.created", dispute)
    again = stripe_app.test_client().post(
        "/payments/stripe/webhook", data=payload, content_type="application/json",
        headers={"Stripe-Signature": sign_webhook(payload, WEBHOOK_SECRET)})

    assert answer.get_json() == {"received": True, "applied": True}
    assert again.get_json() == {"received": True, "applied": False}
    stored = db.session.scalar(db.select(PaymentEvent))
    assert (stored.type, stored.object_id) == ("charge.dispute.created", dispute["id"])
    charge = reload(charge)
    assert charge.failure_code == "DISPUTED" and charge.status == "CAPTURED"
    assert dispute["id"] in charge.failure_detail and "fraudulent" in charge.failure_detail
    notes = [e for e in timeline(charge) if e.cause_ref == stored.event_id]
    assert len(notes) == 1 and "SEK 45.00" in notes[0].note and "evidence due by" in notes[0].note
    # The operator may still refund a disputed charge (Stripe decides whether it can).
    assert refunds.refund(charge.public_id, 100, "goodwill", OPERATOR).status == "REFUNDED"


def test_unknown_event_types_stay_acknowledged_and_kept(
    stripe_app: Any, standin: StripeStandin
) -> None:
    charge = stripe_captured(standin)
    answer, _ = deliver(stripe_app, "charge.dispute.closed",
                        {**standin.open_dispute(charge.hold_id), "status": "won"})
    assert answer.get_json() == {"received": True, "applied": True}
    assert db.session.scalar(db.select(PaymentEvent)).type == "charge.dispute.closed"
    assert reload(charge).failure_code is None


# --- The receipt page -------------------------------------------------------------------------


def test_receipt_page_shows_credit_notes_in_both_languages(app: Any, client: Any) -> None:
    charge = captured_charge()
    receipt = db.session.get(Receipt, charge.receipt_pk)
    page = client.get(f"/r/{receipt.public_token}").get_data(as_text=True)
    assert "Kreditnota" not in page and "pdf-link" in page

    refunds.refund(charge.public_id, 1000, "Kabeln gick sönder", OPERATOR)
    sv = client.get(f"/r/{receipt.public_token}?lang=sv").get_data(as_text=True)
    en = client.get(f"/r/{receipt.public_token}?lang=en").get_data(as_text=True)

    assert "Kreditnota" in sv and "SCN-000002" in sv and "Kabeln gick sönder" in sv
    assert "-10,00 kr" in sv and "-8,00 kr" in sv and "-2,00 kr" in sv
    assert "Totalt efter återbetalning" in sv and "35,00 kr" in sv
    assert sv.index("Totalt betalt") < sv.index("Kreditnota")
    assert "Credit note" in en and "SEK -10.00" in en and "Total after refunds" in en
    assert f"/r/{receipt.public_token}.pdf?lang=en" in en
    note = receipts()[1]
    assert client.get(f"/r/{note.public_token}").status_code == 404  # shown on its receipt


# --- The CLI ------------------------------------------------------------------------------------


@pytest.fixture
def cli(app: Any) -> Any:
    register(app)
    return app.test_cli_runner()


def refund_args(charge_id: str, *options: str) -> list[str]:
    # Charge ids may start with "-" (token_urlsafe): they go last, after "--".
    return ["charges", "refund", *options, "--", charge_id]


def show_args(charge_id: str) -> list[str]:
    return ["charges", "show", "--", charge_id]


def test_cli_refund_partial_then_show(app: Any, cli: Any) -> None:
    charge = captured_charge()

    out = cli.invoke(args=refund_args(charge.public_id, "--amount", "12.50",
                                      "--reason", "Kabeln var trasig", "--operator", OPERATOR,
                                      "--yes"))

    assert out.exit_code == 0, out.output
    assert f"Refunded #1: SEK 12.50 of charge {charge.public_id}" in out.output
    assert "Refunded in total: SEK 12.50 of SEK 45.00 captured; SEK 32.50 left." in out.output
    assert "Credit note SCN-000002." in out.output
    assert reload(charge).refunded_minor == 1250

    shown = cli.invoke(args=show_args(charge.public_id))
    assert shown.exit_code == 0, shown.output
    text = shown.output
    assert f"Charge {charge.public_id}  REFUNDED" in text
    assert "captured    SEK 45.00" in text and "refunded    SEK 12.50" in text
    assert "refundable  SEK 32.50" in text
    assert "receipt     SCN-000001" in text and "credit note SCN-000002  SEK -12.50" in text
    assert "#1  refunded" in text and "Kabeln var trasig" in text
    assert "CAPTURED -> REFUNDED" in text and OPERATOR in text
    by_payment = cli.invoke(args=show_args(charge.hold_id))
    assert by_payment.exit_code == 0 and charge.public_id in by_payment.output


def test_cli_full_refund_asks_first(app: Any, cli: Any) -> None:
    charge = captured_charge()

    no = cli.invoke(args=refund_args(charge.public_id, "--reason", "x"), input="n\n")
    assert no.exit_code == 1 and "Refund SEK 45.00 of charge" in no.output
    assert reload(charge).status == "CAPTURED"

    yes = cli.invoke(args=refund_args(charge.public_id, "--reason", "Dubbel betalning",
                                      "--category", "duplicate"), input="y\n")
    assert yes.exit_code == 0, yes.output
    assert "Refunded #1: SEK 45.00" in yes.output and "Status REFUNDED" in yes.output
    row = db.session.scalar(db.select(RefundRecord))
    assert row.category == "duplicate" and row.operator.startswith("cli:")


def test_cli_errors_are_clear(app: Any, cli: Any) -> None:
    charge = captured_charge()
    cases = {
        ("--amount", "12.505"): "SEK has 2 decimals",
        ("--amount", "tolv"): "is not an amount",
        ("--amount", "-3"): "more than zero",
        ("--amount", "45.01"): "at most SEK 45.00 can be refunded",
    }
    for extra, message in cases.items():
        out = cli.invoke(args=refund_args(charge.public_id, *extra, "--reason", "x", "--yes"))
        assert out.exit_code != 0 and message in out.output, out.output
    missing = cli.invoke(args=refund_args("nope", "--reason", "x", "--yes"))
    assert missing.exit_code == 1 and "no charge 'nope'" in missing.output
    no_reason = cli.invoke(args=refund_args(charge.public_id, "--yes"))
    assert no_reason.exit_code == 2 and "--reason" in no_reason.output
    ended = ended_charge(n=2)
    out = cli.invoke(args=refund_args(ended.public_id, "--reason", "x", "--yes"))
    assert out.exit_code == 1 and "is ENDED: only a CAPTURED charge" in out.output


def test_parse_amount_is_exact() -> None:
    assert parse_amount("12.50", "SEK") == 1250
    assert parse_amount("12,5", "SEK") == 1250
    assert parse_amount("0.01", "SEK") == 1
    assert parse_amount("1500", "JPY") == 1500
    assert parse_amount("1.234", "KWD") == 1234


def test_cli_takes_a_charge_id_that_starts_with_a_dash(app: Any, cli: Any) -> None:
    charge = captured_charge()
    charge.public_id = "-x3Fq" + charge.public_id[5:]
    db.session.commit()

    out = cli.invoke(args=refund_args(charge.public_id, "--reason", "x", "--yes"))

    assert out.exit_code == 0, out.output
    assert f"of charge {charge.public_id}" in out.output
    assert "REFUNDED" in cli.invoke(args=show_args(charge.public_id)).output
