"""The driver's pages in the driver's language (issue 11): picked from the browser among the
six, English for any other, the switch on every page, and the switch's choice kept."""

from __future__ import annotations

import io
import re
from typing import Any

import pytest
from test_rate_limits import seed_chargers

from extensions import db
from i18n import LANGUAGES

EVSE = "SE*SIM*E00001"
NAMES = {"sv": "Svenska", "en": "English", "de": "Deutsch", "nb": "Norsk bokmål",
         "da": "Dansk", "fi": "Suomi"}
# A word of each page in each language, to see the page is written in it, not only labelled.
# An unknown charger is answered with the home page's "find the charger" form and this message.
UNKNOWN_CHARGER = {"sv": "Vi hittar inte den här laddaren", "en": "We can&#39;t find this charger",
                   "de": "Wir finden diese Ladestation nicht", "nb": "Vi finner ikke denne laderen",
                   "da": "Vi kan ikke finde denne ladestander", "fi": "Emme löydä tätä laturia"}
SORRY = {"sv": "Hoppsan", "en": "Sorry", "de": "Entschuldigung", "nb": "Beklager",
         "da": "Beklager", "fi": "Pahoittelut"}
LANGUAGE = {"sv": "Språk", "en": "Language", "de": "Sprache", "nb": "Språk", "da": "Sprog",
            "fi": "Kieli"}
SWITCH = re.compile(r'<nav class="lang-switch[^"]*" aria-label="([^"]+)">(.*?)</nav>', re.S)
LINK = re.compile(r'<a href="\?lang=(\w+)" lang="(\w+)" hreflang="(\w+)" translate="no"'
                  r'( aria-current="true")?>([^<]+)</a>')


def _browser(app: Any, accept: str) -> Any:
    """A test client whose every request says Accept-Language: `accept`, as a browser's."""
    client = app.test_client()
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = accept
    return client


@pytest.fixture
def seeded(app: Any) -> Any:
    seed_chargers()
    return app


def _receipt_path() -> str:
    from charge_factory import captured_charge

    from payments.models import Receipt

    charge = captured_charge(language="sv")
    receipt = db.session.get(Receipt, charge.receipt_pk)
    assert receipt is not None
    return f"/r/{receipt.public_token}"


def _pages(client: Any) -> dict[str, str]:
    created = client.post("/api/v1/charges", json={"evse_id": EVSE})
    assert created.status_code in (200, 201), created.get_data(as_text=True)
    return {"charger": f"/c/{EVSE}", "charge": f"/charge/{created.json['id']}",
            "unknown charger": "/c/NOPE*NOPE*1", "unknown charge": "/charge/nope",
            "no such page": "/no-such-page"}


def _assert_switch(html: str, language: str) -> None:
    assert f'<html lang="{language}">' in html
    found = SWITCH.search(html)
    assert found, "no language switch on the page"
    label, body = found.groups()
    assert label == LANGUAGE[language]  # a labelled landmark, in the page's language
    links = LINK.findall(body)
    assert [(code, name) for code, _lang, _href, _current, name in links] == \
        [(code, NAMES[code]) for code in LANGUAGES]
    assert all(code == lang == href for code, lang, href, _c, _n in links)  # lang="nb" …
    assert [code for code, _l, _h, current, _n in links if current] == [language]


@pytest.mark.parametrize(
    ("accept", "language"),
    [("de-DE,de;q=0.9,en;q=0.5", "de"), ("nb-NO,nb;q=0.9", "nb"), ("no", "nb"),
     ("da-DK,da", "da"), ("fi-FI,fi;q=0.9", "fi"), ("fr-FR,fr;q=0.9", "en"),
     ("sv-SE", "sv"), ("en-US", "en")],
)
def test_every_driver_page_is_in_the_browser_s_language_with_the_switch(
        seeded: Any, accept: str, language: str) -> None:
    client = _browser(seeded, accept)
    paths = _pages(client)
    for page, path in paths.items():
        answer = client.get(path)
        html = answer.get_data(as_text=True)
        assert answer.status_code in (200, 404), (page, answer.status_code)
        _assert_switch(html, language)
        if page == "unknown charger":
            assert answer.status_code == 404
            assert UNKNOWN_CHARGER[language] in html, page
        elif answer.status_code == 404:
            assert SORRY[language] in html, page


