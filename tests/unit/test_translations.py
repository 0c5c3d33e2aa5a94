"""One translation mechanism (issue 9): the catalogues are complete and current, the
language is picked as it always was, and numbers and money read as drivers know them.

docs/translating.md has the pybabel commands these tests hold the catalogues to.
"""

from __future__ import annotations

import gettext
import io
import re
from decimal import Decimal
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.frontend import CommandLineInterface
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from flask import Blueprint, Flask, render_template_string
from flask_babel import force_locale

import i18n
from i18n import LANGUAGES, format_money, format_number, texts

ROOT = Path(__file__).resolve().parents[2]
TRANSLATIONS = ROOT / "translations"
NBSP = "\u00a0"
PLACEHOLDER = re.compile(r"%\((\w+)\)s")


def _po(language: str) -> Catalog:
    with (TRANSLATIONS / language / "LC_MESSAGES" / "messages.po").open("rb") as f:
        return read_po(f, locale=language)


def _keys(catalog: Catalog) -> set[tuple[str | None, str]]:
    return {(m.context, str(m.id)) for m in catalog if m.id}


def _pot() -> Catalog:
    with (TRANSLATIONS / "messages.pot").open("rb") as f:
        return read_po(f)


def test_every_text_has_its_swedish() -> None:
    swedish = {(m.context, str(m.id)): m for m in _po("sv") if m.id}
    missing = sorted(key for key in _keys(_pot())
                     if key not in swedish or not swedish[key].string
                     or swedish[key].fuzzy)
    assert not missing, f"no Swedish for {missing}: see docs/translating.md"


@pytest.mark.parametrize("language", LANGUAGES)
def test_each_catalogue_holds_exactly_the_template_texts(language: str) -> None:
    assert _keys(_po(language)) == _keys(_pot()), "run pybabel update (docs/translating.md)"


def test_template_is_current_with_the_source(tmp_path: Path) -> None:
    fresh = tmp_path / "messages.pot"
    CommandLineInterface().run([
        "pybabel", "-q", "extract", "-F", str(TRANSLATIONS / "babel.cfg"),
        "-o", str(fresh), str(ROOT),
    ])
    with fresh.open("rb") as f:
        extracted = _keys(read_po(f))
    committed = _keys(_pot())
    assert extracted == committed, (
        f"translations/messages.pot is stale: new {sorted(extracted - committed)}, "
        f"gone {sorted(committed - extracted)}; run pybabel extract and update "
        "(docs/translating.md)")


@pytest.mark.parametrize("language", LANGUAGES)
def test_compiled_catalogue_matches_its_po(language: str) -> None:
    compiled = io.BytesIO()
    write_mo(compiled, _po(language))
    compiled.seek(0)
    committed = TRANSLATIONS / language / "LC_MESSAGES" / "messages.mo"
    with committed.open("rb") as f:
        expected = gettext.GNUTranslations(f)._catalog  # type: ignore[attr-defined]
    assert gettext.GNUTranslations(compiled)._catalog == expected, (  # type: ignore[attr-defined]
        f"{committed.relative_to(ROOT)} is out of date: run pybabel compile -d translations")


def test_translations_keep_their_placeholders() -> None:
    wrong = [(m.id, m.string) for m in _po("sv") if m.id and m.string
             and set(PLACEHOLDER.findall(str(m.id))) != set(PLACEHOLDER.findall(str(m.string)))]
    assert not wrong


def test_no_hand_written_language_choice_is_left_in_templates() -> None:
    pairs = [
        f"{path.relative_to(ROOT)}: {line.strip()[:80]}"
        for path in sorted((ROOT / "templates").rglob("*.html"))
        for line in path.read_text().splitlines()
        if re.search(r"\bif (sv|lang == 'sv')\b|\bif sv else\b", line)
    ]
    assert not pairs, "texts go through _() and the catalogues: " + "; ".join(pairs)


# --- The language of a request, as before ---------------------------------------------------


