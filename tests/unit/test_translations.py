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
from babel import Locale, numbers
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
PLACEHOLDER = re.compile(r"%\((\w+)\)[sd]")


def _po(language: str) -> Catalog:
    with (TRANSLATIONS / language / "LC_MESSAGES" / "messages.po").open("rb") as f:
        return read_po(f, locale=language)


def _keys(catalog: Catalog) -> set[tuple[str | None, str]]:
    return {(m.context, str(m.id)) for m in catalog if m.id}


def _pot() -> Catalog:
    with (TRANSLATIONS / "messages.pot").open("rb") as f:
        return read_po(f)


# Every language but English, whose msgids are its texts.
TRANSLATED = tuple(language for language in LANGUAGES if language != "en")
SIX = ("sv", "en", "de", "nb", "da", "fi")


def test_scancharge_speaks_the_six_languages() -> None:
    assert set(LANGUAGES) == set(SIX)


@pytest.mark.parametrize("language", TRANSLATED)
def test_every_text_is_translated(language: str) -> None:
    ours = {(m.context, str(m.id)): m for m in _po(language) if m.id}
    missing = sorted(key for key in _keys(_pot()) if key not in ours)
    empty = sorted(key for key, m in ours.items()
                   if not m.string or (isinstance(m.string, tuple) and not all(m.string)))
    fuzzy = sorted(key for key, m in ours.items() if m.fuzzy)
    assert not (missing or empty or fuzzy), (
        f"{language}: missing {missing}, untranslated {empty}, fuzzy {fuzzy}; "
        "see docs/translating.md")


def test_english_is_the_msgids_themselves() -> None:
    # A msgstr in the English catalogue would silently replace the source text.
    # A plural's msgstr is a tuple of forms: ("", "") is none.
    assert not [m.id for m in _po("en") if m.id and (bool(_forms(m)) or m.fuzzy)]


@pytest.mark.parametrize("language", LANGUAGES)
def test_each_catalogue_holds_exactly_the_template_texts(language: str) -> None:
    assert _keys(_po(language)) == _keys(_pot()), "run pybabel update (docs/translating.md)"


@pytest.mark.parametrize("language", LANGUAGES)
def test_each_catalogue_counts_plurals_as_its_language_does(language: str) -> None:
    catalog = _po(language)
    assert catalog.plural_forms == Catalog(locale=language).plural_forms
    for m in catalog:
        # English keeps its msgstr empty: gettext then gives msgid or msgid_plural.
        if m.id and m.pluralizable and language in TRANSLATED:
            assert len(_forms(m)) == catalog.num_plurals, (language, m.id)


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


def _forms(m: object) -> list[str]:
    string = m.string  # type: ignore[attr-defined]
    return [str(s) for s in (string if isinstance(string, tuple) else (string,)) if s]


@pytest.mark.parametrize("language", TRANSLATED)
def test_translations_keep_their_placeholders(language: str) -> None:
    wrong = [(m.id, text) for m in _po(language) if m.id for text in _forms(m)
             if sorted(PLACEHOLDER.findall(str(m.id if not m.pluralizable else m.id[0])))
             != sorted(PLACEHOLDER.findall(text))]
    assert not wrong


@pytest.mark.parametrize("language", TRANSLATED)
def test_translations_have_no_stray_percent_sign(language: str) -> None:
    # Jinja's gettext formats every text with %, so a lone "%" breaks the page: write "%%".
    def stray(text: str) -> bool:
        return "%" in PLACEHOLDER.sub("", text).replace("%%", "")

    wrong = [(m.id, text) for m in _po(language) if m.id for text in _forms(m) if stray(text)]
    assert not wrong


@pytest.mark.parametrize("language", TRANSLATED)
def test_markup_in_a_translation_is_the_msgid_s_markup(language: str) -> None:
    tag = re.compile(r"</?\w+")
    wrong = [(m.id, text) for m in _po(language) if m.id for text in _forms(m)
             if sorted(tag.findall(str(m.id))) != sorted(tag.findall(text))]
    assert not wrong


def test_no_hand_written_language_choice_is_left_in_templates() -> None:
    pairs = [
        f"{path.relative_to(ROOT)}: {line.strip()[:80]}"
        for path in sorted((ROOT / "templates").rglob("*.html"))
        for line in path.read_text().splitlines()
        if re.search(r"\bif (sv|lang == 'sv')\b|\bif sv else\b", line)
    ]
    assert not pairs, "texts go through _() and the catalogues: " + "; ".join(pairs)


