"""OCPI 2.2.1 wire formats as pydantic models, one per object in the spec's field tables.

Each model mirrors its table: required fields ('1', '+') have no default, optional fields
('?', '*') default to None. Unknown extra fields are ignored (be liberal in what we accept),
and explicit nulls for optional fields are taken as absent. String lengths are those of the
tables; CiStrings are kept as sent and compared case-insensitively where they are looked up.

Strict where it matters (docs/ocpi.md, "What ScanCharge refuses and what it tolerates"):
- booleans, integers and numbers are JSON booleans and numbers, never strings ("yes",
  "230", "12.5" are refused: stored as strings they would break every reader);
- a CiString is printable ASCII (types.asciidoc) within its length: the upper-cased key
  columns are built from it, and "straße".upper() == "STRASSE" would make two ids one;
- a string holds no NUL (PostgreSQL text cannot) and keeps within its length;
- numbers are finite and within what the database columns hold.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, TypeVar
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from ocpi.transport import OcpiError, StatusCode, format_datetime, parse_datetime

# --- Strict scalar types ------------------------------------------------------------------

# Deeper JSON than this is refused before it is validated or stored: no OCPI object nests
# beyond about 8 levels, and Python's own recursion (json, pydantic, json_dumps) ends near
# 1000, where it would answer 500 instead of 2001.
MAX_DEPTH = 32


def _printable_ascii(value: str) -> str:
    # types.asciidoc, CiString: "Only printable ASCII allowed".
    if not all(" " <= ch <= "~" for ch in value):
        raise ValueError("a CiString is printable ASCII only (0x20-0x7E)")
    return value


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("NUL is not allowed in a string")
    return value


def _url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        raise ValueError("a URL is http:// or https:// with a host")
    return value


# Typed aliases (mypy reads each as str); the number is the spec's maximum length.
CiString2 = Annotated[str, Field(max_length=2), AfterValidator(_printable_ascii)]
CiString3 = Annotated[str, Field(max_length=3), AfterValidator(_printable_ascii)]
CiString36 = Annotated[str, Field(max_length=36), AfterValidator(_printable_ascii)]
CiString39 = Annotated[str, Field(max_length=39), AfterValidator(_printable_ascii)]
CiString48 = Annotated[str, Field(max_length=48), AfterValidator(_printable_ascii)]
String2 = Annotated[str, Field(max_length=2), AfterValidator(_no_nul)]
String3 = Annotated[str, Field(max_length=3), AfterValidator(_no_nul)]
String4 = Annotated[str, Field(max_length=4), AfterValidator(_no_nul)]
String5 = Annotated[str, Field(max_length=5), AfterValidator(_no_nul)]
String10 = Annotated[str, Field(max_length=10), AfterValidator(_no_nul)]
String11 = Annotated[str, Field(max_length=11), AfterValidator(_no_nul)]
String16 = Annotated[str, Field(max_length=16), AfterValidator(_no_nul)]
String20 = Annotated[str, Field(max_length=20), AfterValidator(_no_nul)]
String45 = Annotated[str, Field(max_length=45), AfterValidator(_no_nul)]
String64 = Annotated[str, Field(max_length=64), AfterValidator(_no_nul)]
String100 = Annotated[str, Field(max_length=100), AfterValidator(_no_nul)]
String255 = Annotated[str, Field(max_length=255), AfterValidator(_no_nul)]
String512 = Annotated[str, Field(max_length=512), AfterValidator(_no_nul)]
# Enumerations ScanCharge keeps as text (ConnectorType, AuthMethod, ...): any length the
# body allows, no NUL.
Text = Annotated[str, AfterValidator(_no_nul)]
# types.asciidoc: "An URL a string(255)"; only web URLs are ever fetched or followed.
URL = Annotated[str, Field(max_length=255), AfterValidator(_no_nul), AfterValidator(_url)]

# Within the database columns with room to spare: ocpi_cdrs totals and charges' cost are
# Numeric(18, 4) (14 integer digits), charges' energy_kwh Numeric(12, 4) (8).
MAX_AMOUNT = Decimal(10) ** 12
MAX_KWH = Decimal(10) ** 7
# Places beyond any real figure are refused: 1E-999999 is a valid JSON number no column
# should meet. Room is left for float artefacts (0.30000000000000004) and for computed
# Decimals (28 significant digits after a few zeros, e.g. 16 minutes in hours).
# Stored columns round to 4.
MAX_PLACES = 40
INT_LIMIT = 2**31


def _number(limit: Decimal) -> Any:
    def check(value: Any) -> Decimal:
        # json_body reads JSON fractions as Decimal (parse_float) and integers as int; a
        # string, a boolean (an int in Python) or anything else is not an OCPI number.
        if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
            raise PydanticCustomError("decimal_type",
                                      "Input should be a valid decimal (a JSON number)")
        number = value if isinstance(value, Decimal) else Decimal(str(value))
        if not number.is_finite():
            raise ValueError("must be a finite number")
        if abs(number) >= limit:
            raise ValueError(f"must be less than {limit:,f} in magnitude")
        exponent = number.as_tuple().exponent
        if isinstance(exponent, int) and exponent < -MAX_PLACES:
            raise ValueError(f"more than {MAX_PLACES} decimal places")
        return number

    return BeforeValidator(check)


Number = Annotated[Decimal, _number(MAX_AMOUNT)]
Kwh = Annotated[Decimal, _number(MAX_KWH)]
Int = Annotated[StrictInt, Field(ge=-INT_LIMIT, lt=INT_LIMIT)]
Bool = StrictBool


def check_tree(data: Any, max_depth: int = MAX_DEPTH) -> None:
    """Refuse (OcpiError 2001) JSON deeper than max_depth, or with NUL in a string or key.

    Iterative, so no depth can exhaust Python's recursion here.
    """
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, str):
            if "\x00" in value:
                raise OcpiError(StatusCode.INVALID_PARAMETERS, "NUL is not allowed in JSON text")
        elif isinstance(value, dict | list):
            if depth > max_depth:
                raise OcpiError(StatusCode.INVALID_PARAMETERS,
                                f"JSON nested deeper than {max_depth} levels")
            items = value.items() if isinstance(value, dict) else enumerate(value)
            for key, item in items:
                if isinstance(key, str) and "\x00" in key:
                    raise OcpiError(StatusCode.INVALID_PARAMETERS,
                                    "NUL is not allowed in JSON text")
                stack.append((item, depth + 1))


class OcpiModel(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    @field_validator("*", mode="before")
    @classmethod
    def _datetimes(cls, value: Any, info: Any) -> Any:
        field = cls.model_fields.get(info.field_name)
        if field is None or field.annotation not in (datetime, datetime | None):
            return value
        if isinstance(value, str):
            if len(value) > 64:  # RFC 3339 text is 20-35 characters; parse no essays
                raise ValueError("not an OCPI DateTime: too long")
            try:
                return parse_datetime(value)
            except (ValueError, OverflowError) as exc:
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
    language: String2
    text: String512


class Price(OcpiModel):
    excl_vat: Number
    incl_vat: Number | None = None


# --- Versions ---------------------------------------------------------------------------


class Version(OcpiModel):
    version: String10
    url: URL


class InterfaceRole(StrEnum):
    SENDER = "SENDER"
    RECEIVER = "RECEIVER"


class Endpoint(OcpiModel):
    identifier: String64
    role: InterfaceRole | None = None  # absent in 2.1.1
    url: URL


class VersionDetails(OcpiModel):
    version: String10
    endpoints: list[Endpoint] = Field(min_length=1)


# --- Credentials ------------------------------------------------------------------------


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


class CredentialsRole(OcpiModel):
    role: Role
    business_details: BusinessDetails
    party_id: CiString3
    country_code: CiString2


class Credentials(OcpiModel):
    token: String64
    url: URL
    roles: list[CredentialsRole] = Field(min_length=1)

    @field_validator("token")
    @classmethod
    def _printable(cls, value: str) -> str:
        if not value or not all(0x21 <= ord(ch) <= 0x7E for ch in value):
            raise ValueError("token must be printable non-whitespace ASCII")
        return value


# --- Locations --------------------------------------------------------------------------


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
    price: Number
    vat: Number | None = None
    step_size: Int


class TariffRestrictions(OcpiModel):
    start_time: String5 | None = None
    end_time: String5 | None = None
    start_date: String10 | None = None
    end_date: String10 | None = None
    min_kwh: Number | None = None
    max_kwh: Number | None = None
    min_current: Number | None = None
    max_current: Number | None = None
    min_power: Number | None = None
    max_power: Number | None = None
    min_duration: Int | None = None
    max_duration: Int | None = None
    day_of_week: list[Text] | None = None
    reservation: Text | None = None


class TariffElement(OcpiModel):
    price_components: list[PriceComponent] = Field(min_length=1)
    restrictions: TariffRestrictions | None = None


class Tariff(OcpiModel):
    country_code: CiString2
    party_id: CiString3
    id: CiString36
    currency: String3
    type: TariffType | None = None
    tariff_alt_text: list[DisplayText] | None = None
    tariff_alt_url: URL | None = None
    min_price: Price | None = None
    max_price: Price | None = None
    # OCPI 2.3.0 (Payments): what to pre-authorise for an ad-hoc session; read when sent.
    preauthorize_amount: Number | None = None
    elements: list[TariffElement] = Field(min_length=1)
    start_date_time: datetime | None = None
    end_date_time: datetime | None = None
    energy_mix: dict[Text, Any] | None = None
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


# --- Sessions and CDRs ------------------------------------------------------------------


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
    response_url: String255  # ours, sent to the CPO: built by ocpi.commands
    token: Token
    location_id: CiString36
    evse_uid: CiString36 | None = None
    connector_id: CiString36 | None = None
    authorization_reference: CiString36 | None = None


class StopSession(OcpiModel):
    response_url: String255  # ours, sent to the CPO: built by ocpi.commands
    session_id: CiString36


class UnlockConnector(OcpiModel):
    response_url: String255  # ours, sent to the CPO: built by ocpi.commands
    location_id: CiString36
    evse_uid: CiString36
    connector_id: CiString36


class CommandResponse(OcpiModel):
    result: CommandResponseType
    # Required by mod_commands, yet some CPOs leave it out: ocpi.commands then applies
    # OCPI_DEFAULT_COMMAND_TIMEOUT and notes the deviation.
    timeout: Int | None = None
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
    check_tree(data)  # also for what is pulled from a CPO, which never passes json_body
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