def test_the_receipt_page_has_the_switch_and_follows_it(app: Any) -> None:
    path = _receipt_path()
    client = _browser(app, "de")
    # A receipt is in the language it was paid in, whatever the browser says ...
    _assert_switch(client.get(path).get_data(as_text=True), "sv")
    # ... until the driver picks another in the switch.
    answer = client.get(f"{path}?lang=fi")
    html = answer.get_data(as_text=True)
    _assert_switch(html, "fi")
    assert "Kuitti" in html


def test_the_switch_s_choice_is_kept(seeded: Any) -> None:
    client = _browser(seeded, "de-DE,de")
    chosen = client.get(f"/c/{EVSE}?lang=da")
    _assert_switch(chosen.get_data(as_text=True), "da")
    assert "lang=da" in chosen.headers["Set-Cookie"]
    # The next page, without ?lang=, stays Danish though the browser asks for German.
    _assert_switch(client.get(f"/c/{EVSE}").get_data(as_text=True), "da")
    _assert_switch(client.get("/c/NOPE*NOPE*1").get_data(as_text=True), "da")


def test_the_dashboard_s_errors_are_in_the_operator_s_language_without_a_switch(
        app: Any) -> None:
    html = app.test_client().get("/dashboard/no-such-page",
                                 headers={"Accept-Language": "de"}).get_data(as_text=True)
    assert '<html lang="de">' in html and "lang-switch" not in html


CONFIG = re.compile(r'<script type="application/json" id="driver-config">(.*?)</script>', re.S)


@pytest.mark.parametrize("language", ["de", "nb", "da", "fi"])
def test_the_javascript_gets_its_texts_and_locale_from_the_catalogue(
        seeded: Any, language: str) -> None:
    english = _config(_browser(seeded, "en").get(f"/c/{EVSE}").get_data(as_text=True))
    ours = _config(_browser(seeded, language).get(f"/c/{EVSE}").get_data(as_text=True))
    assert ours["lang"] == language
    same = [key for key, text in ours["texts"].items() if text == english["texts"][key]]
    assert not same, f"{language}: still English: {same}"


def _config(html: str) -> dict[str, Any]:
    import json

    found = CONFIG.search(html)
    assert found
    config: dict[str, Any] = json.loads(found.group(1))
    return config


@pytest.mark.parametrize("language", ["sv", "en", "de", "nb", "da", "fi"])
def test_the_receipt_its_pdf_and_its_e_mail_are_in_the_charge_s_language(
        app: Any, language: str) -> None:
    from charge_factory import captured_charge
    from pypdf import PdfReader

    from i18n import texts
    from payments.mail import receipt_message
    from payments.models import Receipt

    charge = captured_charge(language=language, email="driver@example.com")
    receipt = db.session.get(Receipt, charge.receipt_pk)
    assert receipt is not None
    message = receipt_message(receipt, "driver@example.com")
    plain = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    assert plain is not None and html is not None
    pdf = PdfReader(io.BytesIO(app.test_client().get(f"/r/{receipt.public_token}.pdf").data))
    outputs = {
        "page": app.test_client().get(f"/r/{receipt.public_token}").get_data(as_text=True),
        "subject": str(message["Subject"]),
        "text": plain.get_content(),
        "html": html.get_content(),
        "pdf": "\n".join(page.extract_text() for page in pdf.pages),
    }
    t = texts(language)
    assert message["Content-Language"] == language
    assert t.gettext("Receipt") in outputs["subject"]
    for where, text in outputs.items():
        if where != "subject":
            assert t.gettext("Total paid") in text.replace("\u00a0", " "), (language, where)
        if language != "en":
            leftovers = [w for w in ("Total paid", "Receipt ", "Payment method", "incl. VAT")
                         if w in text]
            assert not leftovers, (language, where, leftovers)
