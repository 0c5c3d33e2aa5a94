"""Every text a person reads, through gettext catalogues; numbers, money and dates by Babel.

Source texts are English msgids; translations/<language>/LC_MESSAGES/messages.po holds each
language's words (docs/translating.md: pybabel extract, update, compile). Pages and e-mails
translate through Flask-Babel (`_()` in templates, the locale chosen by `pick_language`);
code that writes in a language it is given (a receipt in the driver's language, the tariff
in words, a status in the charge's language) asks `texts(language)`, which reads the same
catalogues and needs no request.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from babel import Locale, dates, numbers
from babel.support import NullTranslations, Translations

if TYPE_CHECKING:
    from flask import Flask

# The languages ScanCharge speaks, in the order the language switch lists them; each has
# its catalogue in translations/ (docs/translating.md). The codes are Babel's locales and the
# pages' `lang` attributes alike ("nb" for Norwegian bokmål).
LANGUAGES: tuple[str, ...] = ("sv", "en", "de", "nb", "da", "fi")
# What a driver reads when the browser asks for none of LANGUAGES: drivers on European roads
# come from everywhere, and English is the language most of them read.
DEFAULT_LANGUAGE = "en"
# Browser tags that name one of LANGUAGES by another code: "no" (Norwegian) and "nn"
# (nynorsk) readers read bokmål.
LANGUAGE_ALIASES: dict[str, str] = {"no": "nb", "nn": "nb"}
DIRECTORY = Path(__file__).resolve().parent / "translations"
DOMAIN = "messages"


@functools.cache
def catalogue(language: str) -> NullTranslations:
    """The compiled catalogue of `language` (English, the msgids, when it has none)."""
    return Translations.load(str(DIRECTORY), [language], DOMAIN)


def supported(language: str | None) -> str | None:
    return language if language in LANGUAGES else None


class Texts:
    """The texts of one language, for code that is told which language."""

    def __init__(self, language: str) -> None:
        self.language = supported(language) or DEFAULT_LANGUAGE
        self._catalogue = catalogue(self.language)

    def gettext(self, msgid: str, **values: object) -> str:
        text = self._catalogue.gettext(msgid)
        return text % values if values else text

    def pgettext(self, context: str, msgid: str, **values: object) -> str:
        text = str(self._catalogue.pgettext(context, msgid))
        return text % values if values else text


@functools.cache
def texts(language: str) -> Texts:
    return Texts(language)


# --- Numbers, money and dates ------------------------------------------------------------


def format_number(
    value: Decimal | int,
    language: str,
    places: int = 0,
    most: int | None = None,
    *,
    group: bool = True,
) -> str:
    """`value` with `places` decimals (up to `most` when it has them), rounded half up, in
    the language's digits: 1234.5 -> "1 234,50" (sv, a no-break space) / "1,234.50" (en)."""
    most = places if most is None else max(most, places)
    exact = Decimal(value).quantize(Decimal(1).scaleb(-most), rounding=ROUND_HALF_UP)
    decimals = "." + "0" * places + "#" * (most - places) if most else ""
    pattern = ("#,##0" if group else "0") + decimals
    return numbers.format_decimal(exact, format=pattern, locale=supported(language) or "en")


def format_money(
    amount: Decimal, currency: str, language: str, places: int = 2, most: int | None = None
) -> str:
    """An amount in the language: "4,40 kr" in Swedish, "SEK 4.40" in English; the digits
    Babel's, the currency where and as the catalogue writes it (its ISO code unless named)."""
    t = texts(language)
    currency = currency.upper()
    # The currencies a language calls by its own name ("kr" for SEK in Swedish).
    names = {"SEK": t.pgettext("currency", "SEK")}
    return t.gettext(
        "%(currency)s %(amount)s",
        currency=names.get(currency, currency),
        amount=format_number(amount, t.language, places, most),
    )


def _formatting_locale(language: str) -> str:
    # English on European roads: day before month, 24-hour clock (Babel's "en" is en_US).
    code = supported(language) or "en"
    return "en_GB" if code == "en" else code


def parse_amount(text: str, currency: str, language: str) -> Decimal | None:
    """An amount a driver typed, read the way their language writes numbers, with or
    without the currency ("1.000,50 €" in German, "1,000.50" in English, "200 kr");
    None when it is not an amount. One separator followed by one or two digits is a
    decimal sign in any language ("20.50" typed on a German phone means 20.50, not 2050)."""
    cleaned = text.strip().lower()
    names = {currency.lower(), numbers.get_currency_symbol(currency, "en").lower(),
             numbers.get_currency_symbol(currency, _formatting_locale(language)).lower()}
    if currency.upper() in {"SEK", "NOK", "DKK", "ISK"}:
        names.add("kr")
    for name in sorted(names, key=len, reverse=True):
        cleaned = cleaned.replace(name, "")
    cleaned = re.sub(r"[\s\u00a0\u202f']", "", cleaned).rstrip(".,")
    if not re.fullmatch(r"[0-9.,]+", cleaned or "x"):
        return None
    if re.fullmatch(r"[0-9]+[.,][0-9]{1,2}", cleaned):
        return Decimal(cleaned.replace(",", "."))
    try:
        return numbers.parse_decimal(cleaned, locale=_formatting_locale(language), strict=True)
    except numbers.NumberFormatError:
        return None


