"""CPO connections from the dashboard: invite, connect, sync and disconnect (what `flask cpo`
does, through the same ocpi.credentials functions), each connection's roles and health, and
its message log.

Health is what an operator asks when drivers say a charger "does nothing": when did this CPO
last talk to us and we to it, how many of the last day's messages failed, when did the last
pull succeed, and what has it sent that broke the spec.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext
from sqlalchemy import case, func, select

from dashboard.audit import record
from dashboard.blueprint import PAGE_SIZE, bp
from dashboard.permissions import requires
from extensions import db
from ocpi import credentials, notices
from ocpi import messages as ocpi_messages
from ocpi.client import PeerUnreachable
from ocpi.models import OcpiMessage, OcpiNotice, Party
from ocpi.sync import pull_party
from ocpi.transport import OcpiError, StatusCode, now_utc

# The window of the error rate: long enough to hold a night's pushes, short enough that
# yesterday's outage does not colour today's figure.
ERROR_WINDOW = timedelta(hours=24)


@dataclass
class Health:
    last_in: datetime | None = None
    last_out: datetime | None = None
    messages: int = 0
    failed: int = 0
    deviations: int = 0
    other_notices: int = 0

    @property
    def error_percent(self) -> int | None:
        return round(100 * self.failed / self.messages) if self.messages else None


def _last_at(party_pk: int, direction: str) -> datetime | None:
    # Newest first on (party_pk, pk): the latest message one way is near the top.
    return db.session.scalar(
        select(OcpiMessage.at).where(OcpiMessage.party_pk == party_pk,
                                     OcpiMessage.direction == direction)
        .order_by(OcpiMessage.pk.desc()).limit(1))


def health(parties: list[Party]) -> dict[int, Health]:
    """Each party's figures: two small lookups per party, one aggregate over the last day's
    messages and one over the notices, whatever the size of the log."""
    figures = {p.pk: Health(last_in=_last_at(p.pk, "in"), last_out=_last_at(p.pk, "out"))
               for p in parties}
    failed = case((ocpi_messages.failed_clause(), 1), else_=0)
    for party_pk, total, bad in db.session.execute(
        select(OcpiMessage.party_pk, func.count(), func.sum(failed))
        .where(OcpiMessage.at >= now_utc() - ERROR_WINDOW, OcpiMessage.party_pk.is_not(None))
        .group_by(OcpiMessage.party_pk)
    ).tuples():
        if party_pk in figures:
            figures[party_pk].messages, figures[party_pk].failed = total, int(bad or 0)
    for party_pk, kind, times in db.session.execute(
        select(OcpiNotice.party_pk, OcpiNotice.kind, func.sum(OcpiNotice.count))
        .group_by(OcpiNotice.party_pk, OcpiNotice.kind)
    ).tuples():
        if party_pk in figures:
            if kind == "DEVIATION":
                figures[party_pk].deviations += int(times or 0)
            else:
                figures[party_pk].other_notices += int(times or 0)
    return figures


def _page(status: int = 200, invitation: dict[str, str] | None = None,
          form: dict[str, str] | None = None) -> ResponseReturnValue:
    parties = list(db.session.scalars(select(Party).order_by(Party.pk)))
    return render_template(
        "dashboard/cpos.html", parties=parties, health=health(parties),
        notices=notices.latest(), names={p.pk: p.name for p in parties},
        invitation=invitation, form=form or {},
        error_hours=int(ERROR_WINDOW.total_seconds() // 3600)), status


@bp.get("/cpos")
@requires("view")
def cpos() -> ResponseReturnValue:
    return _page()


def _identities(text: str, default_role: str) -> list[credentials.Identity]:
    """'CPO:SE*ABC, HUB:DE*HUB' (commas, spaces or lines between) as identities."""
    return [credentials.parse_identity(part, default_role)
            for part in text.replace(",", " ").split()]


def in_words(exc: OcpiError) -> str:
    """What went wrong with a CPO, for an operator: the kind of failure first, then the
    technical line (which names the URL and the status, never the peer's own text)."""
    if isinstance(exc, PeerUnreachable):
        kind = gettext("The CPO could not be reached, or did not answer in OCPI.")
    elif exc.http_status == 401:
        kind = gettext("The CPO did not accept the token: check token A (or ask for a new "
                       "one).")
    elif exc.status_code == StatusCode.UNSUPPORTED_VERSION:
        kind = gettext("The CPO speaks no OCPI version ScanCharge speaks (2.2.1 or 2.1.1).")
    elif exc.status_code == StatusCode.NO_MATCHING_ENDPOINTS:
        kind = gettext("The CPO does not offer what ad-hoc charging needs.")
    elif exc.status_code == StatusCode.INVALID_PARAMETERS:
        kind = gettext("The connection was refused.")
    else:
        kind = gettext("The CPO answered with an error.")
    return f"{kind} ({exc.message})"


@bp.post("/cpos/invite")
@requires("manage_cpos")
def invite_cpo() -> ResponseReturnValue:
    """A token A for a CPO (or hub) that will register with us; shown once, on this page."""
    form = {"invite_name": request.form.get("name", "").strip(),
            "roles": request.form.get("roles", "").strip()}
    try:
        if not form["invite_name"]:
            raise ValueError(gettext("Give the CPO's name."))
        party, token_a = credentials.invite(form["invite_name"],
                                            _identities(form["roles"], "CPO"))
    except ValueError as exc:
        flash(gettext("Not invited: %(why)s", why=str(exc)))
        return _page(400, form=form)
    except OcpiError as exc:
        flash(gettext("Not invited: %(why)s", why=exc.message))
        return _page(409, form=form)
    granted = ", ".join(g.label for g in party.grants)
    record("cpo_invite", target=party.name, detail=f"may register as {granted}")
    db.session.commit()
    flash(gettext("Invitation for %(name)s made: it may register as %(roles)s. Give it the "
                  "versions URL and token A below over a secure channel; the token is shown "
                  "only now.", name=party.name, roles=granted))
    return _page(invitation={"name": party.name, "versions_url": credentials.our_versions_url(),
                             "token": token_a})


@bp.post("/cpos/connect")
@requires("manage_cpos")
def connect_cpo() -> ResponseReturnValue:
    """Register with a CPO from its versions URL and token A (the credentials handshake),
    then import its Locations and Tariffs in the background."""
    form = {"versions_url": request.form.get("versions_url", "").strip(),
            "connect_name": request.form.get("name", "").strip(),
            "acting_for": request.form.get("acting_for", "").strip()}
    token_a = request.form.get("token", "").strip()
    try:
        if not form["versions_url"] or not token_a:
            raise ValueError(gettext("Give the CPO's versions URL and the token A it gave "
                                     "you."))
        party = credentials.connect(form["versions_url"], token_a, form["connect_name"] or None,
                                    acting_for=_identities(form["acting_for"], "CPO"))
    except ValueError as exc:
        flash(gettext("Not connected: %(why)s", why=str(exc)))
        return _page(400, form=form)
    except OcpiError as exc:
        db.session.rollback()
        record("cpo_connect_failed", target=form["versions_url"], detail=exc.message)
        db.session.commit()
        flash(gettext("Not connected: %(why)s", why=in_words(exc)))
        return _page(502, form=form)
    granted = ", ".join(g.label for g in party.grants)
    record("cpo_connect", target=party.name,
           detail=f"{party.versions_url}, OCPI {party.version}, granted {granted}")
    db.session.commit()
    pull_party.enqueue(party.pk, True)
    flash(gettext("Connected to %(name)s (%(party)s), OCPI %(version)s; granted %(roles)s. "
                  "Its Locations and Tariffs are being imported now.",
                  name=party.name, party=f"{party.country_code}*{party.party_id}",
                  version=party.version, roles=granted))
    if party.is_hub and not party.cpo_identities:
        flash(gettext("This is a hub and may act for no CPO yet: connect again naming the "
                      "CPOs it acts for."))
    return redirect(url_for("dashboard.cpos"))


@bp.post("/cpos/<int:pk>/sync")
@requires("manage_cpos")
def sync_cpo(pk: int) -> ResponseReturnValue:
    party = db.get_or_404(Party, pk)
    if party.status != "CONNECTED":
        flash(gettext("%(name)s is not connected: nothing to pull.", name=party.name))
        return redirect(url_for("dashboard.cpos"))
    record("cpo_sync", target=party.name, detail="Locations and Tariffs, full")
    db.session.commit()
    pull_party.enqueue(party.pk, True)
    flash(gettext("Pulling the Locations and Tariffs of %(name)s now. Its last successful "
                  "pull below changes when it is done; a failure shows in its messages.",
                  name=party.name))
    return redirect(url_for("dashboard.cpos"))


@bp.route("/cpos/<int:pk>/disconnect", methods=["GET", "POST"])
@requires("manage_cpos")
def disconnect_cpo(pk: int) -> ResponseReturnValue:
    """GET: what disconnecting means, and the button; POST: unregister (credentials DELETE)
    and stop accepting the CPO's requests, even when it cannot be told."""
    party = db.get_or_404(Party, pk)
    if request.method == "GET":
        return render_template("dashboard/cpo_disconnect.html", party=party)
    told = True
    try:
        credentials.disconnect(party)
    except OcpiError as exc:
        db.session.rollback()
        told = False
        record("cpo_disconnect", target=party.name, detail=f"not told: {exc.message}")
        flash(gettext("%(name)s is disconnected on our side, but could not be told (%(why)s).",
                      name=party.name, why=in_words(exc)))
    if told:
        record("cpo_disconnect", target=party.name, detail="credentials deleted at the CPO")
        flash(gettext("%(name)s is disconnected: ScanCharge no longer accepts its requests, "
                      "and its chargers have no driver page.", name=party.name))
    db.session.commit()
    return redirect(url_for("dashboard.cpos"))


@bp.get("/cpos/<int:pk>/messages")
@requires("view")
def cpo_messages(pk: int) -> str:
    """A party's OCPI messages, newest first; by module, failures only, a page at a time."""
    party = db.get_or_404(Party, pk)
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
