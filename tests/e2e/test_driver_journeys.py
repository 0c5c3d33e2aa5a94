"""The driver's journeys of issue 11 in a real headless Chromium on a phone, in Swedish,
English and German, against one live stack per module (ScanCharge and the CPO simulator over
HTTP, the demo gateway, the queue workers):

- rescanning the sticker (and Back) during a charge leads to "Your charge – Stop", and
  stopping from there works; while charging, how close to the limit;
- the limit text before paying and the cap rules (refused below the minimum, capped above
  the maximum, the hold sentence following what is typed), then a small cap that stops by
  itself;
- the receipt: each line's quantity × unit price = amount, lines + adjustment = total, VAT
  per rate, read from the page in the locale's number format and checked with Decimal;
- the stop reasons: the driver stopped, the limit was reached, the CPO ended the session
  (the simulator's battery full), the start failed (the simulator rejects START_SESSION, or
  accepts it and reports FAILED); a refused stop says what to do, and its retry ends it;
- the unknown-charger form (a typed ID in lower case, with spaces, with or without '*').

The phone's language comes from the browser (locale and Accept-Language, no ?lang=), and
every expected text comes from the app's catalogues (i18n.texts), formatted with the app's
Money and numbers, so a German page showing English fails.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable, Iterator
from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal
from typing import Any

import pytest
import requests
from babel import numbers as babel_numbers
from conftest import PG_URL, LiveStack, _test_settings, running_stack
from sqlalchemy import create_engine, text
from test_driver_browser import (  # noqa: F401 (the browser fixture)
    CHROMIUM,
    PHONE,
    SLOW,
    browser,
    charge_id_of,
    count_charges,
    pay_with,
)

from app import create_app
from extensions import db
from i18n import format_number, texts
from payments.money import Money

sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is needed")
expect = sync_api.expect

pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} is missing")

LOCALES = {"sv": "sv-SE", "en": "en-GB", "de": "de-DE"}
LANGS = list(LOCALES)
GOOD_CARD = "4242 4242 4242 4242"
# How each language writes money (the app's Babel formats): checked on the page's own
# amounts, so a page formatting SEK the English way in German fails.
MONEY_SHAPE = {
    "sv": re.compile(r"^\d{1,3}(\u00a0\d{3})*,\d\d\skr$"),
    "en": re.compile(r"^SEK\s\d{1,3}(,\d{3})*\.\d\d$"),
    "de": re.compile(r"^\d{1,3}(\.\d{3})*,\d\d\sSEK$"),
}


# --- The catalogues' words ---------------------------------------------------------------

# Texts whose Swedish and German are the English ("Support" is a word in both).
SAME_IN_TRANSLATION = {"Support (%(seller)s): %(contact)s."}


def _(lang: str, msgid: str, context: str | None = None, **values: Any) -> str:
    """The catalogue's text for `msgid` in `lang`; a missing translation fails here (the
    English msgid would otherwise be expected, and found, on a German page)."""
    t = texts(lang)
    found = t.pgettext(context, msgid) if context else t.gettext(msgid)
    if lang != "en" and msgid not in SAME_IN_TRANSLATION:
        assert found != msgid, f"{lang} catalogue lacks {msgid!r}"
    return found % values if values else found


def money(lang: str, minor: int, currency: str = "SEK") -> str:
    return Money(minor, currency).format(lang)


def pattern(lang: str, msgid: str, context: str | None = None, **values: Any) -> re.Pattern:
    """The catalogue's text as a regex, values given as regexes (e.g. percent=r"\\d+"),
    each a group in the order the translation puts them (plain groups: Playwright hands the
    pattern to JavaScript, which has no (?P<name>)); `groups` reads them by name."""
    marks = {key: f"\x00{key}\x00" for key in values}
    escaped = re.escape(_(lang, msgid, context, **marks))
    for key, regex in values.items():
        escaped = escaped.replace(re.escape(marks[key]), f"({regex})")
    return re.compile(f"^{escaped}$")


def groups(lang: str, msgid: str, shown: str, **values: Any) -> dict[str, str]:
    """The values in `shown`, a text of `msgid` (see pattern), by name."""
    found = pattern(lang, msgid, **values).match(shown)
    assert found, f"{shown!r} is not {_(lang, msgid)!r}"
    filled = _(lang, msgid, **{key: f"\x00{key}\x00" for key in values})
    order = sorted(values, key=lambda key: filled.index(f"\x00{key}\x00"))
    return dict(zip(order, found.groups(), strict=True))


def number(lang: str, shown: str) -> Decimal:
    """The first number in `shown`, read in the language's format ("1 234,50 kr",
    "SEK 1,234.50", "1.234,50 SEK"), negative with a minus sign before it."""
    found = re.search(r"([-\u2212]\s?)?\d[\d\s\u00a0\u202f.,]*", shown)
    assert found, f"no number in {shown!r}"
    raw = found.group(0)
    negative = raw[0] in "-\u2212"
    digits = raw.lstrip("-\u2212").strip()
    group = babel_numbers.get_group_symbol(lang)
    decimal = babel_numbers.get_decimal_symbol(lang)
    for sep in {group, " ", "\u00a0", "\u202f"}:
        digits = digits.replace(sep, "")
    digits = digits.rstrip(".,")  # a sentence's full stop after the number
    value = Decimal(digits.replace(decimal, "."))
    return -value if negative else value


# --- One live stack per module, one phone per journey ------------------------------------


@pytest.fixture(scope="module")
def stack(database_template: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveStack]:
    if PG_URL:
        url = PG_URL
    else:
        path = tmp_path_factory.mktemp("journeys") / "scancharge.db"
        shutil.copy(database_template, path)
        url = f"sqlite:///{path}"

    def make_app(**overrides: Any) -> Any:
        return create_app({**_test_settings(), "SQLALCHEMY_DATABASE_URI": url, **overrides})

    # A refused stop is retried within a second or two here (production: from 5 s).
    with running_stack(make_app, STOP_RETRY_BASE_DELAY=1, STOP_RETRY_MAX_DELAY=2) as live:
        yield live
    if PG_URL:
        engine = create_engine(PG_URL)
        with engine.begin() as conn:
            tables = [r[0] for r in conn.execute(text(
                "select tablename from pg_tables where schemaname='public' "
                "and tablename <> 'alembic_version'"))]
            conn.execute(text("TRUNCATE " + ", ".join(f'"{t}"' for t in tables)
                              + " RESTART IDENTITY CASCADE"))
        engine.dispose()


def simulator_control(stack: LiveStack, path: str, body: dict[str, Any] | None = None) -> None:
    """The simulator's own test controls, over HTTP (/sim/behaviour, /sim/reset)."""
    answer = requests.post(f"{stack.simulator_url}/sim/{path}", json=body or {}, timeout=10)
    assert answer.status_code == 200, answer.text


