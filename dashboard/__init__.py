"""The operator dashboard: sign in, see charges and their timelines, chargers and their
QR stickers."""

from __future__ import annotations

import functools
import hmac
import secrets
from collections.abc import Callable
from typing import Any

from flask import (
    Blueprint,
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
from sqlalchemy import func, select

from charging.models import Charge, ChargeEvent
from dashboard.models import Operator
from extensions import db
from ocpi.models import OcpiEvse, OcpiLocation, Party
from payments.money import Money

bp = Blueprint("dashboard", __name__, url_prefix="/dashboard")
PAGE_SIZE = 50


def login_required(view: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        operator = db.session.get(Operator, session.get("operator_pk") or 0)
        if operator is None:
            return redirect(url_for("dashboard.login", next=request.path))
        g.operator = operator
        return view(*args, **kwargs)

    return wrapped


def csrf_token() -> str:
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(24)
    return session["csrf"]


@bp.before_request
def _check_csrf() -> None:
    if request.method == "POST":
        sent = request.form.get("csrf", "")
        expected = session.get("csrf", "")
        if not expected or not hmac.compare_digest(sent, expected):
            abort(400, "The form expired. Go back, reload the page and try again.")


@bp.app_context_processor
def _helpers() -> dict[str, Any]:
    return {
        "csrf_token": csrf_token,
        "fmt_money": lambda minor, currency: (
            Money(minor, currency).format("en") if minor is not None else "—"
        ),
        "gateway_kind": lambda: current_app.extensions["payment_gateway"].kind,
    }


@bp.route("/login", methods=["GET", "POST"])
def login() -> Response | str:
    if request.method == "POST":
        email = request.form.get("email", "").strip().lower()
        operator = db.session.scalar(select(Operator).where(Operator.email == email))
        if operator is not None and operator.check_password(request.form.get("password", "")):
            session.clear()
            session["operator_pk"] = operator.pk
            target = request.args.get("next", "")
            if not target.startswith("/dashboard"):
                target = url_for("dashboard.charges")
            return redirect(target)
        flash("Wrong e-mail or password. Check both and try again.")
    return render_template("dashboard/login.html")


@bp.post("/logout")
def logout() -> Response:
    session.clear()
    return redirect(url_for("dashboard.login"))


@bp.get("/")
@login_required
def charges() -> str:
    status = request.args.get("status") or None
    page = max(1, request.args.get("page", 1, type=int))
    query = select(Charge).order_by(Charge.pk.desc())
    if status:
        query = query.where(Charge.status == status)
    total = db.session.scalar(select(func.count()).select_from(query.subquery()))
    rows = db.session.scalars(query.offset((page - 1) * PAGE_SIZE).limit(PAGE_SIZE)).all()
    counts = dict(db.session.execute(
        select(Charge.status, func.count()).group_by(Charge.status)
    ).all())
    return render_template("dashboard/charges.html", charges=rows, total=total, page=page,
                           pages=max(1, -(-total // PAGE_SIZE)), status=status, counts=counts)


@bp.get("/charges/<public_id>")
@login_required
def charge_detail(public_id: str) -> str:
    charge = db.session.scalar(select(Charge).where(Charge.public_id == public_id))
    if charge is None:
        abort(404)
    events = db.session.scalars(
        select(ChargeEvent).where(ChargeEvent.charge_pk == charge.pk).order_by(ChargeEvent.pk)
    ).all()
    party = db.session.get(Party, charge.party_pk)
    return render_template("dashboard/charge.html", charge=charge, events=events, party=party)


@bp.get("/chargers")
@login_required
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
        evse = next((e for e in data.get("evses") or []
                     if e["uid"].upper() == evse_row.evse_uid), {})
        listing.append({
            "party": party.name,
            "location": data.get("name") or data.get("address"),
            "city": data.get("city"),
            "evse_id": evse.get("evse_id") or evse_row.evse_uid,
            "status": evse_row.status,
        })
    return render_template("dashboard/chargers.html", chargers=listing)


@bp.get("/cpos")
@login_required
def cpos() -> str:
    parties = db.session.scalars(select(Party).order_by(Party.pk)).all()
    return render_template("dashboard/cpos.html", parties=parties)


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
