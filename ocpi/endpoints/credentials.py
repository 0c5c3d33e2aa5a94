"""Credentials (credentials.asciidoc), as the party registering with us sees it: GET,
POST, PUT and DELETE of the connection's credentials, per version."""

from __future__ import annotations

from flask import Response, g, request

from ocpi import credentials as creds
from ocpi.endpoints.blueprint import VERSION, bp, json_body, ocpi_response
from ocpi.models import Party
from ocpi.transport import OcpiError, StatusCode, token_candidates


@bp.route(f"/{VERSION}/credentials", methods=["GET", "POST", "PUT", "DELETE"])
def credentials() -> Response:
    return credentials_for(VERSION)


def credentials_for(version: str) -> Response:
    """The credentials module of `version`: registering here makes it the connection's."""
    party: Party = g.party
    registered = party.status == "CONNECTED"
    if request.method == "GET":
        if not registered:
            raise OcpiError(StatusCode.CLIENT_ERROR, "Not registered yet", http_status=405)
        # The token they use is stored hashed; GET returns our details with it redacted
        # only where we cannot know it, so we hand out the header value they authenticated with.
        token = token_candidates(request.headers.get("Authorization"))[0]
        return ocpi_response(creds.credentials_for_version(creds.our_credentials(token), version))
    if request.method == "POST":
        if registered:
            raise OcpiError(
                StatusCode.CLIENT_ERROR,
                "Already registered: use PUT to update, or DELETE first",
                http_status=405,
            )
        return ocpi_response(
            creds.register_incoming(party, json_body(), update=False, version=version)
        )
    if not registered:
        raise OcpiError(StatusCode.CLIENT_ERROR, "Not registered: POST first", http_status=405)
    if request.method == "PUT":
        return ocpi_response(
            creds.register_incoming(party, json_body(), update=True, version=version)
        )
    creds.unregister(party)
    return ocpi_response()
