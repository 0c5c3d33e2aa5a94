"""People in a real headless Chromium: an admin invites a support operator, who sets a
password, signs in and sees what support may not do; wrong passwords lock an e-mail out;
the language switch in the header turns the dashboard German, and it stays so.

On the operator harness (tests/e2e/operator_browser.py: ScanCharge served over HTTP with an
admin; no CPO needed, the charge is put in the database). Its screenshots are the ones
docs/operators.md shows (`make screenshots`). Skipped, saying why, when Chromium or
Playwright is not available.
"""

from __future__ import annotations

import os
from typing import Any

import pytest
from operator_browser import (
    ADMIN,
    PASSWORD,
    add_cpo,
    new_page,
    operator_site,  # noqa: F401 (the fixture)
    screenshot,
    sign_in,
    signed_in,
)
from test_driver_browser import CHROMIUM, browser  # noqa: F401 (the browser fixture)

from charging.models import Charge
from extensions import db

sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is needed")
expect = sync_api.expect

pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} is missing")


def _a_charge(app: Any) -> None:
    with app.app_context():
        party = add_cpo()
        db.session.add(Charge(
            party_pk=party.pk, cpo_country_code="SE", cpo_party_id="SIM", location_id="L1",
            evse_uid="E1", evse_id="SE*SIM*E00001", connector_id="1", currency="SEK",
            hold_minor=30000, gateway="demo", hold_id="pi_demo_1", token_uid="TOK1",
            authorization_reference="REF1", status="CHARGING"))
        db.session.commit()
        db.session.remove()


def test_add_a_support_user_and_see_what_it_may_not_do(
    browser: Any, operator_site: Any  # noqa: F811
) -> None:
    app, base = operator_site
    _a_charge(app)
    admin = signed_in(browser, base)
    admin.get_by_role("link", name="People").click()
    admin.get_by_label("E-mail").fill("helpdesk@example.com")
    admin.get_by_label("Role", exact=True).select_option("support")
    admin.get_by_role("button", name="Make invitation link").click()
    link = admin.locator("#invite-link").inner_text()
    screenshot(admin, "people")

    support = new_page(browser)
    support.goto(link)
    expect(support.locator("h1")).to_have_text("Choose your password")
    support.get_by_label("Password (at least").fill("tram lantern pebble 7")
    support.get_by_label("The same password again").fill("tram lantern pebble 7")
    support.get_by_role("button", name="Set password").click()
    expect(support.locator("[role=alert]")).to_contain_text("Your password is set")
    sign_in(support, base, "helpdesk@example.com", "tram lantern pebble 7")
    expect(support.locator("header.dash-header")).to_contain_text("helpdesk@example.com (support)")
    expect(support.get_by_role("link", name="People")).to_have_count(0)
    support.locator("tr", has_text="SE*SIM*E00001").get_by_role("link").first.click()
    expect(support.get_by_role("button", name="Unlock connector 1")).to_be_visible()
    support.goto(f"{base}/dashboard/people")
    expect(support.locator("h1")).to_have_text("Not allowed for your role")
    expect(support.locator("main")).to_contain_text("you need the role admin")
    screenshot(support, "forbidden")

    admin.goto(f"{base}/dashboard/audit")
    log = admin.locator("table")
    expect(log).to_contain_text("invitation_accepted")
    expect(log).to_contain_text("invite")
    screenshot(admin, "audit-log")

    # Disabled by the admin: signed out at the next page.
    admin.goto(f"{base}/dashboard/people")
    admin.locator("tr", has_text="helpdesk@example.com").get_by_role(
        "button", name="Disable").click()
    support.goto(f"{base}/dashboard/")
    expect(support.locator("h1")).to_have_text("Operator sign in")


def test_get_locked_out(browser: Any, operator_site: Any) -> None:  # noqa: F811
    _app, base = operator_site
    page = new_page(browser)
    for _ in range(2):
        sign_in(page, base, ADMIN, "not the password")
        expect(page.locator("[role=alert]")).to_contain_text("Wrong e-mail or password")
    sign_in(page, base, ADMIN, "not the password")
    expect(page.locator("[role=alert]")).to_contain_text("locked for 15 more minutes")
    sign_in(page, base, ADMIN, PASSWORD)  # the right password waits out the lockout too
    expect(page.locator("[role=alert]")).to_contain_text("locked for")
    screenshot(page, "locked-out")


def test_the_dashboard_in_the_operator_s_language(
    browser: Any, operator_site: Any  # noqa: F811
) -> None:
    _app, base = operator_site
    page = signed_in(browser, base)
    page.goto(f"{base}/dashboard/people")
    page.locator("nav.lang-switch").get_by_role("link", name="Deutsch").click()
    expect(page.locator("html")).to_have_attribute("lang", "de")
    assert page.url.endswith("/dashboard/people?lang=de")  # the same page, switched
    expect(page.locator("nav.dash-nav")).to_contain_text("Ladevorgänge")
    # Kept: the next page, without ?lang=, is German too.
    page.locator("nav.dash-nav").get_by_role("link", name="Ladevorgänge").click()
    expect(page.locator("html")).to_have_attribute("lang", "de")
    expect(page.locator("nav.lang-switch [aria-current=true]")).to_have_attribute("lang", "de")