@pytest.fixture
def phone(stack: LiveStack, browser: Any) -> Iterator[Callable[[str], Any]]:  # noqa: F811
    """phone(lang): a new phone (no cookies) whose browser is set to `lang`, the charger
    free and the simulator well-behaved."""
    stack.wait_for(lambda: charger(stack, "en")["available"], 20, "the charger to be free")
    contexts: list[Any] = []
    errors: list[str] = []

    def open_phone(lang: str) -> Any:
        context = browser.new_context(
            viewport=PHONE, is_mobile=True, has_touch=True, device_scale_factor=2,
            locale=LOCALES[lang],
            extra_http_headers={"Accept-Language": f"{LOCALES[lang]},{lang};q=0.9"})
        context.route(re.compile(r"^https?://(?!127\.0\.0\.1[:/]).*"), lambda r: r.abort())
        contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.set_default_timeout(10_000)
        return page

    yield open_phone
    for context in contexts:
        context.close()
    simulator_control(stack, "reset")
    stop_what_still_charges(stack)
    assert not errors, f"JavaScript errors on the page: {errors}"


def stop_what_still_charges(stack: LiveStack) -> None:
    """A journey that failed half-way leaves its charge running; stopped here, so the next
    journey finds the charger free instead of failing too."""
    from charging.models import Charge

    with stack.app.app_context():
        try:
            running = list(db.session.scalars(db.select(Charge.public_id).where(
                Charge.status == "CHARGING")))
        finally:
            db.session.remove()
    for public_id in running:
        stack.api("POST", f"/api/v1/charges/{public_id}/stop")
        stack.wait_status(public_id, "CAPTURED", "RELEASED", "ENDED", timeout=30)


