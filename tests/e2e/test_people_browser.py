"""People in a real headless Chromium: an admin invites a support operator, who sets a
password, signs in and sees what support may not do; wrong passwords lock an e-mail out.

Against ScanCharge served over HTTP (no CPO needed: the charge is put in the database).
Screenshots go to /tmp for a person to look at. Skipped, saying why, when Chromium or
Playwright is not available.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from test_driver_browser import CHROMIUM, browser  # noqa: F401 (the browser fixture)

from charging.models import Charge
from dashboard.models import set_operator
from extensions import db
from ocpi.models import Party, PartyGrant

sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is needed")
expect = sync_api.expect

SCREENSHOT_DIR = os.environ.get("DASHBOARD_SCREENSHOT_DIR", "/tmp")
ADMIN, PASSWORD = "admin@example.com", "correct horse battery"

pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} is missing")


@pytest.fixture
def served(make_app: Callable[..., Any]) -> Iterator[tuple[Any, str]]:
    from servers import ServerThread

    app = make_app(LOGIN_LOCKOUT_ATTEMPTS=3)
    with app.app_context():
        set_operator(ADMIN, PASSWORD)
        party = Party(name="Sim CPO", status="CONNECTED", country_code="SE", party_id="SIM",
                      grants=[PartyGrant(role="CPO", country_code="SE", party_id="SIM")])
        db.session.add(party)
        db.session.flush()
        db.session.add(Charge(
            party_pk=party.pk, cpo_country_code="SE", cpo_party_id="SIM", location_id="L1",
            evse_uid="E1", evse_id="SE*SIM*E00001", connector_id="1", currency="SEK",
            hold_minor=30000, gateway="demo", hold_id="pi_demo_1", token_uid="TOK1",
            authorization_reference="REF1", status="CHARGING"))
        db.session.commit()
        db.session.remove()
    with ServerThread(app) as server:
        yield app, server.url
    with app.app_context():
        db.engine.dispose()


def new_page(browser: Any) -> Any:  # noqa: F811
    page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    page.set_default_timeout(10_000)
    return page


def sign_in(page: Any, base: str, email: str, password: str) -> None:
    page.goto(f"{base}/dashboard/login")
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def test_add_a_support_user_and_see_what_it_may_not_do(browser: Any, served: Any) -> None:  # noqa: F811
    _app, base = served
    admin = new_page(browser)
    sign_in(admin, base, ADMIN, PASSWORD)
    admin.get_by_role("link", name="People").click()
    admin.get_by_label("E-mail").fill("helpdesk@example.com")
    admin.get_by_label("Role", exact=True).select_option("support")
    admin.get_by_role("button", name="Make invitation link").click()
    link = admin.locator("#invite-link").inner_text()
    admin.screenshot(path=f"{SCREENSHOT_DIR}/dashboard-people.png", full_page=True)

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
    support.screenshot(path=f"{SCREENSHOT_DIR}/dashboard-forbidden.png", full_page=True)

    admin.goto(f"{base}/dashboard/audit")
    log = admin.locator("table")
    expect(log).to_contain_text("invitation_accepted")
    expect(log).to_contain_text("invite")

    # Disabled by the admin: signed out at the next page.
    admin.goto(f"{base}/dashboard/people")
    admin.locator("tr", has_text="helpdesk@example.com").get_by_role(
        "button", name="Disable").click()
    support.goto(f"{base}/dashboard/")
    expect(support.locator("h1")).to_have_text("Operator sign in")


def test_get_locked_out(browser: Any, served: Any) -> None:  # noqa: F811
    _app, base = served
    page = new_page(browser)
    for _ in range(2):
        sign_in(page, base, ADMIN, "not the password")
        expect(page.locator("[role=alert]")).to_contain_text("Wrong e-mail or password")
    sign_in(page, base, ADMIN, "not the password")
    expect(page.locator("[role=alert]")).to_contain_text("locked for 15 more minute")
    sign_in(page, base, ADMIN, PASSWORD)  # the right password waits out the lockout too
    expect(page.locator("[role=alert]")).to_contain_text("locked for")
    page.screenshot(path=f"{SCREENSHOT_DIR}/dashboard-locked.png", full_page=True)
