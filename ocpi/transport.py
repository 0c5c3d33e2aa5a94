"""OCPI transport rules (transport_and_format, status_codes): the response envelope,
status codes, credentials-token encoding, routing headers and pagination.

Pure functions and small types only, shared by ScanCharge's server, its client and the
CPO simulator.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from enum import IntEnum
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import orjson


class StatusCode(IntEnum):
    SUCCESS = 1000
    CLIENT_ERROR = 2000
    INVALID_PARAMETERS = 2001
    NOT_ENOUGH_INFORMATION = 2002
    UNKNOWN_LOCATION = 2003
    UNKNOWN_TOKEN = 2004
    SERVER_ERROR = 3000
    UNABLE_TO_USE_CLIENT_API = 3001
    UNSUPPORTED_VERSION = 3002
    NO_MATCHING_ENDPOINTS = 3003
    HUB_ERROR = 4000
    HUB_UNKNOWN_RECEIVER = 4001
    HUB_TIMEOUT = 4002
    HUB_CONNECTION_PROBLEM = 4003


class OcpiError(Exception):
    """An error answered to the peer in the OCPI envelope.

    http_status follows status_codes.asciidoc: 401 for a missing or unknown token, 404 for
    an unknown object, 405 for credentials misuse; otherwise a request that reached the OCPI
    layer is answered with HTTP 200 and the OCPI status code carries the error.
    """

    def __init__(self, status_code: int, message: str, http_status: int = 200) -> None:
        super().__init__(message)
        self.status_code = int(status_code)
        self.message = message
        self.http_status = http_status


def now_utc() -> datetime:
    return datetime.now(UTC)


def format_datetime(value: datetime) -> str:
    """OCPI DateTime: UTC, ISO 8601, 'Z', no more than second precision needed."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_datetime(value: str) -> datetime:
    """Parse an OCPI DateTime; a value without offset is UTC (types.asciidoc)."""
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def envelope(
    data: Any = None,
    status_code: int = StatusCode.SUCCESS,
    status_message: str | None = None,
    include_data: bool = True,
) -> dict[str, Any]:
    body: dict[str, Any] = {}
    if include_data and data is not None:
        body["data"] = data
    body["status_code"] = int(status_code)
    if status_message:
        body["status_message"] = status_message
    body["timestamp"] = format_datetime(now_utc())
    return body


def encode_token(token: str) -> str:
    """The credentials token as sent after 'Token ' in OCPI 2.2.x: Base64 of its UTF-8."""
    return base64.b64encode(token.encode("utf-8")).decode("ascii")


def authorization_header(token: str, version: str = "2.2.1") -> str:
    # 2.1.1 peers expect the token as it is; 2.2.x requires Base64.
    if version.startswith("2.1"):
        return f"Token {token}"
    return f"Token {encode_token(token)}"


