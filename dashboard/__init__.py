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
    flash,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_babel import gettext
from sqlalchemy import and_, func, or_, select

from charging.models import Charge, ChargeEvent
from dashboard import formatting
from dashboard.audit import record
from dashboard.blueprint import PAGE_SIZE, bp
from dashboard.permissions import can, requires, role_name
from extensions import db
from i18n import LANGUAGES, current_language
from ocpi import messages as ocpi_messages
from ocpi import store as ocpi_store
from ocpi.models import OcpiCdr, OcpiEvse, OcpiLocation, OcpiMessage, Party
from ocpi.transport import json_dumps

# A long charge gets a Session PATCH every few minutes: its page shows the latest ones.
CHARGE_MESSAGES = 200


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


@bp.get("/")
@requires("view")
def charges() -> str:
    status = request.args.get("status") or None
    page = max(1, request.args.get("page", 1, type=int))
    query = select(Charge).order_by(Charge.pk.desc())
    if status:
        query = query.where(Charge.status == status)
    total = db.session.execute(select(func.count()).select_from(query.subquery())).scalar_one()
    rows = db.session.scalars(query.offset((page - 1) * PAGE_SIZE).limit(PAGE_SIZE)).all()
    counts: dict[str, int] = {
        status: count for status, count in db.session.execute(
            select(Charge.status, func.count()).group_by(Charge.status)
        ).tuples()
    }
    from charging.deadlines import waiting_for

    return render_template("dashboard/charges.html", charges=rows, total=total, page=page,
                           pages=max(1, -(-total // PAGE_SIZE)), status=status, counts=counts,
                           waiting={c.pk: waiting_for(c) for c in rows})


@bp.get("/charges/<public_id>")
@requires("view")
def charge_detail(public_id: str) -> str:
    charge = db.session.scalar(select(Charge).where(Charge.public_id == public_id))
    if charge is None:
        abort(404)
    events = db.session.scalars(
        select(ChargeEvent).where(ChargeEvent.charge_pk == charge.pk).order_by(ChargeEvent.pk)
    ).all()
    from charging.deadlines import waiting_for

    party = db.session.get(Party, charge.party_pk)
    logged = charge_messages(charge)
    return render_template("dashboard/charge.html", charge=charge, events=events, party=party,
                           ocpi_messages=logged, more_messages=len(logged) >= CHARGE_MESSAGES,
                           waiting=waiting_for(charge))


@bp.post("/charges/<public_id>/unlock")
@requires("unlock")
def unlock(public_id: str) -> ResponseReturnValue:
    from charging.operator_actions import unlock_connector

    charge = db.session.scalar(select(Charge).where(Charge.public_id == public_id))
    if charge is None:
        abort(404)
    answer = unlock_connector(charge.pk, g.operator.email)
    # The command is a network step of its own (charging/operator_actions.py): the audit row
    # records the request with the CPO's answer; its tries stand on the charge's timeline.
    record("unlock", target=charge.public_id, detail=f"connector {charge.connector_id}: {answer}")
    db.session.commit()
    if answer == "ACCEPTED":
        flash(gettext("The CPO accepted the unlock; its result appears under OCPI messages."))
    else:
        flash(gettext("The CPO did not accept the unlock (%(answer)s). See the timeline for its "
                      "words.", answer=answer))
    return redirect(url_for("dashboard.charge_detail", public_id=public_id))


def charge_messages(charge: Charge, limit: int = CHARGE_MESSAGES) -> list[OcpiMessage]:
    """The OCPI messages that concern a charge, oldest first (the latest `limit` of them).

    ocpi/ knows no charges; its messages carry the keys a charge is known by, and the join
    is made here: the charge's correlation_id is the X-Correlation-ID of its commands (and of
    the CommandResults the CPO echoes it in); the CPO's Session and CDR pushes name its
    authorization_reference or Token uid, or (PATCHes) only the session id in the URL; a
    CommandResult names the command uid in its URL.
    """
    m = OcpiMessage
    conditions = [
        # Messages logged before the correlation id stopped being the public id too.
        m.correlation_id.in_([charge.correlation_id, charge.public_id]),
        m.authorization_reference == charge.authorization_reference.upper(),
        m.token_uid == charge.token_uid.upper(),
    ]
    commands = [uid.upper() for uid in (charge.start_command_uid, charge.stop_command_uid) if uid]
    if commands:
        conditions.append(and_(m.module == "commands", m.object_id.in_(commands)))
    same_party = m.party_pk == charge.party_pk
    if charge.session_id:
        conditions.append(
            and_(m.module == "sessions", same_party, m.object_id == charge.session_id.upper())
        )
    if charge.cdr_pk is not None:
        cdr_id = db.session.scalar(select(OcpiCdr.cdr_id).where(OcpiCdr.pk == charge.cdr_pk))
        if cdr_id:
            conditions.append(and_(m.module == "cdrs", same_party, m.object_id == cdr_id))
    latest = db.session.scalars(
        select(m).where(or_(*conditions)).order_by(m.pk.desc()).limit(limit)
    ).all()
    return sorted(latest, key=lambda message: (message.at, message.pk))


@bp.get("/chargers")
@requires("view")
def chargers() -> str:
    rows = db.session.execute(
        select(OcpiEvse, OcpiLocation, Party)
        .join(OcpiLocation, OcpiEvse.location_pk == OcpiLocation.pk)
        .join(Party, OcpiLocation.party_pk == Party.pk)
        .order_by(Party.name, OcpiLocation.location_id, OcpiEvse.evse_uid)
    ).all()
    listing = []
    for evse_row, location, party in rows:
        data = location.data
        evse: dict[str, Any] = next((e for e in data.get("evses") or []
                                     if e["uid"].upper() == evse_row.evse_uid), {})
        evse_id = evse.get("evse_id")
        listing.append({
            "party": party.name,
            "location_pk": location.pk,
            "location": data.get("name") or data.get("address"),
            "city": data.get("city"),
            "evse_id": evse_id or evse_row.evse_uid,
            "status": evse_row.status,
            "clash": evse_row.clash,
            "prefix_mismatch": bool(evse_id) and not ocpi_store.evse_id_matches_owner(
                str(evse_id), location.country_code, location.party_id),
        })
    return render_template("dashboard/chargers.html", chargers=listing)


@bp.get("/cpos")
@requires("view")
def cpos() -> str:
    from ocpi import notices

    parties = db.session.scalars(select(Party).order_by(Party.pk)).all()
    return render_template("dashboard/cpos.html", parties=parties, notices=notices.latest(),
                           names={p.pk: p.name for p in parties})


@bp.get("/unmatched")
@requires("view")
def unmatched() -> str:
    """Sessions and CDRs that CPOs sent for no charge of ours: stored, and flagged here."""
    from sqlalchemy import and_, not_, or_

    from ocpi.models import OcpiCdr, OcpiSession

    def names_ours(model: Any) -> Any:
        return or_(Charge.authorization_reference == model.authorization_reference,
                   Charge.token_uid == model.token_uid)

    def orphans(model: Any) -> list[tuple[Any, bool]]:
        # Matched as the domain matches (charging.cpo.charge_for_object): by our
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


@bp.get("/cpos/<int:pk>/messages")
@requires("view")
def cpo_messages(pk: int) -> str:
    """A party's OCPI messages, newest first; by module, failures only, a page at a time."""
    party = db.session.get(Party, pk)
    if party is None:
        abort(404)
    module = request.args.get("module") or None
    failures = request.args.get("failures") == "1"
    page = max(1, request.args.get("page", 1, type=int))
    query = select(OcpiMessage).where(OcpiMessage.party_pk == pk)
    if module:
        query = query.where(OcpiMessage.module == module)
    if failures:
        query = query.where(ocpi_messages.failed_clause())
    # One row more than a page says whether there is a next page, without counting a log.
    rows = db.session.scalars(
        query.order_by(OcpiMessage.pk.desc()).offset((page - 1) * PAGE_SIZE).limit(PAGE_SIZE + 1)
    ).all()
    return render_template(
        "dashboard/messages.html", party=party, ocpi_messages=rows[:PAGE_SIZE], page=page,
        has_next=len(rows) > PAGE_SIZE, module=module, failures=failures,
        modules=sorted(ocpi_messages.MODULES),
    )


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
import dashboard.auth  # noqa: E402
import dashboard.people  # noqa: E402,F401