def format_day(when: datetime, language: str) -> str:
    """The date in the language's own medium form: '21 nov. 2026', '21.11.2026', '21 Nov 2026'."""
    return dates.format_date(when, "medium", locale=_formatting_locale(language))


def format_time_of_day(when: datetime, language: str) -> str:
    """The time in the language's own short form: '17:05', '17.05' (Danish, Finnish)."""
    return dates.format_time(when, "short", tzinfo=when.tzinfo,
                             locale=_formatting_locale(language))


def format_clock(when: datetime, language: str) -> str:
    """Date and time as the language joins them: '21 nov. 2026 17:05', '21 Nov 2026, 17:05'."""
    pattern = Locale.parse(_formatting_locale(language)).datetime_formats["medium"]
    return str(pattern).replace("{1}", format_day(when, language)).replace(
        "{0}", format_time_of_day(when, language))


# --- Flask: the request's language, and the templates' helpers --------------------------
# Flask is imported where it is used: the catalogues and formats above need Babel alone, so
# the tariff engine and the money rules can use them without a web framework.


def init_translations(app: Flask) -> None:
    """Flask-Babel for `app`: the catalogues here, the language by `pick_language`, and
    `number(value, places)` in templates in the language being rendered."""
    from extensions import babel

    app.config.setdefault("BABEL_DEFAULT_LOCALE", DEFAULT_LANGUAGE)
    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", str(DIRECTORY))
    # One choice for every page, the driver's and the operator's alike.
    babel.init_app(app, locale_selector=_request_language)
    app.jinja_env.globals.update(number=_template_number, language_names=language_names)


def current_language() -> str:
    """The language being rendered: the request's, or the one forced for a page or mail."""
    from flask_babel import get_locale

    locale = get_locale()
    return supported(locale.language if locale else None) or DEFAULT_LANGUAGE


def render_in(language: str, template: str, **context: Any) -> str:
    """`template` rendered in `language`, whatever the request asked for."""
    from flask import render_template
    from flask_babel import force_locale

    with force_locale(supported(language) or DEFAULT_LANGUAGE):
        return render_template(template, lang=current_language(), **context)


def _template_number(
    value: Decimal | int | float | str,
    places: int = 0,
    most: int | None = None,
    group: bool = True,
) -> str:
    return format_number(Decimal(str(value)), current_language(), places, most, group=group)


def language_names() -> list[tuple[str, str]]:
    """Each language with its own name for itself ("Svenska", "English"), for a switch."""
    return [
        (code, (Locale.parse(code).get_display_name(code) or code).capitalize())
        for code in LANGUAGES
    ]


# --- The request's language --------------------------------------------------------------


def _request_language() -> str:
    """Flask-Babel's locale selector, for the driver's pages and the dashboard alike: the
    request's language; English outside a request (a CLI command's gettext())."""
    from flask import has_request_context

    return pick_language() if has_request_context() else DEFAULT_LANGUAGE


def pick_language(explicit: str | None = None) -> str:
    """?lang= wins, then the language cookie (the switch's choice, kept), then the browser's
    Accept-Language, then English (Flask-Babel's locale selector, and the language a driver's
    new charge is written in)."""
    from flask import request

    for candidate in (explicit, request.args.get("lang"), request.cookies.get("lang")):
        if candidate in LANGUAGES:
            return candidate
    return browser_language(request.accept_languages) or DEFAULT_LANGUAGE


def browser_language(accepted: Iterable[tuple[str, float]]) -> str | None:
    """The first of LANGUAGES the browser accepts, in its order of preference: "de-CH" is
    German, "no" and "nn" are bokmål, "sv-FI" is Swedish; "*" and q=0 choose nothing."""
    for tag, quality in accepted:
        primary = tag.replace("_", "-").split("-")[0].lower()
        code = LANGUAGE_ALIASES.get(primary, primary)
        if quality > 0 and code in LANGUAGES:
            return code
    return None


def asked_language(fallback: str) -> str:
    """?lang= when it names a language we speak, else `fallback` (e.g. the receipt's)."""
    from flask import request

    return supported(request.args.get("lang")) or fallback
