"""axe-core finds no violations on any driver page, in any state a driver meets it: the
find form, the charger page (available, in use and out of order with the other chargers
listed, a cap typed and a cap refused), the unknown charger, the charge while charging,
stopping, ended, captured and after a failed start, the receipt, the terms, the privacy
notice and the error page. In Swedish and English (the pages without a charge in German too),
on a phone in a real headless Chromium against the live stack.

axe-core comes from npm (package.json; `npm ci`): the module is skipped, saying so, without
it. The context bypasses the pages' Content-Security-Policy only so that axe's own script
can be injected; the pages are otherwise as served.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import ROOT, LiveStack, running_stack
from test_driver_browser import (  # noqa: F401 (the browser fixture)
    CHROMIUM,
    PHONE,
    SLOW,
    browser,
    charge_id_of,
    charger_url,
    pay_with,
)

sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is needed")
expect = sync_api.expect

AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"

pytestmark = [
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} is missing"),
    pytest.mark.skipif(not AXE.exists(), reason=f"axe-core is not installed ({AXE} is "
                       "missing): run `npm ci` in the project directory"),
]

# Every rule axe runs by default (WCAG 2.0-2.2 A and AA and its best practices).
RUN_AXE = """async () => {
  const result = await axe.run(document, {resultTypes: ["violations"]});
  return result.violations.map((v) => ({
    id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.map((n) => ({target: n.target.join(" "), summary: n.failureSummary})),
  }));
}"""


def axe_violations(page: Any) -> list[dict[str, Any]]:
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.add_script_tag(path=str(AXE))
    return page.evaluate(RUN_AXE)


def describe(found: dict[str, list[dict[str, Any]]]) -> str:
    lines = []
    for where, violations in found.items():
        for v in violations:
            lines.append(f"{where}: {v['id']} ({v['impact']}): {v['help']}")
            lines += [f"    {n['target']}: {n['summary']}" for n in v["nodes"]]
    return "\n".join(lines)


class Audit:
    """Collects axe's findings per page and state, so one run reports all of them."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.found: dict[str, list[dict[str, Any]]] = {}
        self.checked: list[str] = []

    def check(self, where: str, page: Any = None) -> None:
        self.checked.append(where)
        violations = axe_violations(page or self.page)
        if violations:
            self.found[where] = violations

    def assert_clean(self) -> None:
        assert not self.found, "axe-core found violations:\n" + describe(self.found)


def new_page(browser: Any, locale: str) -> Any:  # noqa: F811
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True,
                                  locale=locale, device_scale_factor=2, bypass_csp=True)
    context.route(re.compile(r"^https?://(?!127\.0\.0\.1[:/]).*"), lambda route: route.abort())
    page = context.new_page()
    page.set_default_timeout(10_000)
    return page


@pytest.fixture
def stack(make_app: Any) -> Iterator[LiveStack]:
    # No CDR wait: a charge left ENDED (the simulator sends no CDR) is settled by one sweep.
    with running_stack(make_app, CDR_WAIT_SECONDS=0, SWEEP_GRACE_SECONDS=0) as live:
        yield live


def set_evse_status(stack: LiveStack, status: str) -> None:
    """The CPO pushes a status for the stack's EVSE, as the CPO simulator would."""
    from extensions import db
    from ocpi import store
    from ocpi.models import OcpiEvse, OcpiLocation
    from ocpi.transport import format_datetime, now_utc

    with stack.app.app_context():
        evse = db.session.scalar(db.select(OcpiEvse).where(
            OcpiEvse.evse_id == OcpiEvse.normalise_evse_id(stack.evse_id)))
        location = db.session.get(OcpiLocation, evse.location_pk)
        assert location is not None
        store.patch_location(location, {"status": status,
                                        "last_updated": format_datetime(now_utc())},
                             evse.evse_uid, None)
        db.session.commit()
        db.session.remove()


def wait_status(page: Any, status: str) -> None:
    page.wait_for_function(
        "(s) => document.getElementById('status-dot').classList.contains('dot-' + s)",
        arg=status.lower(), timeout=SLOW)