def charger(stack: LiveStack, lang: str) -> dict[str, Any]:
    answer = stack.api("GET", f"/api/v1/chargers/{stack.evse_id}?lang={lang}")
    assert answer.status_code == 200, answer.text
    return answer.json()


def charger_url(stack: LiveStack) -> str:
    return f"{stack.base_url}/c/{stack.evse_id}"


def open_charger(page: Any, stack: LiveStack, lang: str) -> None:
    page.goto(charger_url(stack))
    expect(page.locator("html")).to_have_attribute("lang", lang)
    expect(page.get_by_role("heading", name=_(lang, "Connector and price"))).to_be_visible()


def charging_phone(phone: Callable[[str], Any], stack: LiveStack, lang: str) -> tuple[Any, str]:
    """A new phone in `lang` that paid at the charger and is CHARGING: its page and charge."""
    page = phone(lang)
    open_charger(page, stack, lang)
    return page, pay_and_wait_charging(page, lang)


def pay_and_wait_charging(page: Any, lang: str) -> str:
    pay_with(page, GOOD_CARD)
    page.wait_for_url(re.compile(r"/charge/"), timeout=SLOW)
    expect(page.locator("#status-text")).to_have_text(
        _(lang, "Charging", "charge status"), timeout=SLOW)
    return charge_id_of(page)


def expect_end(page: Any, lang: str, reason: str, message: str) -> None:
    line = page.locator("#end-reason")
    expect(line).to_have_attribute("data-reason", reason, timeout=SLOW)
    expect(line).to_have_text(message)


def expect_charged(page: Any, stack: LiveStack, lang: str, charge_id: str) -> dict[str, Any]:
    """Done, and the end line says what was charged, as the charge's own figures."""
    expect(page.locator("#status-text")).to_have_text(
        _(lang, "Done – your receipt is ready"), timeout=SLOW)
    charge = stack.wait_status(charge_id, "CAPTURED")
    captured = charge["captured"]["amount_minor"]
    shown = money(lang, captured)
    assert MONEY_SHAPE[lang].match(shown), shown
    kwh = format_number(Decimal(str(charge["energy_kwh"])), lang, 2)
    expect(page.locator("#end-charged")).to_have_text(
        _(lang, "Charged: %(amount)s for %(kwh)s kWh.", amount=shown, kwh=kwh))
    expect(page.locator("#captured")).to_have_text(shown)
    expect(page.locator("#stop-button")).to_be_hidden()
    return charge


# --- The receipt, checked by arithmetic ----------------------------------------------------


