"""A hostile and unlucky operator's review of the money decisions (issue 12): a flag marked
resolved and raised again for a new matter, a release racing a capture, a hold that lapsed
before the operator released it, payouts west of UTC, and two operators refunding at once
(run with TEST_DATABASE_URL for PostgreSQL's row locks)."""

from __future__ import annotations

import dataclasses
import html
import re
import threading
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from charge_factory import captured_charge, ended_charge
from stripe_standin import StripeStandin
from test_attention import INBOX, rows
from test_dashboard_charge_page import csrf, signed_in, timeline
from test_provider_reconciliation import stripe_app  # noqa: F401 (a fixture)

import wiring
from charging import operator_actions, refunds, releases, settlement
from charging import reconciliation as model
from charging.models import Charge
from charging.operator_actions import OperatorActionError
from charging.unit_of_work import unit_of_work
from extensions import db
from payments.gateway import PaymentError, Payout, Refund
from payments.models import DemoRefund
from payments.setup import current_gateway


@pytest.fixture(autouse=True)
def _receivers() -> None:
    wiring.connect()


def reload(charge: Charge) -> Charge:
    db.session.expire_all()
    return db.session.get_one(Charge, charge.pk)


def refund_fails(charge: Charge, refund_id: str, event_id: str) -> None:
    """charge.refund.updated: the refund did not reach the card."""
    with unit_of_work():
        refunds.on_refund_updated(
            "stripe", event_id=event_id, hold_id=charge.hold_id,
            refund=Refund(refund_id, 1000, "SEK", "failed", None),
            failure_reason="expired_or_canceled_card")


def dispute_opens(charge: Charge, dispute_id: str, event_id: str) -> None:
    with unit_of_work():
        refunds.on_dispute_opened(
            "stripe", event_id=event_id, hold_id=charge.hold_id, dispute_id=dispute_id,
            amount_minor=4500, currency="SEK", reason="fraudulent", status="needs_response",
            evidence_due_by=None)


# --- A resolved flag raised again --------------------------------------------------------


def test_a_second_refund_failing_brings_a_resolved_charge_back_to_the_inbox(app: Any) -> None:
    charge = captured_charge()
    client = signed_in(app)
    first = refunds.refund(charge.public_id, 1000, "Slow charger", "anna@operator.example")
    refund_fails(charge, first.gateway_refund_id, "evt_1")
    operator_actions.mark_resolved(charge.pk, "anna@operator.example", "paid back by transfer")
    assert rows(client.get(INBOX).get_data(as_text=True)) == []

    second = refunds.refund(charge.public_id, 1000, "Second slow charge", "anna@operator.example")
    refund_fails(charge, second.gateway_refund_id, "evt_2")

    # Before: the same code kept the old resolution, and the driver's second refund that
    # never reached the card was hidden from every operator.
    assert reload(charge).resolved_at is None
    assert rows(client.get(INBOX).get_data(as_text=True)) == [charge.public_id]
    assert "refund #2" in (reload(charge).failure_detail or "")


def test_a_replayed_dispute_stays_resolved_and_a_new_one_does_not(app: Any) -> None:
    charge = captured_charge()
    dispute_opens(charge, "du_1", "evt_1")
    operator_actions.mark_resolved(charge.pk, "anna@operator.example", "evidence sent")

    dispute_opens(charge, "du_1", "evt_1")  # the same event delivered again
    assert reload(charge).resolved_at is not None

    dispute_opens(charge, "du_2", "evt_2")
    assert reload(charge).resolved_at is None and reload(charge).failure_code == "DISPUTED"


# --- Release racing a capture --------------------------------------------------------------


def test_a_release_that_loses_to_a_capture_says_so_and_flags_nothing(app: Any) -> None:
    charge = ended_charge()
    # A CDR's settle captured at the gateway and has not yet recorded it when the operator
    # releases (the operator's check saw ENDED).
    current_gateway().capture(charge.hold_id, 4500,
                              idempotency_key=f"charge-{charge.public_id}-capture")

    with pytest.raises(OperatorActionError) as refused:
        operator_actions.release(charge.pk, "anna@operator.example")
    settlement.settle(charge.pk)  # the settle finishes

    assert refused.value.code == "release_failed"
    assert "captured meanwhile (SEK 45.00): refund it" in str(refused.value)
    charge = reload(charge)
    # Before: RELEASE_FAILED ("the driver's money is still held") on a captured charge.
    assert (charge.status, charge.failure_code, charge.captured_minor) == ("CAPTURED", None, 4500)
    assert any("release refused, the hold was captured meanwhile" in (e.note or "")
               for e in timeline(charge))
    assert charge.public_id not in rows(signed_in(app).get(INBOX).get_data(as_text=True))


