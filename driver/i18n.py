"""The driver's two languages. Swedish first: the chargers are in Sweden."""

from __future__ import annotations

from flask import request

LANGUAGES = ("sv", "en")


def pick_language(explicit: str | None = None) -> str:
    """?lang= wins, then the language cookie, then the browser's Accept-Language."""
    for candidate in (explicit, request.args.get("lang"), request.cookies.get("lang")):
        if candidate in LANGUAGES:
            return candidate
    return request.accept_languages.best_match(LANGUAGES, default="sv") or "sv"
