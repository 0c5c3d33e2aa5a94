"""The Tariffs Receiver (mod_tariffs.asciidoc): a CPO pushes (PUT), reads back (GET) or
removes (DELETE) a Tariff."""

from __future__ import annotations

from flask import Response, request

from extensions import db
from ocpi import store
from ocpi.endpoints.blueprint import (
    VERSION,
    bp,
    json_body,
    ocpi_response,
    require_match,
    require_owner,
)
from ocpi.transport import OcpiError, StatusCode


@bp.route(
    f"/{VERSION}/tariffs/<country_code>/<party_id>/<tariff_id>",
    methods=["GET", "PUT", "DELETE"],
)
def tariff(country_code: str, party_id: str, tariff_id: str) -> Response:
    party = require_owner(country_code, party_id)
    row = store.find_tariff(country_code, party_id, tariff_id)
    if request.method == "GET":
        if row is None:
            raise OcpiError(StatusCode.CLIENT_ERROR, "Unknown Tariff", http_status=404)
        return ocpi_response(row.data)
    if request.method == "DELETE":
        if row is None:
            raise OcpiError(StatusCode.CLIENT_ERROR, "Unknown Tariff", http_status=404)
        db.session.delete(row)
        db.session.commit()
        return ocpi_response()
    body = json_body()
    require_match(body, country_code, party_id, "id", tariff_id)
    _, created = store.upsert_tariff(party, body)
    db.session.commit()
    return ocpi_response(http_status=201 if created else 200)
