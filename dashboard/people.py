"""The people pages (admin): operators, invitations, roles, disabling; the invitee's
set-a-password page; and the audit log.

Two rules keep the dashboard runnable: an admin cannot disable themselves, and the last
active admin can be neither disabled nor given another role.
"""

from __future__ import annotations

import hashlib
import secrets
import smtplib
from datetime import timedelta
from email.message import EmailMessage

from flask import abort, current_app, flash, g, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext
from sqlalchemy import func, select
from werkzeug.security import generate_password_hash

import passwords
from dashboard.audit import record
from dashboard.blueprint import PAGE_SIZE, bp
from dashboard.models import Operator, OperatorAction
from dashboard.permissions import ROLES, requires, role_name
from extensions import db
from ocpi.transport import now_utc


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _active_admins() -> int:
    return db.session.scalar(
        select(func.count()).select_from(Operator).where(
            Operator.role == "admin", Operator.disabled_at.is_(None),
            Operator.password_hash != "")
    ) or 0


def _people_page(invite_link: str | None = None, status: int = 200) -> ResponseReturnValue:
    people = db.session.scalars(select(Operator).order_by(Operator.email)).all()
    return render_template("dashboard/people.html", people=people, roles=list(ROLES),
                           invite_link=invite_link, now=now_utc()), status


@bp.get("/people")
@requires("manage_people")
def people() -> ResponseReturnValue:
    return _people_page()


@bp.post("/people/invite")
@requires("manage_people")
def invite() -> ResponseReturnValue:
    email = request.form.get("email", "").strip().lower()
    role = request.form.get("role", "")
    if "@" not in email or role not in ROLES:
        flash(gettext("Give the invitee's e-mail and one of the roles."))
        return _people_page(status=400)
    operator = db.session.scalar(select(Operator).where(Operator.email == email))
    if operator is not None and operator.password_hash:
        flash(gettext("%(email)s already has a login: change its role below instead.",
                      email=email))
        return _people_page(status=409)
    if operator is None:
        operator = Operator(email=email, password_hash="")
        db.session.add(operator)
    # The token is only in the link; the database keeps its hash, so a copy of the table
    # opens no invitation.
    token = secrets.token_urlsafe(32)
    hours = current_app.config["INVITATION_HOURS"]
    operator.role = role
    operator.disabled_at = None  # inviting again means it: a withdrawn invitation reopens
    operator.invite_token_hash = token_hash(token)
    operator.invite_expires_at = now_utc() + timedelta(hours=hours)
    record("invite", target=email, detail=f"role {role}, valid {hours} h")
    db.session.commit()
    link = url_for("dashboard.accept_invitation", token=token, _external=True)
    if current_app.config.get("SMTP_HOST"):
        flash(_mail_invitation(email, role, link, hours))
    else:
        flash(gettext("Invitation for %(email)s made. Send them the link below; it works "
                      "once, for %(hours)s hours.", email=email, hours=hours))
    return _people_page(invite_link=link)


def _mail_invitation(email: str, role: str, link: str, hours: int) -> str:
    """E-mail the link (SMTP as for receipts); say what happened, for the flash. Sent while
    the admin waits: they are told at once whether to pass the link on themselves."""
    from payments.mail import _send

    message = EmailMessage()
    message["From"] = current_app.config["MAIL_FROM"]
    message["To"] = email
    # In the inviting admin's language: the invitee has no language of their own here yet.
    message["Subject"] = gettext("Your ScanCharge dashboard invitation")
    message.set_content(gettext(
        "%(admin)s invited you to the ScanCharge operator dashboard as %(role)s.\n\n"
        "Choose your password here (the link works once, for %(hours)s hours):\n%(link)s\n",
        admin=g.operator.email, role=role_name(role), hours=hours, link=link))
    try:
        _send(message)
    except (smtplib.SMTPException, OSError) as exc:
        return gettext("Invitation for %(email)s made, but it could not be e-mailed "
                       "(%(error)s). Send them the link below yourself; it works once, for "
                       "%(hours)s hours.", email=email, error=exc, hours=hours)
    return gettext("Invitation for %(email)s made and e-mailed; the link is below too.",
                   email=email)


def _last_admin(operator: Operator) -> str:
    return gettext("%(email)s is the last admin: make another admin first.",
                   email=operator.email)


