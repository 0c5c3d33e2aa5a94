"""The operator dashboard: sign in, see charges with their timelines and OCPI messages,
chargers and their QR stickers, CPO connections and their message logs."""

from __future__ import annotations

import hmac
import json
import secrets
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from flask import (
    Response,
    abort,
    current_app,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext
from sqlalchemy import and_, or_, select

from charging.models import Charge
from dashboard import formatting
from dashboard.blueprint import PAGE_SIZE, bp  # noqa: F401 (PAGE_SIZE: tests read it here)
from dashboard.permissions import can, requires, role_name
from extensions import db
from i18n import LANGUAGES, current_language
from ocpi.models import OcpiCdr, Party
from ocpi.transport import json_dumps

# Every view names its permission (dashboard/permissions.py); a view written as
# @login_required needs the one every role has.
login_required = requires("view")


def csrf_token() -> str:
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(24)
    return session["csrf"]


@bp.before_request
def _check_csrf() -> None:
    if request.method == "POST":
        sent = request.form.get("csrf", "")
        expected = session.get("csrf", "")
        # As bytes: compare_digest raises TypeError for a str with non-ASCII characters.
        if not expected or not hmac.compare_digest(sent.encode(), expected.encode()):
            abort(400, gettext("The form expired. Go back, reload the page and try again."))


@bp.app_context_processor
def _helpers() -> dict[str, Any]:
    return {
        "csrf_token": csrf_token,
        "fmt_money": formatting.money,
        "fmt_amount": formatting.amount,
        "fmt_clock": formatting.clock,
        "fmt_day": formatting.day,
        "fmt_stamp": formatting.stamp,
        "operator_zone": formatting.zone_name,
        "can": can,
        "role_name": role_name,
        "gateway_kind": lambda: current_app.extensions["payment_gateway"].kind,
    }


@bp.context_processor
def _language() -> dict[str, Any]:
    # The dashboard's pages are rendered in the request's language (i18n.pick_language).
    return {"lang": current_language(), "language_link": language_link}


def language_link(language: str) -> str:
    """This page in `language`, its other query arguments kept (a filter, a page number);
    a page that answered a POST-only address links to the charges instead."""
    rule = request.url_rule
    if rule is None or "GET" not in (rule.methods or ()):
        return url_for("dashboard.charges", lang=language)
    arguments = {k: v for k, v in request.args.lists() if k != "lang"}
    return request.path + "?" + urlencode({**arguments, "lang": language}, doseq=True)


@bp.after_request
def _keep_language(response: Response) -> Response:
    # The switch's choice is kept as the driver's pages keep it: the same cookie, a year.
    if request.args.get("lang") in LANGUAGES:
        response.set_cookie("lang", request.args["lang"], max_age=365 * 24 * 3600,
                            samesite="Lax")
    return response


@bp.app_template_filter("pretty_json")
def _pretty_json(text: str | None) -> str:
    """A logged body indented for reading, every number with the digits it was sent with;
    one that is not JSON (cut short) as it is."""
    if not text:
        return ""
    try:
        return _indented(json.loads(text, parse_float=Decimal))
    except ValueError:
        return text


def _indented(value: Any, depth: int = 0) -> str:
    # json.dumps(indent=...) would write a Decimal as a float: 8.50 became 8.5.
    inner, outer = "  " * (depth + 1), "  " * depth
    if isinstance(value, dict) and value:
        members = [f"{inner}{json.dumps(str(k), ensure_ascii=False)}: {_indented(v, depth + 1)}"
                   for k, v in value.items()]
        return "{\n" + ",\n".join(members) + f"\n{outer}}}"
    if isinstance(value, list) and value:
        items = [f"{inner}{_indented(v, depth + 1)}" for v in value]
        return "[\n" + ",\n".join(items) + f"\n{outer}]"
    return json_dumps(value)




@bp.get("/unmatched")
@requires("view")
def unmatched() -> str:
    """Sessions and CDRs that CPOs sent for no charge of ours: stored, and flagged here."""
    from sqlalchemy import not_

    from ocpi.models import OcpiSession

    def names_ours(model: Any) -> Any:
        return or_(Charge.authorization_reference == model.authorization_reference,
                   Charge.token_uid == model.token_uid)

    def orphans(model: Any) -> list[tuple[Any, bool]]:
        # Matched as the domain matches (charging.cpo.lock_charge_for_object): by our
        # reference or token uid *and* by its sender being the charge's own CPO.
        own = select(Charge.pk).where(
            names_ours(model), Charge.party_pk == model.party_pk,
            Charge.cpo_country_code == model.country_code,
            Charge.cpo_party_id == model.party_id,
        )
        foreign = select(Charge.pk).where(names_ours(model))
        rows = db.session.execute(
            select(model, foreign.exists()).where(and_(not_(own.exists())))
            .order_by(model.pk.desc()).limit(200)
        ).all()
        return [(row, bool(suspect)) for row, suspect in rows]

    parties = {p.pk: p.name for p in db.session.scalars(select(Party))}
    return render_template("dashboard/unmatched.html", sessions=orphans(OcpiSession),
                           cdrs=orphans(OcpiCdr), parties=parties)


@bp.get("/qr/<path:evse_id>.<fmt>")
@login_required
def qr(evse_id: str, fmt: str) -> Response:
    import qrcodes

    if fmt not in {"png", "svg"}:
        abort(404)
    url = qrcodes.charger_url(current_app.config["PUBLIC_BASE_URL"], evse_id)
    data = qrcodes.qr_png(url, evse_id) if fmt == "png" else qrcodes.qr_svg(url, evse_id)
    response = Response(data, mimetype="image/png" if fmt == "png" else "image/svg+xml")
    filename = f"{evse_id.replace('*', '_')}.{fmt}"
    if request.args.get("download"):
        response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


# The views in modules of their own register on the blueprint when imported.
import dashboard.attention  # noqa: E402
import dashboard.auth  # noqa: E402
import dashboard.books  # noqa: E402
import dashboard.charge_page  # noqa: E402
import dashboard.chargers  # noqa: E402
import dashboard.charges  # noqa: E402
import dashboard.cpos  # noqa: E402
import dashboard.exports  # noqa: E402
import dashboard.people  # noqa: E402
import dashboard.reconciliation  # noqa: E402
import dashboard.reports  # noqa: E402,F401
from dashboard.charge_page import CHARGE_MESSAGES, charge_messages  # noqa: E402,F401
