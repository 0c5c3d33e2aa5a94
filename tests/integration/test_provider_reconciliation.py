"""Reconciliation with the payment provider: ScanCharge's captures and refunds, per day in the
operator's time zone, against the provider's balance transactions and payouts.

Against the Stripe stand-in through the real `stripe` library over HTTP, with deliberate
differences: a capture of 150,00 where the provider's books say 149,00, a refund made in
the provider's dashboard that ScanCharge never recorded, and a capture the provider has no
transaction for. Then pagination across pages, payouts, the demo gateway's own books, the
provider's errors in words, and who may see and export what.

(tests/integration/test_reconciliation.py is another matter: a settle that crashes.)
"""

from __future__ import annotations

import csv
import html
import io
import re
import time
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import stripe
from charge_factory import captured_charge, ended_charge, stripe_captured
from stripe_standin import StripeStandin

import wiring
from charging import reconciliation as model
from charging import refunds
from charging.models import Charge, ChargeEvent
from dashboard.models import OperatorAction, set_operator
from extensions import db
from payments.models import DemoPaymentIntent, RefundRecord
from payments.setup import current_gateway

PASSWORD = "correct horse battery"
ZONE = ZoneInfo("Europe/Stockholm")


@pytest.fixture(autouse=True)
def _receivers() -> None:
    wiring.connect()


@pytest.fixture
def stripe_app(make_app: Callable[..., Any], standin: StripeStandin) -> Iterator[Any]:
    application = make_app(
        STRIPE_SECRET_KEY="sk_test_reconcile", STRIPE_PUBLISHABLE_KEY="pk_test_reconcile",
        STRIPE_API_BASE=standin.url, STRIPE_WEBHOOK_SECRET="whsec_reconcile",
        OPERATOR_TIMEZONE="Europe/Stockholm",
    )
    with application.app_context():
        yield application
        db.session.remove()
        db.engine.dispose()


def signed_in(app: Any, role: str = "admin") -> Any:
    email = f"{role}@example.com"
    set_operator(email, PASSWORD, role=role)
    db.session.commit()
    client = app.test_client()
    page = client.get("/dashboard/login").get_data(as_text=True)
    token = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    answer = client.post("/dashboard/login",
                         data={"email": email, "password": PASSWORD, "csrf": token})
    assert answer.status_code == 302
    return client


def today() -> date:
    return datetime.now(ZONE).date()


def reconcile(first: date | None = None, last: date | None = None) -> model.Reconciliation:
    return model.reconcile(current_gateway(), first or today() - timedelta(days=6),
                           last or today(), ZONE)


def move_capture(charge: Charge, days_back: int, standin: StripeStandin | None = None) -> None:
    """Date the charge's capture days_back days earlier, on both sides of the books."""
    event = db.session.scalar(db.select(ChargeEvent).where(
        ChargeEvent.charge_pk == charge.pk, ChargeEvent.to_status == "CAPTURED",
        ChargeEvent.from_status != "CAPTURED"))
    event.at = event.at - timedelta(days=days_back)
    if standin is not None:
        txn = standin.transaction_of(charge.hold_id)
        standin.alter_transaction(txn["id"], created=txn["created"] - days_back * 86400)
    else:
        intent = db.session.scalar(db.select(DemoPaymentIntent).where(
            DemoPaymentIntent.intent_id == charge.hold_id))
        intent.captured_at = intent.captured_at - timedelta(days=days_back)
    db.session.commit()


def refund_outside(standin: StripeStandin, charge: Charge, amount: int) -> str:
    """A refund made in the Stripe Dashboard: Stripe has it, ScanCharge never heard of it."""
    made = stripe.StripeClient("sk_test_dashboard", base_addresses={"api": standin.url}) \
        .v1.refunds.create({"payment_intent": charge.hold_id, "amount": amount})
    return str(made.id)


def amount_differs(standin: StripeStandin) -> Charge:
    """Charge 1 captured 150,00 here, while the provider's transaction says 149,00."""
    wrong = stripe_captured(standin, n=1, excl_vat="120.00", incl_vat="150.00")
    standin.alter_transaction(standin.transaction_of(wrong.hold_id)["id"], amount=14900)
    return wrong


