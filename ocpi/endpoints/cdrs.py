"""The CDRs Receiver (mod_cdrs.asciidoc): a CPO posts a CDR, stored once and announced;
a CDR that cannot be taken in is announced as refused, so its charge does not wait for it."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any, TypedDict

from flask import Response, current_app, g, request, url_for

from extensions import db, stored_then_applied
from ocpi import notices, signals, store
from ocpi.endpoints.blueprint import (
    MAX_BODY_BYTES,
    VERSION,
    bp,
    json_body,
    ocpi_response,
    require_owner,
)
from ocpi.models import OcpiCdr, Party
from ocpi.modules.cdrs import Cdr
from ocpi.modules.common import parse
from ocpi.transport import OcpiError, StatusCode


@bp.post(f"/{VERSION}/cdrs")
def cdrs() -> Response:
    party: Party = g.party
    with flagging_refused_cdr(party):
        body = json_body()
        if not isinstance(body, dict):
            raise OcpiError(StatusCode.INVALID_PARAMETERS, "CDR must be a JSON object")
        body = store.tolerate_cdr(party, body)
        cdr = parse(Cdr, body)
        return receive_cdr(require_owner(cdr.country_code, cdr.party_id), body, cdr)


@contextmanager
def flagging_refused_cdr(party: Party, owner: tuple[str, str] | None = None) -> Iterator[None]:
    """A CDR that cannot be taken in (2001) is still announced: the charge it is for
    must not wait for it in silence. `owner` is the CDR's owner when the version's CDR
    names none (2.1.1); else it is read from the body, or the connection's own."""
    try:
        yield
    except OcpiError as exc:
        if exc.status_code == StatusCode.INVALID_PARAMETERS:
            refuse_cdr(party, exc.message, owner)
        raise


_SHORT = re.compile(r"[ -~]{1,39}")
_RAW_KEY = re.compile(r'"(authorization_reference|uid|auth_id)"\s*:\s*"([ -!#-\[\]-~]{1,36})"')


def _short(value: Any) -> str | None:
    # Only plain short printable text is passed on: it is looked up, never trusted.
    return value if isinstance(value, str) and _SHORT.fullmatch(value) else None


class RefusedCdrKeys(TypedDict):
    """What signals.cdr_refused names a refused CDR by (besides party_pk and reason)."""

    country_code: str
    party_id: str
    cdr_id: str | None
    authorization_reference: str | None
    token_uid: str | None


def refused_cdr_keys(raw: bytes, party: Party,
                     owner: tuple[str, str] | None = None) -> RefusedCdrKeys:
    """Best effort: the ids a refused CDR's raw body names, however broken it is."""
    keys: dict[str, str | None] = {"cdr_id": None, "authorization_reference": None,
                                   "token_uid": None}
    data: Any = None
    text = raw[:MAX_BODY_BYTES].decode("utf-8", errors="replace")
    try:
        data = json.loads(text, parse_float=Decimal)
    except (ValueError, RecursionError):
        for name, value in _RAW_KEY.findall(text):
            field = "authorization_reference" if name == "authorization_reference" \
                else "token_uid"
            keys[field] = keys[field] or value
    if isinstance(data, dict):
        token = data.get("cdr_token")
        keys["cdr_id"] = _short(data.get("id"))
        keys["authorization_reference"] = _short(data.get("authorization_reference"))
        keys["token_uid"] = (_short(token.get("uid")) if isinstance(token, dict) else None) \
            or _short(data.get("auth_id"))  # 2.1.1 names the Token by auth_id
    country_code, party_id = owner or (None, None)
    if owner is None and isinstance(data, dict):
        country_code, party_id = _short(data.get("country_code")), _short(data.get("party_id"))
        if not (country_code and len(country_code) == 2 and party_id and len(party_id) == 3):
            country_code = party_id = None
    return RefusedCdrKeys(country_code=country_code or party.country_code or "",
                          party_id=party_id or party.party_id or "",
                          cdr_id=keys["cdr_id"],
                          authorization_reference=keys["authorization_reference"],
                          token_uid=keys["token_uid"])


def refuse_cdr(party: Party, reason: str, owner: tuple[str, str] | None = None) -> None:
    """Note the refused CDR (REFUSED notice; the message log keeps its body as sent)
    and announce it after this request's own transaction, which stores nothing of it."""
    party_pk = party.pk
    keys = refused_cdr_keys(request.get_data(cache=True), party, owner)
    db.session.rollback()
    cdr_id = keys["cdr_id"] or ""
    notices.record(
        party_pk, "REFUSED", "CDR_REFUSED",
        f"CDR {keys['country_code']}*{keys['party_id']} {cdr_id or '(no id)'} refused: "
        f"{reason}",
        object_key=f"CDR:{cdr_id}",
    )
    db.session.commit()
    signals.cdr_refused.send("ocpi", party_pk=party_pk, reason=reason, **keys)


def receive_cdr(party: Party, body: dict[str, Any], parsed: Cdr | None = None) -> Response:
    """Store a pushed CDR (once), answer where it can be read back, and announce it, in
    one transaction with what the domain does with it."""
    def store_it() -> tuple[OcpiCdr, bool, int]:
        row, created = store.store_cdr(party, body, parsed)
        return row, created, row.pk  # its pk read now: after the commit it is expired

    def announce(stored: tuple[OcpiCdr, bool, int]) -> None:
        row = stored[0]
        signals.cdr_received.send(
            "ocpi",
            cdr_pk=row.pk,
            authorization_reference=row.authorization_reference,
            token_uid=row.token_uid,
            session_id=row.session_id,
        )

    _, created, pk = stored_then_applied(store_it, announce)
    location = current_app.config["PUBLIC_BASE_URL"].rstrip("/") + url_for(
        "ocpi.cdr", cdr_pk=pk, _external=False)
    return ocpi_response(http_status=201 if created else 200, headers={"Location": location})


@bp.get(f"/{VERSION}/cdrs/<int:cdr_pk>")
def cdr(cdr_pk: int) -> Response:
    row = db.session.get(OcpiCdr, cdr_pk)
    if row is None or row.party_pk != g.party.pk:
        raise OcpiError(StatusCode.CLIENT_ERROR, "Unknown CDR", http_status=404)
    return ocpi_response(row.data)
