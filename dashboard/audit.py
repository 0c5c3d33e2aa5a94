"""The audit log's one writer: every operator action adds its row to the session of the
change it records, so the row and the change are committed (or rolled back) together.

The command line writes here too (record_command): `flask operator`, `flask cpo connect`,
`flask charges refund`, `flask qr sheet` and every other command that changes something
leave a row whose actor is "cli:" and the computer account that ran it, so the log shows
what was done beside the dashboard, not only on it.
"""

from __future__ import annotations

import getpass
import os
from typing import Any

from flask import g, has_request_context

from dashboard.models import OperatorAction
from extensions import db
from ratelimits import client_key

UNKNOWN_ACTOR = "unknown e-mail"
CLI_PREFIX = "cli:"


def record(action: str, *, target: str = "", detail: str = "",
           operator: Any = None) -> OperatorAction:
    """Add (not commit) one audit row; `operator` defaults to the signed-in one."""
    who = operator if operator is not None else g.get("operator")
    return _add(action, target, detail, operator_pk=who.pk if who is not None else None,
                actor=who.email if who is not None else UNKNOWN_ACTOR)


def record_command(action: str, *, target: str = "", detail: str = "") -> OperatorAction:
    """Add (not commit) the audit row of a CLI command's change, by cli_actor(). The
    command's own steps commit as they go (connect, set_operator, a refund's units of
    work), so its caller commits this row after them: a failed step leaves no row."""
    return _add(action, target, detail, operator_pk=None, actor=cli_actor())


def cli_actor() -> str:
    """"cli:" and the computer account running the command (its uid without a name)."""
    try:
        user = getpass.getuser()
    except (OSError, KeyError):  # a container's uid with no passwd entry
        user = str(os.getuid())
    return f"{CLI_PREFIX}{user}"


def _add(action: str, target: str, detail: str, *, operator_pk: int | None,
         actor: str) -> OperatorAction:
    row = OperatorAction(operator_pk=operator_pk, actor=actor[:255], action=action,
                         target=target[:255], detail=detail,
                         # A command has no client address; its actor says where it ran.
                         client_key_hash=client_key() if has_request_context() else "")
    db.session.add(row)
    return row
