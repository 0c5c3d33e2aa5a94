"""OCPI 2.2.1 Locations (mod_locations.asciidoc): Location, EVSE and Connector, and the
BusinessDetails and Image other modules name."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import Field

from ocpi.modules.common import (
    URL,
    Bool,
    CiString2,
    CiString3,
    CiString36,
    CiString48,
    DisplayText,
    Int,
    OcpiModel,
    String3,
    String4,
    String10,
    String11,
    String16,
    String45,
    String100,
    String255,
    Text,
)


class Image(OcpiModel):
    url: URL
    thumbnail: URL | None = None
    category: Text
    type: String4
    width: Int | None = None
    height: Int | None = None


class BusinessDetails(OcpiModel):
    name: String100
    website: URL | None = None
    logo: Image | None = None




class GeoLocation(OcpiModel):
    latitude: String10
    longitude: String11


class EvseStatus(StrEnum):
    AVAILABLE = "AVAILABLE"
    BLOCKED = "BLOCKED"
    CHARGING = "CHARGING"
    INOPERATIVE = "INOPERATIVE"
    OUTOFORDER = "OUTOFORDER"
    PLANNED = "PLANNED"
    REMOVED = "REMOVED"
    RESERVED = "RESERVED"
    UNKNOWN = "UNKNOWN"


class PowerType(StrEnum):
    AC_1_PHASE = "AC_1_PHASE"
    AC_2_PHASE = "AC_2_PHASE"
    AC_2_PHASE_SPLIT = "AC_2_PHASE_SPLIT"
    AC_3_PHASE = "AC_3_PHASE"
    DC = "DC"


class Connector(OcpiModel):
    id: CiString36
    standard: Text
    format: Text
    power_type: PowerType
    max_voltage: Int
    max_amperage: Int
    max_electric_power: Int | None = None
    tariff_ids: list[CiString36] | None = None
    terms_and_conditions: Text | None = None
    last_updated: datetime


class Evse(OcpiModel):
    uid: CiString36
    evse_id: CiString48 | None = None
    status: EvseStatus
    capabilities: list[Text] | None = None
    connectors: list[Connector] = Field(min_length=1)
    floor_level: String4 | None = None
    coordinates: GeoLocation | None = None
    physical_reference: String16 | None = None
    directions: list[DisplayText] | None = None
    parking_restrictions: list[Text] | None = None
    last_updated: datetime


class Location(OcpiModel):
    country_code: CiString2
    party_id: CiString3
    id: CiString36
    publish: Bool
    name: String255 | None = None
    address: String255
    city: String45
    postal_code: String10 | None = None
    state: String45 | None = None
    country: String3
    coordinates: GeoLocation
    parking_type: Text | None = None
    evses: list[Evse] | None = None
    directions: list[DisplayText] | None = None
    operator: BusinessDetails | None = None
    facilities: list[Text] | None = None
    time_zone: String255
    charging_when_closed: Bool | None = None
    last_updated: datetime
