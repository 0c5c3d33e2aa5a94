"""OCPI 2.1.1 wire formats, as far as a CPO simulator sends or reads them.

One model per field table of ../shared/ocpi-spec/2.1.1/: required fields ('1', '+') have no
default, optional ones ('?', '*') default to None; string lengths are the tables'. They live
here rather than in ocpi.modules so the simulator's reading of 2.1.1 stays independent of
ScanCharge's (it must not be able to agree with ScanCharge's own mistakes). The base model
is shared: unknown fields are ignored, explicit nulls are absent, DateTimes are text.

Enumerations are the 2.1.1 ones, which are narrower than 2.2.1's: a Token is OTHER or RFID,
a CommandResponse is also the asynchronous result and has no EVSE_OCCUPIED, sessions are
authorized by AUTH_REQUEST or WHITELIST, there is no COMMAND.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated

from pydantic import Field, StringConstraints, field_validator

from ocpi.modules.common import DisplayText, OcpiModel
from ocpi.modules.locations import BusinessDetails, GeoLocation

# The spec's string(n), one alias per length in use.
String2 = Annotated[str, StringConstraints(max_length=2)]
String3 = Annotated[str, StringConstraints(max_length=3)]
String4 = Annotated[str, StringConstraints(max_length=4)]
String5 = Annotated[str, StringConstraints(max_length=5)]
String10 = Annotated[str, StringConstraints(max_length=10)]
String16 = Annotated[str, StringConstraints(max_length=16)]
String36 = Annotated[str, StringConstraints(max_length=36)]
String39 = Annotated[str, StringConstraints(max_length=39)]
String45 = Annotated[str, StringConstraints(max_length=45)]
String48 = Annotated[str, StringConstraints(max_length=48)]
String64 = Annotated[str, StringConstraints(max_length=64)]
String255 = Annotated[str, StringConstraints(max_length=255)]


# --- versions and credentials (version_information_endpoint.md, credentials.md) ---------


class Endpoint(OcpiModel):
    identifier: str
    url: String255


class VersionDetails(OcpiModel):
    version: str
    endpoints: list[Endpoint] = Field(min_length=1)


class Credentials(OcpiModel):
    token: String64
    url: String255
    business_details: BusinessDetails
    party_id: String3
    country_code: String2

    @field_validator("token")
    @classmethod
    def _printable(cls, value: str) -> str:
        if not value or not all(0x21 <= ord(ch) <= 0x7E for ch in value):
            raise ValueError("token must be printable non-whitespace ASCII")
        return value


# --- locations (mod_locations.md) -------------------------------------------------------


class LocationType(StrEnum):
    ON_STREET = "ON_STREET"
    PARKING_GARAGE = "PARKING_GARAGE"
    UNDERGROUND_GARAGE = "UNDERGROUND_GARAGE"
    PARKING_LOT = "PARKING_LOT"
    OTHER = "OTHER"
    UNKNOWN = "UNKNOWN"


class Status(StrEnum):
    AVAILABLE = "AVAILABLE"
    BLOCKED = "BLOCKED"
    CHARGING = "CHARGING"
    INOPERATIVE = "INOPERATIVE"
    OUTOFORDER = "OUTOFORDER"
    PLANNED = "PLANNED"
    REMOVED = "REMOVED"
    RESERVED = "RESERVED"
    UNKNOWN = "UNKNOWN"


class Capability(StrEnum):
    CHARGING_PROFILE_CAPABLE = "CHARGING_PROFILE_CAPABLE"
    CREDIT_CARD_PAYABLE = "CREDIT_CARD_PAYABLE"
    REMOTE_START_STOP_CAPABLE = "REMOTE_START_STOP_CAPABLE"
    RESERVABLE = "RESERVABLE"
    RFID_READER = "RFID_READER"
    UNLOCK_CAPABLE = "UNLOCK_CAPABLE"


class Facility(StrEnum):
    HOTEL = "HOTEL"
    RESTAURANT = "RESTAURANT"
    CAFE = "CAFE"
    MALL = "MALL"
    SUPERMARKET = "SUPERMARKET"
    SPORT = "SPORT"
    RECREATION_AREA = "RECREATION_AREA"
    NATURE = "NATURE"
    MUSEUM = "MUSEUM"
    BUS_STOP = "BUS_STOP"
    TAXI_STAND = "TAXI_STAND"
    TRAIN_STATION = "TRAIN_STATION"
    AIRPORT = "AIRPORT"
    CARPOOL_PARKING = "CARPOOL_PARKING"
    FUEL_STATION = "FUEL_STATION"
    WIFI = "WIFI"


class ParkingRestriction(StrEnum):
    EV_ONLY = "EV_ONLY"
    PLUGGED = "PLUGGED"
    DISABLED = "DISABLED"
    CUSTOMERS = "CUSTOMERS"
    MOTORCYCLES = "MOTORCYCLES"


class PowerType(StrEnum):
    AC_1_PHASE = "AC_1_PHASE"
    AC_3_PHASE = "AC_3_PHASE"
    DC = "DC"


class ConnectorFormat(StrEnum):
    SOCKET = "SOCKET"
    CABLE = "CABLE"


class Connector(OcpiModel):
    id: String36
    standard: str
    format: ConnectorFormat
    power_type: PowerType
    voltage: int
    amperage: int
    tariff_id: String36 | None = None
    terms_and_conditions: String255 | None = None
    last_updated: datetime


class Evse(OcpiModel):
    uid: String39
    evse_id: String48 | None = None
    status: Status
    capabilities: list[Capability] | None = None
    connectors: list[Connector] = Field(min_length=1)
    floor_level: String4 | None = None
    coordinates: GeoLocation | None = None
    physical_reference: String16 | None = None
    directions: list[DisplayText] | None = None
    parking_restrictions: list[ParkingRestriction] | None = None
    last_updated: datetime


class Location(OcpiModel):
    id: String39
    type: LocationType
    name: String255 | None = None
    address: String45
    city: String45
    postal_code: String10
    country: String3
    coordinates: GeoLocation
    evses: list[Evse] | None = None
    directions: list[DisplayText] | None = None
    operator: BusinessDetails | None = None
    suboperator: BusinessDetails | None = None
    owner: BusinessDetails | None = None
    facilities: list[Facility] | None = None
    time_zone: String255 | None = None
    charging_when_closed: bool | None = None
    last_updated: datetime


# --- tariffs (mod_tariffs.md): prices exclude VAT and there is no VAT field ---------------


class TariffDimensionType(StrEnum):
    ENERGY = "ENERGY"
    FLAT = "FLAT"
    PARKING_TIME = "PARKING_TIME"
    TIME = "TIME"


class PriceComponent(OcpiModel):
    type: TariffDimensionType
    price: Decimal
    step_size: int


class TariffRestrictions(OcpiModel):
    start_time: String5 | None = None
    end_time: String5 | None = None
    start_date: String10 | None = None
    end_date: String10 | None = None
    min_kwh: Decimal | None = None
    max_kwh: Decimal | None = None
    min_power: Decimal | None = None
    max_power: Decimal | None = None
    min_duration: int | None = None
    max_duration: int | None = None
    day_of_week: list[str] | None = None


class TariffElement(OcpiModel):
    price_components: list[PriceComponent] = Field(min_length=1)
    restrictions: TariffRestrictions | None = None


class Tariff(OcpiModel):
    id: String36
    currency: String3
    tariff_alt_text: list[DisplayText] | None = None
    tariff_alt_url: String255 | None = None
    elements: list[TariffElement] = Field(min_length=1)
    last_updated: datetime


# --- tokens (mod_tokens.md) --------------------------------------------------------------


class TokenType(StrEnum):
    OTHER = "OTHER"
    RFID = "RFID"


class WhitelistType(StrEnum):
    ALWAYS = "ALWAYS"
    ALLOWED = "ALLOWED"
    ALLOWED_OFFLINE = "ALLOWED_OFFLINE"
    NEVER = "NEVER"


class Token(OcpiModel):
    uid: String36
    type: TokenType
    auth_id: String36
    visual_number: String64 | None = None
    issuer: String64
    valid: bool
    whitelist: WhitelistType
    language: String2 | None = None
    last_updated: datetime


# --- sessions and CDRs (mod_sessions.md, mod_cdrs.md) ------------------------------------


class AuthMethod(StrEnum):
    AUTH_REQUEST = "AUTH_REQUEST"
    WHITELIST = "WHITELIST"


class CdrDimensionType(StrEnum):
    ENERGY = "ENERGY"
    FLAT = "FLAT"
    MAX_CURRENT = "MAX_CURRENT"
    MIN_CURRENT = "MIN_CURRENT"
    PARKING_TIME = "PARKING_TIME"
    TIME = "TIME"


class CdrDimension(OcpiModel):
    type: CdrDimensionType
    volume: Decimal


class ChargingPeriod(OcpiModel):
    start_date_time: datetime
    dimensions: list[CdrDimension] = Field(min_length=1)


class SessionStatus(StrEnum):
    ACTIVE = "ACTIVE"
    COMPLETED = "COMPLETED"
    INVALID = "INVALID"
    PENDING = "PENDING"


class Session(OcpiModel):
    id: String36
    start_datetime: datetime
    end_datetime: datetime | None = None
    kwh: Decimal
    auth_id: String36
    auth_method: AuthMethod
    location: Location
    meter_id: String255 | None = None
    currency: String3
    charging_periods: list[ChargingPeriod] | None = None
    total_cost: Decimal | None = None
    status: SessionStatus
    last_updated: datetime


class Cdr(OcpiModel):
    id: String36
    start_date_time: datetime
    stop_date_time: datetime
    auth_id: String36
    auth_method: AuthMethod
    location: Location
    meter_id: String255 | None = None
    currency: String3
    tariffs: list[Tariff] | None = None
    charging_periods: list[ChargingPeriod] = Field(min_length=1)
    total_cost: Decimal
    total_energy: Decimal
    total_time: Decimal
    total_parking_time: Decimal | None = None
    remark: String255 | None = None
    last_updated: datetime


# --- commands (mod_commands.md) ----------------------------------------------------------


class CommandResponseType(StrEnum):
    NOT_SUPPORTED = "NOT_SUPPORTED"
    REJECTED = "REJECTED"
    ACCEPTED = "ACCEPTED"
    TIMEOUT = "TIMEOUT"
    UNKNOWN_SESSION = "UNKNOWN_SESSION"


class CommandResponse(OcpiModel):
    """Both the CPO's direct answer to a command and the Charge Point's later result."""

    result: CommandResponseType


class StartSession(OcpiModel):
    response_url: String255
    token: Token
    location_id: String39
    evse_uid: String39 | None = None


class StopSession(OcpiModel):
    response_url: String255
    session_id: String36


class UnlockConnector(OcpiModel):
    response_url: String255
    location_id: String39
    evse_uid: String39
    connector_id: String36
