"""The driver's pages: the charger (the QR code's target), the live charge, the receipt.

No account and no app: the charge's unguessable link is the driver's handle on it.
"""

from __future__ import annotations

from flask import Blueprint, Response, abort, make_response, request

from charging import driver_actions
from driver import api
from driver.messages import error_text
from extensions import db
from i18n import LANGUAGES, asked_language, pick_language, render_in, texts
from payments.models import Receipt
from payments.money import Money
from payments.receipts import find_by_token

bp = Blueprint("driver", __name__)


def _page(template: str, status: int = 200, **context) -> Response:
    language = context.pop("lang")
    response = make_response(render_in(language, template, **context), status)
    if request.args.get("lang") in LANGUAGES:
        response.set_cookie("lang", language, max_age=365 * 24 * 3600, samesite="Lax")
    return response


@bp.get("/c/<path:evse_id>")
def charger_page(evse_id: str) -> Response:
    language = pick_language()
    try:
        charger = api.charger_info(evse_id, language)
    except api.ApiError as exc:
        return _page("error.html", exc.http_status, lang=language,
                     message=error_text(exc.code, language))
    return _page("driver/charger.html", lang=language, charger=charger, evse_id=evse_id,
                 stripe_js_url=_stripe_js())


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
    return _page("driver/charge.html", lang=language, charge=charge,
                 payment=api.current_gateway().page_config(), stripe_js_url=_stripe_js())


@bp.get("/r/<token>")
def receipt(token: str) -> Response:
    api.count_lookup()
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

    api.count_lookup()
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
    from flask import current_app

    return current_app.config["STRIPE_JS_URL"]


__all__ = ["bp", "db"]