@bp.post("/people/<int:pk>/role")
@requires("manage_people")
def change_role(pk: int) -> ResponseReturnValue:
    operator = db.get_or_404(Operator, pk)
    role = request.form.get("role", "")
    if role not in ROLES:
        abort(400, gettext("Choose one of the roles."))
    if (operator.role == "admin" and role != "admin" and operator.active
            and _active_admins() <= 1):
        flash(_last_admin(operator))
        return _people_page(status=409)
    if role != operator.role:
        record("role_change", target=operator.email, detail=f"{operator.role} → {role}")
        operator.role = role
        db.session.commit()
        flash(gettext("%(email)s is now %(role)s.", email=operator.email,
                      role=role_name(role)))
    return redirect(url_for("dashboard.people"))


@bp.post("/people/<int:pk>/disable")
@requires("manage_people")
def disable(pk: int) -> ResponseReturnValue:
    operator = db.get_or_404(Operator, pk)
    if operator.pk == g.operator.pk:
        flash(gettext("You cannot disable yourself: ask another admin."))
        return _people_page(status=409)
    if operator.role == "admin" and operator.active and _active_admins() <= 1:
        flash(_last_admin(operator))
        return _people_page(status=409)
    if operator.disabled_at is None:
        # Their signed-in sessions end at their next request (permissions.signed_in_operator).
        operator.disabled_at = now_utc()
        operator.invite_token_hash = operator.invite_expires_at = None
        record("disable", target=operator.email)
        db.session.commit()
        flash(gettext("%(email)s is disabled and signed out.", email=operator.email))
    return redirect(url_for("dashboard.people"))


@bp.post("/people/<int:pk>/enable")
@requires("manage_people")
def enable(pk: int) -> ResponseReturnValue:
    operator = db.get_or_404(Operator, pk)
    if operator.disabled_at is not None:
        operator.disabled_at = None
        record("enable", target=operator.email)
        db.session.commit()
        flash(gettext("%(email)s can sign in again.", email=operator.email))
    return redirect(url_for("dashboard.people"))


@bp.post("/people/<int:pk>/reset-two-factor")
@requires("manage_people")
def reset_two_factor(pk: int) -> ResponseReturnValue:
    """For a lost phone: the operator signs in with the password alone, and enrols again."""
    operator = db.get_or_404(Operator, pk)
    if operator.totp_secret:
        operator.totp_secret, operator.totp_last_step = None, None
        record("totp_reset", target=operator.email)
        db.session.commit()
        flash(gettext("Two-factor sign-in is off for %(email)s; they can set it up again.",
                      email=operator.email))
    return redirect(url_for("dashboard.people"))


@bp.route("/invite/<token>", methods=["GET", "POST"])
def accept_invitation(token: str) -> ResponseReturnValue:
    operator = db.session.scalar(
        select(Operator).where(Operator.invite_token_hash == token_hash(token)))
    if (operator is None or operator.disabled_at is not None
            or operator.invite_expires_at is None or operator.invite_expires_at < now_utc()):
        return render_template("dashboard/invite.html", operator=None), 404
    problems: list[str] = []
    if request.method == "POST":
        password = request.form.get("password", "")
        problems = passwords.password_problems(password, operator.email)
        if password != request.form.get("repeat", ""):
            problems.append(gettext("the two passwords differ; type the same one twice"))
        if not problems:
            operator.password_hash = generate_password_hash(password)
            # One use: the link stops working the moment it has set a password.
            operator.invite_token_hash = operator.invite_expires_at = None
            record("invitation_accepted", operator=operator, target=operator.email,
                   detail=f"role {operator.role}")
            db.session.commit()
            flash(gettext("Your password is set. Sign in with your e-mail and it."))
            return redirect(url_for("dashboard.login"))
    return render_template("dashboard/invite.html", operator=operator, problems=problems)


@bp.get("/audit")
@requires("manage_people")
def audit_log() -> str:
    page = max(1, request.args.get("page", 1, type=int))
    # One row more than a page says whether there is a next page, without counting a log.
    rows = db.session.scalars(
        select(OperatorAction).order_by(OperatorAction.pk.desc())
        .offset((page - 1) * PAGE_SIZE).limit(PAGE_SIZE + 1)
    ).all()
    return render_template("dashboard/audit.html", actions=rows[:PAGE_SIZE], page=page,
                           has_next=len(rows) > PAGE_SIZE)
