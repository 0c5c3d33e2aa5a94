"""The driver's pages in a real headless Chromium, against the whole live stack: ScanCharge and
the CPO simulator over HTTP, the demo gateway, the queue workers.

A phone-sized viewport (390x844); screenshots of the charger and charge pages go to /tmp for
a person to look at. Skipped, saying why, when Chromium or Playwright is not available.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import ROOT, LiveStack

from extensions import db
from static_assets import plain_name

sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is needed")
expect = sync_api.expect

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]
PHONE = {"width": 390, "height": 844}
SCREENSHOT_DIR = os.environ.get("DRIVER_SCREENSHOT_DIR", "/tmp")
SLOW = 30_000  # ms: charging starts, stops and is captured through the simulator

pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} is missing")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    try:
        playwright = sync_api.sync_playwright().start()
    except Exception as exc:
        pytest.skip(f"Playwright could not start: {exc}")
    try:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    except Exception as exc:
        playwright.stop()
        pytest.skip(f"Chromium at {CHROMIUM} could not be launched: {exc}")
    yield chromium
    chromium.close()
    playwright.stop()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True,
                                  locale="sv-SE", device_scale_factor=2)
    # The page must work offline but for our own server: nothing else may be fetched.
    context.route(re.compile(r"^https?://(?!127\.0\.0\.1[:/]).*"), lambda route: route.abort())
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.set_default_timeout(10_000)
    yield page
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def charger_url(stack: LiveStack, lang: str | None = None) -> str:
    return f"{stack.base_url}/c/{stack.evse_id}" + (f"?lang={lang}" if lang else "")


def api_json(stack: LiveStack, path: str, lang: str) -> dict[str, Any]:
    response = stack.api("GET", f"{path}?lang={lang}")
    assert response.status_code == 200, response.text
    return response.json()


def charge_id_of(page: Any) -> str:
    match = re.search(r"/charge/([^/?#]+)", page.url)
    assert match, page.url
    return match.group(1)


def shown_kwh(page: Any) -> float:
    text = page.locator("#energy").inner_text()
    return float(re.sub(r"\s", "", text).replace(",", "."))


def pay_with(page: Any, card: str) -> None:
    page.get_by_role("button", name=re.compile(re.escape(card))).click()
    expect(page.locator("#card-number")).to_have_value(card)
    page.locator("#pay-button").click()


def count_charges(stack: LiveStack) -> int:
    from charging.models import Charge

    with stack.app.app_context():
        try:
            return db.session.scalar(db.select(db.func.count()).select_from(Charge))
        finally:
            db.session.remove()


def test_happy_path_in_swedish_pay_charge_stop_and_receipt(
    live_stack: LiveStack, page: Any
) -> None:
    stack = live_stack
    info = api_json(stack, f"/api/v1/chargers/{stack.evse_id}", "sv")
    connector = info["connectors"][0]
    energy_price = next(c["price_incl_vat"]["formatted"]
                        for c in connector["tariff"]["components"] if c["type"] == "ENERGY")

    page.goto(charger_url(stack))  # no ?lang: Swedish is the default
    expect(page.locator("html")).to_have_attribute("lang", "sv")
    expect(page.locator(".demo-banner")).to_contain_text("DEMO")
    expect(page.locator(".conn-price").first).to_contain_text(f"{energy_price}/kWh")
    expect(page.locator(".conn-price").first).to_contain_text("inkl. moms")
    expect(page.locator("#hold-sentence")).to_contain_text(connector["hold"]["formatted"])
    expect(page.locator("#hold-note")).to_contain_text("Vi reserverar")
    expect(page.locator("#card-number")).to_have_value("4242 4242 4242 4242")
    expect(page.locator("script[src*='stripe']")).to_have_count(0)
    expect(page.get_by_label("E-post för kvitto (valfritt)")).to_be_visible()
    page.screenshot(path=f"{SCREENSHOT_DIR}/driver_charger.png", full_page=True)

    page.get_by_label("E-post för kvitto (valfritt)").fill("driver@example.com")
    page.get_by_role("button", name="Betala och starta laddningen").click()
    page.wait_for_url(re.compile(r"/charge/"), timeout=SLOW)
    charge_id = charge_id_of(page)

    status = page.locator("#status-text")
    expect(status).to_have_attribute("aria-live", "polite")
    expect(status).to_have_text("Laddar", timeout=SLOW)
    page.wait_for_function(
        "() => parseFloat(document.getElementById('energy').textContent"
        ".replace(/\\s/g, '').replace(',', '.')) > 0", timeout=SLOW)
    first = shown_kwh(page)
    page.wait_for_function(
        "(start) => parseFloat(document.getElementById('energy').textContent"
        ".replace(/\\s/g, '').replace(',', '.')) > start", arg=first, timeout=SLOW)
    expect(page.locator("#cost")).to_contain_text("kr")
    expect(page.locator("#hold")).to_have_text(connector["hold"]["formatted"])
    page.screenshot(path=f"{SCREENSHOT_DIR}/driver_charge.png", full_page=True)

    page.get_by_role("button", name="Stoppa laddningen").click()
    dialog = page.locator("#stop-dialog")
    expect(dialog).to_be_visible()
    dialog.get_by_role("button", name="Ja, stoppa").click()

    receipt_link = page.get_by_role("link", name="Visa kvitto")
    expect(receipt_link).to_be_visible(timeout=SLOW)
    expect(status).to_have_text("Klart – kvittot är klart")
    charge = api_json(stack, f"/api/v1/charges/{charge_id}", "sv")
    assert charge["status"] == "CAPTURED"
    captured = charge["captured"]["formatted"]
    expect(page.locator("#captured")).to_have_text(captured)
    expect(page.locator("#stop-button")).to_be_hidden()
    page.screenshot(path=f"{SCREENSHOT_DIR}/driver_charge_done.png", full_page=True)

    receipt_link.click()
    page.wait_for_url(re.compile(r"/r/"))
    receipt = api_json(stack, f"/api/v1/charges/{charge_id}/receipt", "sv")
    expect(page.get_by_role("heading", name="Kvitto")).to_be_visible()
    expect(page.locator("#receipt-number")).to_have_text(receipt["number"])
    expect(page.locator("#receipt-total")).to_have_text(captured)
    assert receipt["total"]["formatted"] == captured
    expect(page.locator("#receipt-vat")).to_have_text(receipt["vat"]["formatted"])
    expect(page.locator("#receipt-net")).to_have_text(receipt["net"]["formatted"])
    expect(page.locator("table.totals")).to_contain_text(
        f"Moms {receipt['vat_rate_percent']} %")
    expect(page.locator(".receipt")).to_contain_text(receipt["seller"]["vat_number"])
    expect(page.locator(".receipt")).to_contain_text("Visa •••• 4242")
    # Start and end are shown in the location's time zone once the script ran, the UTC
    # value kept in the element's datetime.
    start = page.locator("time.local-time").nth(1)
    expect(start).to_have_attribute("datetime", receipt["details"]["start"])
    expect(start).not_to_contain_text("UTC")
    expect(page.locator("#tz-note")).to_contain_text(receipt["details"]["time_zone"])
    page.screenshot(path=f"{SCREENSHOT_DIR}/driver_receipt.png", full_page=True)


def test_declined_card_stays_on_the_charger_page_and_another_card_works(
    live_stack: LiveStack, page: Any
) -> None:
    stack = live_stack
    page.goto(charger_url(stack, "sv"))
    pay_with(page, "4000 0000 0000 0002")

    error = page.locator("#pay-error")
    expect(error).to_have_text("Kortet nekades. Prova ett annat kort.")
    expect(error).to_have_attribute("role", "alert")
    assert "/c/" in page.url
    expect(page.locator("#pay-button")).to_be_enabled()
    page.screenshot(path=f"{SCREENSHOT_DIR}/driver_declined.png", full_page=True)

    # The same charge and payment intent are confirmed again with another card.
    pay_with(page, "4242 4242 4242 4242")
    page.wait_for_url(re.compile(r"/charge/"), timeout=SLOW)
    expect(page.locator("#status-text")).to_have_text("Laddar", timeout=SLOW)
    assert count_charges(stack) == 1


def test_english_via_lang_parameter(live_stack: LiveStack, page: Any) -> None:
    stack = live_stack
    info = api_json(stack, f"/api/v1/chargers/{stack.evse_id}", "en")
    page.goto(charger_url(stack, "en"))
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.get_by_role("heading", name="Connector and price")).to_be_visible()
    expect(page.locator("#hold-note")).to_contain_text(
        f"We hold {info['connectors'][0]['hold']['formatted']} on your card")
    expect(page.locator(".conn-price").first).to_contain_text("SEK")
    expect(page.locator("#evse-status")).to_have_text(info["status_text"])
    expect(page.locator(".demo-banner")).to_contain_text("Test mode")

    # The card that asks for 3-D Secure: the demo's bank dialog, approved.
    pay_with(page, "4000 0025 0000 3155")
    dialog = page.get_by_role("dialog", name="Confirm the purchase")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text(info["connectors"][0]["hold"]["formatted"])
    dialog.get_by_role("button", name="Approve").click()
    page.wait_for_url(re.compile(r"/charge/"), timeout=SLOW)
    expect(page.locator("#status-text")).to_have_text("Charging", timeout=SLOW)
    expect(page.get_by_role("button", name="Stop charging")).to_be_visible()

    # The language sticks (cookie) and the switch goes back to Swedish.
    page.get_by_role("link", name="Svenska").click()
    expect(page.locator("#status-text")).to_have_text("Laddar")


def test_rejected_start_tells_the_driver_nothing_was_charged(
    live_stack: LiveStack, page: Any
) -> None:
    stack = live_stack
    stack.simulator.set_behaviour(start="reject")
    page.goto(charger_url(stack, "sv"))
    page.locator("#pay-button").click()
    page.wait_for_url(re.compile(r"/charge/"), timeout=SLOW)

    failure = page.locator("#failure")
    expect(failure).to_be_visible(timeout=SLOW)
    expect(failure).to_contain_text("Ingenting debiterades")
    expect(page.locator("#status-text")).to_have_text(
        "Reservationen på kortet är släppt – ingenting debiterades", timeout=SLOW)
    charge = api_json(stack, f"/api/v1/charges/{charge_id_of(page)}", "sv")
    assert charge["status"] == "RELEASED"
    assert charge["captured"] is None
    expect(failure).to_have_text(charge["failure"]["message"])
    expect(page.get_by_role("link", name="Tillbaka till laddaren")).to_be_visible()
    expect(page.locator("#stop-button")).to_be_hidden()


# --- Stripe mode: the page's wiring of Stripe.js, with a stand-in for Stripe.js -------------

STRIPE_JS_URL = "https://js.stripe.com/v3/"
SITE = "http://scancharge.test"
FAKE_STRIPE_JS = """
window.stripeCalls = [];
// Kept in sessionStorage too, to be read after the page has navigated away.
const record = (call) => {
  stripeCalls.push(call);
  sessionStorage.setItem("stripeCalls", JSON.stringify(stripeCalls));
};
window.stripeResults = [
  {error: {type: "card_error", message: "Kortet saknar täckning."}},
  {paymentIntent: {id: "pi_test_1", status: "requires_capture"}},
];
window.Stripe = function (key, options) {
  record({call: "Stripe", key: key, locale: options && options.locale});
  return {
    elements(options) {
      record({call: "elements", clientSecret: options.clientSecret || null, mode: options.mode,
              amount: options.amount, currency: options.currency,
              captureMethod: options.captureMethod,
              paymentMethodTypes: options.paymentMethodTypes});
      return {
        async submit() {
          record({call: "submit"});
          return {};
        },
        update(changes) { record({call: "update", amount: changes.amount}); },
        create(type) {
          const handlers = {};
          // The wallet sheet's "pay", as the test triggers it (Apple Pay / Google Pay).
          if (type === "expressCheckout") {
            window.walletPays = () => handlers.confirm({
              elementType: "expressCheckout", expressPaymentType: "apple_pay",
              paymentFailed: (payload) => record({call: "paymentFailed", reason: payload.reason}),
            });
          }
          return {
            mount(target) {
              const box = typeof target === "string" ? document.querySelector(target) : target;
              const field = document.createElement("div");
              field.className = "fake-" + type;
              field.textContent = "Stripe " + type;
              box.appendChild(field);
              record({call: "mount", type: type});
              if (handlers.ready) {
                setTimeout(() => handlers.ready({availablePaymentMethods: {applePay: true}}));
              }
            },
            on(event, handler) { handlers[event] = handler; },
            destroy() {},
          };
        },
      };
    },
    async confirmPayment(args) {
      record({call: "confirmPayment", redirect: args.redirect,
              clientSecret: args.clientSecret, withElements: Boolean(args.elements),
              returnUrl: args.confirmParams.return_url});
      return window.stripeResults.shift();
    },
  };
};
"""


def stripe_charger() -> dict[str, Any]:
    """A charger as driver.api.charger_info describes it, with the Stripe gateway."""
    def money(minor: int) -> dict[str, Any]:
        whole, cents = divmod(minor, 100)
        return {"amount_minor": minor, "currency": "SEK", "formatted": f"{whole},{cents:02d} kr"}

    return {
        "evse_id": "SE*SIM*E00001", "status": "AVAILABLE", "status_text": "Ledig",
        "available": True,
        "location": {"name": "Stockholm Sergels torg", "address": "Sergels torg 12",
                     "postal_code": "111 57", "city": "Stockholm",
                     "time_zone": "Europe/Stockholm", "operator": "CPO"},
        "connectors": [{
            "id": "1", "standard": "IEC_62196_T2", "format": "SOCKET",
            "power_type": "AC_3_PHASE", "max_power_kw": "22",
            "tariff": {"id": "AC", "currency": "SEK", "type": "AD_HOC_PAYMENT", "alt_text": None,
                       "components": [
                           {"type": "ENERGY", "price_incl_vat": money(450), "vat_percent": "25"},
                           {"type": "FLAT", "price_incl_vat": money(500), "vat_percent": "25"},
                       ]},
            "hold": money(30000),
            "minimum_cap": money(1100),
            "limit": {"hold": money(30000), "stop_at": money(28500), "stop_kwh": "62.22",
                      "min_cap": money(1100), "max_cap": money(30000),
                      "hold_sentence": "Vi reserverar 300,00 kr på ditt kort.",
                      "stop_sentence": "Laddningen stoppas av sig själv vid 285,00 kr.",
                      "cap": {"state": "none", "message": None}},
        }],
        "payment": {"kind": "stripe", "publishable_key": "pk_test_standin",
                    "capture_method": "manual", "payment_method_types": ["card"]},
    }


def test_stripe_mode_shows_the_elements_before_the_intent_and_retries_after_a_decline(
    app: Any, browser: Any
) -> None:
    from flask import render_template

    # A Swedish phone (with no Accept-Language the page would be in English, the fallback).
    with app.test_request_context("/c/SE*SIM*E00001", headers={"Accept-Language": "sv-SE"}):
        html = render_template("driver/charger.html", lang="sv", charger=stripe_charger(),
                               evse_id="SE*SIM*E00001", stripe_js_url=STRIPE_JS_URL)
    assert html.count(STRIPE_JS_URL) == 1
    created: list[Any] = []
    charge = _created_charge("ch_test", "pi_test_1", "pi_test_1_secret_abc", "300,00 kr")

    context, page, errors = _stripe_mode_phone(browser, html, charge, created)
    try:
        page.goto(f"{SITE}/c/SE*SIM*E00001")
        # Deferred intent: the Payment Element and the Express Checkout Element (the
        # wallets) are there with the page, before any charge or PaymentIntent exists.
        expect(page.locator(".fake-payment")).to_be_visible()
        expect(page.locator(".fake-expressCheckout")).to_be_visible()
        expect(page.locator("#express-checkout-element")).to_be_visible()
        assert created == []
        calls = page.evaluate("window.stripeCalls")
        assert {"call": "Stripe", "key": "pk_test_standin", "locale": "sv"} in calls
        assert {"call": "elements", "clientSecret": None, "mode": "payment", "amount": 30000,
                "currency": "sek", "captureMethod": "manual",
                "paymentMethodTypes": ["card"]} in calls

        pay = page.get_by_role("button", name="Betala och starta laddningen")
        pay.click()
        expect(page.locator("#pay-error")).to_have_text("Kortet saknar täckning.")
        assert "/c/" in page.url
        # The charge and its PaymentIntent were made when the driver confirmed.
        assert created == [{"evse_id": "SE*SIM*E00001", "language": "sv", "connector_id": "1"}]
        page.screenshot(path=f"{SCREENSHOT_DIR}/driver_charger_stripe.png", full_page=True)

        pay.click()  # another card, the same PaymentIntent
        page.wait_for_url(re.compile(r"/charge/ch_test"))
        expect(page.locator("#arrived")).to_be_visible()
        calls = page.evaluate("JSON.parse(sessionStorage.getItem('stripeCalls'))")
        confirms = [c for c in calls if c["call"] == "confirmPayment"]
        assert confirms == [{"call": "confirmPayment", "redirect": "if_required",
                             "clientSecret": "pi_test_1_secret_abc", "withElements": True,
                             "returnUrl": f"{SITE}/charge/ch_test"}] * 2
        # elements.submit() before each confirmation, as the deferred flow requires.
        order = [c["call"] for c in calls if c["call"] in {"submit", "confirmPayment"}]
        assert order == ["submit", "confirmPayment"] * 2
        assert len(created) == 1  # the decline did not make a second charge
    finally:
        context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def test_charger_status_stays_live_on_the_page(live_stack: LiveStack, page: Any) -> None:
    """A status the CPO pushes reaches the open charger page within seconds."""
    from extensions import db
    from ocpi import store
    from ocpi.models import OcpiEvse, OcpiLocation
    from ocpi.transport import format_datetime, now_utc

    page.goto(charger_url(live_stack))
    assert page.locator("#evse-status").inner_text() == "Ledig"
    assert page.locator("#pay-form").count() == 1
    with live_stack.app.app_context():
        evse = db.session.scalar(db.select(OcpiEvse).where(
            OcpiEvse.evse_id == OcpiEvse.normalise_evse_id(live_stack.evse_id)))
        location = db.session.get(OcpiLocation, evse.location_pk)
        store.patch_location(location, {"status": "CHARGING",
                                        "last_updated": format_datetime(now_utc())},
                             evse.evse_uid, None)
        db.session.commit()
    # The page checks every 5 s; becoming unavailable renders it again without the form.
    # Functions, not expressions: Playwright evaluates a bare expression with eval(), which
    # the page's Content-Security-Policy refuses.
    page.wait_for_function(
        "() => document.querySelector('#evse-status')?.textContent === 'Laddar'",
        timeout=12_000)
    page.wait_for_function("() => !document.querySelector('#pay-form')", timeout=12_000)


def test_the_cap_sentence_follows_what_is_typed_and_the_end_says_why(
    live_stack: LiveStack, page: Any
) -> None:
    """Honest limits: where charging stops by itself, the cap refused below a meaningful
    charge (nothing created), told when above the hold, the hold sentence following what
    is typed; then, charging with that cap, how close to it and why it ended."""
    stack = live_stack
    page.goto(charger_url(stack, "en"))
    stop = page.locator("#stop-sentence")
    expect(stop).to_have_text("Charging stops by itself at SEK 98.80 (about 20 kWh at this "
                              "charger).")
    expect(page.locator(".conn-example")).to_have_text("about SEK 95 for 20 kWh")
    cap = page.get_by_label("Charge for at most (optional)")
    message = page.locator("#max-amount-message")

    cap.fill("8")
    expect(message).to_contain_text("The lowest limit at this charger is SEK 11.00")
    expect(cap).to_have_attribute("aria-invalid", "true")
    before = count_charges(stack)
    page.locator("#pay-button").click()
    expect(page.locator("#pay-error")).to_contain_text("The lowest limit at this charger is")
    assert count_charges(stack) == before  # refused before any charge or hold

    cap.fill("900")
    expect(message).to_have_text("We never hold more than SEK 104.00 here, so that is your "
                                 "limit.")
    expect(page.locator("#hold-sentence")).to_have_text("We hold SEK 104.00 on your card.")

    cap.fill("20")
    expect(page.locator("#hold-sentence")).to_have_text("We hold SEK 20.00 on your card.")
    expect(stop).to_have_text("Charging stops by itself at SEK 19.00 (about 3 kWh at this "
                              "charger).")
    expect(message).to_be_hidden()
    page.screenshot(path=f"{SCREENSHOT_DIR}/driver_charger_cap.png", full_page=True)

    pay_with(page, "4242 4242 4242 4242")
    page.wait_for_url(re.compile(r"/charge/"), timeout=SLOW)
    # Nobody presses Stop: ScanCharge stops before the cost passes the 20 kr held.
    reason = page.locator("#end-reason")
    expect(reason).to_have_attribute("data-reason", "limit", timeout=SLOW)
    expect(reason).to_have_text("Charging stopped by itself: the cost reached the limit of the "
                                "SEK 20.00 held on your card.")
    expect(page.locator("#status-text")).to_have_text("Done – your receipt is ready",
                                                      timeout=SLOW)
    charged = page.locator("#end-charged")
    expect(charged).to_contain_text(re.compile(r"Charged: SEK (1\d|20)\.\d\d for "))
    expect(page.locator("#limit-line")).to_be_hidden()
    page.screenshot(path=f"{SCREENSHOT_DIR}/driver_charge_limit.png", full_page=True)
    if "SEK 20.00" in charged.inner_text():
        # The meter ran past the stop before the charger stopped: the receipt says the
        # amount was cut to the limit, and its lines still add up.
        page.locator("#receipt-link").click()
        page.wait_for_url(re.compile(r"/r/"))
        expect(page.locator("#receipt-adjustment")).to_contain_text("Capped at your limit")
        expect(page.locator("#receipt-total")).to_have_text("SEK 20.00")
        page.go_back()

    # The same page in Swedish says the same.
    page.goto(page.url.split("?")[0] + "?lang=sv")
    expect(reason).to_contain_text("Laddningen stoppades av sig själv")


def test_stripe_mode_pays_with_a_wallet_from_the_express_checkout_element(
    app: Any, browser: Any
) -> None:
    """Apple Pay or Google Pay at once: the wallet's confirm makes the charge and its
    PaymentIntent, then confirms it; a refused wallet payment tells the sheet it failed."""
    from flask import render_template

    with app.test_request_context("/c/SE*SIM*E00001"):
        html = render_template("driver/charger.html", lang="en", charger=stripe_charger(),
                               evse_id="SE*SIM*E00001", stripe_js_url=STRIPE_JS_URL)
    created: list[Any] = []
    charge = _created_charge("ch_wallet", "pi_wallet", "pi_wallet_secret_w", "SEK 300.00")

    context, page, errors = _stripe_mode_phone(browser, html, charge, created)
    try:
        page.goto(f"{SITE}/c/SE*SIM*E00001?lang=en")
        expect(page.locator("#express-checkout-element")).to_be_visible()
        assert created == []
        page.evaluate("window.walletPays()")  # the first result: declined
        expect(page.locator("#pay-error")).to_have_text("Kortet saknar täckning.")
        calls = page.evaluate("window.stripeCalls")
        assert {"call": "paymentFailed", "reason": "fail"} in calls
        assert len(created) == 1
        page.evaluate("window.walletPays()")  # the same charge and intent, approved
        page.wait_for_url(re.compile(r"/charge/ch_wallet"))
        calls = page.evaluate("JSON.parse(sessionStorage.getItem('stripeCalls'))")
        confirms = [c for c in calls if c["call"] == "confirmPayment"]
        assert [c["clientSecret"] for c in confirms] == ["pi_wallet_secret_w"] * 2
        assert [c["call"] for c in calls if c["call"] in {"submit", "confirmPayment"}] == \
            ["submit", "confirmPayment"] * 2
        assert len(created) == 1
    finally:
        context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def _created_charge(charge_id: str, intent: str, secret: str, hold: str) -> dict[str, Any]:
    """POST /api/v1/charges' answer in Stripe mode: a CREATED charge holding 300 kr."""
    return {
        "id": charge_id, "status": "CREATED", "page_url": f"{SITE}/charge/{charge_id}",
        "hold": {"amount_minor": 30000, "currency": "SEK", "formatted": hold},
        "payment": {"kind": "stripe", "publishable_key": "pk_test_standin",
                    "payment_intent": intent, "client_secret": secret,
                    "return_url": f"{SITE}/charge/{charge_id}"},
    }


