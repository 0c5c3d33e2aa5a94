"""What the simulator's and the hub's HTTP faces share: OCPI envelopes, error handlers,
request arguments and the pagination of lists they compose themselves."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException

from cpo_simulator.jsonio import dumps, loads
from ocpi.transport import OcpiError, StatusCode, envelope, pagination_headers, parse_datetime

logger = logging.getLogger(__name__)


def envelope_response(
    data: Any = None,
    status_code: int = StatusCode.SUCCESS,
    message: str | None = None,
    http_status: int = 200,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """An OCPI envelope as a Flask response, numbers written with their exact digits."""
    return Response(dumps(envelope(data, status_code, message)), status=http_status,
                    headers=dict(headers or {}), mimetype="application/json")


def plain_json(data: Any, status: int = 200) -> Response:
    """A test control's answer: JSON without the OCPI envelope."""
    return Response(dumps(data), status=status, mimetype="application/json")


def register_error_handlers(app: Flask, who: str, server_status: int) -> None:
    """OCPI errors in the envelope; other paths (the control API) as plain JSON; anything
    unexpected as `server_status` (3000 for a CPO, 4000 for a hub) after logging it."""

    @app.errorhandler(OcpiError)
    def ocpi_error(exc: OcpiError) -> Response:
        return envelope_response(status_code=exc.status_code, message=exc.message,
                                 http_status=exc.http_status)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response:
        code = exc.code or 500
        if request.path.startswith("/ocpi"):
            return envelope_response(status_code=StatusCode.CLIENT_ERROR,
                                     message=f"{code} {exc.name}", http_status=code)
        return Response(dumps({"error": exc.description}), status=code,
                        mimetype="application/json")

    @app.errorhandler(Exception)
    def server_error(exc: Exception) -> Response:
        logger.exception("%s request failed", who)
        return envelope_response(status_code=server_status,
                                 message=f"Internal {who} error: {type(exc).__name__}",
                                 http_status=500)


def public_base(configured: str) -> str:
    """The base URL others reach us at: the configured one, else the request's host."""
    return (configured or request.host_url).rstrip("/")


def json_body() -> Any:
    raw = request.get_data()
    if not raw:
        raise OcpiError(StatusCode.INVALID_PARAMETERS, "A JSON body is required", 400)
    try:
        return loads(raw)
    except ValueError as exc:
        raise OcpiError(StatusCode.INVALID_PARAMETERS, f"Invalid JSON: {exc}", 400) from exc


def paginated(items: Sequence[tuple[datetime | None, Any]], page_limit: int,
              base: str) -> Response:
    """One page of `items` (last_updated, document) as the request's date_from, date_to,
    offset and limit select it, with the Link, X-Total-Count and X-Limit headers; limit is
    capped at page_limit. Items without a date were filtered by their owner already."""
    date_from = date_arg("date_from")
    date_to = date_arg("date_to")
    offset = int_arg("offset", 0)
    limit = int_arg("limit", page_limit)
    if offset < 0 or limit < 1:
        raise OcpiError(StatusCode.INVALID_PARAMETERS,
                        "offset must be 0 or more and limit 1 or more")
    limit = min(limit, page_limit)
    matching = [doc for updated, doc in items
                if updated is None or ((date_from is None or updated >= date_from)
                                       and (date_to is None or updated < date_to))]
    page = matching[offset:offset + limit]
    query = request.query_string.decode("utf-8")
    url = f"{base}{request.path}" + (f"?{query}" if query else "")
    headers = pagination_headers(url, offset, limit, len(matching), len(page))
    return envelope_response(page, headers=headers)


def date_arg(name: str) -> datetime | None:
    value = request.args.get(name)
    if not value:
        return None
    try:
        return parse_datetime(value)
    except ValueError as exc:
        raise OcpiError(StatusCode.INVALID_PARAMETERS,
                        f"{name} is not an OCPI DateTime: {value!r}") from exc


def int_arg(name: str, default: int) -> int:
    value = request.args.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError as exc:
        raise OcpiError(StatusCode.INVALID_PARAMETERS,
                        f"{name} is not an integer: {value!r}") from exc
