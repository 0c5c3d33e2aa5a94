"""OCPI 2.2.1 CDRs (mod_cdrs.asciidoc): the charge detail record, and the CdrToken and
ChargingPeriod a Session shares with it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field, model_validator

from ocpi.modules.common import (
    Bool,
    CiString2,
    CiString3,
    CiString36,
    CiString39,
    CiString48,
    Kwh,
    Number,
    OcpiModel,
    Price,
    String3,
    String10,
    String20,
    String45,
    String255,
    Text,
)
from ocpi.modules.locations import GeoLocation
from ocpi.modules.tariffs import Tariff
from ocpi.modules.tokens import TokenType


class CdrDimension(OcpiModel):
    type: Text
    volume: Number


class ChargingPeriod(OcpiModel):
    start_date_time: datetime
    dimensions: list[CdrDimension] = Field(min_length=1)
    tariff_id: CiString36 | None = None


class CdrToken(OcpiModel):
    country_code: CiString2
    party_id: CiString3
    uid: CiString36
    type: TokenType
    contract_id: CiString36


class CdrLocation(OcpiModel):
    id: CiString36
    name: String255 | None = None
    address: String45
    city: String45
    postal_code: String10 | None = None
    state: String20 | None = None
    country: String3
    coordinates: GeoLocation
    evse_uid: CiString36
    evse_id: CiString48
    connector_id: CiString36
    connector_standard: Text
    connector_format: Text
    connector_power_type: Text


class Cdr(OcpiModel):
    country_code: CiString2
    party_id: CiString3
    id: CiString39
    start_date_time: datetime
    end_date_time: datetime
    session_id: CiString36 | None = None
    cdr_token: CdrToken
    auth_method: Text
    authorization_reference: CiString36 | None = None
    cdr_location: CdrLocation
    meter_id: String255 | None = None
    currency: String3
    tariffs: list[Tariff] | None = None
    charging_periods: list[ChargingPeriod] = Field(min_length=1)
    signed_data: dict[Text, Any] | None = None
    total_cost: Price
    total_fixed_cost: Price | None = None
    total_energy: Kwh
    total_energy_cost: Price | None = None
    total_time: Number
    total_time_cost: Price | None = None
    total_parking_time: Number | None = None
    total_parking_cost: Price | None = None
    total_reservation_cost: Price | None = None
    remark: String255 | None = None
    invoice_reference_id: CiString39 | None = None
    credit: Bool | None = None
    credit_reference_id: CiString39 | None = None
    home_charging_compensation: Bool | None = None
    last_updated: datetime

    @model_validator(mode="after")
    def _negative_only_when_credit(self) -> Cdr:
        # mod_cdrs, Credit CDRs: only a credit CDR carries negative total_cost amounts. A
        # negative total anywhere else would settle as "nothing to capture" and release
        # the hold without anyone noticing.
        cost = self.total_cost
        negative = cost.excl_vat < 0 or (cost.incl_vat is not None and cost.incl_vat < 0)
        if negative and not self.credit:
            raise ValueError("total_cost is negative but the CDR is no credit CDR")
        return self
