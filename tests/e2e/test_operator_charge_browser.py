"""A charge's page and Needs attention in a real headless Chromium: an operator refunds part
of a charge from its page, confirms, and opens the credit note; and resolves a flagged
charge from the inbox with a note. Screenshots for docs/operators.md: charge-page,
refund-confirm, credit-note, attention."""

from __future__ import annotations

import os
import re
from typing import Any

import pytest
from charge_factory import captured_charge
from operator_browser import operator_site, screenshot, signed_in  # noqa: F401 (fixture)
from test_driver_browser import CHROMIUM, browser  # noqa: F401 (the browser fixture)

from charging.models import Charge
from charging.timeline import fail
from extensions import db
from payments.models import Receipt

sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is needed")
expect = sync_api.expect

pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} is missing")


def test_refund_from_the_page_and_see_the_credit_note(operator_site: Any,  # noqa: F811
                                                      browser: Any) -> None:  # noqa: F811
    app, base = operator_site
    with app.app_context():
        public_id = captured_charge(email="driver@example.com").public_id
        db.session.remove()
    page = signed_in(browser, base)

    page.goto(f"{base}/dashboard/charges/{public_id}")
    expect(page.locator("#money-captured")).to_have_text("SEK 45.00")
    expect(page.locator("table.timeline")).to_contain_text("captured SEK 45.00 of SEK 300.00")
    screenshot(page, "charge-page")

    page.get_by_label("Amount").fill("12.50")
    page.get_by_label("Reason").fill("The charger stopped early")
    page.get_by_role("button", name="Review the refund").click()
    summary = page.locator("#refund-summary")
    expect(summary).to_contain_text("SEK 12.50 of the SEK 45.00 left goes back to the card")
    expect(summary).to_contain_text("A credit note for SEK 12.50 is issued against receipt")
    screenshot(page, "refund-confirm")

    page.get_by_role("button", name="Refund SEK 12.50").click()
    expect(page.get_by_role("alert")).to_contain_text("Refunded SEK 12.50 to the card.")
    expect(page.locator("#money-refunded")).to_have_text("SEK 12.50")
    with app.app_context():
        note = db.session.scalar(db.select(Receipt).where(Receipt.credits_pk.is_not(None)))
        number = note.display_number
        db.session.remove()
    link = page.locator("a.credit-note-link")
    expect(link).to_have_text(number)
    expect(page.locator("li.credit-note.new")).to_contain_text("(just issued)")

    link.click()
    expect(page).to_have_url(re.compile(rf"/r/[^#]+#credit-note-{re.escape(number)}$"))
    credit = page.locator(f"[id='credit-note-{number}']")
    expect(credit.locator(".credit-note-reason")).to_have_text("The charger stopped early")
    expect(credit.locator(".credit-note-total")).to_contain_text("12")
    screenshot(page, "credit-note")


def test_resolve_a_flagged_charge(operator_site: Any, browser: Any) -> None:  # noqa: F811
    app, base = operator_site
    with app.app_context():
        charge = captured_charge()
        fail(charge, "CDR_PRICE_MISMATCH", "CDR SEK 45.00, tariff SEK 50.00")
        db.session.commit()
        public_id = charge.public_id
        db.session.remove()
    page = signed_in(browser, base)

    page.goto(f"{base}/dashboard/")
    expect(page.locator("#nav-attention")).to_have_text("Needs attention (1)")
    page.locator("#nav-attention").click()
    row = page.locator(f"#attention-{public_id}")
    expect(row).to_contain_text("The CPO's CDR total differs from what its own tariff gives")
    expect(row).to_contain_text("CDR SEK 45.00, tariff SEK 50.00")
    screenshot(page, "attention")

    row.get_by_label("How it was resolved").fill("The CPO confirmed its CDR: the tariff was old")
    row.get_by_role("button", name="Mark resolved").click()
    expect(page.get_by_role("alert")).to_contain_text("Marked resolved")
    expect(page.locator("#attention-empty")).to_have_text("Nothing needs attention.")
    expect(page.locator("#nav-attention")).to_have_text("Needs attention")

    page.goto(f"{base}/dashboard/charges/{public_id}")
    expect(page.locator(".resolution")).to_contain_text("The CPO confirmed its CDR")
    expect(page.locator("table.timeline")).to_contain_text("marked the flag CDR_PRICE_MISMATCH")
    with app.app_context():
        assert db.session.get(Charge, charge.pk).resolved_by == "admin@example.com"
        db.session.remove()
