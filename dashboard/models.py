"""Operators: the people who sign in to the dashboard, their roles, invitations, second
factor, failed sign-ins, and the audit log of what each of them did."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text, select
from sqlalchemy.orm import Mapped, mapped_column
from werkzeug.security import check_password_hash, generate_password_hash

import passwords
from extensions import Model, db
from ocpi.transport import now_utc
from ratelimits import keyed_hash


class Operator(Model):
    __tablename__ = "operators"

    pk: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(255), unique=True)
    # Empty while an invitation is open: no password signs in to it.
    password_hash: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(default=now_utc)
    # admin | support | accounting (dashboard/permissions.py). The login that existed before
    # roles was the only one, and ran everything: admin.
    role: Mapped[str] = mapped_column(String(20), default="admin", server_default="admin")
    disabled_at: Mapped[datetime | None]
    # The SHA-256 of the invitation link's token (the token itself is only in the link).
    invite_token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    invite_expires_at: Mapped[datetime | None]
    # TOTP (RFC 6238): the base32 secret once confirmed, and the last time step used, so a
    # code seen over a shoulder cannot be used a second time.
    totp_secret: Mapped[str | None] = mapped_column(String(64))
    totp_last_step: Mapped[int | None]

    def check_password(self, password: str) -> bool:
        if not self.password_hash:
            return False
        return check_password_hash(self.password_hash, password)

    @property
    def active(self) -> bool:
        return self.disabled_at is None and bool(self.password_hash)


class LoginFailure(Model):
    """Failed sign-ins per e-mail, known or not (keyed by a keyed hash of the e-mail), so a
    lockout answers an unknown e-mail exactly as it answers an operator's."""

    __tablename__ = "login_failures"

    email_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    failures: Mapped[int] = mapped_column(default=0)
    first_failed_at: Mapped[datetime] = mapped_column(default=now_utc)
    locked_until: Mapped[datetime | None]


class OperatorAction(Model):
    """The audit log: one row per operator action, written in the action's transaction."""

    __tablename__ = "operator_actions"
    __table_args__ = (Index("ix_operator_actions_operator_pk", "operator_pk"),)

    pk: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=now_utc)
    operator_pk: Mapped[int | None] = mapped_column(ForeignKey("operators.pk"))
    # Who, as shown (an e-mail; a failed sign-in for no operator: "unknown e-mail").
    actor: Mapped[str] = mapped_column(String(255))
    action: Mapped[str] = mapped_column(String(40))
    target: Mapped[str] = mapped_column(String(255), default="")
    detail: Mapped[str] = mapped_column(Text, default="")
    # ratelimits.client_key(): a keyed hash, never the address itself.
    client_key_hash: Mapped[str] = mapped_column(String(64), default="")


def set_operator(email: str, password: str, *, check_policy: bool = True,
                 role: str | None = None) -> Operator:
    """Create or reset a login (a new one is an admin unless `role` says otherwise). The
    password policy applies here, so no path around the CLI can store a weak one; only the
    embedded default's demo login skips it (check_policy=False), and production refuses
    that one at start-up."""
    email = email.strip().lower()
    if check_policy:
        passwords.check_password(password, email)
    operator = db.session.scalar(select(Operator).where(Operator.email == email))
    if operator is None:
        operator = Operator(email=email, password_hash="", role=role or "admin")
        db.session.add(operator)
    elif role:
        operator.role = role
    operator.password_hash = generate_password_hash(password)
    operator.invite_token_hash = operator.invite_expires_at = None
    # The way back in for a locked-out or disabled operator is a reset by whoever runs the
    # server: it ends the lockout (and enables), but keeps the second factor.
    operator.disabled_at = None
    failure = db.session.get(LoginFailure, keyed_hash("operator-email", email))
    if failure is not None:
        db.session.delete(failure)
    db.session.commit()
    return operator
