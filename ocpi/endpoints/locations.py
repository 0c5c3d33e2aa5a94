"""The Locations Receiver (mod_locations.asciidoc): a CPO pushes a Location, an EVSE or a
Connector, whole (PUT) or in part (PATCH), and may read back what we hold."""

from __future__ import annotations

from typing import Any

from flask import Response, request

from extensions import db
from ocpi import signals, store
from ocpi.endpoints.blueprint import (
    VERSION,
    bp,
    json_body,
    ocpi_response,
    require_match,
    require_owner,
)
from ocpi.modules.common import parse
from ocpi.modules.locations import Connector, Evse
from ocpi.transport import OcpiError, StatusCode


@bp.route(
    f"/{VERSION}/locations/<country_code>/<party_id>/<location_id>",
    methods=["GET", "PUT", "PATCH"],
)
@bp.route(
    f"/{VERSION}/locations/<country_code>/<party_id>/<location_id>/<evse_uid>",
    methods=["GET", "PUT", "PATCH"],
)
@bp.route(
    f"/{VERSION}/locations/<country_code>/<party_id>/<location_id>/<evse_uid>/<connector_id>",
    methods=["GET", "PUT", "PATCH"],
)
def location(
    country_code: str,
    party_id: str,
    location_id: str,
    evse_uid: str | None = None,
    connector_id: str | None = None,
) -> Response:
    party = require_owner(country_code, party_id)
    row = store.find_location(country_code, party_id, location_id)
    if request.method == "GET":
        if row is None:
            raise OcpiError(StatusCode.UNKNOWN_LOCATION, "Unknown Location", http_status=404)
        data = row.data
        if evse_uid is not None:
            data = store._child(data.get("evses") or [], "uid", evse_uid, "EVSE")
            if connector_id is not None:
                data = store._child(data.get("connectors") or [], "id", connector_id,
                                    "Connector")
        return ocpi_response(data)
    body = json_body()
    if request.method == "PATCH":
        if row is None:
            raise OcpiError(StatusCode.UNKNOWN_LOCATION, "Unknown Location", http_status=404)
        if not isinstance(body, dict):
            raise OcpiError(StatusCode.INVALID_PARAMETERS, "PATCH body must be an object")
        store.patch_location(row, body, evse_uid, connector_id)
        db.session.commit()
        signals.location_updated.send("ocpi", party_pk=party.pk, location_id=row.location_id,
                                      evse_uid=evse_uid)
        return ocpi_response()
    # PUT
    if evse_uid is None:
        require_match(body, country_code, party_id, "id", location_id)
        row, created = store.upsert_location(party, body)
    else:
        if row is None:
            raise OcpiError(StatusCode.UNKNOWN_LOCATION, "Unknown Location", http_status=404)
        data = row.data
        evses = data.setdefault("evses", [])
        if connector_id is None:
            evse_in = parse(Evse, body)
            _require_same_id("uid", evse_in.uid, evse_uid)
            created = _replace(evses, "uid", evse_uid, body)
        else:
            connector = parse(Connector, body)
            _require_same_id("id", connector.id, connector_id)
            evse = store._child(evses, "uid", evse_uid, "EVSE")
            created = _replace(evse.setdefault("connectors", []), "id", connector_id, body)
            # mod_locations: a Connector PUT sets the new last_updated on its EVSE too...
            evse["last_updated"] = body["last_updated"]
        # ...and an EVSE or Connector PUT on the Location.
        data["last_updated"] = body["last_updated"]
        row, _ = store.upsert_location(party, data)
    db.session.commit()
    signals.location_updated.send("ocpi", party_pk=party.pk, location_id=row.location_id,
                                  evse_uid=evse_uid)
    return ocpi_response(http_status=201 if created else 200)


def _replace(items: list[dict[str, Any]], field: str, value: str, new: dict[str, Any]) -> bool:
    """Put `new` in place of the item whose `field` is `value`; True if it was added."""
    for index, item in enumerate(items):
        if str(item.get(field, "")).upper() == value.upper():
            items[index] = new
            return False
    items.append(new)
    return True


def _require_same_id(field: str, sent: str, in_url: str) -> None:
    # transport_and_format, Client Owned Object Push: an id differing from the URL is 2001.
    if sent.upper() != in_url.upper():
        raise OcpiError(
            StatusCode.INVALID_PARAMETERS,
            f"{field} {sent!r} in the body differs from {in_url!r} in the URL",
        )
