"""A charge's page: its money, receipt and credit notes, a timeline that reads as money, and
the actions (refund with its confirmation, resend, stop, unlock), each guarded by its
permission and recorded on the timeline and in the audit log."""

from __future__ import annotations

import re
from typing import Any

import pytest
from charge_factory import captured_charge, ended_charge, pending
from conftest import csrf, operator_client

import wiring
from charging import settlement
from charging.models import Charge, ChargeEvent
from dashboard.models import OperatorAction
from extensions import db
from payments.models import DemoRefund, Receipt, RefundRecord

PASSWORD = "correct horse battery"
# "15000 SEK", "cost 15423, held 15000": minor units with a currency, or bare figures.
RAW_MINOR = re.compile(r"\b\d{3,} (SEK|EUR)\b|cost \d+, held \d+|captured \d+ of \d+")


@pytest.fixture(autouse=True)
def _receivers() -> None:
    wiring.connect()


def signed_in(app: Any, role: str = "admin") -> Any:
    return operator_client(app, f"{role}@operator.example", role, PASSWORD)


def post(client: Any, path: str, page: str, **form: str) -> Any:
    return client.post(path, data={"csrf": csrf(client, page), **form}, follow_redirects=True)


def timeline(charge: Charge) -> list[ChargeEvent]:
    db.session.expire_all()
    return list(db.session.scalars(
        db.select(ChargeEvent).where(ChargeEvent.charge_pk == charge.pk).order_by(ChargeEvent.pk)))


def audit(action: str) -> list[OperatorAction]:
    db.session.expire_all()
    return list(db.session.scalars(
        db.select(OperatorAction).where(OperatorAction.action == action)))


def page_of(charge: Charge) -> str:
    return f"/dashboard/charges/{charge.public_id}"


def test_the_page_shows_money_documents_and_a_timeline_in_money(app: Any) -> None:
    charge = captured_charge(email="driver@example.com")
    client = signed_in(app)

    html = client.get(page_of(charge)).get_data(as_text=True)

    assert re.search(r'id="money-held">SEK 300\.00<', html)
    assert re.search(r'id="money-cost">SEK 45\.00<', html)
    assert re.search(r'id="money-captured">SEK 45\.00<', html)
    assert re.search(r'id="money-refunded">SEK 0\.00<', html)
    assert re.search(r'id="money-vat">SEK 9\.00<', html)
    receipt = db.session.get(Receipt, charge.receipt_pk)
    assert f'href="/r/{receipt.public_token}"' in html and receipt.display_number in html
    assert "captured SEK 45.00 of SEK 300.00 held" in html
    assert "SEK 300.00 held" in html  # the authorisation, as money
    assert not RAW_MINOR.search(html), RAW_MINOR.search(html)
    # Times in the operator's zone, not UTC stamps.
    assert "When (UTC)</th><th>Move" not in html
    assert all('data-label="' in td for td in re.findall(r"<td[^>]*>", html))


def test_a_cost_above_the_hold_reads_as_money_on_the_timeline_and_the_flag(app: Any) -> None:
    # 100 kWh at the tariff's price: SEK 427.50, above the SEK 300.00 held.
    charge = ended_charge(excl_vat="342.00", incl_vat="427.50", kwh=100)
    settlement.settle(charge.pk)
    db.session.expire_all()
    charge = db.session.get(Charge, charge.pk)
    assert (charge.status, charge.failure_code) == ("CAPTURED", "COST_ABOVE_HOLD")
    assert charge.failure_detail == "cost SEK 427.50, held SEK 300.00"
    notes = " | ".join(e.note or "" for e in timeline(charge))
    assert "captured SEK 300.00 of SEK 300.00 held" in notes
    assert not RAW_MINOR.search(notes), notes

    html = signed_in(app).get(page_of(charge)).get_data(as_text=True)
    assert "COST_ABOVE_HOLD: cost SEK 427.50, held SEK 300.00" in html
    assert not RAW_MINOR.search(html)


def test_a_partial_refund_is_confirmed_then_shows_its_credit_note(app: Any) -> None:
    charge = captured_charge()
    client = signed_in(app)

    review = client.post(f"{page_of(charge)}/refund/review",
                         data={"csrf": csrf(client, page_of(charge)), "amount": "12.50",
                               "reason": "Slow charger"})
    words = review.get_data(as_text=True)
    assert review.status_code == 200
    assert "SEK 12.50 of the SEK 45.00 left goes back to the card" in words
    assert "SEK 32.50 stays paid" in words and "A refund cannot be undone" in words
    assert db.session.scalar(db.select(db.func.count(RefundRecord.pk))) == 0  # not yet

    form = dict(re.findall(r'name="(amount_minor|reason|refunded_before|csrf)" value="([^"]*)"',
                           words))
    done = client.post(f"{page_of(charge)}/refund", data=form, follow_redirects=True)
    html = done.get_data(as_text=True)

    assert "Refunded SEK 12.50 to the card." in html
    note = db.session.scalar(db.select(Receipt).where(Receipt.credits_pk.is_not(None)))
    assert note is not None and note.total_minor == -1250
    assert f"#credit-note-{note.display_number}" in html and "(just issued)" in html
    assert re.search(r'id="money-refunded">SEK 12\.50<', html)
    assert re.search(r'id="money-net">SEK 32\.50<', html)
    assert any("refund #1: SEK 12.50 back to the card" in (e.note or "")
               for e in timeline(charge))
    (row,) = audit("refund")
    assert row.target == charge.public_id and note.display_number in row.detail


