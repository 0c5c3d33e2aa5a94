"""Signing in to the dashboard: password, lockout, the optional TOTP second step, sign-out,
and an operator's own two-factor enrolment.

An unknown e-mail gets the same work and the same answer as a known one: its password is
checked against a dummy hash made the same way as every real one, and failed sign-ins
(counted and locked out per keyed hash of the e-mail, in login_failures) are counted for it
just as for an operator's.
"""

from __future__ import annotations

import functools
import secrets
from datetime import timedelta
from typing import Any

from flask import current_app, flash, g, redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext, ngettext
from sqlalchemy import delete, or_, select, update
from sqlalchemy.exc import IntegrityError
from werkzeug.security import check_password_hash, generate_password_hash

import qrcodes
from dashboard import totp
from dashboard.audit import record
from dashboard.blueprint import bp
from dashboard.models import LoginFailure, Operator
from dashboard.permissions import requires
from extensions import db, rows_changed
from ocpi.transport import now_utc
from ratelimits import client_key, keyed_hash, rate_limits

# How long the password step stands waiting for its code.
CODE_STEP_SECONDS = 300


@functools.cache
def dummy_hash() -> str:
    """A hash of a random password, made as every operator's is (werkzeug's default method),
    so checking it costs what checking a real one does."""
    return generate_password_hash(secrets.token_urlsafe(16))


def password_matches(operator: Operator | None, password: str) -> bool:
    """One password check whoever asks: the operator's hash, or the dummy one for an
    unknown e-mail or an invitation not yet accepted."""
    known = operator is not None and bool(operator.password_hash)
    stored = operator.password_hash if operator is not None and known else dummy_hash()
    return check_password_hash(stored, password) and known


def locked_seconds(email_hash: str) -> int:
    row = db.session.get(LoginFailure, email_hash)
    if row is None or row.locked_until is None:
        return 0
    return max(0, int((row.locked_until - now_utc()).total_seconds()))


def note_failure(email_hash: str) -> bool:
    """Count one failed sign-in; True when it locks the e-mail out.

    Counted with one UPDATE (or the row's first INSERT), so parallel guesses at one e-mail
    are each counted; failures older than a lockout period, and ended lockouts, are dropped
    first, so a typo a week ago counts not and the table keeps only what is recent."""
    cfg = current_app.config
    period = timedelta(minutes=cfg["LOGIN_LOCKOUT_MINUTES"])
    now = now_utc()
    lf = LoginFailure
    db.session.execute(delete(lf).where(
        lf.first_failed_at < now - period, or_(lf.locked_until.is_(None), lf.locked_until < now)))
    one_more = update(lf).where(lf.email_hash == email_hash).values(failures=lf.failures + 1)
    if not rows_changed(one_more):
        try:
            with db.session.begin_nested():
                db.session.add(lf(email_hash=email_hash, failures=1, first_failed_at=now))
        except IntegrityError:  # a parallel failure inserted it first
            rows_changed(one_more)
    row = db.session.get_one(lf, email_hash, populate_existing=True)
    if row.failures >= cfg["LOGIN_LOCKOUT_ATTEMPTS"] and row.locked_until is None:
        row.locked_until = now + period
        return True
    return False


def clear_failures(email_hash: str) -> None:
    row = db.session.get(LoginFailure, email_hash)
    if row is not None:
        db.session.delete(row)


