"""ScanCharge's OCPI 2.1.1 endpoints (eMSP), for CPOs that have not moved on to 2.2.1.

A translation at the edge: they live on the same blueprint as 2.2.1, so authentication,
errors, envelope and message log are shared; each translates what the CPO sends into the
2.2.1 objects ScanCharge stores (ocpi.v211) and hands it to the 2.2.1 module's own code,
through its public names only.
"""

from __future__ import annotations

from flask import Response, g, request

from extensions import db
from ocpi import credentials as creds
from ocpi import signals, store, v211
from ocpi.endpoints.blueprint import bp, json_body, ocpi_response, require_match, require_owner
from ocpi.endpoints.cdrs import cdr, flagging_refused_cdr, receive_cdr
from ocpi.endpoints.commands import command_result
from ocpi.endpoints.credentials import credentials_for
from ocpi.endpoints.sessions import session_endpoint
from ocpi.endpoints.tokens import authorization_info, tokens_of, tokens_page
from ocpi.models import IssuedToken, Party
from ocpi.transport import OcpiError, StatusCode

V = v211.VERSION


def _own_party() -> Party:
    party: Party = g.party
    if not party.country_code or not party.party_id:
        raise OcpiError(StatusCode.CLIENT_ERROR, "Register first", http_status=405)
    return party


@bp.get(f"/{V}", endpoint="version_details_211")
def version_details_211() -> Response:
    base = f"{creds.ocpi_base_url()}/{V}"
    return ocpi_response({
        "version": V,
        "endpoints": [{"identifier": name, "url": f"{base}/{name}"} for name in v211.OUR_ENDPOINTS],
    })


@bp.route(f"/{V}/credentials", methods=["GET", "POST", "PUT", "DELETE"],
          endpoint="credentials_211")
def credentials_211() -> Response:
    return credentials_for(V)


@bp.route(f"/{V}/locations/<country_code>/<party_id>/<location_id>",
          methods=["PUT", "PATCH"], endpoint="location_211")
@bp.route(f"/{V}/locations/<country_code>/<party_id>/<location_id>/<evse_uid>",
          methods=["PUT", "PATCH"], endpoint="location_211")
@bp.route(f"/{V}/locations/<country_code>/<party_id>/<location_id>/<evse_uid>/<connector_id>",
          methods=["PUT", "PATCH"], endpoint="location_211")
def location_211(country_code: str, party_id: str, location_id: str,
                 evse_uid: str | None = None, connector_id: str | None = None) -> Response:
    party = require_owner(country_code, party_id)
    body = json_body()
    row = store.find_location(country_code, party_id, location_id)
    if request.method == "PUT" and evse_uid is None:
        require_match(body, country_code, party_id, "id", location_id)
        row, created = store.upsert_location(
            party, v211.location_to_canonical(body, country_code, party_id))
    else:
        if row is None:
            raise OcpiError(StatusCode.UNKNOWN_LOCATION, "Unknown Location", http_status=404)
        if request.method == "PUT":
            raise OcpiError(StatusCode.CLIENT_ERROR,
                            "PUT of a single EVSE or Connector: send the whole Location",
                            http_status=405)
        if not isinstance(body, dict):
            raise OcpiError(StatusCode.INVALID_PARAMETERS, "PATCH body must be an object")
        if "evses" in body:
            if not isinstance(body["evses"], list):
                raise OcpiError(StatusCode.INVALID_PARAMETERS, "evses must be a list")
            body = {**body, "evses": [v211.evse_to_canonical(e) for e in body["evses"]]}
        store.patch_location(row, body, evse_uid, connector_id)
        created = False
    db.session.commit()
    signals.location_updated.send("ocpi", party_pk=party.pk, location_id=row.location_id,
                                  evse_uid=evse_uid)
    return ocpi_response(http_status=201 if created else 200)


@bp.route(f"/{V}/tariffs/<country_code>/<party_id>/<tariff_id>", methods=["PUT", "DELETE"],
          endpoint="tariff_211")
def tariff_211(country_code: str, party_id: str, tariff_id: str) -> Response:
    party = require_owner(country_code, party_id)
    if request.method == "DELETE":
        row = store.find_tariff(country_code, party_id, tariff_id)
        if row is None:
            raise OcpiError(StatusCode.CLIENT_ERROR, "Unknown Tariff", http_status=404)
        db.session.delete(row)
        db.session.commit()
        return ocpi_response()
    body = json_body()
    require_match(body, country_code, party_id, "id", tariff_id)
    _, created = store.upsert_tariff(party, v211.tariff_to_canonical(body, country_code, party_id))
    db.session.commit()
    return ocpi_response(http_status=201 if created else 200)


@bp.route(f"/{V}/sessions/<country_code>/<party_id>/<session_id>",
          methods=["GET", "PUT", "PATCH"], endpoint="session_211")
def session_211(country_code: str, party_id: str, session_id: str) -> Response:
    # 2.1.1 reads a PATCH as "replace these fields", charging_periods included.
    return session_endpoint(country_code, party_id, session_id,
                            put_body=v211.session_to_canonical,
                            patch_body=v211.session_patch_to_canonical, append_periods=False)


@bp.post(f"/{V}/cdrs", endpoint="cdrs_211")
def cdrs_211() -> Response:
    party = _own_party()
    # 2.1.1 CDRs name no owner: they are the connected CPO's.
    owner = (party.country_code or "", party.party_id or "")
    with flagging_refused_cdr(party, owner):
        body = json_body()
        return receive_cdr(party, v211.cdr_to_canonical(body, *owner, party_pk=party.pk))


@bp.get(f"/{V}/cdrs/<int:cdr_pk>", endpoint="cdr_211")
def cdr_211(cdr_pk: int) -> Response:
    return cdr(cdr_pk)


@bp.post(f"/{V}/commands/<command>/<uid>", endpoint="command_result_211")
def command_result_211(command: str, uid: str) -> Response:
    return command_result(command, uid)


@bp.get(f"/{V}/tokens", endpoint="tokens_211")
def tokens_211() -> Response:
    return tokens_page(lambda row: v211.token_from_canonical(row.data))


@bp.post(f"/{V}/tokens/<uid>/authorize", endpoint="authorize_211")
def authorize_211(uid: str) -> Response:
    row = db.session.scalar(db.select(IssuedToken).where(IssuedToken.uid == uid.upper(),
                                                         *tokens_of(g.party)))
    if row is None:
        raise OcpiError(StatusCode.UNKNOWN_TOKEN, "Unknown Token", http_status=404)
    info = authorization_info(row)
    info.pop("authorization_reference", None)  # no such field in 2.1.1
    return ocpi_response(info)