def three_differences(standin: StripeStandin) -> tuple[Charge, Charge, Charge, str]:
    """(amount differs, capture the provider lacks, refunded outside, that refund's id):
    one of each kind of difference today, charges 1, 2 and 3."""
    wrong = amount_differs(standin)
    lacking = stripe_captured(standin, n=2)
    standin.drop_transaction(standin.transaction_of(lacking.hold_id)["id"])
    outside = stripe_captured(standin, n=3)
    return wrong, lacking, outside, refund_outside(standin, outside, 1000)


# --- Against the Stripe stand-in, with deliberate differences -------------------------------


def test_every_difference_is_listed_and_matching_days_say_so(
    stripe_app: Any, standin: StripeStandin
) -> None:
    wrong, lacking, refunded_outside, outside_id = three_differences(standin)
    refunded_here = stripe_captured(standin, n=4)
    refunds.refund(refunded_here.public_id, 500, "the connector was faulty", "anna@example.com")
    earlier = stripe_captured(standin, n=5)
    move_capture(earlier, 2, standin)

    result = reconcile()

    found = {(d.kind, d.charge_id): d for d in result.differences}
    assert set(found) == {
        (model.AMOUNT_DIFFERS, wrong.public_id),
        (model.CAPTURE_NOT_AT_PROVIDER, lacking.public_id),
        (model.REFUND_UNKNOWN_HERE, refunded_outside.public_id),
    }
    amount = found[model.AMOUNT_DIFFERS, wrong.public_id]
    assert (amount.ours_minor, amount.theirs_minor, amount.difference_minor) == (15000, 14900, 100)
    assert amount.day == today() and amount.hold_id == wrong.hold_id
    lacks = found[model.CAPTURE_NOT_AT_PROVIDER, lacking.public_id]
    assert (lacks.ours_minor, lacks.theirs_minor) == (4500, None)
    unknown = found[model.REFUND_UNKNOWN_HERE, refunded_outside.public_id]
    assert (unknown.ours_minor, unknown.theirs_minor, unknown.refund_id) == (None, 1000,
                                                                           outside_id)

    rows = {d.day: d for d in result.days}
    assert len(result.days) == 7 and rows.keys() == {today() - timedelta(days=i)
                                                     for i in range(7)}
    two_days_ago = rows[today() - timedelta(days=2)]
    assert (two_days_ago.matches, two_days_ago.captured_minor,
            two_days_ago.provider_charged_minor) == (True, 4500, 4500)
    assert two_days_ago.fees_minor == 248  # the stand-in's 1.5 % + 1.80 of 45,00
    assert rows[today() - timedelta(days=1)].currency is None  # nothing either side
    now = rows[today()]
    assert not now.matches and now.differences == 3
    assert (now.captured_minor, now.refunded_minor) == (15000 + 3 * 4500, 500)
    assert (now.provider_charged_minor, now.provider_refunded_minor) == (14900 + 2 * 4500,
                                                                         1000 + 500)
    assert now.difference_minor == (15000 + 13500 - 500) - (14900 + 9000 - 1500)


def test_a_capture_the_provider_made_and_scancharge_never_recorded_links_its_charge(
    stripe_app: Any, standin: StripeStandin
) -> None:
    charge = ended_charge(n=1, confirm=lambda pi: standin.confirm(pi, "4242424242424242"))
    # The capture went through at Stripe, and its answer never reached the charge.
    current_gateway().capture(charge.hold_id, 4500, idempotency_key="lost-answer")

    [difference] = reconcile().differences

    assert (difference.kind, difference.charge_id, difference.ours_minor,
            difference.theirs_minor) == (model.PAYMENT_UNKNOWN_HERE, charge.public_id, None, 4500)


def test_the_page_lists_each_difference_with_a_link_to_its_charge(
    stripe_app: Any, standin: StripeStandin
) -> None:
    wrong, lacking, outside, _ = three_differences(standin)
    client = signed_in(stripe_app)

    answer = client.get("/dashboard/reconciliation")

    assert answer.status_code == 200
    page = answer.get_data(as_text=True)
    assert "3 differences" in page
    for charge in (wrong, lacking, outside):
        assert f'href="/dashboard/charges/{charge.public_id}"' in page
    assert "The captured amount differs" in page
    assert "Captured here, but the provider has no transaction for it" in page
    assert "A refund at the provider that ScanCharge did not record" in page
    assert "150,00" in page or "150.00" in page
    assert "149,00" in page or "149.00" in page
    assert "14900" not in page and "15000" not in page  # money as money, never minor units
    # The provider's books were read with their sources, so refunds name their payment.
    listed = standin.requests_to("GET", "/v1/balance_transactions")
    assert listed and listed[0].params["expand"] == ["data.source"]
    assert set(listed[0].params["created"]) == {"gte", "lt"}