def half_up(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def check_receipt(page: Any, lang: str, total_minor: int) -> dict[str, Any]:
    """Read the receipt page as a person with a calculator would: every line's quantity ×
    unit price = its amount, the lines and the adjustment = the total, VAT per rate on its
    net, the nets = the amount excl. VAT; what it found, for the caller's own checks."""
    expect(page.get_by_role("heading", name=_(lang, "Receipt"), exact=True)).to_be_visible()
    names = {_(lang, name) for name in ("Energy", "Start fee", "Charging time",
                                        "Parking time")}
    lines = []
    for row in page.locator("#receipt-lines tr.receipt-line").all():
        name = row.locator("th").inner_text().strip()
        what = row.locator("td.what").inner_text()
        amount = number(lang, row.locator("td.amount").inner_text())
        assert name in names, f"{name!r} is not a line name in {lang}"
        quantity_text, price_text = what.split("×")
        quantity, price = number(lang, quantity_text), number(lang, price_text)
        assert half_up(quantity * price) == amount, f"{what} is not {amount}"
        lines.append((name, quantity, price, amount))
    assert lines, "the receipt has no lines"
    adjustment = Decimal(0)
    if page.locator("#receipt-adjustment").count():
        adjustment = number(lang, page.locator("#receipt-adjustment td.amount").inner_text())
    total_text = page.locator("#receipt-total").inner_text()
    assert MONEY_SHAPE[lang].match(total_text), total_text
    total = number(lang, total_text)
    assert total == Decimal(total_minor) / 100
    assert sum(amount for *_x, amount in lines) + adjustment == total

    nets = Decimal(0)
    gross = Decimal(0)
    rows = page.locator("table.totals tr.receipt-vat-rate").all()
    assert rows
    for row in rows:
        label = row.locator("th").inner_text().strip()
        found = groups(lang, "VAT %(rate)s %% of %(net)s", label, rate=r"[\d,.]+", net=".+")
        rate, net = number(lang, found["rate"]), number(lang, found["net"])
        vat = number(lang, row.locator("td").inner_text())
        # The net is the rate's gross without VAT, rounded half up: VAT is on the net.
        assert abs(net * rate / 100 - vat) <= Decimal("0.01"), (label, vat)
        nets += net
        gross += net + vat
    assert gross == total
    assert number(lang, page.locator("#receipt-net").inner_text()) == nets
    return {"lines": lines, "adjustment": adjustment, "total": total}


# --- The journeys ------------------------------------------------------------------------


@pytest.mark.parametrize("lang", LANGS)
def test_rescan_and_back_lead_to_the_charge_stop_works_and_the_receipt_adds_up(
    stack: LiveStack, phone: Callable[[str], Any], lang: str
) -> None:
    page, charge_id = charging_phone(phone, stack, lang)

    # While charging: how close to the limit, the percentage as the bar shows it.
    stop_at = stack.charge_status(charge_id)["limit"]["stop_at"]["amount_minor"]
    limit = pattern(lang, "Charging stops by itself at %(stop)s: %(percent)s %% of it used.",
                    stop=re.escape(money(lang, stop_at)), percent=r"\d+")
    expect(page.locator("#limit-text")).to_have_text(limit)
    page.wait_for_function(
        "() => Number(document.getElementById('limit-bar').value) > 0", timeout=SLOW)
    found = groups(lang, "Charging stops by itself at %(stop)s: %(percent)s %% of it used.",
                   page.locator("#limit-text").inner_text(), stop=".+", percent=r"\d+")
    assert 0 < int(found["percent"]) <= 100
    expect(page.locator("#limit-bar")).to_have_attribute("value", found["percent"])

    your_charge = page.get_by_role("heading", name=_(lang, "Your charge"), exact=True)
    stop_button = page.get_by_role("button", name=_(lang, "Stop charging"), exact=True)
    # Back, to the charger page it was paid on: the charge, not the pay form.
    page.go_back()
    page.wait_for_url(re.compile(f"/charge/{charge_id}"))
    expect(your_charge).to_be_visible()
    expect(stop_button).to_be_visible()
    # The page is lost; the driver scans the sticker again.
    page.goto("about:blank")
    page.goto(charger_url(stack))
    assert charge_id_of(page) == charge_id
    expect(page.locator("html")).to_have_attribute("lang", lang)
    expect(your_charge).to_be_visible()
    expect(page.locator("#status-text")).to_have_text(_(lang, "Charging", "charge status"))
    expect(page.locator("#pay-form")).to_have_count(0)
    # Or types the charger's ID as printed, on the start page: the same charge.
    page.goto(f"{stack.base_url}/")
    page.get_by_label(_(lang, "Charger ID")).fill(stack.evse_id.lower().replace("*", " * "))
    page.get_by_role("button", name=_(lang, "Find the charger")).click()
    page.wait_for_url(re.compile(f"/charge/{charge_id}"))
    expect(stop_button).to_be_visible()

    stop_button.click()
    page.locator("#stop-dialog").get_by_role("button", name=_(lang, "Yes, stop")).click()
    expect_end(page, lang, "driver", _(lang, "You stopped charging."))
    charge = expect_charged(page, stack, lang, charge_id)

    page.get_by_role("link", name=_(lang, "Show receipt")).click()
    page.wait_for_url(re.compile(r"/r/"))
    expect(page.locator("html")).to_have_attribute("lang", lang)
    found_lines = check_receipt(page, lang, charge["captured"]["amount_minor"])
    assert any(name == _(lang, "Energy") for name, *_x in found_lines["lines"])


@pytest.mark.parametrize("lang", LANGS)
def test_the_limit_before_paying_the_cap_rules_and_a_small_cap_that_stops_by_itself(
    stack: LiveStack, phone: Callable[[str], Any], lang: str
) -> None:
    limits = charger(stack, lang)["connectors"][0]["limit"]
    hold, stop_at = limits["hold"]["amount_minor"], limits["stop_at"]["amount_minor"]
    min_cap, max_cap = limits["min_cap"]["amount_minor"], limits["max_cap"]["amount_minor"]
    assert stop_at < hold and min_cap < max_cap <= hold
    for minor in (hold, stop_at, min_cap):
        assert MONEY_SHAPE[lang].match(money(lang, minor)), money(lang, minor)
    kwh = Decimal(limits["stop_kwh"]).to_integral_value(rounding=ROUND_FLOOR)

    page = phone(lang)
    open_charger(page, stack, lang)
    hold_sentence, stop_sentence = page.locator("#hold-sentence"), page.locator("#stop-sentence")
    expect(hold_sentence).to_have_text(
        _(lang, "We hold %(amount)s on your card.", amount=money(lang, hold)))
    expect(stop_sentence).to_have_text(_(
        lang, "Charging stops by itself at %(stop)s (about %(kwh)s kWh at this charger).",
        stop=money(lang, stop_at), kwh=format_number(kwh, lang)))
    # The example total never promises more than the hold allows.
    example_text = page.locator(".conn-example").first.inner_text()
    example = groups(lang, "about %(amount)s for %(kwh)s kWh", example_text, amount=".+",
                     kwh=r"\d+")
    assert number(lang, example["kwh"]) <= kwh
    assert number(lang, example["amount"]) * 100 <= hold, example_text
    expect(page.locator("#max-amount-help")).to_have_text(_(
        lang, "Between %(min)s and %(max)s. Charging stops before the cost reaches this "
        "amount, and we never hold more.", min=money(lang, min_cap), max=money(lang, max_cap)))

    cap = page.locator("#max-amount")
    message = page.locator("#max-amount-message")
    too_low = _(lang, "The lowest limit at this charger is %(amount)s: the start fee and a "
                "little energy. Choose that or more.", amount=money(lang, min_cap))
    cap.fill(str(min_cap // 100 - 1))
    expect(message).to_have_text(too_low)
    expect(cap).to_have_attribute("aria-invalid", "true")
    before = count_charges(stack)
    page.locator("#pay-button").click()
    expect(page.locator("#pay-error")).to_have_text(too_low)
    assert count_charges(stack) == before  # refused before any charge or hold

    # The limits themselves are allowed, without a word.
    for edge in (min_cap, max_cap):
        cap.fill(format_number(Decimal(edge) / 100, lang, 2, group=False))
        expect(hold_sentence).to_have_text(
            _(lang, "We hold %(amount)s on your card.", amount=money(lang, edge)))
        expect(message).to_be_hidden()
        expect(cap).to_have_attribute("aria-invalid", "false")

    cap.fill(str(max_cap // 100 + 500))
    expect(message).to_have_text(_(lang, "We never hold more than %(amount)s here, so that "
                                   "is your limit.", amount=money(lang, hold)))
    expect(hold_sentence).to_have_text(
        _(lang, "We hold %(amount)s on your card.", amount=money(lang, hold)))
    expect(cap).to_have_attribute("aria-invalid", "false")
    cap.fill("")  # no cap: the charger's own hold and stop again
    expect(message).to_be_hidden()
    expect(stop_sentence).to_have_text(re.compile(re.escape(money(lang, stop_at))))

    # The start fee and a few kWh (stops within seconds here), typed with the language's
    # decimal sign: "20,50" in Swedish and German, "20.50" in English.
    small = min_cap + 950
    typed = format_number(Decimal(small) / 100, lang, 2, group=False)
    cap.fill(typed)
    expect(hold_sentence).to_have_text(
        _(lang, "We hold %(amount)s on your card.", amount=money(lang, small)))
    expect(message).to_be_hidden()
    capped = stack.api("GET", "/api/v1/limits", params={
        "evse_id": stack.evse_id, "max_amount": typed, "lang": "en"}).json()
    small_stop = capped["stop_at"]["amount_minor"]
    assert small_stop < small
    expect(stop_sentence).to_have_text(_(
        lang, "Charging stops by itself at %(stop)s (about %(kwh)s kWh at this charger).",
        stop=money(lang, small_stop), kwh=format_number(Decimal(capped["stop_kwh"])
                                                        .to_integral_value(ROUND_FLOOR), lang)))

    # Nobody presses Stop: ScanCharge stops before the cost passes what is held.
    pay_with(page, GOOD_CARD)
    page.wait_for_url(re.compile(r"/charge/"), timeout=SLOW)
    charge_id = charge_id_of(page)
    expect_end(page, lang, "limit", _(
        lang, "Charging stopped by itself: the cost reached the limit of the %(amount)s held "
        "on your card.", amount=money(lang, small)))
    charge = expect_charged(page, stack, lang, charge_id)
    assert charge["captured"]["amount_minor"] <= small

    page.get_by_role("link", name=_(lang, "Show receipt")).click()
    page.wait_for_url(re.compile(r"/r/"))
    found = check_receipt(page, lang, charge["captured"]["amount_minor"])
    if found["adjustment"]:
        # The meter ran past the stop before the charger stopped: cut to the cap, said so.
        assert found["adjustment"] < 0
        expect(page.locator("#receipt-adjustment th")).to_have_text(
            _(lang, "Capped at your limit (the amount held on your card)"))


@pytest.mark.parametrize("lang", LANGS)
def test_the_cpo_ending_the_session_says_so_in_the_language(
    stack: LiveStack, phone: Callable[[str], Any], lang: str
) -> None:
    # The simulated car is full after 2 kWh: the CPO completes the session by itself.
    simulator_control(stack, "behaviour", {"session_max_kwh": "2"})
    page = phone(lang)
    open_charger(page, stack, lang)
    pay_with(page, GOOD_CARD)
    page.wait_for_url(re.compile(r"/charge/"), timeout=SLOW)
    charge_id = charge_id_of(page)
    expect_end(page, lang, "car", _(
        lang, "The car or the charger ended charging, usually because the battery was full "
        "or the cable was unplugged."))
    charge = expect_charged(page, stack, lang, charge_id)
    assert Decimal(str(charge["energy_kwh"])) == Decimal(2)


@pytest.mark.parametrize("lang", LANGS)
def test_an_operator_stop_says_so_in_the_language(
    stack: LiveStack, phone: Callable[[str], Any], lang: str
) -> None:
    page, charge_id = charging_phone(phone, stack, lang)
    result = stack.app.test_cli_runner().invoke(
        args=["charges", "stop", "--yes", "--", charge_id])
    assert result.exit_code == 0, result.output
    expect_end(page, lang, "operator", _(lang, "The operator stopped charging."))
    expect_charged(page, stack, lang, charge_id)


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("start", ["reject", "failed"])
def test_a_start_the_charger_refuses_says_nothing_was_charged(
    stack: LiveStack, phone: Callable[[str], Any], lang: str, start: str
) -> None:
    # reject: START_SESSION answered REJECTED; failed: accepted, then its result FAILED.
    simulator_control(stack, "behaviour", {"start": start})
    page = phone(lang)
    open_charger(page, stack, lang)
    pay_with(page, GOOD_CARD)
    page.wait_for_url(re.compile(r"/charge/"), timeout=SLOW)
    charge_id = charge_id_of(page)
    expect_end(page, lang, "start_failed",
               _(lang, "The charger did not start. Nothing was charged."))
    expect(page.locator("#status-text")).to_have_text(
        _(lang, "The card hold is released – nothing was charged"), timeout=SLOW)
    expect(page.locator("#end-charged")).to_have_text(_(lang, "Nothing was charged."))
    charge = stack.wait_status(charge_id, "RELEASED")
    assert charge["captured"] is None
    expect(page.locator("#failure")).to_have_text(charge["failure"]["message"])
    expect(page.locator("#stop-button")).to_be_hidden()
    expect(page.get_by_role("link", name=_(lang, "Back to the charger"))).to_be_visible()


@pytest.mark.parametrize("lang", LANGS)
def test_a_stop_the_charger_refuses_says_what_to_do_and_is_retried(
    stack: LiveStack, phone: Callable[[str], Any], lang: str
) -> None:
    simulator_control(stack, "behaviour", {"stop": "reject"})
    page = phone(lang)
    open_charger(page, stack, lang)
    charge_id = pay_and_wait_charging(page, lang)
    page.get_by_role("button", name=_(lang, "Stop charging"), exact=True).click()
    page.locator("#stop-dialog").get_by_role("button", name=_(lang, "Yes, stop")).click()
    # What to do now (end it from the car, and who to call), not a dead end.
    refused = _(lang, "The charger refused to stop. We keep trying. You can also end charging "
                "from the car and unplug the cable; you only pay for what was charged.")
    expect(page.locator("#failure")).to_contain_text(refused, timeout=SLOW)
    help_prefix = _(lang, "Support (%(seller)s): %(contact)s.", seller="\x00",
                    contact="").split("\x00")[0]
    expect(page.locator("#failure")).to_contain_text(help_prefix)
    # The charger takes stops again: ScanCharge's retry ends the charge, as the driver's stop.
    simulator_control(stack, "behaviour", {"stop": "accept"})
    expect_end(page, lang, "driver", _(lang, "You stopped charging."))
    expect_charged(page, stack, lang, charge_id)
    expect(page.locator("#failure")).to_be_hidden()


@pytest.mark.parametrize("lang", LANGS)
def test_the_find_form_takes_a_typed_id_and_says_when_it_is_unknown(
    stack: LiveStack, phone: Callable[[str], Any], lang: str
) -> None:
    page = phone(lang)
    page.goto(f"{stack.base_url}/")
    expect(page.locator("html")).to_have_attribute("lang", lang)
    field = page.get_by_label(_(lang, "Charger ID"))
    find = page.get_by_role("button", name=_(lang, "Find the charger"))

    # As a person types what is printed: lower case, spaces, the '*' kept or not.
    operator, rest = stack.evse_id.split("*", 1)
    typed = f" {operator.lower()} * {rest.lower()[:3]} {rest.lower()[3:]} "
    field.fill(typed)
    find.click()
    expect(page.get_by_role("heading", name=_(lang, "Connector and price"))).to_be_visible()
    expect(page.locator("#pay-form")).to_be_visible()
    expect(page.locator("html")).to_have_attribute("lang", lang)

    unknown = _(lang, "We can't find this charger. Check the code on the charger and scan "
                "again.")
    page.goto(f"{stack.base_url}/")
    field.fill("zz*nope*e 99")
    find.click()
    expect(page.get_by_text(unknown)).to_be_visible()
    expect(page.locator("#pay-form")).to_have_count(0)
    # The form is there again, with what was typed, to correct it.
    expect(field).to_have_value(re.compile(r"zz\*?nope\*?e ?99", re.IGNORECASE))
    field.fill(stack.evse_id.lower().replace("*", ""))
    find.click()
    expect(page.locator("#pay-form")).to_be_visible()
