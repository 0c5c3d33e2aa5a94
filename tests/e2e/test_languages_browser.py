"""The language of the driver's pages in a real headless Chromium on a phone (issue 11): the
browser's language picks the page's, the switch changes it and the choice is kept.

The pages come from the app in this process (Playwright hands each request to Flask's test
client, cookies included), so no server is started.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from charge_factory import seed_chargers
from test_driver_browser import CHROMIUM, browser  # noqa: F401 (the browser fixture)

sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is needed")
expect = sync_api.expect

SITE = "http://scancharge.test"
EVSE = "SE*SIM*E00001"
PHONE = {"width": 360, "height": 740}

pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} is missing")


@pytest.fixture
def phone(app: Any, browser: Any) -> Iterator[Callable[[str], Any]]:  # noqa: F811
    """phone(locale): a page in a phone whose browser is set to `locale`."""
    seed_chargers()
    client = app.test_client(use_cookies=False)
    contexts: list[Any] = []

    def serve(route: Any) -> None:
        request = route.request
        answer = client.open(request.url.removeprefix(SITE), method=request.method,
                             headers=request.all_headers(), data=request.post_data_buffer)
        route.fulfill(status=answer.status_code, body=answer.get_data(),
                      headers=dict(answer.headers))

    def open_phone(locale: str) -> Any:
        context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True,
                                      locale=locale)
        context.route(re.compile(r"^(?!http://scancharge\.test/).*"), lambda r: r.abort())
        context.route(f"{SITE}/**", serve)
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(10_000)
        return page

    yield open_phone
    for context in contexts:
        context.close()


@pytest.mark.parametrize(("locale", "lang", "heading"), [
    ("de-DE", "de", "Anschluss und Preis"), ("nb-NO", "nb", "Kontakt og pris"),
    ("da-DK", "da", "Stik og pris"), ("fi-FI", "fi", "Liitin ja hinta"),
    ("fr-FR", "en", "Connector and price"), ("sv-SE", "sv", "Uttag och pris"),
])
def test_the_phone_s_language_is_the_page_s(phone: Callable[[str], Any], locale: str,
                                             lang: str, heading: str) -> None:
    page = phone(locale)
    page.goto(f"{SITE}/c/{EVSE}")
    expect(page.locator("html")).to_have_attribute("lang", lang)
    expect(page.get_by_role("heading", name=heading)).to_be_visible()
    switch = page.locator("nav.lang-switch")
    expect(switch.get_by_role("link")).to_have_count(6)
    expect(switch.locator("[aria-current=true]")).to_have_attribute("lang", lang)


def test_the_switch_changes_the_language_and_it_stays(phone: Callable[[str], Any]) -> None:
    page = phone("de-DE")
    page.goto(f"{SITE}/c/{EVSE}")
    switch = page.get_by_role("navigation", name="Sprache")
    expect(switch).to_be_visible()
    switch.get_by_role("link", name="Suomi").tap()
    expect(page.locator("html")).to_have_attribute("lang", "fi")
    expect(page.get_by_role("navigation", name="Kieli")).to_be_visible()
    expect(page.get_by_role("heading", name="Liitin ja hinta")).to_be_visible()
    # Scanning the sticker again (no ?lang=) keeps Finnish though the phone is German ...
    page.goto(f"{SITE}/c/{EVSE}")
    expect(page.locator("html")).to_have_attribute("lang", "fi")
    # ... and so does a charger that is not there, which has the switch too.
    page.goto(f"{SITE}/c/NOPE*NOPE*1")
    expect(page.locator("html")).to_have_attribute("lang", "fi")
    # (an unknown charger is answered with the find-a-charger form and its message)
    expect(page.get_by_text("Emme löydä tätä laturia")).to_be_visible()
    page.get_by_role("navigation", name="Kieli").get_by_role("link", name="Norsk bokmål").tap()
    expect(page.get_by_text("Vi finner ikke denne laderen")).to_be_visible()
    # Every link of the switch is a tap target a thumb can hit, on a phone-wide screen.
    for box in (link.bounding_box() for link in
                page.locator("nav.lang-switch a").all()):
        assert box and box["height"] >= 44 and box["x"] >= 0 and box["x"] + box["width"] <= 360