def token_candidates(header: str | None) -> list[str]:
    """The credentials tokens an Authorization header may carry, most likely first.

    Many peers send the token unencoded (the spec's note in transport_and_format), so a
    value that decodes as Base64 to printable ASCII is tried decoded and as it is.
    """
    if not header:
        return []
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() != "token" or not value.strip():
        return []
    value = value.strip()
    candidates = []
    try:
        decoded = base64.b64decode(value, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        decoded = ""
    decoded = decoded.rstrip("\n")  # the spec's own example encodes a trailing newline
    if decoded and all(0x21 <= ord(ch) <= 0x7E for ch in decoded):
        candidates.append(decoded)
    candidates.append(value)
    return candidates


def new_request_id() -> str:
    return str(uuid.uuid4())


ROUTING_HEADERS = (
    "OCPI-from-country-code",
    "OCPI-from-party-id",
    "OCPI-to-country-code",
    "OCPI-to-party-id",
)


def routing_headers(from_cc: str, from_pid: str, to_cc: str, to_pid: str) -> dict[str, str]:
    return {
        "OCPI-from-country-code": from_cc,
        "OCPI-from-party-id": from_pid,
        "OCPI-to-country-code": to_cc,
        "OCPI-to-party-id": to_pid,
    }


def pagination_headers(
    url: str, offset: int, limit: int, total: int, returned: int
) -> dict[str, str]:
    """Link (next page, keeping the request's filters), X-Total-Count and X-Limit."""
    headers = {"X-Total-Count": str(total), "X-Limit": str(limit)}
    # An empty page never links on: a "next" at the same offset would loop a client forever.
    if returned > 0 and offset + returned < total:
        parts = urlsplit(url)
        query = [(k, v) for k, v in parse_qsl(parts.query) if k not in {"offset", "limit"}]
        query = [("offset", str(offset + returned)), ("limit", str(limit)), *query]
        next_url = urlunsplit(parts._replace(query=urlencode(query)))
        headers["Link"] = f'<{next_url}>; rel="next"'
    return headers


# One link-value of RFC 8288: <URI> followed by its ;-separated parameters. The URI may
# itself contain commas, so the header is not simply split on ','.
_LINK_VALUE = re.compile(r"<([^>]*)>((?:\s*;\s*[^;,]*)*)")


def next_link(link_header: str | None) -> str | None:
    """The URL of rel="next" in a Link header, if any."""
    if not link_header:
        return None
    for match in _LINK_VALUE.finditer(link_header):
        for param in match.group(2).split(";"):
            name, _, value = param.partition("=")
            if name.strip().lower() != "rel":
                continue
            # rel may list several relation types: rel="next last"
            if "next" in value.strip().strip('"').lower().split():
                return match.group(1).strip()
    return None


def unwrap(body: bytes | str) -> dict[str, Any]:
    """Parse a peer's response envelope; raise OcpiError if it is not one."""
    try:
        payload = json.loads(body, parse_float=Decimal)  # money stays exact, never a float
    except (TypeError, ValueError, RecursionError) as exc:  # too deep is no answer either
        raise OcpiError(StatusCode.SERVER_ERROR, f"peer answered non-JSON: {exc}") from exc
    if not isinstance(payload, dict) or "status_code" not in payload:
        raise OcpiError(StatusCode.SERVER_ERROR, "peer answered without an OCPI envelope")
    return payload


def json_dumps(value: Any) -> str:
    """JSON text in which a Decimal is written as a JSON number with exactly its digits.

    json.dumps cannot do that (a Decimal becomes a float first, losing digits), and Flask's
    default provider writes a Decimal as a string, which no OCPI number field may be.
    Written by orjson (compiled: the stored and answered JSON of every OCPI request passes
    here), each Decimal handed over as the JSON text of its digits; what orjson refuses (an
    integer beyond 64 bits) is written by the pure-Python writer instead.
    """
    try:
        text = orjson.dumps(value, default=_orjson_default, option=_ORJSON_OPTIONS)
    except orjson.JSONEncodeError:
        return _json_dumps_pure(value)
    if b"null" in text and _has_nonfinite_float(value):
        # orjson writes NaN and Infinity as null; JSON has no such numbers: refuse them.
        raise ValueError("NaN or Infinity has no JSON representation")
    return text.decode("utf-8")


_ORJSON_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME


def _orjson_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"{value} has no JSON representation")
        return orjson.Fragment(format(value, "f"))
    if isinstance(value, datetime):
        return format_datetime(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _has_nonfinite_float(value: Any) -> bool:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, float) and not math.isfinite(item):
            return True
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
    return False


def _json_dumps_pure(value: Any) -> str:
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"{value} has no JSON representation")
        return format(value, "f")
    if isinstance(value, dict):
        members = (f"{json.dumps(str(k), ensure_ascii=False)}:{_json_dumps_pure(v)}"
                   for k, v in value.items())
        return "{" + ",".join(members) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_json_dumps_pure(v) for v in value) + "]"
    if isinstance(value, datetime):
        return json.dumps(format_datetime(value))
    return json.dumps(value, ensure_ascii=False, allow_nan=False)
