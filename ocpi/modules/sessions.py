"""OCPI 2.2.1 Sessions (mod_sessions.asciidoc): a Session as its CPO pushes it."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from ocpi.modules.cdrs import CdrToken, ChargingPeriod
from ocpi.modules.common import (
    CiString2,
    CiString3,
    CiString36,
    Kwh,
    OcpiModel,
    Price,
    String3,
    String255,
    Text,
)


class SessionStatus(StrEnum):
    ACTIVE = "ACTIVE"
    COMPLETED = "COMPLETED"
    INVALID = "INVALID"
    PENDING = "PENDING"
    RESERVATION = "RESERVATION"


class Session(OcpiModel):
    country_code: CiString2
    party_id: CiString3
    id: CiString36
    start_date_time: datetime
    end_date_time: datetime | None = None
    kwh: Kwh
    cdr_token: CdrToken
    auth_method: Text
    authorization_reference: CiString36 | None = None
    location_id: CiString36
    evse_uid: CiString36
    connector_id: CiString36
    meter_id: String255 | None = None
    currency: String3
    charging_periods: list[ChargingPeriod] | None = None
    total_cost: Price | None = None
    status: SessionStatus
    last_updated: datetime
