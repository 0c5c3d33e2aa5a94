"""HubClientInfo, eMSP side (mod_hub_client_info): ScanCharge as Receiver of a hub's
ClientInfo pushes, and the pull of the hub's Sender list (ocpi.sync.pull).

A hub tells us which parties behind it are CONNECTED, OFFLINE, PLANNED or SUSPENDED. We keep
that only for the CPOs the operator granted the hub (`cpo connect --for`, PartyGrant), in
PartyGrant.hub_status: Party.owns then refuses the hub's pushes (and answers) for a CPO it
says is PLANNED or SUSPENDED, and takes them again once it says CONNECTED. A ClientInfo can
never widen what a hub may do: one about a party the hub was not granted (a directly
connected CPO, another eMSP, an unknown CPO) is stored nowhere and shown as a notice.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Annotated, Any, Literal

from flask import Response, g, request
from pydantic import ConfigDict, Field

from extensions import db
from ocpi import notices
from ocpi.client import OcpiClient
from ocpi.models import Party, PartyGrant
from ocpi.modules.common import OcpiModel, parse
from ocpi.server import VERSION, _require_match, bp, json_body, ocpi_response
from ocpi.transport import OcpiError, StatusCode, format_datetime

log = logging.getLogger(__name__)

ConnectionStatus = Literal["CONNECTED", "OFFLINE", "PLANNED", "SUSPENDED"]
RoleName = Literal["CPO", "EMSP", "HUB", "NAP", "NSP", "OTHER", "SCSP"]


class ClientInfo(OcpiModel):
    """mod_hub_client_info ClientInfo object. Strict: a number where a string belongs, or a
    status outside ConnectionStatus, is a 2001, never coerced into something that changes
    what a hub may do."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True, strict=True)

    party_id: Annotated[str, Field(min_length=1, max_length=3)]
    country_code: Annotated[str, Field(min_length=2, max_length=2)]
    role: RoleName
    status: ConnectionStatus
    last_updated: datetime


def parse_client_info(data: Any) -> ClientInfo:
    return parse(ClientInfo, data)


def apply(hub: Party, info: ClientInfo) -> PartyGrant | None:
    """Take one ClientInfo from `hub` into the grant it is about; does not commit.

    Returns the grant, or None when the hub was not granted that CPO (noted as SKIPPED).
    An older ClientInfo than the one already applied changes nothing.
    """
    country_code, party_id = info.country_code.upper(), info.party_id.upper()
    grant = hub.grant_for(country_code, party_id) if info.role == "CPO" else None
    if grant is None:
        # Answered 1000 all the same (the hub owns ClientInfo, we merely ignore it), but the
        # operator sees that the hub reports a party it may not act for.
        notices.record(
            hub.pk, "SKIPPED", "CLIENT_INFO_NOT_GRANTED",
            f"ClientInfo {info.role} {country_code}*{party_id} {info.status}: this hub may "
            f"not act for that party, so it is stored nowhere",
            object_key=f"ClientInfo:{info.role}:{country_code}*{party_id}",
        )
        return None
    if grant.hub_status_updated is not None and info.last_updated < grant.hub_status_updated:
        log.info("hub %s: ignored ClientInfo %s*%s %s of %s, older than the one of %s",
                 hub.name, country_code, party_id, info.status,
                 format_datetime(info.last_updated), format_datetime(grant.hub_status_updated))
        return grant
    if grant.hub_status != info.status:
        log.info("hub %s says %s*%s is %s (was %s)", hub.name, country_code, party_id,
                 info.status, grant.hub_status or "unknown")
    grant.hub_status = info.status
    grant.hub_status_updated = info.last_updated
    return grant


def pull_client_info(hub: Party, client: OcpiClient, url: str) -> list[str]:
    """GET the hub's whole ClientInfo list (all pages) and apply each; returns problems.

    Pulled before Locations and Tariffs, so a CPO the hub no longer serves is refused in
    the same pull. Does not commit.
    """
    problems: list[str] = []
    for data in client.get_all(url, module="hubclientinfo"):
        try:
            apply(hub, parse_client_info(data))
        except OcpiError as exc:
            problems.append(f"ClientInfo {_label(data)}: {exc.message}")
    return problems


def _label(data: Any) -> str:
    if not isinstance(data, dict):
        return repr(data)[:40]
    return f"{data.get('country_code')!r}*{data.get('party_id')!r}"


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
    _require_match(body, country_code, party_id, "country_code", country_code)
    info = parse_client_info(body)
    apply(hub, info)
    db.session.commit()
    return ocpi_response()
