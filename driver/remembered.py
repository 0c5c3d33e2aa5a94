"""The phone remembers its charges: a cookie with the public ids of the charges started (or
opened by their link) on this phone, so rescanning the sticker, the back button or the
site's front page lead back to the charge, and a finished charge to its receipt.

The public id is the driver's only credential; the cookie holds nothing else and nothing
more than the link does: HttpOnly (no script reads it), Secure in production or over
https, SameSite=Lax, path /, at most MAX_CHARGES ids (newest first) for COOKIE_DAYS days.
A finished charge is offered for FINISHED_FOR after it ended, then forgotten on screen.

What the pages do with it (the choice, docs/api.md "This phone's charges"):
- the charger page of an EVSE where this phone's charge is paid and running (AUTHORIZED to
  STOPPING) redirects to that charge: the rescanning driver wants their charge, and that
  charger cannot start another one meanwhile;
- every other driver page that lists (`/`, other chargers' pages, the unknown-charger
  page) shows a banner "Your charge at <EVSE> – View / stop", or after it finished a link
  to the receipt, so a second charge at another charger stays one tap away.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from flask import Response, current_app, g, request, url_for
from sqlalchemy import select

from charging.models import Charge
from charging.states import ChargeStatus as S
from driver.messages import status_text
from extensions import db
from ocpi.models import OcpiEvse
from ocpi.transport import now_utc
from payments.models import Receipt
from ratelimits import count_lookup

COOKIE = "charges"
COOKIE_DAYS = 7
MAX_CHARGES = 5
FINISHED_FOR = timedelta(hours=24)
_PUBLIC_ID = re.compile(r"[A-Za-z0-9_-]{16,32}")
# Paid and not yet ended: the charger is busy with this phone's charge.
RUNNING = {S.AUTHORIZED, S.STARTING, S.CHARGING, S.STOPPING}
OPEN = RUNNING | {S.ENDED}
WITH_RECEIPT = {S.CAPTURED, S.REFUNDED}


def clean_evse_id(typed: str) -> str:
    """An EVSE-ID as a person types or a scanner reads it: spaces dropped, the separators
    and the case left to OcpiEvse.normalise_evse_id ('se*abc*e 1' finds SE*ABC*E1)."""
    return "".join(typed.split())[:64]


def _ids() -> list[str]:
    found: list[str] = []
    for part in request.cookies.get(COOKIE, "").split("."):
        if _PUBLIC_ID.fullmatch(part) and part not in found:
            found.append(part)
    return found[:MAX_CHARGES]


def remember(response: Response, public_id: str) -> None:
    """Add a charge to this phone's list (set when the charge is created or its link opened)."""
    ids = [public_id, *(i for i in _ids() if i != public_id)][:MAX_CHARGES]
    secure = current_app.config.get("ENV") == "production" or request.is_secure
    response.set_cookie(COOKIE, ".".join(ids), max_age=COOKIE_DAYS * 24 * 3600, path="/",
                        httponly=True, secure=secure, samesite="Lax")


def _mine() -> list[Charge]:
    """This phone's charges, newest first (looked up once per request)."""
    if "my_charges" not in g:
        ids = _ids()
        charges: list[Charge] = []
        if ids:
            count_lookup()  # ids from a cookie are look-ups by id like any other
            rows = {c.public_id: c for c in db.session.scalars(
                select(Charge).where(Charge.public_id.in_(ids)))}
            charges = [rows[i] for i in ids if i in rows]
        g.my_charges = charges
    return g.my_charges


def _same_evse(a: str, b: str) -> bool:
    return OcpiEvse.normalise_evse_id(a) == OcpiEvse.normalise_evse_id(b)


def running_at(evse_id: str) -> str | None:
    """The public id of this phone's paid, running charge at `evse_id`, if there is one."""
    for charge in _mine():
        if charge.state in RUNNING and _same_evse(charge.evse_id, evse_id):
            return charge.public_id
    return None


def banners(language: str, evse_id: str | None = None) -> list[dict[str, Any]]:
    """What the pages show about this phone's charges: each open one, and each finished one
    with a receipt for FINISHED_FOR; `here` when it is at `evse_id`."""
    shown = []
    for charge in _mine():
        state = charge.state
        item = {"evse_id": charge.evse_id, "status_text": status_text(charge.status, language),
                "here": evse_id is not None and _same_evse(charge.evse_id, evse_id),
                "can_stop": state == S.CHARGING}
        if state in OPEN:
            shown.append({**item, "kind": "open",
                          "url": url_for("driver.charge_page", public_id=charge.public_id)})
        elif state in WITH_RECEIPT and charge.receipt_pk is not None:
            ended = charge.session_ended_at or charge.updated_at
            receipt = db.session.get(Receipt, charge.receipt_pk)
            if receipt is not None and ended is not None and now_utc() - ended < FINISHED_FOR:
                shown.append({**item, "kind": "receipt",
                              "url": url_for("driver.receipt", token=receipt.public_token)})
    return shown
