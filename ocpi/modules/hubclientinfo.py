"""OCPI 2.2.1 HubClientInfo (mod_hub_client_info.asciidoc): what a hub says about the
parties behind it."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field

from ocpi.modules.common import OcpiModel, parse

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