@pytest.mark.usefixtures("stripe_app")
def test_releasing_a_hold_that_lapsed_unannounced_releases_it(standin: StripeStandin) -> None:
    charge = ended_charge(confirm=lambda pi: standin.confirm(pi, "4242424242424242"))
    standin.lapse(charge.hold_id)  # its payment_intent.canceled never reached us

    operator_actions.release(charge.pk, "anna@operator.example")

    # Before: Stripe refuses to cancel a canceled PaymentIntent, and the charge was flagged
    # RELEASE_FAILED ("the driver's money is still held") with nothing held.
    charge = reload(charge)
    assert (charge.status, charge.failure_code) == ("RELEASED", None)
    assert charge.hold_released_at is not None


@pytest.mark.usefixtures("stripe_app")
def test_against_stripe_a_release_that_loses_to_a_capture_flags_nothing(
    standin: StripeStandin,
) -> None:
    charge = ended_charge(confirm=lambda pi: standin.confirm(pi, "4242424242424242"))
    current_gateway().capture(charge.hold_id, 4500,
                              idempotency_key=f"charge-{charge.public_id}-capture")

    with pytest.raises(OperatorActionError, match="captured meanwhile"):
        operator_actions.release(charge.pk, "anna@operator.example")
    settlement.settle(charge.pk)

    charge = reload(charge)
    assert (charge.status, charge.failure_code, charge.captured_minor) == ("CAPTURED", None, 4500)


# --- Payouts west of UTC -------------------------------------------------------------------


class _Books:
    """A provider that lists payouts as Stripe does: by arrival_date in [start, end)."""

    kind = "demo"

    def __init__(self, arrivals: list[datetime]) -> None:
        self.found = [Payout(id=f"po_{n}", amount_minor=1000, currency="SEK", arrival_date=at,
                             created=at - timedelta(days=1), status="paid", automatic=False,
                             paid_out_net_minor=None) for n, at in enumerate(arrivals)]

    def balance_transactions(self, start: datetime, end: datetime) -> list[Any]:
        return []

    def payouts(self, start: datetime, end: datetime) -> list[Payout]:
        return [p for p in self.found if start <= p.arrival_date < end]


@pytest.mark.parametrize("zone", ["America/New_York", "Europe/Stockholm", "Pacific/Auckland"])
def test_every_payout_arriving_in_the_range_is_counted_in_any_zone(app: Any, zone: str) -> None:
    first, last = date(2026, 3, 7), date(2026, 3, 9)  # over New York's change to summer time
    arrivals = [datetime.combine(first + timedelta(days=n), datetime.min.time(), UTC)
                for n in range(-1, 4)]
    books = _Books(arrivals)

    result = model.reconcile(books, first, last, ZoneInfo(zone))  # type: ignore[arg-type]

    # Before: west of UTC the first day's payout (its UTC midnight is the evening before
    # there) was never asked for.
    assert sorted(p.id for p in result.payouts) == ["po_1", "po_2", "po_3"]
    assert [(d.day, d.payouts_minor) for d in result.days] == [
        (first, 1000), (first + timedelta(days=1), 1000), (last, 1000)]


# --- Two operators at once (PostgreSQL row locks with TEST_DATABASE_URL) ---------------------


def test_two_operators_refunding_at_once_refund_once(app: Any) -> None:
    charge = captured_charge()
    public_id, pk = charge.public_id, charge.pk
    barrier = threading.Barrier(4)
    outcomes: list[str] = []

    def operator(n: int) -> None:
        with app.app_context():
            try:
                barrier.wait()
                refunds.refund(public_id, 3000, f"reason {n % 2}", f"op{n}@operator.example",
                               refunded_before=0)
                outcomes.append("refunded")
            except refunds.RefundError as exc:
                outcomes.append(exc.code)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=operator, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert len(outcomes) == 4 and outcomes.count("refunded") >= 1
    assert set(outcomes) <= {"refunded", "refund_unfinished", "refunded_since"}
    assert db.session.scalar(db.select(db.func.count(DemoRefund.pk))) == 1
    assert db.session.get_one(Charge, pk, populate_existing=True).refunded_minor == 3000


# --- Words an operator typed, shown on pages -----------------------------------------------

SCRIPT = '<script>alert("x")</script>'