# --- The language of a request ------------------------------------------------------------


@pytest.fixture
def bare_app() -> Flask:
    app = Flask(__name__)
    i18n.init_translations(app)
    return app


# "Receipt" in each language, as the page would show it.
RECEIPT = {"sv": "Kvitto", "en": "Receipt", "de": "Quittung", "nb": "Kvittering",
           "da": "Kvittering", "fi": "Kuitti"}


@pytest.mark.parametrize(
    ("query", "cookie", "accept", "expected"),
    [
        ("", None, None, "en"),  # no hint at all: English, what most visitors read
        ("", None, "sv-SE,sv;q=0.9,en;q=0.8", "sv"),
        ("", None, "en-GB,en;q=0.9", "en"),
        ("", None, "de-DE,de;q=0.9,en;q=0.8", "de"),
        ("", None, "de-CH", "de"),
        ("", None, "nb-NO,nb;q=0.9", "nb"),
        ("", None, "no", "nb"),  # Norwegian without a written standard: bokmål
        ("", None, "nn-NO,nn;q=0.9", "nb"),
        ("", None, "da-DK,da;q=0.9", "da"),
        ("", None, "fi-FI,fi;q=0.9,en;q=0.8", "fi"),
        ("", None, "sv-FI", "sv"),
        ("", None, "fr-FR,fr;q=0.9", "en"),  # a language we do not write: English
        ("", None, "fr-FR,fr;q=0.9,de;q=0.7", "de"),  # ... unless a later one is ours
        ("", None, "fr;q=0.9,da;q=0.8,sv;q=0.7", "da"),  # the browser's order counts
        ("", None, "sv;q=0.2,de;q=0.8", "de"),
        ("", None, "de;q=0,fi", "fi"),  # q=0: not acceptable
        ("", None, "*", "en"),
        ("", "en", "sv", "en"),  # the cookie (the switch's choice) beats the browser
        ("", "fi", "de", "fi"),
        ("?lang=sv", "en", "en", "sv"),  # ?lang= beats both
        ("?lang=nb", None, "de", "nb"),
        ("?lang=fr", "da", "sv", "da"),  # an unknown ?lang= is no choice
        ("?lang=fr", None, "fr", "en"),
        ("", "xx", "de", "de"),
    ],
)
def test_the_language_is_picked(bare_app: Flask, query: str, cookie: str | None,
                                accept: str | None, expected: str) -> None:
    headers = {"Accept-Language": accept} if accept else {}
    if cookie:
        headers["Cookie"] = f"lang={cookie}"
    with bare_app.test_request_context(f"/{query}", headers=headers):
        assert i18n.pick_language() == expected
        assert i18n.current_language() == expected  # Flask-Babel's locale selector
        assert render_template_string("{{ _('Receipt') }}") == RECEIPT[expected]


def test_the_switch_names_each_language_in_itself() -> None:
    assert i18n.language_names() == [
        ("sv", "Svenska"), ("en", "English"), ("de", "Deutsch"), ("nb", "Norsk bokmål"),
        ("da", "Dansk"), ("fi", "Suomi")]


@pytest.mark.parametrize("language", SIX)
def test_the_code_is_babel_s_locale_and_the_page_s_lang(language: str) -> None:
    # One code for Babel's digits, the catalogue's directory and <html lang>: "nb", not "no".
    locale = Locale.parse(language)
    assert (locale.language, locale.territory) == (language, None)
    assert (TRANSLATIONS / language / "LC_MESSAGES" / "messages.mo").is_file()
    assert texts(language).gettext("Receipt") == RECEIPT[language]


def test_a_page_is_rendered_in_the_language_it_is_given(bare_app: Flask) -> None:
    # A receipt keeps the driver's language whatever the browser asks (i18n.render_in).
    with bare_app.test_request_context("/?lang=en"), force_locale("sv"):
        assert render_template_string("{{ _('Receipt') }} {{ number(1234.5, 2) }}") == \
            f"Kvitto 1{NBSP}234,50"
    with bare_app.test_request_context("/?lang=en"):
        assert render_template_string("{{ _('Receipt') }}") == "Receipt"


