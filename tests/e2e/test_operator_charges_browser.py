"""Finding a charge in a real headless Chromium: the operator types each id a driver, a CPO
or the payment provider may quote into the one search box and gets that charge, and a
search with its filters is a link that opens the same results.

Against ScanCharge served over HTTP (tests/e2e/operator_browser.py); the charges are made
through the demo gateway and the real settle(). Skipped, saying why, when Chromium or
Playwright is not available.
"""

from __future__ import annotations

import os
from decimal import Decimal
from typing import Any

import pytest
from operator_browser import operator_site, screenshot, signed_in  # noqa: F401 (fixture)
from sqlalchemy import select
from test_driver_browser import CHROMIUM, browser  # noqa: F401 (the browser fixture)

from charging import refunds
from charging.models import Charge
from extensions import db
from payments.models import DemoPaymentIntent, Receipt
from payments.setup import current_gateway
from tests.charge_factory import captured_charge

sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is needed")
expect = sync_api.expect

pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} is missing")


def _mastercard(hold_id: str) -> None:
    intent = db.session.scalar(
        select(DemoPaymentIntent).where(DemoPaymentIntent.intent_id == hold_id))
    current_gateway().confirm(hold_id, intent.client_secret, "5555555555554444")


def _seed(app: Any) -> dict[str, str]:
    """Two captured charges, the second partly refunded (so it has a credit note); the ids
    an operator may be given for the second one."""
    with app.app_context():
        captured_charge(n=1, email="someone@example.com", kwh=10)
        second = captured_charge(n=2, email="Driver@Example.com", excl_vat="70.00",
                                 incl_vat="87.50", kwh=20, confirm=_mastercard)
        refunds.refund(second.public_id, 1000, "kulans", "ops@example.com")
        charge = db.session.get(Charge, second.pk)
        charge.session_id = "Sess-B2"
        charge.energy_kwh = Decimal(20)  # what its Session pushes would have said
        db.session.commit()
        receipt = db.session.get(Receipt, charge.receipt_pk)
        note = db.session.scalar(select(Receipt).where(Receipt.credits_pk == receipt.pk))
        ids = {
            "public_id": charge.public_id,
            "receipt number": receipt.display_number.lower(),
            "credit note number": note.display_number,
            "charge id prefix": charge.public_id[:8],
            "EVSE-ID": charge.evse_id,
            "e-mail": "driver@example.com",
            "last four card digits": "4444",
            "PaymentIntent id": charge.hold_id or "",
            "Session id": "SESS-B2",
            "CDR id": "cdr-2",
        }
        db.session.remove()
    return ids


def test_an_operator_finds_a_charge_by_each_id(
        operator_site: tuple[Any, str], browser: Any) -> None:  # noqa: F811
    app, base = operator_site
    ids = _seed(app)
    wanted = ids.pop("public_id")
    page = signed_in(browser, base)
    page.goto(f"{base}/dashboard/")
    rows = page.locator("table.charges tbody tr[id^=charge-]")
    expect(rows).to_have_count(2)

    box = page.get_by_label("Find a charge")
    for kind, term in ids.items():
        if kind == "EVSE-ID":
            continue  # both charges were at the same charger: checked below
        box.fill(f"  {term} ")
        page.get_by_role("button", name="Search").click()
        expect(rows, kind).to_have_count(1)
        expect(page.locator(f"#charge-{wanted}"), kind).to_be_visible()
        box = page.get_by_label("Find a charge")
        expect(box).to_have_value(term.strip())

    box.fill(ids["EVSE-ID"].lower())
    page.get_by_role("button", name="Search").click()
    expect(rows).to_have_count(2)

    box.fill("driver@example.com")
    page.get_by_role("button", name="Search").click()
    expect(page.locator("#totals-SEK")).to_contain_text("SEK 77.50")  # net: 87.50 less 10
    screenshot(page, "charges-search")

    # A search is a link: opened afresh, it shows the same charge.
    shared = page.url
    assert "q=driver%40example.com" in shared
    again = signed_in(browser, base)
    again.goto(shared)
    expect(again.locator("table.charges tbody tr[id^=charge-]")).to_have_count(1)
    expect(again.locator(f"#charge-{wanted}")).to_be_visible()


def test_no_match_offers_to_clear_the_filters(
        operator_site: tuple[Any, str], browser: Any) -> None:  # noqa: F811
    app, base = operator_site
    _seed(app)
    page = signed_in(browser, base)
    page.goto(f"{base}/dashboard/?q=SCN-999999&status=CAPTURED")
    expect(page.locator("#no-charges")).to_contain_text("No charge matches “SCN-999999”")
    page.locator("#no-charges").get_by_role("link", name="Clear the filters").click()
    expect(page.locator("table.charges tbody tr[id^=charge-]")).to_have_count(2)
    expect(page.get_by_label("Find a charge")).to_have_value("")
