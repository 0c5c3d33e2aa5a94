"""Reconciliation in a real headless Chromium: the accountant opens the reconciliation page,
sees the day that does not match and the difference (150,00 captured, the provider's books
149,00), follows the link to the charge, and downloads the differences as CSV.

ScanCharge is served over HTTP with the Stripe gateway against the stand-in (the real
`stripe` library over a socket); the charge is captured through the real settle(). The
screenshot "reconciliation" is docs/operators.md's.
"""

from __future__ import annotations

import csv
import io
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from charge_factory import captured_charge
from operator_browser import DESKTOP, screenshot, sign_in, signed_in
from stripe_standin import StripeStandin
from test_driver_browser import CHROMIUM, browser  # noqa: F401 (the browser fixture)

from dashboard.models import set_operator
from extensions import db

sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is needed")
expect = sync_api.expect

pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} is missing")

ACCOUNTANT, PASSWORD = "books@example.com", "correct horse battery"


@pytest.fixture
def stripe_site(make_app: Callable[..., Any],
                standin: StripeStandin) -> Iterator[tuple[Any, str, str]]:
    """(app, base URL, the public id of the charge whose capture the provider books at
    149,00 instead of 150,00)."""
    from servers import ServerThread

    app = make_app(STRIPE_SECRET_KEY="sk_test_browser", STRIPE_PUBLISHABLE_KEY="pk_test_browser",
                   STRIPE_API_BASE=standin.url, STRIPE_WEBHOOK_SECRET="whsec_browser",
                   OPERATOR_TIMEZONE="Europe/Stockholm")
    with app.app_context():
        set_operator(ACCOUNTANT, PASSWORD, role="accounting")
        db.session.commit()
        charge = captured_charge(
            n=1, excl_vat="120.00", incl_vat="150.00",
            confirm=lambda pi: standin.confirm(pi, "4242424242424242"))
        standin.alter_transaction(standin.transaction_of(charge.hold_id)["id"], amount=14900)
        captured_charge(n=2, confirm=lambda pi: standin.confirm(pi, "4242424242424242"))
        public_id = charge.public_id
        db.session.remove()
    with ServerThread(app) as server:
        yield app, server.url, public_id
    with app.app_context():
        db.engine.dispose()


def test_the_accountant_sees_the_difference_and_reaches_its_charge(
    browser: Any, stripe_site: tuple[Any, str, str]  # noqa: F811
) -> None:
    _app, base, public_id = stripe_site
    page = signed_in(browser, base, ACCOUNTANT, PASSWORD)
    page.get_by_role("link", name="Reconciliation").click()

    expect(page.get_by_role("heading", name="Reconciliation with the payment provider")) \
        .to_be_visible()
    expect(page.locator("#rec-summary")).to_contain_text("1 difference")
    difference = page.locator("#rec-differences tbody tr")
    expect(difference).to_have_count(1)
    expect(difference).to_contain_text("The captured amount differs")
    # Money as money in the operator's language ("150,00 kr", "SEK 150.00"), never 15000.
    expect(difference).to_contain_text(re.compile(r"150[.,]00"))
    expect(difference).to_contain_text(re.compile(r"149[.,]00"))
    expect(difference).to_contain_text(re.compile(r"\b1[.,]00"))
    expect(difference).not_to_contain_text("15000")
    today = page.locator("#rec-days tbody tr", has_text="1 difference")
    expect(today).to_have_count(1)
    expect(page.locator("#rec-days tbody tr", has_text="matches")).to_have_count(6)
    screenshot(page, "reconciliation")

    with page.expect_download() as download:
        page.get_by_role("link", name="Differences as CSV").click()
    text = Path(download.value.path()).read_text(encoding="utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [(r["kind"], r["charge"], r["ours"], r["provider"]) for r in rows] == [
        ("amount_differs", public_id, "150.00", "149.00")]

    difference.get_by_role("link").click()
    expect(page).to_have_url(f"{base}/dashboard/charges/{public_id}")


def test_the_reconciliation_page_has_no_serious_accessibility_violations(
    browser: Any, stripe_site: tuple[Any, str, str]  # noqa: F811
) -> None:
    from test_accessibility import AXE, axe_violations

    if not AXE.exists():
        pytest.skip(f"axe-core is not installed ({AXE} is missing): run `npm ci`")
    _app, base, _public_id = stripe_site
    # Past the page's Content-Security-Policy only so that axe's own script may run.
    page = browser.new_context(viewport=DESKTOP, locale="en-GB", bypass_csp=True).new_page()
    page.set_default_timeout(10_000)
    sign_in(page, base, ACCOUNTANT, PASSWORD)
    page.goto(f"{base}/dashboard/reconciliation")
    expect(page.locator("#rec-differences")).to_be_visible()
    serious = [v for v in axe_violations(page) if v["impact"] in {"serious", "critical"}]
    assert serious == [], serious