@pytest.fixture
def bare_app() -> Flask:
    app = Flask(__name__)
    i18n.init_translations(app)
    return app


@pytest.mark.parametrize(
    ("query", "cookie", "accept", "expected"),
    [
        ("", None, None, "sv"),  # no hint at all: Swedish, the chargers are in Sweden
        ("", None, "en-GB,en;q=0.9", "en"),
        ("", None, "de-DE,de;q=0.9", "sv"),
        ("", None, "de,en;q=0.5", "en"),
        ("", "en", "sv", "en"),  # the cookie beats the browser
        ("?lang=sv", "en", "en", "sv"),  # ?lang= beats both
        ("?lang=de", "en", "sv", "en"),  # an unknown ?lang= is no choice
        ("", "xx", "en", "en"),
    ],
)
def test_the_language_is_picked_as_before(bare_app: Flask, query: str, cookie: str | None,
                                          accept: str | None, expected: str) -> None:
    headers = {"Accept-Language": accept} if accept else {}
    if cookie:
        headers["Cookie"] = f"lang={cookie}"
    with bare_app.test_request_context(f"/{query}", headers=headers):
        assert i18n.pick_language() == expected
        assert i18n.current_language() == expected  # Flask-Babel's locale selector
        assert render_template_string("{{ _('Receipt') }}") == (
            "Kvitto" if expected == "sv" else "Receipt")


def test_a_page_is_rendered_in_the_language_it_is_given(bare_app: Flask) -> None:
    # A receipt keeps the driver's language whatever the browser asks (i18n.render_in).
    with bare_app.test_request_context("/?lang=en"), force_locale("sv"):
        assert render_template_string("{{ _('Receipt') }} {{ number(1234.5, 2) }}") == \
            f"Kvitto 1{NBSP}234,50"
    with bare_app.test_request_context("/?lang=en"):
        assert render_template_string("{{ _('Receipt') }}") == "Receipt"


def test_the_dashboard_stays_english(bare_app: Flask) -> None:
    dashboard = Blueprint("dashboard", __name__)
    dashboard.add_url_rule("/d", "page", lambda: render_template_string("{{ _('Charges') }}"))
    bare_app.register_blueprint(dashboard)
    answer = bare_app.test_client().get("/d?lang=sv", headers={"Accept-Language": "sv"})
    assert answer.get_data(as_text=True) == "Charges"


def test_code_told_a_language_needs_no_request() -> None:
    assert texts("sv").gettext("Receipt") == "Kvitto"
    assert texts("en").gettext("Receipt") == "Receipt"
    assert texts("sv").pgettext("charge status", "Charging") == "Laddar"
    assert texts("sv").gettext("Charging") == "Laddning"
    assert texts("sv").gettext("receipt-%(number)s.pdf", number="K-7") == "kvitto-K-7.pdf"


# --- Numbers and money: Babel, with the formats drivers have always read -------------------


@pytest.mark.parametrize(
    ("value", "language", "places", "most", "text"),
    [
        (Decimal("1234.5"), "sv", 2, None, f"1{NBSP}234,50"),
        (Decimal("1234.5"), "en", 2, None, "1,234.50"),
        (Decimal("0.125"), "en", 2, None, "0.13"),  # half up, as a till rounds
        (Decimal("0.275"), "sv", 2, 4, "0,275"),
        (Decimal("5"), "sv", 0, 4, "5"),
        (Decimal("12.5"), "sv", 0, 6, "12,5"),
    ],
)
def test_numbers(value: Decimal, language: str, places: int, most: int | None,
                 text: str) -> None:
    assert format_number(value, language, places, most) == text


def test_money_names_its_currency_the_language_s_way() -> None:
    assert format_money(Decimal("150"), "SEK", "sv") == "150,00 kr"
    assert format_money(Decimal("150"), "SEK", "en") == "SEK 150.00"
    assert format_money(Decimal("4.5"), "EUR", "sv") == "4,50 EUR"
    assert format_money(Decimal("5"), "SEK", "sv", 0, 4) == "5 kr"
