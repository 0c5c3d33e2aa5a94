"""The Tokens Sender (mod_tokens.asciidoc): the Tokens we issued, page by page, each only
to the CPO it was issued for, and their real-time authorisation, which the domain answers
(ocpi.answers.AuthorizeToken)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Response, g, request
from sqlalchemy import func, select

from extensions import db
from ocpi import answers
from ocpi.answers import TokenAuthorization
from ocpi.endpoints.blueprint import MAX_PAGE, VERSION, bp, json_body, ocpi_response
from ocpi.models import IssuedToken, Party
from ocpi.modules.common import parse
from ocpi.modules.tokens import LocationReferences
from ocpi.transport import OcpiError, StatusCode, pagination_headers, parse_datetime


def _page_args() -> tuple[int, int]:
    # Digits only, and few: int() also reads " 5", "٥" and 10**4000, and an OFFSET beyond
    # a 64-bit integer is a database error.
    values = []
    for name, default in (("offset", "0"), ("limit", str(MAX_PAGE))):
        text = request.args.get(name, default)
        if not (text.isascii() and text.isdigit() and len(text) <= 9):
            raise OcpiError(StatusCode.INVALID_PARAMETERS,
                            "offset and limit must be integers (at most 9 digits)")
        values.append(int(text))
    offset, limit = values
    return offset, max(1, min(limit, MAX_PAGE))


def _date_arg(name: str) -> Any:
    text = request.args.get(name)
    if not text:
        return None
    if len(text) > 64 or not all(" " <= ch <= "~" for ch in text):
        raise OcpiError(StatusCode.INVALID_PARAMETERS,
                        f"Bad date filter: {name} is no OCPI DateTime")
    try:
        return parse_datetime(text)
    except (ValueError, OverflowError) as exc:
        raise OcpiError(StatusCode.INVALID_PARAMETERS, f"Bad date filter: {exc}") from exc


@bp.get(f"/{VERSION}/tokens")
def tokens() -> Response:
    return tokens_page(lambda row: row.data)


def tokens_page(render: Callable[[IssuedToken], dict[str, Any]]) -> Response:
    """One page of the Tokens we issued, each rendered for the connection's version."""
    offset, limit = _page_args()
    # A party sees only the Tokens issued for charges at its own locations.
    query = select(IssuedToken).where(*tokens_of(g.party))
    date_from, date_to = _date_arg("date_from"), _date_arg("date_to")
    if date_from is not None:
        query = query.where(IssuedToken.last_updated >= date_from)
    if date_to is not None:
        query = query.where(IssuedToken.last_updated < date_to)
    total = db.session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = db.session.scalars(
        query.order_by(IssuedToken.last_updated, IssuedToken.pk).offset(offset).limit(limit)
    ).all()
    headers = pagination_headers(request.url, offset, limit, total, len(rows))
    return ocpi_response([render(r) for r in rows], headers=headers)


def tokens_of(party: Party) -> list[Any]:
    """Conditions for the Tokens issued to this connection, and on a hub connection, to
    the CPO it says it acts for (OCPI-from headers), when that is one the hub may serve."""
    conditions: list[Any] = [IssuedToken.party_pk == party.pk]
    sender = (request.headers.get("OCPI-from-country-code", "").upper(),
              request.headers.get("OCPI-from-party-id", "").upper())
    if party.is_hub and all(sender):
        if not party.owns(*sender):
            raise OcpiError(StatusCode.CLIENT_ERROR,
                            f"{sender[0]}/{sender[1]} is not a party of this connection",
                            http_status=404)
        conditions += [IssuedToken.country_code == sender[0],
                       IssuedToken.party_id == sender[1]]
    return conditions


@bp.post(f"/{VERSION}/tokens/<uid>/authorize")
def authorize(uid: str) -> Response:
    row = db.session.scalar(select(IssuedToken).where(IssuedToken.uid == uid.upper(),
                                                      *tokens_of(g.party)))
    token_type = request.args.get("type", "RFID").upper()
    if row is None or row.type != token_type:
        # Another party's Token is as unknown to this one as a Token never issued.
        raise OcpiError(StatusCode.UNKNOWN_TOKEN, "Unknown Token", http_status=404)
    return ocpi_response({**authorization_info(row), "token": row.data})


def authorization_info(row: IssuedToken) -> dict[str, Any]:
    """AllowedType (and, when allowed, the location and reference) for a Token we issued,
    from its state and, where the request names one, its location (mod_tokens)."""
    refs = json_body() if request.get_data() else None
    if refs is not None:
        refs = parse(LocationReferences, refs).to_json()
    answer: TokenAuthorization | None = answers.current().authorize_token(
        row.uid, refs, party_pk=g.party.pk, country_code=row.country_code,
        party_id=row.party_id,
    )
    if answer is None:  # no charge of the domain's: the Token's own validity decides
        answer = {"allowed": "ALLOWED" if row.valid else "EXPIRED"}
    if not row.valid and answer["allowed"] == "ALLOWED":
        answer = {"allowed": "EXPIRED"}
    info: dict[str, Any] = {"allowed": answer["allowed"]}
    if answer["allowed"] == "ALLOWED":
        if answer.get("authorization_reference"):
            info["authorization_reference"] = answer["authorization_reference"]
        if refs is not None:
            evse_uids = answer.get("evse_uids") or refs.get("evse_uids")
            info["location"] = {"location_id": refs["location_id"],
                                **({"evse_uids": evse_uids} if evse_uids else {})}
    return info

