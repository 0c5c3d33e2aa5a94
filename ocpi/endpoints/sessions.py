"""The Sessions Receiver (mod_sessions.asciidoc): a CPO pushes a Session whole (PUT) or
in part (PATCH), announced once stored (ocpi.signals.session_updated) and committed
together with what the domain does with it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Response, request

from extensions import stored_then_applied
from ocpi import signals, store
from ocpi.endpoints.blueprint import (
    VERSION,
    bp,
    json_body,
    ocpi_response,
    require_match,
    require_owner,
)
from ocpi.models import OcpiSession
from ocpi.transport import OcpiError, StatusCode


@bp.route(
    f"/{VERSION}/sessions/<country_code>/<party_id>/<session_id>",
    methods=["GET", "PUT", "PATCH"],
)
def session(country_code: str, party_id: str, session_id: str) -> Response:
    return session_endpoint(country_code, party_id, session_id)


def session_endpoint(
    country_code: str,
    party_id: str,
    session_id: str,
    *,
    put_body: Callable[[Any, str, str], dict[str, Any]] | None = None,
    patch_body: Callable[[Any], dict[str, Any]] | None = None,
    append_periods: bool = True,
) -> Response:
    """The Sessions receiver: GET the stored Session, or take a PUT or PATCH.

    `put_body`/`patch_body` turn a version's own Session (or patch) into the stored 2.2.1
    shape; 2.2.1 needs none.
    """
    party = require_owner(country_code, party_id)
    if request.method == "GET":
        row = store.find_session(country_code, party_id, session_id)
        if row is None:
            raise OcpiError(StatusCode.CLIENT_ERROR, "Unknown Session", http_status=404)
        return ocpi_response(store.session_json(row))
    body = json_body()
    require_match(body, country_code, party_id, "id", session_id)
    if request.method == "PUT":
        canonical = put_body(body, country_code, party_id) if put_body else body
    else:
        canonical = patch_body(body) if patch_body else body
    patch = request.method == "PATCH"

    def store_it() -> tuple[OcpiSession, bool]:
        # Locked only once the body is known to be JSON for this Session: what is refused
        # before here holds no lock.
        row = store.lock_session(country_code, party_id, session_id)
        if not patch:
            return store.put_session(party, canonical)
        if row is None:
            raise OcpiError(
                StatusCode.CLIENT_ERROR, "Unknown Session: PUT it first", http_status=404
            )
        store.patch_session(row, canonical, append_periods=append_periods)
        return row, False

    return receive_session(store_it)


def receive_session(store_it: Callable[[], tuple[OcpiSession, bool]]) -> Response:
    """Store a pushed Session (`store_it`: a PUT, or a PATCH of the stored one, under its
    lock) and announce it, in one transaction with what the domain does with it."""
    def announce(stored: tuple[OcpiSession, bool]) -> None:
        row = stored[0]
        signals.session_updated.send(
            "ocpi",
            session_pk=row.pk,
            status=row.status,
            authorization_reference=row.authorization_reference,
            token_uid=row.token_uid,
        )

    _, created = stored_then_applied(store_it, announce)
    return ocpi_response(http_status=201 if created else 200)