def _locked_answer(seconds: int) -> ResponseReturnValue:
    minutes = max(1, -(-seconds // 60))
    flash(ngettext("Too many failed sign-ins for this e-mail: it is locked for %(num)s more "
                   "minute. Wait, or ask an admin.",
                   "Too many failed sign-ins for this e-mail: it is locked for %(num)s more "
                   "minutes. Wait, or ask an admin.", minutes))
    response = current_app.make_response((render_template("dashboard/login.html"), 429))
    response.headers["Retry-After"] = str(seconds)
    return response


def _signed_in(operator: Operator, email_hash: str, how: str) -> ResponseReturnValue:
    clear_failures(email_hash)
    record("login", operator=operator, detail=how)
    db.session.commit()
    target = session.get("next") or request.args.get("next", "")
    session.clear()
    # Permanent: the cookie carries an expiry (PERMANENT_SESSION_LIFETIME), and
    # permissions.signed_in_operator bounds the sign-in itself to that lifetime.
    session.permanent = True
    session["operator_pk"] = operator.pk
    session["signed_in_at"] = now_utc().timestamp()
    if not target.startswith("/dashboard"):
        target = url_for("dashboard.charges")
    return redirect(target)


def _failed(operator: Operator | None, email_hash: str, step: str) -> ResponseReturnValue:
    locked = note_failure(email_hash)
    record("login_locked" if locked else "login_failed", operator=operator, detail=step)
    db.session.commit()
    if locked:
        return _locked_answer(locked_seconds(email_hash))
    flash(gettext("Wrong e-mail or password. Check both and try again.") if step == "password"
          else gettext("Wrong or used code. Use the current code from your authenticator app."))
    return render_template("dashboard/login_code.html" if step == "code"
                           else "dashboard/login.html")


@bp.route("/login", methods=["GET", "POST"])
def login() -> ResponseReturnValue:
    if request.method != "POST":
        return render_template("dashboard/login.html")
    email = request.form.get("email", "").strip().lower()
    # Every attempt per client; per e-mail only failures count, checked before the
    # password is, so a guesser spread over many addresses still meets a limit.
    limits = rate_limits()
    email_key = keyed_hash("operator-email", email)
    limits.hit("login_per_client", client_key())
    locked = locked_seconds(email_key)
    if locked:
        return _locked_answer(locked)
    limits.check("login_per_email", email_key)
    operator = db.session.scalar(select(Operator).where(Operator.email == email))
    if not password_matches(operator, request.form.get("password", "")):
        limits.count("login_per_email", email_key)
        return _failed(operator, email_key, "password")
    assert operator is not None
    if operator.disabled_at is not None:
        # Said only to someone who knows the password: it tells them whom to ask.
        record("login_refused", operator=operator, detail="disabled")
        db.session.commit()
        flash(gettext("This login is disabled. Ask an admin to enable it."))
        return render_template("dashboard/login.html"), 403
    if operator.totp_secret:
        session.clear()
        session.update(pending_pk=operator.pk, pending_at=now_utc().timestamp(),
                       next=request.args.get("next", ""))
        return redirect(url_for("dashboard.login_code"))
    return _signed_in(operator, email_key, "password")


@bp.route("/login/code", methods=["GET", "POST"])
def login_code() -> ResponseReturnValue:
    operator = db.session.get(Operator, session.get("pending_pk") or 0)
    started = session.get("pending_at", 0)
    if (operator is None or not operator.totp_secret or operator.disabled_at is not None
            or now_utc().timestamp() - started > CODE_STEP_SECONDS):
        session.clear()
        return redirect(url_for("dashboard.login"))
    if request.method != "POST":
        return render_template("dashboard/login_code.html")
    email_key = keyed_hash("operator-email", operator.email)
    rate_limits().hit("login_per_client", client_key())
    locked = locked_seconds(email_key)
    if locked:
        session.clear()
        return _locked_answer(locked)
    step = totp.verify(operator.totp_secret, request.form.get("code", ""),
                       last_step=operator.totp_last_step)
    if step is None:
        return _failed(operator, email_key, "code")
    operator.totp_last_step = step
    return _signed_in(operator, email_key, "password and code")


@bp.post("/logout")
def logout() -> ResponseReturnValue:
    operator = db.session.get(Operator, session.get("operator_pk") or 0)
    if operator is not None:
        record("logout", operator=operator)
        db.session.commit()
    session.clear()
    return redirect(url_for("dashboard.login"))


@bp.get("/account")
@requires("view")
def account() -> str:
    return render_template("dashboard/account.html")


def _enrol_page(secret: str, email: str) -> str:
    uri = totp.otpauth_uri(secret, email)
    svg = qrcodes.qr_svg(uri, "ScanCharge").decode()
    return render_template("dashboard/totp_enrol.html", secret=secret, uri=uri, qr_svg=svg)


@bp.post("/account/totp/begin")
@requires("view")
def totp_begin() -> str:
    # Kept in the (signed) session until confirmed: an abandoned enrolment changes nothing.
    session["totp_pending"] = totp.new_secret()
    return _enrol_page(session["totp_pending"], g.operator.email)


@bp.post("/account/totp/confirm")
@requires("view")
def totp_confirm() -> ResponseReturnValue:
    secret = session.get("totp_pending")
    if not secret:
        return redirect(url_for("dashboard.account"))
    step = totp.verify(secret, request.form.get("code", ""))
    if step is None:
        flash(gettext("That code does not match. Check the clock of your phone and try the "
                      "current code."))
        return _enrol_page(secret, g.operator.email)
    operator: Any = g.operator
    operator.totp_secret, operator.totp_last_step = secret, step
    session.pop("totp_pending", None)
    record("totp_enabled", target=operator.email)
    db.session.commit()
    flash(gettext("Two-factor sign-in is on: from now on you sign in with your password "
                  "and a code."))
    return redirect(url_for("dashboard.account"))


@bp.post("/account/totp/disable")
@requires("view")
def totp_disable() -> ResponseReturnValue:
    operator: Any = g.operator
    step = totp.verify(operator.totp_secret or "", request.form.get("code", ""),
                       last_step=operator.totp_last_step) if operator.totp_secret else None
    if step is None:
        flash(gettext("Give a current code from your authenticator app to turn two-factor "
                      "sign-in off."))
        return redirect(url_for("dashboard.account"))
    operator.totp_secret, operator.totp_last_step = None, None
    record("totp_disabled", target=operator.email)
    db.session.commit()
    flash(gettext("Two-factor sign-in is off."))
    return redirect(url_for("dashboard.account"))
