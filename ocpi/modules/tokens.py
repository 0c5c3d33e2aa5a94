"""OCPI 2.2.1 Tokens (mod_tokens.asciidoc): the Token ScanCharge issues for a charge, and
the LocationReferences a CPO asks its real-time authorisation for."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from ocpi.modules.common import (
    Bool,
    CiString2,
    CiString3,
    CiString36,
    OcpiModel,
    String2,
    String64,
    Text,
)


class TokenType(StrEnum):
    AD_HOC_USER = "AD_HOC_USER"
    APP_USER = "APP_USER"
    OTHER = "OTHER"
    RFID = "RFID"


class WhitelistType(StrEnum):
    ALWAYS = "ALWAYS"
    ALLOWED = "ALLOWED"
    ALLOWED_OFFLINE = "ALLOWED_OFFLINE"
    NEVER = "NEVER"


class Token(OcpiModel):
    country_code: CiString2
    party_id: CiString3
    uid: CiString36
    type: TokenType
    contract_id: CiString36
    visual_number: String64 | None = None
    issuer: String64
    group_id: CiString36 | None = None
    valid: Bool
    whitelist: WhitelistType
    language: String2 | None = None
    default_profile_type: Text | None = None
    energy_contract: dict[Text, Any] | None = None
    last_updated: datetime


class LocationReferences(OcpiModel):
    """The body of a real-time authorisation request: where the Token is to charge."""

    location_id: CiString36
    evse_uids: list[CiString36] | None = None
