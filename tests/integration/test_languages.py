"""The driver's pages in the driver's language (issue 11): picked from the browser among the
six, English for any other, the switch on every page, and the switch's choice kept."""

from __future__ import annotations

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
SORRY = {"sv": "Hoppsan", "en": "Sorry", "de": "Entschuldigung", "nb": "Beklager",
         "da": "Beklager", "fi": "Pahoittelut"}
LANGUAGE = {"sv": "Språk", "en": "Language", "de": "Sprache", "nb": "Språk", "da": "Sprog",
            "fi": "Kieli"}
SWITCH = re.compile(r'<nav class="lang-switch[^"]*" aria-label="([^"]+)">(.*?)</nav>', re.S)
LINK = re.compile(r'<a href="\?lang=(\w+)" lang="(\w+)" hreflang="(\w+)"( aria-current="true")?>'
                  r"([^<]+)</a>")


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
        if answer.status_code == 404:
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


def test_the_dashboard_s_errors_have_no_switch(app: Any) -> None:
    html = app.test_client().get("/dashboard/no-such-page",
                                 headers={"Accept-Language": "de"}).get_data(as_text=True)
    assert '<html lang="en">' in html and "lang-switch" not in html