def test_the_differences_csv_reads_back_and_is_audited(
    stripe_app: Any, standin: StripeStandin
) -> None:
    wrong = amount_differs(standin)
    client = signed_in(stripe_app, "accounting")
    first, last = today() - timedelta(days=2), today()

    answer = client.get(f"/dashboard/reconciliation.csv?from={first}&to={last}")

    assert answer.status_code == 200 and answer.mimetype == "text/csv"
    assert "attachment" in answer.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(answer.get_data(as_text=True).lstrip("\ufeff"))))
    assert [(r["kind"], r["charge"], r["ours"], r["provider"], r["difference"], r["currency"])
            for r in rows] == [(model.AMOUNT_DIFFERS, wrong.public_id, "150.00", "149.00",
                                "1.00", "SEK")]
    audit = db.session.scalars(db.select(OperatorAction).where(
        OperatorAction.action == "export")).all()
    assert [(a.actor, a.target) for a in audit] == [
        ("accounting@example.com", f"reconciliation {first}..{last}")]


def test_a_month_of_books_is_read_across_pages(stripe_app: Any, standin: StripeStandin) -> None:
    matched = stripe_captured(standin, n=1)
    # 230 payments the provider has and ScanCharge never captured: three pages of 100.
    for _ in range(230):
        standin.book("charge", 1000, "sek", fee=195)

    result = reconcile()

    unknown = [d for d in result.differences if d.kind == model.PAYMENT_UNKNOWN_HERE]
    assert len(unknown) == 230 and len(result.differences) == 230
    assert {d.transaction_id for d in unknown} == {
        t["id"] for t in standin.balance_transactions.values() if t["source"] is None}
    assert all(d.charge_id != matched.public_id for d in result.differences)
    pages = standin.requests_to("GET", "/v1/balance_transactions")
    assert len(pages) == 3
    assert "starting_after" not in pages[0].params
    assert all(p.params["limit"] == "100" and p.params["starting_after"] for p in pages[1:])
    assert result.days[-1].provider_charged_minor == 4500 + 230 * 1000


def test_payouts_against_the_net_of_what_they_pay_out(
    stripe_app: Any, standin: StripeStandin
) -> None:
    charge = stripe_captured(standin, n=1)
    move_capture(charge, 3, standin)
    other = stripe_captured(standin, n=2)
    move_capture(other, 3, standin)
    arrival = int(time.time()) - 3600
    good = standin.pay_out(arrival)
    standin.book("charge", 2000, "sek", fee=210, created=int(time.time()) - 3 * 86400)
    short = standin.pay_out(arrival, amount=1500)

    result = reconcile()

    assert {p.id: (p.amount_minor, p.paid_out_net_minor) for p in result.payouts} == {
        good["id"]: (2 * (4500 - 248), 2 * (4500 - 248)),
        short["id"]: (1500, 2000 - 210),
    }
    differs = [d for d in result.differences if d.kind == model.PAYOUT_DIFFERS]
    assert [(d.payout_id, d.ours_minor, d.theirs_minor) for d in differs] == [
        (short["id"], 1790, 1500)]
    arrived = next(d for d in result.days if d.day == datetime.fromtimestamp(arrival, UTC).date())
    assert arrived.payouts_minor == 2 * (4500 - 248) + 1500
    assert standin.requests_to("GET", "/v1/payouts")[0].params["arrival_date"].keys() == {
        "gte", "lt"}


def test_a_refund_that_failed_at_the_provider_cancels_out(
    stripe_app: Any, standin: StripeStandin
) -> None:
    charge = stripe_captured(standin, n=1)
    done = refunds.refund(charge.public_id, 1000, "wrong price", "anna@example.com")
    standin.fail_refund(done.gateway_refund_id)
    row = db.session.scalar(db.select(RefundRecord))
    row.state = "failed"  # as charge.refund.updated records it (charging/refunds.py)
    db.session.commit()

    assert reconcile().differences == []


# --- The provider's errors, in words ---------------------------------------------------------