@pytest.mark.parametrize("lang", ["sv", "en", "de"])
def test_pages_without_a_charge(stack: LiveStack, browser: Any, lang: str) -> None:  # noqa: F811
    page = new_page(browser, lang)
    audit = Audit(page)
    try:
        base = stack.base_url
        page.goto(f"{base}/?lang={lang}")
        expect(page.locator("html")).to_have_attribute("lang", lang)
        audit.check("/ (find form)")
        page.goto(f"{base}/c/SE*NOPE*E404?lang={lang}")
        audit.check("unknown charger")
        page.goto(f"{base}/terms?lang={lang}")
        audit.check("/terms")
        page.goto(f"{base}/privacy?lang={lang}")
        audit.check("/privacy")
        page.goto(f"{base}/charge/no-such-charge?lang={lang}")
        audit.check("error page (unknown charge)")
        page.goto(f"{base}/no/such/page?lang={lang}")
        audit.check("error page (404)")

        set_evse_status(stack, "OUTOFORDER")
        page.goto(charger_url(stack, lang))
        expect(page.locator("#pay-form")).to_have_count(0)
        audit.check("charger page, out of order")
        set_evse_status(stack, "AVAILABLE")
    finally:
        page.context.close()
    audit.assert_clean()


@pytest.mark.parametrize("lang", ["sv", "en"])
def test_the_charger_and_charge_pages_in_every_state(
    stack: LiveStack, browser: Any, lang: str  # noqa: F811
) -> None:
    from charging import sweeper
    from extensions import db

    page = new_page(browser, lang)
    other_phone = new_page(browser, lang)
    audit = Audit(page)
    try:
        page.goto(charger_url(stack, lang))
        expect(page.locator("#pay-form")).to_have_count(1)
        audit.check("charger page, available")
        cap = page.locator("#max-amount")
        cap.fill("8")
        expect(cap).to_have_attribute("aria-invalid", "true")
        page.locator("#pay-button").click()
        expect(page.locator("#pay-error")).not_to_be_empty()
        audit.check("charger page, a refused cap")
        cap.fill("50")
        expect(cap).not_to_have_attribute("aria-invalid", "true")
        audit.check("charger page, a cap typed")

        # A charge slow enough not to reach its cap while being looked at, that stops slowly
        # (the stop's result comes late) and gets no CDR, to be seen STOPPING and ENDED; one
        # sweep then settles it.
        stack.simulator.set_behaviour(cdr="never", time_factor=20.0)
        pay_with(page, "4242 4242 4242 4242")
        page.wait_for_url(re.compile(r"/charge/"), timeout=SLOW)
        wait_status(page, "CHARGING")
        audit.check("charge page, CHARGING")

        other_phone.goto(charger_url(stack, lang))
        expect(other_phone.locator("#pay-form")).to_have_count(0)
        audit.check("charger page, in use (another phone)", other_phone)

        page.locator("#stop-button").click()
        expect(page.locator("#stop-dialog")).to_be_visible()
        audit.check("charge page, the stop dialog")
        stack.simulator.set_behaviour(result_delay=6.0)
        page.locator("#stop-dialog button[value=stop]").click()
        wait_status(page, "STOPPING")
        audit.check("charge page, STOPPING")
        stack.simulator.set_behaviour(result_delay=0.1)
        wait_status(page, "ENDED")
        audit.check("charge page, ENDED")

        with stack.app.app_context():
            sweeper.sweep()
            db.session.remove()
        stack.wait_status(charge_id_of(page), "CAPTURED", timeout=SLOW / 1000)
        wait_status(page, "CAPTURED")
        audit.check("charge page, CAPTURED")
        page.locator("#receipt-link").click()
        page.wait_for_url(re.compile(r"/r/"))
        audit.check("receipt page")

        stack.simulator.set_behaviour(start="reject", cdr="send")
        # The other phone is still on the charger page, which renders itself again once the
        # charger is free (driver/charger.js watchCharger): waited for, not raced by a goto
        # of our own (which that reload would abort).
        expect(other_phone.locator("#pay-button")).to_be_visible(timeout=SLOW)
        other_phone.locator("#pay-button").click()
        other_phone.wait_for_url(re.compile(r"/charge/"), timeout=SLOW)
        expect(other_phone.locator("#failure")).to_be_visible(timeout=SLOW)
        wait_status(other_phone, "RELEASED")
        audit.check("charge page, a failed start", other_phone)
    finally:
        page.context.close()
        other_phone.context.close()
    audit.assert_clean()
