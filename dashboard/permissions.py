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
from flask_babel import lazy_gettext as _
from flask_babel import lazy_pgettext as pgettext
from flask_babel.speaklater import LazyString

from extensions import db
from ocpi.transport import now_utc

# What each permission lets one do, in the operator's language when shown (lazy: these
# are read at import, the language only at a request). Read as "To <text>, you need …".
PERMISSIONS: dict[str, str | LazyString] = {
    "view": _("see charges, chargers, CPOs and messages"),
    "stop": _("stop a charge"),
    "unlock": _("unlock a connector"),
    "resend": _("resend a receipt"),
    "refund": _("refund a charge"),
    "settle": _("retry a capture, release a hold, mark a flagged charge resolved"),
    "reports": _("see reports"),
    "exports": _("download exports"),
    "manage_cpos": _("connect and disconnect CPOs"),
    "manage_people": _("invite operators, change roles, read the audit log"),
}

ROLES: dict[str, frozenset[str]] = {
    "admin": frozenset(PERMISSIONS),
    "support": frozenset({"view", "stop", "unlock", "resend"}),
    "accounting": frozenset({"view", "reports", "exports"}),
}


# The roles as people read them; the keys are what the database and forms hold.
ROLE_NAMES: dict[str, str | LazyString] = {
    "admin": pgettext("role", "admin"),
    "support": pgettext("role", "support"),
    "accounting": pgettext("role", "accounting"),
}


def role_name(role: str) -> str:
    """A role in the operator's language (its code when it has no name)."""
    return str(ROLE_NAMES.get(role, role))


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
                    roles=[role_name(r) for r in roles_with(permission)],
                    role=role_name(operator.role)), 403
            return view(*args, **kwargs)

        wrapped.permission = permission  # type: ignore[attr-defined]
        return wrapped

    return decorator


def can(permission: str) -> bool:
    """For templates: whether the signed-in operator may (to show only usable buttons)."""
    operator = getattr(g, "operator", None)
    return operator is not None and allowed(operator.role, permission)
