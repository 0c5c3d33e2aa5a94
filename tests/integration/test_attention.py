"""Needs attention: flagged and stuck charges in one inbox, oldest first, each with what
happened and the actions that resolve it; every action on the timeline and in the audit
log; who may do what."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from charge_factory import captured_charge, ended_charge
from test_dashboard_charge_page import audit, csrf, signed_in, timeline

import wiring
from charging import operator_actions
from charging.models import Charge
from charging.operator_actions import OperatorActionError
from charging.timeline import fail
from extensions import db
from ocpi.transport import now_utc
from payments.models import DemoPaymentIntent, Receipt

INBOX = "/dashboard/attention"


@pytest.fixture(autouse=True)
def _receivers() -> None:
    wiring.connect()


def flagged(charge: Charge, code: str, detail: str, *, days_ago: int = 0) -> Charge:
    fail(charge, code, detail)
    charge.created_at = now_utc() - timedelta(days=days_ago)
    db.session.commit()
    return charge


def stuck_starting(n: int, *, days_ago: int) -> Charge:
    charge = ended_charge(n=n)
    long_ago = now_utc() - timedelta(days=days_ago)
    charge.status, charge.cdr_pk = "STARTING", None
    charge.created_at = charge.updated_at = long_ago
    db.session.commit()
    return charge


def act(client: Any, charge: Charge, action: str, **form: str) -> str:
    answer = client.post(f"/dashboard/charges/{charge.public_id}/{action}",
                         data={"csrf": csrf(client, INBOX), "back": "attention", **form},
                         follow_redirects=True)
    assert answer.status_code == 200, answer.status_code
    return answer.get_data(as_text=True)


def rows(html: str) -> list[str]:
    return re.findall(r'<tr class="attention-item" id="attention-([^"]+)"', html)


def reload(charge: Charge) -> Charge:
    db.session.expire_all()
    return db.session.get(Charge, charge.pk)


def test_flagged_and_stuck_charges_oldest_first_in_plain_words(app: Any) -> None:
    above = flagged(captured_charge(n=1), "COST_ABOVE_HOLD",
                    "cost SEK 427.50, held SEK 300.00", days_ago=1)
    stuck = stuck_starting(2, days_ago=3)
    fine = captured_charge(n=3)  # nothing wrong: not listed
    client = signed_in(app)

    html = client.get(INBOX).get_data(as_text=True)

    assert rows(html) == [stuck.public_id, above.public_id]
    assert fine.public_id not in html
    assert "The charging cost more than was held" in html
    assert "cost SEK 427.50, held SEK 300.00" in html
    assert "Stuck: waiting for the CPO&#39;s answer to START_SESSION, overdue." in html
    assert re.search(r'id="nav-attention">Needs attention <span class="count">\(2\)</span>', html)
    # The actions that fit: a refund for the captured one, a stop for the starting one.
    above_row = html.split(f'id="attention-{above.public_id}"')[1].split("</tr>")[0]
    assert "Refund…" in above_row and "Retry the capture" not in above_row
    stuck_row = html.split(f'id="attention-{stuck.public_id}"')[1].split("</tr>")[0]
    assert "Stop charging" in stuck_row and "Mark resolved" in stuck_row
    assert all('data-label="' in td for td in re.findall(r"<td[^>]*>", html))


def test_a_retried_capture_succeeds_against_the_demo_gateway(app: Any) -> None:
    charge = flagged(ended_charge(), "CAPTURE_FAILED", "the card network was down")
    client = signed_in(app)
    assert rows(client.get(INBOX).get_data(as_text=True)) == [charge.public_id]

    html = act(client, charge, "retry-capture")

    assert "Captured: the receipt is issued." in html
    charge = reload(charge)
    assert (charge.status, charge.captured_minor, charge.failure_code) == ("CAPTURED", 4500, None)
    assert db.session.get(Receipt, charge.receipt_pk) is not None
    intent = db.session.scalar(db.select(DemoPaymentIntent)
                               .where(DemoPaymentIntent.intent_id == charge.hold_id))
    assert intent.status == "succeeded" and intent.amount_received_minor == 4500
    assert any(key.startswith(f"charge-{charge.public_id}-capture-retry-")
               for key in intent.applied_keys)
    notes = [e.note for e in timeline(charge)]
    assert any("admin@operator.example retries the capture" in (n or "") for n in notes)
    assert "captured SEK 45.00 of SEK 300.00 held" in notes[-1]
    assert audit("retry_capture")[0].target == charge.public_id
    assert rows(html) == []


def test_a_capture_that_cannot_be_retried_says_why(app: Any) -> None:
    charge = flagged(ended_charge(), "AUTHORIZATION_LAPSED", "the card authorisation ended")
    with pytest.raises(OperatorActionError, match="a capture cannot fix it"):
        operator_actions.retry_capture(charge.pk, "ops@example.com")
    html = act(signed_in(app), charge, "retry-capture")
    assert "Not done: flagged AUTHORIZATION_LAPSED" in html
    assert reload(charge).status == "ENDED" and not audit("retry_capture")


def test_releasing_the_hold_charges_nothing(app: Any) -> None:
    charge = flagged(ended_charge(), "CURRENCY_MISMATCH", "CDR in EUR, hold in SEK")
    client = signed_in(app)

    html = act(client, charge, "release")

    assert "The hold is released: nothing is charged." in html
    charge = reload(charge)
    assert charge.status == "RELEASED" and charge.hold_released_at is not None
    intent = db.session.scalar(db.select(DemoPaymentIntent)
                               .where(DemoPaymentIntent.intent_id == charge.hold_id))
    assert intent.status == "canceled"
    assert any("releases the hold" in (e.note or "") for e in timeline(charge))
    assert audit("release")
    # RELEASED is final; the flag stays history, and is resolved with a note.
    assert rows(html) == [charge.public_id]
    with pytest.raises(OperatorActionError, match="no hold to release"):
        operator_actions.release(charge.pk, "ops@example.com")


def test_mark_resolved_needs_a_note_and_leaves_the_inbox(app: Any) -> None:
    charge = flagged(captured_charge(), "CDR_PRICE_MISMATCH", "CDR SEK 45.00, tariff SEK 50.00")
    client = signed_in(app)

    assert "Not done: say in a note how it was resolved" in act(client, charge, "resolve")
    assert reload(charge).resolved_at is None

    html = act(client, charge, "resolve", note="CPO confirmed the CDR; tariff was old")
    act(client, charge, "resolve", note="CPO confirmed the CDR; tariff was old")  # twice

    assert "Marked resolved: it has left the inbox." in html and rows(html) == []
    charge = reload(charge)
    assert charge.resolved_by == "admin@operator.example"
    assert charge.resolution_note == "CPO confirmed the CDR; tariff was old"
    resolved = [e for e in timeline(charge) if "marked the flag" in (e.note or "")]
    assert len(resolved) == 1 and "CDR_PRICE_MISMATCH resolved" in resolved[0].note
    assert len(audit("resolve")) == 2  # each submission is an operator action
    page = client.get(f"/dashboard/charges/{charge.public_id}").get_data(as_text=True)
    assert "CPO confirmed the CDR; tariff was old" in page

    # A new flag needs a person again.
    fail(charge, "REFUND_FAILED", "refund #1 of SEK 10.00 failed: expired_or_canceled_card")
    db.session.commit()
    assert rows(client.get(INBOX).get_data(as_text=True)) == [charge.public_id]


def test_support_sees_the_inbox_but_may_not_settle(app: Any) -> None:
    charge = flagged(ended_charge(), "CAPTURE_FAILED", "declined")
    client = signed_in(app, "support")

    html = client.get(INBOX).get_data(as_text=True)
    assert rows(html) == [charge.public_id]
    assert "Retry the capture" not in html and "Mark resolved" not in html
    token = csrf(client, INBOX)
    for action in ("retry-capture", "release", "resolve"):
        answer = client.post(f"/dashboard/charges/{charge.public_id}/{action}",
                             data={"csrf": token, "note": "x"})
        assert answer.status_code == 403
    assert reload(charge).status == "ENDED" and reload(charge).resolved_at is None