def test_the_dashboard_speaks_the_driver_s_language(bare_app: Flask) -> None:
    dashboard = Blueprint("dashboard", __name__)
    dashboard.add_url_rule("/d", "page", lambda: render_template_string("{{ _('Charges') }}"))
    bare_app.register_blueprint(dashboard)
    client = bare_app.test_client()

    def page(url: str, browser: str = "") -> str:
        return str(client.get(url, headers={"Accept-Language": browser}).get_data(as_text=True))

    assert page("/d?lang=sv") == "Laddningar"
    assert page("/d", "sv") == "Laddningar"
    assert page("/d", "fr") == "Charges"


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


@pytest.mark.parametrize(
    ("language", "number", "money"),
    [
        ("sv", f"1{NBSP}234,50", f"1{NBSP}234,50 kr"),
        ("en", "1,234.50", "SEK 1,234.50"),
        ("de", "1.234,50", "1.234,50 SEK"),
        ("nb", f"1{NBSP}234,50", f"1{NBSP}234,50 SEK"),  # "kr" would read as Norway's krone
        ("da", "1.234,50", "1.234,50 SEK"),
        ("fi", f"1{NBSP}234,50", f"1{NBSP}234,50 SEK"),
    ],
)
def test_numbers_and_money_per_language(language: str, number: str, money: str) -> None:
    assert format_number(Decimal("1234.5"), language, 2) == number
    assert format_money(Decimal("1234.5"), "SEK", language) == money


@pytest.mark.parametrize("language", SIX)
def test_money_is_written_as_babel_writes_it_for_the_language(language: str) -> None:
    # Babel's digits and separators, and the currency on the side the locale puts it.
    amount = format_money(Decimal("1234.5"), "EUR", language)
    digits = numbers.format_decimal(Decimal("1234.50"), format="#,##0.00", locale=language)
    pattern = Locale.parse(language).currency_formats["standard"].pattern
    expected = f"EUR {digits}" if pattern.startswith("¤") else f"{digits} EUR"
    assert amount == expected


@pytest.mark.parametrize("language", SIX)
def test_the_browser_formats_in_the_page_s_locale(language: str) -> None:
    # static/driver/common.js formats numbers and dates with Intl in the tag the catalogue names.
    tag = texts(language).pgettext("BCP 47 tag the browser formats numbers and dates with",
                                   "en-GB")
    assert Locale.parse(tag, sep="-").language == language


def test_dates_and_times_are_written_the_language_s_own_way() -> None:
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from i18n import format_clock

    moment = datetime(2026, 11, 21, 17, 5, tzinfo=ZoneInfo("Europe/Stockholm"))
    assert {language: format_clock(moment, language) for language in LANGUAGES} == {
        "sv": "21 nov. 2026 17:05", "en": "21 Nov 2026, 17:05", "de": "21.11.2026, 17:05",
        "nb": "21. nov. 2026, 17:05", "da": "21. nov. 2026 17.05", "fi": "21.11.2026 17.05",
    }


@pytest.mark.parametrize(("typed", "currency", "language", "amount"), [
    ("200", "SEK", "sv", "200"), ("200 kr", "SEK", "sv", "200"), ("199,50", "SEK", "sv", "199.50"),
    ("1 000", "SEK", "sv", "1000"), ("1\u00a0000,50 kr", "SEK", "sv", "1000.50"),
    ("1.000", "SEK", "de", "1000"), ("1.000,50 SEK", "SEK", "de", "1000.50"),
    ("20.50", "SEK", "de", "20.50"), ("20,50", "SEK", "de", "20.50"),
    ("1,000", "SEK", "en", "1000"), ("1,234.50", "SEK", "en", "1234.50"),
    ("SEK 20.50", "SEK", "en", "20.50"), ("20 €", "EUR", "de", "20"), ("EUR 20", "EUR", "en", "20"),
    ("20 kr", "NOK", "nb", "20"), ("150,00", "DKK", "da", "150.00"),
])
def test_a_typed_amount_is_read_the_way_its_language_writes_numbers(
        typed: str, currency: str, language: str, amount: str) -> None:
    from decimal import Decimal

    from i18n import parse_amount

    assert parse_amount(typed, currency, language) == Decimal(amount)


@pytest.mark.parametrize("typed", ["", "abc", "20 $", "1,2,3.4.5", "--5", "1.000.00"])
def test_what_is_not_an_amount_is_none(typed: str) -> None:
    from i18n import parse_amount

    assert parse_amount(typed, "SEK", "sv") is None