def test_stripe_unreachable_is_said_in_words(make_app: Callable[..., Any],
                                              standin: StripeStandin) -> None:
    app = make_app(STRIPE_SECRET_KEY="sk_test_x", STRIPE_PUBLISHABLE_KEY="pk_test_x",
                   STRIPE_API_BASE="http://127.0.0.1:9")
    with app.app_context():
        answer = signed_in(app).get("/dashboard/reconciliation")
        page = answer.get_data(as_text=True)
        assert answer.status_code == 502
        assert "ScanCharge could not reach Stripe." in page
        assert "status.stripe.com" in page
        db.session.remove()


def test_a_refused_api_key_is_said_in_words(make_app: Callable[..., Any],
                                             standin: StripeStandin) -> None:
    app = make_app(STRIPE_SECRET_KEY="sk_bogus_key", STRIPE_PUBLISHABLE_KEY="pk_test_x",
                   STRIPE_API_BASE=standin.url)
    with app.app_context():
        answer = signed_in(app).get("/dashboard/reconciliation")
        page = html.unescape(answer.get_data(as_text=True))
        assert answer.status_code == 502
        assert "Stripe refused ScanCharge's API key." in page
        assert "STRIPE_SECRET_KEY" in page
        db.session.remove()


def test_a_provider_failure_shows_words_not_half_the_books(
    stripe_app: Any, standin: StripeStandin
) -> None:
    for _ in range(120):
        standin.book("charge", 1000, "sek", fee=195)
    client = signed_in(stripe_app)
    standin.fail_next(500, count=3)  # the library's own two retries are spent too
    answer = client.get("/dashboard/reconciliation")
    assert answer.status_code == 502
    assert "Stripe had a problem answering." in answer.get_data(as_text=True)


# --- The demo gateway's own books ------------------------------------------------------------


def test_the_demo_gateway_reconciles_from_its_own_records(app: Any) -> None:
    matched = captured_charge(n=1)
    refunds.refund(matched.public_id, 500, "the connector was faulty", "anna@example.com")
    paid_out = captured_charge(n=2)
    move_capture(paid_out, 4)
    differs = captured_charge(n=3)
    differs.captured_minor = 4400  # ScanCharge's record now says 44,00; the demo's 45,00
    db.session.commit()

    result = model.reconcile(current_gateway(), today() - timedelta(days=6), today(), ZONE)

    assert result.gateway == "demo"
    assert [(d.kind, d.charge_id, d.ours_minor, d.theirs_minor) for d in result.differences] \
        == [(model.AMOUNT_DIFFERS, differs.public_id, 4400, 4500)]
    now = next(d for d in result.days if d.day == today())
    assert (now.refunded_minor, now.provider_refunded_minor) == (500, 500)
    assert now.fees_minor == 2 * 248  # the demo's made-up fee, 1.5 % + 1.80
    assert [(p.amount_minor, p.paid_out_net_minor) for p in result.payouts] == [
        (4500 - 248, 4500 - 248)]


def test_the_demo_page_says_its_books_are_the_demo_s(app: Any) -> None:
    captured_charge(n=1)
    page = html.unescape(signed_in(app).get("/dashboard/reconciliation").get_data(as_text=True))
    assert "The demo gateway's books: no real money moved." in page
    assert "Every day matches" in page


# --- Who may -------------------------------------------------------------------------------


def test_support_may_not_see_or_export_the_reconciliation(app: Any) -> None:
    client = signed_in(app, "support")
    assert client.get("/dashboard/reconciliation").status_code == 403
    assert client.get("/dashboard/reconciliation.csv").status_code == 403
    assert "/dashboard/reconciliation" not in client.get("/dashboard/").get_data(as_text=True)
    assert db.session.scalars(db.select(OperatorAction).where(
        OperatorAction.action == "export")).all() == []


def test_accounting_may_see_and_export(app: Any) -> None:
    client = signed_in(app, "accounting")
    assert client.get("/dashboard/reconciliation").status_code == 200
    assert client.get("/dashboard/reconciliation.csv").status_code == 200
    assert 'href="/dashboard/reconciliation"' in client.get("/dashboard/").get_data(as_text=True)


def test_a_range_is_checked_before_the_provider_is_asked(
    stripe_app: Any, standin: StripeStandin
) -> None:
    client = signed_in(stripe_app)
    assert client.get("/dashboard/reconciliation?from=2026-12-01&to=2026-11-01") \
        .status_code == 400
    assert client.get("/dashboard/reconciliation?from=2026-01-01&to=2026-03-01") \
        .status_code == 400
    assert client.get("/dashboard/reconciliation?from=yesterday").status_code == 400
    assert standin.requests_to("GET", "/v1/balance_transactions") == []
