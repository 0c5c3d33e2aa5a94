"""Every dashboard page, found in app.url_map rather than listed by hand, passes axe-core
without a serious or critical violation, at desktop width and on a phone, where nothing may
be wider than the screen (document.documentElement.scrollWidth <= window.innerWidth).

Signed in as an admin over seeded data: a captured charge with its receipt, a CPO party, its
Locations and EVSEs (the simulator's demo set), an open invitation and an operator with
two-factor sign-in (to reach the code step). A GET route with arguments needs an entry in
ARGUMENTS saying which seeded thing it shows: a new one without it fails here, so a new page
is checked from the day it is added. A route that answers something other than HTML (a PDF,
a QR image, a CSV) is fetched and must answer, but axe and widths are for pages.

axe-core comes from npm (package.json; `npm ci`): the module is skipped, saying so, without
it. The contexts bypass the pages' Content-Security-Policy only so that axe's own script can
be injected; the pages are otherwise as served.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from typing import Any

import pytest
from operator_browser import (
    DESKTOP,
    PASSWORD,
    PHONE,
    operator_site,  # noqa: F401 (the fixture)
    screenshot,
    sign_in,
)
from test_accessibility import AXE, axe_violations, describe
from test_driver_browser import CHROMIUM, browser  # noqa: F401 (the browser fixture)

sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is needed")
expect = sync_api.expect

pytestmark = [
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} is missing"),
    pytest.mark.skipif(not AXE.exists(), reason=f"axe-core is not installed ({AXE} is "
                       "missing): run `npm ci` in the project directory"),
]

# The blueprints that make up the dashboard (dashboard/ registers its views on these).
BLUEPRINTS = ("dashboard", "dashboard_stickers")
SERIOUS = {"serious", "critical"}
INVITATION_TOKEN = "an-open-invitation-for-the-accessibility-test"
CODE_OPERATOR, TOTP_SECRET = "two-step@example.com", "JBSWY3DPEHPK3PXP"
SUPPORT = "support@example.com"

Seeded = dict[str, Any]
# endpoint -> the URL arguments of the seeded thing it shows. Add your route here.
ARGUMENTS: dict[str, Callable[[Seeded], dict[str, Any]]] = {
    "dashboard.charge_detail": lambda s: {"public_id": s["charge_public_id"]},
    "dashboard.cpo_messages": lambda s: {"pk": s["party_pk"]},
    "dashboard.qr": lambda s: {"evse_id": s["evse_id"], "fmt": "svg"},
    "dashboard.accept_invitation": lambda s: {"token": INVITATION_TOKEN},
    "dashboard_stickers.sheet": lambda s: {"pk": s["location_pk"]},
    "dashboard.receipt_document": lambda s: {"pk": s["receipt_pk"]},
    "dashboard.receipt_document_pdf": lambda s: {"pk": s["receipt_pk"]},
    "dashboard.disconnect_cpo": lambda s: {"pk": s["party_pk"]},
}
# Routes that send a file as an attachment (a CSV, a SIE file): fetched, not navigated to.
DOWNLOADS = frozenset({
    "dashboard.export_charges", "dashboard.export_receipts", "dashboard.export_vat",
    "dashboard.export_sie", "dashboard.reconciliation_csv",
})
# Pages an admin's session cannot show: opened in a session of their own, reached as a
# person reaches them (the code step by a password sign-in of an operator with two-factor).
SIGNED_OUT: dict[str, Callable[[Any, str], None]] = {
    "dashboard.login": lambda page, base: page.goto(f"{base}/dashboard/login"),
    "dashboard.login_code": lambda page, base: sign_in(page, base, CODE_OPERATOR, PASSWORD),
    "dashboard.accept_invitation": lambda page, base: page.goto(
        f"{base}/dashboard/invite/{INVITATION_TOKEN}"),
}


# The signed-out pages' pictures in docs/operators.md.
SIGNED_OUT_SCREENSHOTS = {"dashboard.login": "sign-in", "dashboard.login_code": "sign-in-code",
                          "dashboard.accept_invitation": "invitation"}


def seed(app: Any) -> Seeded:
    """What the pages show: written as the app writes it (charge_factory's real settle)."""
    from datetime import timedelta

    from charge_factory import captured_charge, seed_chargers
    from sqlalchemy import select

    from dashboard.models import Operator, set_operator
    from dashboard.people import token_hash
    from extensions import db
    from ocpi.models import OcpiEvse, OcpiLocation, Party
    from ocpi.transport import now_utc
    from payments.models import Receipt

    with app.app_context():
        seed_chargers()
        charge = captured_charge()
        party = db.session.scalar(select(Party).where(Party.party_id == "SIM"))
        evse = db.session.scalars(select(OcpiEvse).order_by(OcpiEvse.pk)).first()
        assert party is not None and evse is not None
        location = db.session.get(OcpiLocation, evse.location_pk)
        assert location is not None
        receipt = db.session.scalars(select(Receipt).order_by(Receipt.pk)).first()
        assert receipt is not None, "settle() made no receipt"
        db.session.add(Operator(email="invited@example.com", password_hash="", role="support",
                                invite_token_hash=token_hash(INVITATION_TOKEN),
                                invite_expires_at=now_utc() + timedelta(hours=1)))
        set_operator(SUPPORT, PASSWORD, role="support")
        two_step = set_operator(CODE_OPERATOR, PASSWORD, role="support")
        two_step.totp_secret = TOTP_SECRET
        db.session.commit()
        seeded = {
            "charge_public_id": charge.public_id, "charge_pk": charge.pk,
            "party_pk": party.pk, "location_pk": location.pk,
            "location_id": location.location_id, "evse_id": evse.evse_id,
            "receipt_pk": receipt.pk, "receipt_number": receipt.number,
            "receipt_series": receipt.series, "receipt_token": receipt.public_token,
        }
        db.session.remove()
    return seeded


def dashboard_pages(app: Any, seeded: Seeded) -> dict[str, str]:
    """endpoint -> path of every GET route of the dashboard's blueprints."""
    pages: dict[str, str] = {}
    missing = []
    with app.test_request_context():
        from flask import url_for

        for rule in app.url_map.iter_rules():
            if rule.endpoint.split(".")[0] not in BLUEPRINTS or "GET" not in (rule.methods or ()):
                continue
            if rule.arguments and rule.endpoint not in ARGUMENTS:
                missing.append(f"{rule.endpoint} ({rule.rule})")
                continue
            arguments = ARGUMENTS[rule.endpoint](seeded) if rule.arguments else {}
            pages[rule.endpoint] = url_for(rule.endpoint, **arguments)
    assert not missing, ("dashboard routes with arguments but no entry in ARGUMENTS (say "
                         "which seeded thing each shows): " + ", ".join(missing))
    return pages


def new_page(browser: Any, viewport: dict[str, int]) -> Any:  # noqa: F811
    phone = viewport == PHONE
    context = browser.new_context(viewport=viewport, locale="en-GB", bypass_csp=True,
                                  is_mobile=phone, has_touch=phone)
    context.route(re.compile(r"^https?://(?!127\.0\.0\.1[:/]).*"), lambda route: route.abort())
    page = context.new_page()
    page.set_default_timeout(10_000)
    return page


WIDTHS = """() => ({scroll: document.documentElement.scrollWidth, inner: window.innerWidth,
  widest: [...document.querySelectorAll('body *')]
    .filter((e) => e.getBoundingClientRect().right > window.innerWidth + 1)
    .slice(0, 5).map((e) => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '')
      + (typeof e.className === 'string' && e.className ? '.' + e.className.split(' ')[0]
         : ''))})"""


class Findings:
    def __init__(self) -> None:
        self.axe: dict[str, list[dict[str, Any]]] = {}
        self.overflow: list[str] = []
        self.broken: list[str] = []
        self.checked: list[str] = []

    def check(self, page: Any, where: str, status: int | None, phone: bool) -> None:
        self.checked.append(where)
        if status is None or status >= 400:
            self.broken.append(f"{where}: HTTP {status}")
            return
        content_type = page.evaluate("() => document.contentType")
        if content_type != "text/html":
            return  # a PDF, an image: fetched and answered, nothing for axe to read
        serious = [v for v in axe_violations(page) if v["impact"] in SERIOUS]
        if serious:
            self.axe[where] = serious
        if phone:
            widths = page.evaluate(WIDTHS)
            if widths["scroll"] > widths["inner"]:
                self.overflow.append(f"{where}: {widths['scroll']} px wide on a "
                                     f"{widths['inner']} px screen ({widths['widest']})")

    def assert_clean(self) -> None:
        problems = []
        if self.broken:
            problems.append("pages that did not answer:\n  " + "\n  ".join(self.broken))
        if self.axe:
            problems.append("axe-core found serious violations:\n" + describe(self.axe))
        if self.overflow:
            problems.append("wider than the phone:\n  " + "\n  ".join(self.overflow))
        assert not problems, "\n".join(problems)


def visit(page: Any, path: str) -> int | None:
    response = page.goto(path)
    page.wait_for_load_state()
    return response.status if response is not None else None


# Pages that are no GET route of their own: what a POST or a refusal answers.
OTHER_STATES = ("two-factor enrolment", "not allowed (support on People)", "dashboard 404")


def other_states(browser: Any, admin: Any, base: str, viewport: dict[str, int],  # noqa: F811
                 found: Findings) -> None:
    phone, width = viewport == PHONE, "phone" if viewport == PHONE else "desktop"
    admin.goto(f"{base}/dashboard/account")
    admin.get_by_role("button", name="Set up two-factor sign-in").click()
    expect(admin.locator("#totp-secret")).to_be_visible()
    found.check(admin, f"{OTHER_STATES[0]} ({width})", 200, phone)
    support = new_page(browser, viewport)
    try:
        sign_in(support, base, SUPPORT, PASSWORD)
        status = visit(support, f"{base}/dashboard/people")
        expect(support.locator("h1")).to_have_text("Not allowed for your role")
        found.check(support, f"{OTHER_STATES[1]} ({width})", 200 if status == 403 else status,
                    phone)
    finally:
        support.context.close()
    status = visit(admin, f"{base}/dashboard/no/such/page")
    found.check(admin, f"{OTHER_STATES[2]} ({width})", 200 if status == 404 else status, phone)


@pytest.mark.parametrize("width", ["desktop", "phone"])
def test_every_dashboard_page_passes_axe_and_fits(
    browser: Any, operator_site: Any, width: str  # noqa: F811
) -> None:
    app, base = operator_site
    viewport = PHONE if width == "phone" else DESKTOP
    seeded = seed(app)
    pages = dashboard_pages(app, seeded)
    assert {"dashboard.charges", "dashboard.people", "dashboard.charge_detail"} <= set(pages)
    found = Findings()
    admin = new_page(browser, viewport)
    try:
        sign_in(admin, base)
        expect(admin.locator("header.dash-header")).to_contain_text("admin@example.com")
        for endpoint, path in sorted(pages.items()):
            if endpoint in SIGNED_OUT:
                continue
            if endpoint in DOWNLOADS:
                # A file sent as an attachment is no page to navigate to: fetched with the
                # page's own session, it must answer.
                answer = admin.request.get(f"{base}{path}")
                found.checked.append(f"{endpoint} {path} ({width})")
                if not answer.ok or "attachment" not in answer.headers.get(
                        "content-disposition", ""):
                    found.broken.append(f"{endpoint}: HTTP {answer.status}")
                continue
            status = visit(admin, f"{base}{path}")
            assert "/dashboard/login" not in admin.url, f"{endpoint} signed the admin out"
            found.check(admin, f"{endpoint} {path} ({width})", status, viewport == PHONE)
        for endpoint, reach in SIGNED_OUT.items():
            assert endpoint in pages, f"{endpoint} is no longer a GET route of the dashboard"
            alone = new_page(browser, viewport)
            try:
                reach(alone, base)
                alone.wait_for_load_state()
                assert alone.url.split("?")[0].endswith(pages[endpoint]), (endpoint, alone.url)
                found.check(alone, f"{endpoint} ({width})", 200, viewport == PHONE)
                if viewport == DESKTOP and endpoint in SIGNED_OUT_SCREENSHOTS:
                    screenshot(alone, SIGNED_OUT_SCREENSHOTS[endpoint])
            finally:
                alone.context.close()
        other_states(browser, admin, base, viewport, found)
        if viewport == PHONE:
            admin.goto(f"{base}/dashboard/")
            screenshot(admin, "phone-charges")
    finally:
        admin.context.close()
    assert len(found.checked) == len(pages) + len(OTHER_STATES)
    found.assert_clean()
