"""The HubClientInfo Receiver (mod_hub_client_info.asciidoc): a hub pushes (PUT) or
reads back (GET) what it says about a party behind it; only a connection with a HUB role
may (ocpi.hubclientinfo applies it)."""

from __future__ import annotations

from flask import Response, g, request

from extensions import db
from ocpi import notices
from ocpi.endpoints.blueprint import VERSION, bp, json_body, ocpi_response, require_match
from ocpi.hubclientinfo import apply
from ocpi.models import Party
from ocpi.modules.hubclientinfo import parse_client_info
from ocpi.transport import OcpiError, StatusCode, format_datetime


def _require_hub() -> Party:
    party: Party = g.party
    if not party.is_hub:
        notices.record(party.pk, "REFUSED", "CLIENT_INFO_NOT_A_HUB",
                       f"{request.method} hubclientinfo from a connection without a HUB role")
        db.session.commit()
        raise OcpiError(StatusCode.CLIENT_ERROR,
                        "hubclientinfo is for hubs: this connection holds no HUB role",
                        http_status=404)
    return party


@bp.route(f"/{VERSION}/hubclientinfo/<country_code>/<party_id>", methods=["GET", "PUT"])
def hub_client_info(country_code: str, party_id: str) -> Response:
    hub = _require_hub()
    if request.method == "GET":
        grant = hub.grant_for(country_code, party_id)
        if grant is None or grant.hub_status is None or grant.hub_status_updated is None:
            raise OcpiError(StatusCode.CLIENT_ERROR, "Unknown ClientInfo", http_status=404)
        return ocpi_response({
            "party_id": grant.party_id, "country_code": grant.country_code, "role": "CPO",
            "status": grant.hub_status, "last_updated": format_datetime(grant.hub_status_updated),
        })
    body = json_body()
    require_match(body, country_code, party_id, "country_code", country_code)
    info = parse_client_info(body)
    apply(hub, info)
    db.session.commit()
    return ocpi_response()
