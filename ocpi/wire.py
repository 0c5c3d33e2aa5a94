"""OCPI 2.2.1 wire formats as pydantic models, one per object in the spec's field tables.

Each model mirrors its table: required fields ('1', '+') have no default, optional fields
('?', '*') default to None. Unknown extra fields are ignored (be liberal in what we accept),
and explicit nulls for optional fields are taken as absent. String lengths are those of the
tables; CiStrings are kept as sent and compared case-insensitively where they are looked up.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ocpi.transport import OcpiError, StatusCode, format_datetime, parse_datetime


def CiString(n: int) -> Any:  # noqa: N802 - reads like the spec's type name
    return Annotated[str, Field(max_length=n)]


def String(n: int) -> Any:  # noqa: N802
    return Annotated[str, Field(max_length=n)]


class OcpiModel(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    @field_validator("*", mode="before")
    @classmethod
    def _datetimes(cls, value: Any, info: Any) -> Any:
        field = cls.model_fields.get(info.field_name)
        if field is None or field.annotation not in (datetime, datetime | None):
            return value
        if isinstance(value, str):
            try:
                return parse_datetime(value)
            except ValueError as exc:
                raise ValueError(f"not an OCPI DateTime: {value!r}") from exc
        if value is not None and not isinstance(value, datetime):
            # pydantic would read a number as Unix time; an OCPI DateTime is always text.
            raise ValueError(f"not an OCPI DateTime: {value!r}")
        return value

    def to_json(self) -> dict[str, Any]:
        """The object as OCPI JSON: DateTimes in UTC with Z, no nulls, and numbers as the
        exact Decimals they were (write them with transport.json_dumps, never via float)."""
        return _jsonable(self.model_dump(mode="python", exclude_none=True))


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime):
        return format_datetime(value)
    if isinstance(value, StrEnum):
        return value.value
    return value


# --- Types (types.asciidoc) -------------------------------------------------------------


class Role(StrEnum):
    CPO = "CPO"
    EMSP = "EMSP"
    HUB = "HUB"
    NAP = "NAP"
    NSP = "NSP"
    OTHER = "OTHER"
    SCSP = "SCSP"


class DisplayText(OcpiModel):
    language: String(2)
    text: String(512)


class Price(OcpiModel):
    excl_vat: Decimal
    incl_vat: Decimal | None = None


# --- Versions ---------------------------------------------------------------------------


class Version(OcpiModel):
    version: str
    url: str


class InterfaceRole(StrEnum):
    SENDER = "SENDER"
    RECEIVER = "RECEIVER"


class Endpoint(OcpiModel):
    identifier: str
    role: InterfaceRole | None = None  # absent in 2.1.1
    url: str


class VersionDetails(OcpiModel):
    version: str
    endpoints: list[Endpoint] = Field(min_length=1)


# --- Credentials ------------------------------------------------------------------------


class Image(OcpiModel):
    url: str
    thumbnail: str | None = None
    category: str
    type: String(4)
    width: int | None = None
    height: int | None = None


class BusinessDetails(OcpiModel):
    name: String(100)
    website: str | None = None
    logo: Image | None = None


class CredentialsRole(OcpiModel):
    role: Role
    business_details: BusinessDetails
    party_id: CiString(3)
    country_code: CiString(2)


class Credentials(OcpiModel):
    token: String(64)
    url: str
    roles: list[CredentialsRole] = Field(min_length=1)

    @field_validator("token")
    @classmethod
    def _printable(cls, value: str) -> str:
        if not value or not all(0x21 <= ord(ch) <= 0x7E for ch in value):
            raise ValueError("token must be printable non-whitespace ASCII")
        return value


# --- Locations --------------------------------------------------------------------------


class GeoLocation(OcpiModel):
    latitude: String(10)
    longitude: String(11)


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
    id: CiString(36)
    standard: str
    format: str
    power_type: PowerType
    max_voltage: int
    max_amperage: int
    max_electric_power: int | None = None
    tariff_ids: list[CiString(36)] | None = None
    terms_and_conditions: str | None = None
    last_updated: datetime


class Evse(OcpiModel):
    uid: CiString(36)
    evse_id: CiString(48) | None = None
    status: EvseStatus
    capabilities: list[str] | None = None
    connectors: list[Connector] = Field(min_length=1)
    floor_level: String(4) | None = None
    coordinates: GeoLocation | None = None
    physical_reference: String(16) | None = None
    directions: list[DisplayText] | None = None
    parking_restrictions: list[str] | None = None
    last_updated: datetime


class Location(OcpiModel):
    country_code: CiString(2)
    party_id: CiString(3)
    id: CiString(36)
    publish: bool
    name: String(255) | None = None
    address: String(255)
    city: String(45)
    postal_code: String(10) | None = None
    state: String(45) | None = None
    country: String(3)
    coordinates: GeoLocation
    parking_type: str | None = None
    evses: list[Evse] | None = None
    directions: list[DisplayText] | None = None
    operator: BusinessDetails | None = None
    facilities: list[str] | None = None
    time_zone: String(255)
    charging_when_closed: bool | None = None
    last_updated: datetime


# --- Tariffs ----------------------------------------------------------------------------


class TariffDimensionType(StrEnum):
    ENERGY = "ENERGY"
    FLAT = "FLAT"
    PARKING_TIME = "PARKING_TIME"
    TIME = "TIME"


class TariffType(StrEnum):
    AD_HOC_PAYMENT = "AD_HOC_PAYMENT"
    PROFILE_CHEAP = "PROFILE_CHEAP"
    PROFILE_FAST = "PROFILE_FAST"
    PROFILE_GREEN = "PROFILE_GREEN"
    REGULAR = "REGULAR"


class PriceComponent(OcpiModel):
    type: TariffDimensionType
    price: Decimal
    vat: Decimal | None = None
    step_size: int


class TariffRestrictions(OcpiModel):
    start_time: String(5) | None = None
    end_time: String(5) | None = None
    start_date: String(10) | None = None
    end_date: String(10) | None = None
    min_kwh: Decimal | None = None
    max_kwh: Decimal | None = None
    min_current: Decimal | None = None
    max_current: Decimal | None = None
    min_power: Decimal | None = None
    max_power: Decimal | None = None
    min_duration: int | None = None
    max_duration: int | None = None
    day_of_week: list[str] | None = None
    reservation: str | None = None


class TariffElement(OcpiModel):
    price_components: list[PriceComponent] = Field(min_length=1)
    restrictions: TariffRestrictions | None = None


class Tariff(OcpiModel):
    country_code: CiString(2)
    party_id: CiString(3)
    id: CiString(36)
    currency: String(3)
    type: TariffType | None = None
    tariff_alt_text: list[DisplayText] | None = None
    tariff_alt_url: str | None = None
    min_price: Price | None = None
    max_price: Price | None = None
    # OCPI 2.3.0 (Payments): what to pre-authorise for an ad-hoc session; read when sent.
    preauthorize_amount: Decimal | None = None
    elements: list[TariffElement] = Field(min_length=1)
    start_date_time: datetime | None = None
    end_date_time: datetime | None = None
    energy_mix: dict[str, Any] | None = None
    last_updated: datetime


# --- Tokens -----------------------------------------------------------------------------


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
    country_code: CiString(2)
    party_id: CiString(3)
    uid: CiString(36)
    type: TokenType
    contract_id: CiString(36)
    visual_number: String(64) | None = None
    issuer: String(64)
    group_id: CiString(36) | None = None
    valid: bool
    whitelist: WhitelistType
    language: String(2) | None = None
    default_profile_type: str | None = None
    energy_contract: dict[str, Any] | None = None
    last_updated: datetime


# --- Sessions and CDRs ------------------------------------------------------------------


class CdrDimension(OcpiModel):
    type: str
    volume: Decimal


class ChargingPeriod(OcpiModel):
    start_date_time: datetime
    dimensions: list[CdrDimension] = Field(min_length=1)
    tariff_id: CiString(36) | None = None


class CdrToken(OcpiModel):
    country_code: CiString(2)
    party_id: CiString(3)
    uid: CiString(36)
    type: TokenType
    contract_id: CiString(36)


class SessionStatus(StrEnum):
    ACTIVE = "ACTIVE"
    COMPLETED = "COMPLETED"
    INVALID = "INVALID"
    PENDING = "PENDING"
    RESERVATION = "RESERVATION"


class Session(OcpiModel):
    country_code: CiString(2)
    party_id: CiString(3)
    id: CiString(36)
    start_date_time: datetime
    end_date_time: datetime | None = None
    kwh: Decimal
    cdr_token: CdrToken
    auth_method: str
    authorization_reference: CiString(36) | None = None
    location_id: CiString(36)
    evse_uid: CiString(36)
    connector_id: CiString(36)
    meter_id: String(255) | None = None
    currency: String(3)
    charging_periods: list[ChargingPeriod] | None = None
    total_cost: Price | None = None
    status: SessionStatus
    last_updated: datetime


class CdrLocation(OcpiModel):
    id: CiString(36)
    name: String(255) | None = None
    address: String(45)
    city: String(45)
    postal_code: String(10) | None = None
    state: String(20) | None = None
    country: String(3)
    coordinates: GeoLocation
    evse_uid: CiString(36)
    evse_id: CiString(48)
    connector_id: CiString(36)
    connector_standard: str
    connector_format: str
    connector_power_type: str


class Cdr(OcpiModel):
    country_code: CiString(2)
    party_id: CiString(3)
    id: CiString(39)
    start_date_time: datetime
    end_date_time: datetime
    session_id: CiString(36) | None = None
    cdr_token: CdrToken
    auth_method: str
    authorization_reference: CiString(36) | None = None
    cdr_location: CdrLocation
    meter_id: String(255) | None = None
    currency: String(3)
    tariffs: list[Tariff] | None = None
    charging_periods: list[ChargingPeriod] = Field(min_length=1)
    signed_data: dict[str, Any] | None = None
    total_cost: Price
    total_fixed_cost: Price | None = None
    total_energy: Decimal
    total_energy_cost: Price | None = None
    total_time: Decimal
    total_time_cost: Price | None = None
    total_parking_time: Decimal | None = None
    total_parking_cost: Price | None = None
    total_reservation_cost: Price | None = None
    remark: String(255) | None = None
    invoice_reference_id: CiString(39) | None = None
    credit: bool | None = None
    credit_reference_id: CiString(39) | None = None
    home_charging_compensation: bool | None = None
    last_updated: datetime


# --- Commands ---------------------------------------------------------------------------


class CommandType(StrEnum):
    CANCEL_RESERVATION = "CANCEL_RESERVATION"
    RESERVE_NOW = "RESERVE_NOW"
    START_SESSION = "START_SESSION"
    STOP_SESSION = "STOP_SESSION"
    UNLOCK_CONNECTOR = "UNLOCK_CONNECTOR"


class CommandResponseType(StrEnum):
    NOT_SUPPORTED = "NOT_SUPPORTED"
    REJECTED = "REJECTED"
    ACCEPTED = "ACCEPTED"
    UNKNOWN_SESSION = "UNKNOWN_SESSION"


class CommandResultType(StrEnum):
    ACCEPTED = "ACCEPTED"
    CANCELED_RESERVATION = "CANCELED_RESERVATION"
    EVSE_OCCUPIED = "EVSE_OCCUPIED"
    EVSE_INOPERATIVE = "EVSE_INOPERATIVE"
    FAILED = "FAILED"
    NOT_SUPPORTED = "NOT_SUPPORTED"
    REJECTED = "REJECTED"
    TIMEOUT = "TIMEOUT"
    UNKNOWN_RESERVATION = "UNKNOWN_RESERVATION"


class StartSession(OcpiModel):
    response_url: str
    token: Token
    location_id: CiString(36)
    evse_uid: CiString(36) | None = None
    connector_id: CiString(36) | None = None
    authorization_reference: CiString(36) | None = None


class StopSession(OcpiModel):
    response_url: str
    session_id: CiString(36)


class UnlockConnector(OcpiModel):
    response_url: str
    location_id: CiString(36)
    evse_uid: CiString(36)
    connector_id: CiString(36)


class CommandResponse(OcpiModel):
    result: CommandResponseType
    timeout: int
    message: list[DisplayText] | None = None


class CommandResult(OcpiModel):
    result: CommandResultType
    message: list[DisplayText] | None = None


# --- Parsing with OCPI errors -----------------------------------------------------------


M = TypeVar("M", bound=OcpiModel)


def parse(model: type[M], data: Any) -> M:
    """Validate `data` as `model`, or raise OcpiError 2001 naming the offending fields."""
    if not isinstance(data, dict):
        raise OcpiError(StatusCode.INVALID_PARAMETERS, f"expected a {model.__name__} object")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors()[:5]:
            where = ".".join(str(p) for p in error["loc"]) or model.__name__
            problems.append(f"{where}: {error['msg']}")
        raise OcpiError(
            StatusCode.INVALID_PARAMETERS, f"Invalid {model.__name__}: " + "; ".join(problems)
        ) from exc
