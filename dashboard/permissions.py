"""Who may do what on the dashboard: one table, role → permissions, and the decorator that
guards every view with one permission.

A refused operator gets a 403 page naming the roles that may do it, so they know whom to ask.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from flask import current_app, g, redirect, render_template, request, session, url_for

from extensions import db
from ocpi.transport import now_utc

PERMISSIONS: dict[str, str] = {
    "view": "see charges, chargers, CPOs and messages",
    "stop": "stop a charge",
    "unlock": "unlock a connector",
    "resend": "resend a receipt",
    "refund": "refund a charge",
    "settle": "retry a capture, release a hold, mark a flagged charge resolved",
    "reports": "see reports",
    "exports": "download exports",
    "manage_cpos": "connect and disconnect CPOs",
    "manage_people": "invite operators, change roles, read the audit log",
}

ROLES: dict[str, frozenset[str]] = {
    "admin": frozenset(PERMISSIONS),
    "support": frozenset({"view", "stop", "unlock", "resend"}),
    "accounting": frozenset({"view", "reports", "exports"}),
}


def allowed(role: str, permission: str) -> bool:
    return permission in ROLES.get(role, frozenset())


def roles_with(permission: str) -> list[str]:
    return [role for role, granted in ROLES.items() if permission in granted]


def signed_in_operator() -> Any:
    """The session's operator, or None: also when disabled since, or signed in longer ago
    than PERMANENT_SESSION_LIFETIME (a session does not outlive its bound by being used)."""
    from dashboard.models import Operator

    operator = db.session.get(Operator, session.get("operator_pk") or 0)
    if operator is None or not operator.active:
        return None
    signed_in_at = session.get("signed_in_at", 0)
    lifetime: timedelta = current_app.permanent_session_lifetime
    if now_utc().timestamp() - signed_in_at > lifetime.total_seconds():
        return None
    return operator


def requires(permission: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    if permission not in PERMISSIONS:
        raise ValueError(f"unknown permission {permission!r}")

    def decorator(view: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            operator = signed_in_operator()
            if operator is None:
                # Not session.clear(): a sign-in waiting for its code keeps waiting.
                session.pop("operator_pk", None)
                return redirect(url_for("dashboard.login", next=request.path))
            g.operator = operator
            if not allowed(operator.role, permission):
                return render_template(
                    "dashboard/forbidden.html", permission=PERMISSIONS[permission],
                    roles=roles_with(permission), role=operator.role), 403
            return view(*args, **kwargs)

        wrapped.permission = permission  # type: ignore[attr-defined]
        return wrapped

    return decorator


def can(permission: str) -> bool:
    """For templates: whether the signed-in operator may (to show only usable buttons)."""
    operator = getattr(g, "operator", None)
    return operator is not None and allowed(operator.role, permission)
