"""Operators: the people who sign in to the dashboard."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String, select
from sqlalchemy.orm import Mapped, mapped_column
from werkzeug.security import check_password_hash, generate_password_hash

import passwords
from extensions import Model, db
from ocpi.transport import now_utc


class Operator(Model):
    __tablename__ = "operators"

    pk: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(255), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(default=now_utc)

    def check_password(self, password: str) -> bool:
        return check_password_hash(self.password_hash, password)


def set_operator(email: str, password: str, *, check_policy: bool = True) -> Operator:
    """Create or reset a login. The password policy applies here, so no path around the
    CLI can store a weak one; only the embedded default's demo login skips it
    (check_policy=False), and production refuses that one at start-up."""
    email = email.strip().lower()
    if check_policy:
        passwords.check_password(password, email)
    operator = db.session.scalar(select(Operator).where(Operator.email == email))
    if operator is None:
        operator = Operator(email=email, password_hash="")
        db.session.add(operator)
    operator.password_hash = generate_password_hash(password)
    db.session.commit()
    return operator
