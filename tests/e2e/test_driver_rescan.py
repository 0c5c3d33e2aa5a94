"""The phone remembers, in a real headless Chromium against the live stack: rescanning the
sticker while charging leads back to the charge (not to "this charger is in use"), the site
and the other chargers show it, the driver stops it from there, and after it the rescanned
charger leads to the receipt. In Swedish and English, on a phone-sized viewport."""

from __future__ import annotations

import os
import re
from typing import Any

import pytest
from conftest import LiveStack
from test_driver_browser import (  # noqa: F401 (fixtures)
    CHROMIUM,
    SCREENSHOT_DIR,
    SLOW,
    browser,
    charge_id_of,
    charger_url,
    page,
    pay_with,
)

sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is needed")
expect = sync_api.expect

pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} is missing")

WORDS = {
    "sv": {"charging": "Laddar", "stop": "Stoppa laddningen", "yes": "Ja, stoppa",
           "receipt": "Visa kvitto", "yours": "Din laddning vid {}",
           "view": "Visa eller stoppa din laddning", "done": "Din laddning vid {} är klar.",
           "in_use": "Ingenting har debiterats."},
    "en": {"charging": "Charging", "stop": "Stop charging", "yes": "Yes, stop",
           "receipt": "Show receipt", "yours": "Your charge at {}",
           "view": "View or stop your charge", "done": "Your charge at {} is done.",
           "in_use": "Nothing has been charged."},
}


@pytest.mark.parametrize("lang", ["sv", "en"])
def test_rescanning_while_charging_leads_back_to_the_charge_and_stops_it(
    live_stack: LiveStack, page: Any, browser: Any, lang: str  # noqa: F811
) -> None:
    stack, w = live_stack, WORDS[lang]
    page.goto(charger_url(stack, lang))
    pay_with(page, "4242 4242 4242 4242")
    page.wait_for_url(re.compile(r"/charge/"), timeout=SLOW)
    charge_id = charge_id_of(page)
    expect(page.locator("#status-text")).to_have_text(w["charging"], timeout=SLOW)

    # Back, to the charger page the payment was made on: the charge, not the pay form.
    page.go_back()
    page.wait_for_url(re.compile(f"/charge/{charge_id}"))
    expect(page.get_by_role("button", name=w["stop"])).to_be_visible()

    # The driver walks away, the page is lost; back at the car they scan the sticker again.
    page.goto("about:blank")
    page.goto(charger_url(stack))
    assert charge_id_of(page) == charge_id
    expect(page.locator("#status-text")).to_have_text(w["charging"])
    expect(page.get_by_role("button", name=w["stop"])).to_be_visible()
    expect(page.get_by_text(w["in_use"])).to_have_count(0)
    page.screenshot(path=f"{SCREENSHOT_DIR}/driver_rescan_{lang}.png", full_page=True)

    # Someone else's phone scanning the same sticker is not led to this charge.
    other_phone = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    try:
        stranger = other_phone.new_page()
        stranger.goto(charger_url(stack, lang))
        assert "/c/" in stranger.url
        expect(stranger.get_by_text(w["yours"].format(stack.evse_id))).to_have_count(0)
    finally:
        other_phone.close()

    # The site and another charger at the site show the charge, one tap away.
    page.goto(f"{stack.base_url}/")
    banner = page.locator("section.mine")
    expect(banner).to_contain_text(w["yours"].format(stack.evse_id))
    page.screenshot(path=f"{SCREENSHOT_DIR}/driver_home_banner_{lang}.png", full_page=True)
    neighbour = stack.evse_id[:-1] + "2"
    page.goto(f"{stack.base_url}/c/{neighbour}")
    expect(page.locator("#pay-form")).to_be_visible()  # a second charge stays possible
    page.locator("section.mine").get_by_role("link", name=w["view"]).click()
    page.wait_for_url(re.compile(f"/charge/{charge_id}"))

    page.get_by_role("button", name=w["stop"]).click()
    page.locator("#stop-dialog").get_by_role("button", name=w["yes"]).click()
    expect(page.get_by_role("link", name=w["receipt"])).to_be_visible(timeout=SLOW)

    # Finished: the rescanned charger offers the receipt, and a new charge.
    page.goto(charger_url(stack))
    assert "/c/" in page.url
    done = page.locator("section.mine")
    expect(done).to_contain_text(w["done"].format(stack.evse_id))
    expect(page.get_by_text(w["in_use"])).to_have_count(0)
    page.screenshot(path=f"{SCREENSHOT_DIR}/driver_rescan_done_{lang}.png", full_page=True)
    done.get_by_role("link", name=w["receipt"]).click()
    page.wait_for_url(re.compile(r"/r/"))