def test_reasons_and_notes_are_shown_as_text(app: Any) -> None:
    charge = captured_charge()
    client = signed_in(app)
    page = f"/dashboard/charges/{charge.public_id}"
    review = client.post(f"{page}/refund/review",
                         data={"csrf": csrf(client, page), "amount": "1", "reason": SCRIPT})
    refunds.refund(charge.public_id, 100, SCRIPT, "anna@operator.example")
    refund_fails(charge, refunds.refunds_of(charge.public_id)[0].gateway_refund_id or "", "e")
    inbox = client.get(INBOX).get_data(as_text=True)  # the refund's failure, with its reason
    operator_actions.mark_resolved(charge.pk, "anna@operator.example", SCRIPT)
    shown = client.get(page).get_data(as_text=True)  # reason, timeline and resolution note

    for words in (review.get_data(as_text=True), inbox, shown):
        assert "<script>alert" not in words
    assert shown.count("&lt;script&gt;alert") >= 3


# --- Retry capture racing the sweeper's settle -----------------------------------------------


def test_a_retried_capture_racing_a_failing_settle_leaves_no_capture_flag(
    app: Any, monkeypatch: Any
) -> None:
    charge = ended_charge()
    gateway = current_gateway()
    capture = gateway.capture
    first_key = f"charge-{charge.public_id}-capture"

    def stripe_capture(hold_id: str, amount: int, *, idempotency_key: str) -> Any:
        if idempotency_key == first_key:  # Stripe replays the failed key's answer
            raise PaymentError("Your card was declined.", code="card_declined")
        settlement.settle(charge.pk)  # the sweeper's settle runs meanwhile, and fails
        return capture(hold_id, amount, idempotency_key=idempotency_key)

    monkeypatch.setattr(gateway, "capture", stripe_capture)
    operator_actions.retry_capture(charge.pk, "anna@operator.example")

    charge = reload(charge)
    # Before: CAPTURED, and flagged CAPTURE_FAILED ("Retry it, or release the hold").
    assert (charge.status, charge.captured_minor, charge.failure_code) == ("CAPTURED", 4500, None)


def test_a_capture_that_loses_to_the_operators_release_flags_no_lapse(
    app: Any, monkeypatch: Any
) -> None:
    charge = ended_charge()
    gateway = current_gateway()
    capture, retrieve = gateway.capture, gateway.retrieve

    release_key = f"charge-{charge.public_id}-release"

    def released_first(hold_id: str, amount: int, *, idempotency_key: str) -> Any:
        # The operator's release reaches the gateway first and records it after the
        # capture's refusal is handled (the settle's check saw ENDED).
        gateway.cancel(hold_id, idempotency_key=release_key)
        db.session.commit()  # the demo's books are in this database, as Stripe's are its own
        return capture(hold_id, amount, idempotency_key=idempotency_key)

    def as_stripe(hold_id: str) -> Any:  # Stripe keeps why a PaymentIntent was canceled
        return dataclasses.replace(retrieve(hold_id), cancellation_reason="abandoned")

    monkeypatch.setattr(gateway, "capture", released_first)
    monkeypatch.setattr(gateway, "retrieve", as_stripe)
    settlement.settle(charge.pk)
    releases.release_hold(charge.pk)  # the operator's release records its cancel

    charge = reload(charge)
    # Before: flagged AUTHORIZATION_LAPSED ("the card authorisation ended"), in the inbox.
    assert (charge.status, charge.failure_code, charge.captured_minor) == ("RELEASED", None, None)
    assert charge.hold_released_at is not None
    assert charge.public_id not in rows(signed_in(app).get(INBOX).get_data(as_text=True))


# --- Amounts typed as each language writes them (the dashboard reads them as English) ---------


@pytest.mark.parametrize(("typed", "words"), [
    ("12.345", "“12.345” has more decimals than SEK has."),
    ("0.005", "“0.005” has more decimals than SEK has."),
    ("1.000,50", "“1.000,50” is not an amount."),  # German: refused, never 1.00 or 100050
    ("0,001", "“0,001” is not an amount."),
    ("-5", "“-5” is not an amount."),
    ("1e3", "“1e3” is not an amount."),
    ("€5", "“€5” is not an amount."),
    ("0", "The amount to refund must be more than zero."),
    ("1 000,50", "At most SEK 45.00 can be refunded."),  # read as 1000.50, not 1.00
])
def test_an_amount_that_is_not_a_refund_is_refused_before_the_confirmation(
    app: Any, typed: str, words: str
) -> None:
    charge = captured_charge()
    client = signed_in(app)
    page = f"/dashboard/charges/{charge.public_id}"
    answer = client.post(f"{page}/refund/review", follow_redirects=True,
                         data={"csrf": csrf(client, page), "amount": typed, "reason": "x"})
    html = answer.get_data(as_text=True)
    # Before: "12.345" and "0.005" were rounded to SEK 12.35 and SEK 0.01 without a word.
    assert words in html and "Confirm the refund" not in html


