"""The driver's pages: the charger (the QR code's target), the live charge, the receipt;
the front page and the typed charger ID (/find); the shipped terms and privacy notice.

No account and no app: the charge's unguessable link is the driver's handle on it, and this
phone remembers the links it started (driver/remembered.py).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, abort, current_app, make_response, redirect, request, url_for
from werkzeug.wrappers import Response as WerkzeugResponse

from charging import driver_actions
from driver import api, remembered
from driver.messages import error_text
from extensions import db
from i18n import LANGUAGES, asked_language, pick_language, render_in, texts
from payments.models import Receipt
from payments.money import Money
from payments.receipts import find_by_token
from ratelimits import count_lookup
from trust import seller

bp = Blueprint("driver", __name__)


def _page(template: str, status: int = 200, **context) -> Response:
    language = context.pop("lang")
    response = make_response(render_in(language, template, **context), status)
    if "mine" in context:
        _personal(response, bool(context["mine"]))
    if request.args.get("lang") in LANGUAGES:
        response.set_cookie("lang", language, max_age=365 * 24 * 3600, samesite="Lax")
    return response


@bp.app_context_processor
def _trust() -> dict[str, object]:
    return {"trust": seller}


@bp.get("/")
def home() -> Response:
    """The site itself: scan the sticker or type the charger's ID, and this phone's charges."""
    language = pick_language()
    return _page("driver/home.html", lang=language, mine=remembered.banners(language))


@bp.get("/find")
def find_charger() -> Response | WerkzeugResponse:
    """The typed charger ID, taken as forgivingly as the charger page takes it."""
    typed = request.args.get("evse", "")
    evse_id = remembered.clean_evse_id(typed)
    if evse_id:
        return redirect(url_for("driver.charger_page", evse_id=evse_id, **_lang_arg()))
    language = pick_language()
    return _page("driver/home.html", 400, lang=language, mine=remembered.banners(language),
                 message=texts(language).gettext("Type the charger's ID, as printed on it."))


@bp.get("/c/<path:evse_id>")
def charger_page(evse_id: str) -> Response | WerkzeugResponse:
    language = pick_language()
    evse_id = remembered.clean_evse_id(evse_id) or evse_id
    running = remembered.running_at(evse_id)
    if running is not None:
        # Rescanning the sticker (or Back) while this phone's charge runs here: its page,
        # never "this charger is in use" to the person whose charge uses it.
        back = redirect(url_for("driver.charge_page", public_id=running, **_lang_arg()))
        _personal(back, True)
        return back
    try:
        charger = api.charger_info(evse_id, language)
    except api.ApiError as exc:
        if exc.code == "unknown_charger":
            return _page("driver/home.html", 404, lang=language, typed=evse_id,
                         mine=remembered.banners(language),
                         message=error_text(exc.code, language))
        return _page("error.html", exc.http_status, lang=language,
                     message=error_text(exc.code, language))
    return _page("driver/charger.html", lang=language, charger=charger, evse_id=evse_id,
                 mine=remembered.banners(language, evse_id), stripe_js_url=_stripe_js())


@bp.get("/terms")
def terms() -> Response:
    return _page("driver/terms.html", lang=pick_language())


@bp.get("/privacy")
def privacy() -> Response:
    return _page("driver/privacy.html", lang=pick_language(),
                 remember_days=remembered.COOKIE_DAYS,
                 message_days=current_app.config["OCPI_MESSAGE_RETENTION_DAYS"])


def _personal(response: Response | WerkzeugResponse, personal: bool) -> None:
    """A page that reads this phone's charges differs per phone; one that shows them (their
    links are the drivers' credentials) is never stored by a shared cache."""
    response.vary.add("Cookie")
    if personal:
        response.headers["Cache-Control"] = "private, no-store"


def _lang_arg() -> dict[str, Any]:
    lang = request.args.get("lang")
    return {"lang": lang} if lang in LANGUAGES else {}


@bp.get("/charge/<public_id>")
def charge_page(public_id: str) -> Response:
    language = pick_language()
    try:
        found = api._charge(public_id)
        if request.args.get("payment_intent") and request.args["payment_intent"] == \
                found.hold_id and found.status == "CREATED":
            # Back from a redirect (3-D Secure's return_url carries ?payment_intent=): ask
            # the gateway now rather than wait for a webhook that may be late.
            found = driver_actions.refresh_payment(found.pk)
        charge = api.charge_json(found, language)
    except api.ApiError as exc:
        return _page("error.html", exc.http_status, lang=language,
                     message=error_text(exc.code, language))
    response = _page("driver/charge.html", lang=language, charge=charge,
                     emailed=bool(found.email), payment=api.current_gateway().page_config(),
                     stripe_js_url=_stripe_js())
    # The saved link opened on this phone makes it this phone's charge too.
    remembered.remember(response, public_id)
    return response


@bp.get("/r/<token>")
def receipt(token: str) -> Response:
    count_lookup()
    found: Receipt | None = find_by_token(token)
    if found is None:
        abort(404)
    language = asked_language(found.language)
    data = api.receipt_json(found, language)
    from payments.receipt_document import build, component_name, local_time

    doc = build(found, language)  # the same content as the PDF and the e-mail
    zone = (found.details or {}).get("time_zone") or "UTC"
    return _page("driver/receipt.html", lang=language, receipt=data, r=found, doc=doc,
                 money=lambda minor: Money(minor, found.currency).format(language),
                 component=lambda kind: component_name(kind, texts(language)),
                 local=lambda value: local_time(value, zone, language), basis=doc.basis)


@bp.get("/r/<token>.pdf")
def receipt_pdf(token: str) -> Response:
    """The receipt (and its credit notes) as a PDF, from the same link."""
    from payments.receipt_pdf import render_pdf

    count_lookup()
    found: Receipt | None = find_by_token(token)
    if found is None:
        abort(404)
    language = asked_language(found.language)
    response = make_response(render_pdf(found, language))
    response.headers["Content-Type"] = "application/pdf"
    filename = texts(language).gettext("receipt-%(number)s.pdf", number=found.display_number)
    response.headers["Content-Disposition"] = f'inline; filename="{filename}"'
    # Credit notes may be added later: always fetch it anew, never cache it in between.
    response.headers["Cache-Control"] = "private, no-cache"
    return response


def _stripe_js() -> str:
    return current_app.config["STRIPE_JS_URL"]


__all__ = ["bp", "db"]
