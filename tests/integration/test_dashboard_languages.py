"""The dashboard in the driver's languages: chosen as the driver's pages choose (?lang=, the
lang cookie, Accept-Language), switched from its header, the switch keeping the page's
filters; and every table cell labelled for the phone's stacked cards."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_dashboard import csrf, sign_in

from dashboard.models import set_operator
from extensions import db
from i18n import LANGUAGES

TEMPLATES = Path(__file__).resolve().parents[2] / "templates" / "dashboard"
SWITCH = re.compile(r'<nav class="lang-switch" aria-label="[^"]+">(.*?)</nav>', re.S)


@pytest.fixture
def served(make_app: Any) -> Iterator[Any]:
    """An app with no application context held open around its requests, so each request
    chooses its language afresh (as served; the `app` fixture's context would keep the
    first request's locale in g)."""
    app = make_app()
    with app.app_context():
        set_operator("ops@example.com", "correct horse battery")
    yield app
    with app.app_context():
        db.engine.dispose()


def _switch_links(html: str) -> dict[str, str]:
    found = SWITCH.search(html)
    assert found, "no language switch on the page"
    return {code: href.replace("&amp;", "&") for href, code in
            re.findall(r'<a href="([^"]+)" lang="(\w+)"', found.group(1))}


def test_the_browser_s_language_is_the_dashboard_s(app: Any) -> None:
    page = app.test_client().get("/dashboard/login", headers={"Accept-Language": "de-CH,de"})
    html = page.get_data(as_text=True)
    assert '<html lang="de">' in html
    assert "Anmeldung für Betreiber" in html and "Anmelden" in html
    assert set(_switch_links(html)) == set(LANGUAGES)
    assert re.search(r'lang="de"[^>]*aria-current="true"', html)


def test_the_switch_s_choice_is_kept_over_the_browser_s(app: Any) -> None:
    client = app.test_client()
    chosen = client.get("/dashboard/login?lang=sv", headers={"Accept-Language": "de"})
    assert '<html lang="sv">' in chosen.get_data(as_text=True)
    assert "lang=sv" in chosen.headers["Set-Cookie"]
    again = client.get("/dashboard/login", headers={"Accept-Language": "de"})
    assert '<html lang="sv">' in again.get_data(as_text=True)


def test_signed_in_pages_switch_language_keeping_their_filters(served: Any) -> None:
    client = served.test_client()
    sign_in(client, "ops@example.com", "correct horse battery")
    page = client.get("/dashboard/?status=CAPTURED&page=1&lang=de")
    html = page.get_data(as_text=True)
    assert '<html lang="de">' in html and "Ladevorgänge" in html
    links = _switch_links(html)
    assert links["fi"] == "/dashboard/?status=CAPTURED&page=1&lang=fi"
    # The header names the role in the page's language, and the nav is labelled.
    assert re.search(r'<nav class="dash-nav" aria-label="[^"]+">', html)


def test_a_page_answering_a_post_switches_to_the_charges(served: Any) -> None:
    client = served.test_client()
    sign_in(client, "ops@example.com", "correct horse battery")
    token = csrf(client, "/dashboard/people")
    # An invitation refused: the page is the People page, at a POST-only address.
    refused = client.post("/dashboard/people/invite", data={"csrf": token, "email": "x"})
    assert refused.status_code == 400
    assert _switch_links(refused.get_data(as_text=True))["nb"] == "/dashboard/?lang=nb"


def _cells_without_label(template: Path) -> list[str]:
    text = re.sub(r"\{#.*?#\}", "", template.read_text(), flags=re.S)
    # Tables other than table.data do not stack into cards; a partial that is a row (no
    # <table> of its own, e.g. _message_row.html) is one of a table.data's rows.
    for other in re.findall(r'<table(?![^>]*class="data)[^>]*>.*?</table>', text, re.S):
        text = text.replace(other, "")
    return [cell for cell in re.findall(r"<td\b[^>]*>", text)
            if "data-label=" not in cell and "colspan=" not in cell]


def test_every_dashboard_table_cell_is_labelled_for_the_phone() -> None:
    missing = {t.name: cells for t in sorted(TEMPLATES.glob("*.html"))
               if (cells := _cells_without_label(t))}
    assert not missing, ("every <td> of a table.data needs data-label (its column's name; "
                         f"static/style.css shows it on a phone): {missing}")
