"""HubClientInfo, eMSP side (mod_hub_client_info): what a hub's ClientInfo does, whether
pushed to our Receiver (ocpi.endpoints.hubclientinfo) or pulled from the hub's Sender list
(ocpi.sync.pull).

A hub tells us which parties behind it are CONNECTED, OFFLINE, PLANNED or SUSPENDED. We keep
that only for the CPOs the operator granted the hub (`cpo connect --for`, PartyGrant), in
PartyGrant.hub_status: Party.owns then refuses the hub's pushes (and answers) for a CPO it
says is PLANNED or SUSPENDED, and takes them again once it says CONNECTED. A ClientInfo can
never widen what a hub may do: one about a party the hub was not granted (a directly
connected CPO, another eMSP, an unknown CPO) is stored nowhere and shown as a notice.
"""

from __future__ import annotations

import logging
from typing import Any

from ocpi import notices
from ocpi.client import OcpiClient
from ocpi.models import Party, PartyGrant
from ocpi.modules.hubclientinfo import ClientInfo, parse_client_info
from ocpi.transport import OcpiError, format_datetime

log = logging.getLogger(__name__)

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
