"""OCPI 2.2.1 wire formats: what every module's objects are made of (types.asciidoc), and
parse(). Each OCPI module's objects are in the file named after it (ocpi/modules/), as
pydantic models, one per object in the spec's field tables.

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

from collections.abc import Mapping
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


# --- Parsing with OCPI errors -----------------------------------------------------------


M = TypeVar("M", bound=OcpiModel)


def parse(model: type[M], data: Any, offsets: Mapping[str, int] | None = None) -> M:
    """Validate `data` as `model`, or raise OcpiError 2001 naming the offending fields.

    `offsets`: list fields that hold only the items after that many already stored (a
    PATCH's new charging periods), so an error numbers an item as the whole list would."""
    if not isinstance(data, dict):
        raise OcpiError(StatusCode.INVALID_PARAMETERS, f"expected a {model.__name__} object")
    check_tree(data)  # also for what is pulled from a CPO, which never passes json_body
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors()[:5]:
            loc = list(error["loc"])
            if offsets and len(loc) > 1 and isinstance(loc[1], int):
                loc[1] += offsets.get(str(loc[0]), 0)
            where = ".".join(str(p) for p in loc) or model.__name__
            problems.append(f"{where}: {error['msg']}")
        raise OcpiError(
            StatusCode.INVALID_PARAMETERS, f"Invalid {model.__name__}: " + "; ".join(problems)
        ) from exc
