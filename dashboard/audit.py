"""The audit log's one writer: every operator action adds its row to the session of the
change it records, so the row and the change are committed (or rolled back) together."""

from __future__ import annotations

from typing import Any

from flask import g

from dashboard.models import OperatorAction
from extensions import db
from ratelimits import client_key

UNKNOWN_ACTOR = "unknown e-mail"


def record(action: str, *, target: str = "", detail: str = "",
           operator: Any = None) -> OperatorAction:
    """Add (not commit) one audit row; `operator` defaults to the signed-in one."""
    who = operator if operator is not None else g.get("operator")
    row = OperatorAction(operator_pk=who.pk if who is not None else None,
                         actor=who.email if who is not None else UNKNOWN_ACTOR,
                         action=action, target=target[:255], detail=detail,
                         client_key_hash=client_key())
    db.session.add(row)
    return row