def _stripe_mode_phone(browser: Any, html: str, charge: dict[str, Any],
                       created: list[Any]) -> tuple[Any, Any, list[str]]:
    """A phone whose every request is answered here: the charger page `html`, the static
    files from disk, the fake Stripe.js, POST /api/v1/charges with `charge` (recording the
    body in `created`), and the charge page it returns to. Its context, page and JS errors."""

    def serve(route: Any) -> None:
        request = route.request
        url = request.url
        if url == STRIPE_JS_URL:
            route.fulfill(body=FAKE_STRIPE_JS, content_type="text/javascript")
        elif url.startswith(f"{SITE}/static/"):
            name = plain_name(url.removeprefix(f"{SITE}/static/").split("?")[0])
            route.fulfill(path=str(ROOT / "static" / name))
        elif url.startswith(f"{SITE}/api/v1/charges") and request.method == "POST":
            created.append(request.post_data_json)
            route.fulfill(status=201, json=charge)
        elif url.startswith(charge["page_url"]):
            route.fulfill(body="<p id='arrived'>charge page</p>", content_type="text/html")
        elif url.startswith(f"{SITE}/c/"):
            route.fulfill(body=html, content_type="text/html")
        else:
            route.abort()

    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    context.route("**/*", serve)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.set_default_timeout(10_000)
    return context, page, errors