def test_a_refund_sent_twice_refunds_once(app: Any) -> None:
    charge = captured_charge()
    client = signed_in(app)
    form = {"csrf": csrf(client, page_of(charge)), "amount_minor": "4500",
            "reason": "Never charged", "refunded_before": "0"}

    first = client.post(f"{page_of(charge)}/refund", data=form, follow_redirects=True)
    second = client.post(f"{page_of(charge)}/refund", data=form, follow_redirects=True)

    assert "Refunded SEK 45.00 to the card." in first.get_data(as_text=True)
    assert "The refund was not made" in second.get_data(as_text=True)
    assert "has been refunded since this refund was confirmed" in second.get_data(as_text=True)
    assert db.session.scalar(db.select(db.func.count(DemoRefund.pk))) == 1
    db.session.expire_all()
    assert db.session.get(Charge, charge.pk).refunded_minor == 4500


def test_refund_errors_are_said_in_words(app: Any) -> None:
    charge = captured_charge()
    client = signed_in(app)
    for typed, words in [("lots", "“lots” is not an amount."),
                         ("50.00", "At most SEK 45.00 can be refunded."),
                         ("0", "The amount to refund must be more than zero.")]:
        answer = post(client, f"{page_of(charge)}/refund/review", page_of(charge),
                      amount=typed, reason="x")
        assert words in answer.get_data(as_text=True)
    answer = post(client, f"{page_of(charge)}/refund/review", page_of(charge), amount="")
    assert "Give the reason" in answer.get_data(as_text=True)


def test_support_may_stop_unlock_and_resend_but_not_refund(app: Any, monkeypatch: Any) -> None:
    app.config["SMTP_HOST"] = "smtp.invalid"
    charge = captured_charge(email="driver@example.com")
    receipt = db.session.get(Receipt, charge.receipt_pk)
    receipt.sent_at = receipt.issued_at  # e-mailed once already
    db.session.commit()
    client = signed_in(app, "support")

    html = client.get(page_of(charge)).get_data(as_text=True)
    assert "Review the refund" not in html and "E-mail the receipt again" in html
    token = csrf(client, page_of(charge))
    for path in ("refund/review", "refund"):
        assert client.post(f"{page_of(charge)}/{path}",
                           data={"csrf": token, "amount": "1", "amount_minor": "100",
                                 "reason": "x", "refunded_before": "0"}).status_code == 403
    assert db.session.scalar(db.select(db.func.count(RefundRecord.pk))) == 0

    sent = post(client, f"{page_of(charge)}/resend", page_of(charge))
    assert "being e-mailed again to driver@example.com" in sent.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(Receipt, charge.receipt_pk).sent_at is None
    assert "payments.send_receipt_email" in pending(app)
    assert "support@operator.example e-mails receipt" in timeline(charge)[-1].note
    assert audit("resend_receipt")[0].detail == "to driver@example.com"

    asked = []
    monkeypatch.setattr("charging.operator_actions.unlock_connector",
                        lambda pk, who: asked.append((pk, who)) or "ACCEPTED")
    unlocked = post(client, f"{page_of(charge)}/unlock", page_of(charge))
    assert "The CPO accepted the unlock" in unlocked.get_data(as_text=True)
    assert asked == [(charge.pk, "support@operator.example")] and audit("unlock")

    charging = ended_charge(n=2)
    charging.status = "CHARGING"
    charging.session_id = "SESSION-2"
    db.session.commit()
    stopped = post(client, f"{page_of(charging)}/stop", page_of(charging))
    assert "Stop requested" in stopped.get_data(as_text=True)
    db.session.expire_all()
    charging = db.session.get(Charge, charging.pk)
    assert (charging.status, charging.stop_requested_by) == ("STOPPING", "operator")
    last = timeline(charging)[-1]
    assert (last.cause, last.cause_ref) == ("operator", "support@operator.example")
    assert "charging.send_stop" in pending(app) and audit("stop")


def test_resend_without_an_address_says_so(app: Any) -> None:
    app.config["SMTP_HOST"] = "smtp.invalid"
    charge = captured_charge()
    client = signed_in(app)
    answer = post(client, f"{page_of(charge)}/resend", page_of(charge))
    assert "The receipt was not sent: the driver gave no e-mail address" in \
        answer.get_data(as_text=True)
    assert not audit("resend_receipt")