# --- CSRF and permission on every money POST -------------------------------------------------

MONEY_POSTS = {
    "refund/review": {"amount": "10", "reason": "x"},
    "refund": {"amount_minor": "4500", "reason": "x", "refunded_before": "0"},
    "retry-capture": {}, "release": {}, "resolve": {"note": "done"},
}


@pytest.mark.parametrize("action", sorted(MONEY_POSTS))
def test_a_forged_money_post_changes_nothing(app: Any, action: str) -> None:
    charge = captured_charge()
    charge.failure_code = "CAPTURE_FAILED"  # so that resolve would have something to hide
    db.session.commit()
    path = f"/dashboard/charges/{charge.public_id}/{action}"
    admin = signed_in(app)
    support = signed_in(app, "support")
    accounting = signed_in(app, "accounting")

    assert admin.post(path, data=MONEY_POSTS[action]).status_code == 400  # no CSRF field
    assert admin.post(path, data={**MONEY_POSTS[action], "csrf": "x"}).status_code == 400
    for who in (support, accounting):
        token = csrf(who, f"/dashboard/charges/{charge.public_id}")
        answer = who.post(path, data={**MONEY_POSTS[action], "csrf": token})
        assert answer.status_code == 403

    after = reload(charge)
    assert (after.status, after.refunded_minor, after.resolved_at) == ("CAPTURED", 0, None)
    assert db.session.scalar(db.select(db.func.count(DemoRefund.pk))) == 0


# --- A refund the gateway never answered ----------------------------------------------------


def test_a_refund_left_unfinished_is_in_the_inbox_and_finished_from_the_charge_page(
    app: Any, monkeypatch: Any
) -> None:
    charge = captured_charge()
    gateway = current_gateway()
    refund = gateway.refund

    def timed_out(*args: Any, **kwargs: Any) -> Any:
        raise PaymentError("Could not reach Stripe during refund: timeout", retryable=True)

    monkeypatch.setattr(gateway, "refund", timed_out)
    with pytest.raises(refunds.RefundError):
        refunds.refund(charge.public_id, 1000, "Slow <charger>", "anna@operator.example")
    monkeypatch.setattr(gateway, "refund", refund)
    (row,) = refunds.refunds_of(charge.public_id)
    row.created_at -= timedelta(minutes=11)  # nobody ran it again
    db.session.commit()
    client = signed_in(app)

    inbox = client.get(INBOX).get_data(as_text=True)
    # Before: not in the inbox; the money may have gone back with no credit note.
    assert rows(inbox) == [charge.public_id]
    assert "Refund #1 of SEK 10.00 was started and never finished" in inbox
    page = client.get(f"/dashboard/charges/{charge.public_id}").get_data(as_text=True)
    finish = page[page.index('class="inline finish-refund"'):]
    form = dict(re.findall(r'name="(csrf|amount_minor|reason|refunded_before)" value="([^"]*)"',
                           finish[:finish.index("</form>")]))
    form["reason"] = html.unescape(form["reason"])
    done = client.post(f"/dashboard/charges/{charge.public_id}/refund", data=form,
                       follow_redirects=True).get_data(as_text=True)

    assert "Refunded SEK 10.00 to the card." in done
    assert reload(charge).refunded_minor == 1000
    assert db.session.scalar(db.select(db.func.count(DemoRefund.pk))) == 1
    assert rows(client.get(INBOX).get_data(as_text=True)) == []


@pytest.mark.parametrize(("first", "last"), [("9999-12-30", "9999-12-31"),
                                             ("0001-01-01", "0001-01-02")])
def test_days_at_the_end_of_the_calendar_are_refused_in_words(
    app: Any, first: str, last: str
) -> None:
    client = signed_in(app)
    for path in ("/dashboard/reconciliation", "/dashboard/reconciliation.csv"):
        answer = client.get(path, query_string={"from": first, "to": last})
        # Before: an OverflowError, a 500.
        assert answer.status_code == 400
        assert "Give the days as dates (YYYY-MM-DD)." in answer.get_data(as_text=True)
