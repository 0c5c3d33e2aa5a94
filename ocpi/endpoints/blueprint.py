"""The /ocpi blueprint and what every OCPI endpoint shares, whatever its module or
version: URL rules, authentication, envelope and errors, headers, log hooks, JSON bodies.

Authentication: the credentials token of a connected party; a token A (of an invited party
not yet registered) opens versions and credentials only. Routing and correlation headers
go on every answer; the message log's hooks see every /ocpi request, routed or not.

The endpoints themselves are in one file per OCPI module beside this one; the 2.1.1 ones
in v211.py."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from flask import Blueprint, Response, current_app, g, request
from flask import typing as ft
from flask.blueprints import BlueprintSetupState
from sqlalchemy import bindparam, select
from sqlalchemy.orm import joinedload
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from extensions import db
from ocpi import answers, messages
from ocpi.models import Party, token_hash
from ocpi.modules.common import MAX_DEPTH, check_tree
from ocpi.transport import (
    OcpiError,
    StatusCode,
    envelope,
    json_dumps,
    new_request_id,
    token_candidates,
)

ROUTED_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


class _OcpiBlueprint(Blueprint):
    """Rules for every OCPI URL:
    - it also answers with a trailing slash: peers build URLs from the endpoint URLs we
      list, and the spec's own examples write both `cdrs` and `cdrs/`;
    - every method reaches the blueprint, which answers a wrong one with 405 in the OCPI
      envelope (_check_method); left to routing, the 405 would be raised before any
      blueprint is chosen and answered by the app's own handler, as an HTML page.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.allowed_methods: dict[str, set[str]] = {}

    def add_url_rule(
        self,
        rule: str,
        endpoint: str | None = None,
        view_func: ft.RouteCallable | None = None,
        provide_automatic_options: bool | None = None,
        **options: Any,
    ) -> None:
        options.setdefault("strict_slashes", False)
        # A path with "//" (an id that decodes to a URL) is no OCPI URL: not redirected
        # (an HTML 308 from routing, outside any envelope) but answered 404 in the envelope.
        options.setdefault("merge_slashes", False)
        methods = options.pop("methods", None) or getattr(view_func, "methods", None) or ["GET"]
        name = endpoint if endpoint is not None else getattr(view_func, "__name__", "")
        self.allowed_methods.setdefault(name, set()).update(m.upper() for m in methods)
        super().add_url_rule(rule, endpoint, view_func, provide_automatic_options,
                             methods=ROUTED_METHODS, **options)


bp = _OcpiBlueprint("ocpi", __name__, url_prefix="/ocpi")


@bp.record_once
def _require_answers(state: BlueprintSetupState) -> None:
    # No app serves /ocpi without the domain's answers (wiring.answers): missing, it fails
    # at start-up, not at the first CPO request that needs one.
    answers.of(state.app)


VERSION = "2.2.1"
MAX_BODY_BYTES = 1_000_000
MAX_PAGE = 100
CONFIGURATION_ENDPOINTS = {
    "ocpi.versions", "ocpi.version_details", "ocpi.credentials",
    "ocpi.version_details_211", "ocpi.credentials_211",
}


def _json_response(body: dict[str, Any], http_status: int) -> Response:
    # Not jsonify: Flask's provider writes a Decimal as a string; OCPI numbers are numbers.
    return Response(json_dumps(body), status=http_status, mimetype="application/json")


def ocpi_response(
    data: Any = None, http_status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    response = _json_response(envelope(data), http_status)
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


@bp.errorhandler(OcpiError)
def _ocpi_error(exc: OcpiError) -> Response:
    return _json_response(
        envelope(status_code=exc.status_code, status_message=exc.message), exc.http_status
    )


# By code as well as by class: Flask prefers an app's handler for a code (app.py has them
# for 404 and 405, serving pages) over a blueprint's handler for a class.
@bp.errorhandler(HTTPException)
@bp.errorhandler(404)
@bp.errorhandler(405)
def http_error(exc: HTTPException) -> Response:
    status = StatusCode.CLIENT_ERROR if (exc.code or 500) < 500 else StatusCode.SERVER_ERROR
    response = _json_response(
        envelope(status_code=status, status_message=exc.description), exc.code or 500
    )
    # MethodNotAllowed names the methods that would do; other HTTPExceptions have none.
    allowed: list[str] | None = getattr(exc, "valid_methods", None)
    if exc.code == 405 and allowed:
        response.headers["Allow"] = ", ".join(allowed)
    return response


# The message log. App-wide hooks limited to /ocpi: a URL no route matches belongs to no
# blueprint, and is an OCPI request to log all the same. App-wide after_request hooks run
# after the blueprint's, so the response logged carries its final headers.
@bp.before_app_request
def _log_start() -> None:
    if messages.is_ocpi_path(request.path):
        # Tests share one app context between requests, and with it `g`: the party logged
        # must be the one this request authenticated, or none.
        g.pop("party", None)
        g.pop("party_routing", None)
        messages.incoming_started()


@bp.after_app_request
def _log_response(response: Response) -> Response:
    messages.incoming_finished(response)
    return response


@bp.teardown_app_request
def _log_unanswered(exc: BaseException | None) -> None:
    # Only when an exception escaped before any response was made (after_request did not run).
    messages.incoming_finished(None, exc)


@bp.before_request
def _check_method() -> None:
    allowed = bp.allowed_methods[(request.endpoint or "").partition(".")[2]]
    if "GET" in allowed:
        allowed = allowed | {"HEAD"}
    if request.method not in allowed | {"OPTIONS"}:
        raise MethodNotAllowed(valid_methods=sorted(allowed))


# Built once: every OCPI request runs it.
_PARTY_BY_TOKEN = select(Party).options(joinedload(Party.grants)).where(
    Party.incoming_token_hash == bindparam("token_hash"))


@bp.before_request
def _authenticate() -> None:
    header = request.headers.get("Authorization")
    party = None
    for index, candidate in enumerate(token_candidates(header)):
        # The party and its grants in one statement: found once per request.
        party = db.session.scalars(
            _PARTY_BY_TOKEN, {"token_hash": token_hash(candidate)}).unique().first()
        if party is not None:
            # Remember how this peer encodes its token, so we can tell operators.
            encoding = "base64" if index == 0 and len(token_candidates(header)) > 1 else "plain"
            if party.auth_encoding != encoding:
                party.auth_encoding = encoding
            break
    if party is None or party.status == "DISCONNECTED":
        raise OcpiError(
            StatusCode.CLIENT_ERROR,
            "Missing or unknown credentials token: send 'Authorization: Token <token>'",
            http_status=401,
        )
    if party.status == "PENDING" and request.endpoint not in CONFIGURATION_ENDPOINTS:
        raise OcpiError(
            StatusCode.CLIENT_ERROR,
            "Token A only opens versions and credentials: register first",
            http_status=401,
        )
    g.party = party
    # Read again after the request's commit (routing headers), when the row is expired.
    g.party_routing = (party.country_code, party.party_id)
    too_large = (request.content_length or 0) > MAX_BODY_BYTES
    if request.method in {"POST", "PUT", "PATCH"} and too_large:
        raise OcpiError(StatusCode.CLIENT_ERROR, "Request body too large", http_status=413)


# The spec's lengths of the ids a URL carries (CiStrings); anything longer, or not printable
# ASCII, never names a stored object and must not reach a query (PostgreSQL refuses NUL).
PATH_LIMITS = {"country_code": 2, "party_id": 3, "location_id": 36, "evse_uid": 36,
               "connector_id": 36, "tariff_id": 36, "session_id": 36, "uid": 36,
               "command": 24}
MAX_PATH_INT = 2**31  # <int:cdr_pk> beyond an INTEGER column is no CDR of ours


@bp.before_request
def _check_path() -> None:
    for name, value in (request.view_args or {}).items():
        if isinstance(value, int):
            if not 0 <= value < MAX_PATH_INT:
                raise OcpiError(StatusCode.INVALID_PARAMETERS, f"{name} out of range")
            continue
        if not isinstance(value, str):
            continue
        limit = PATH_LIMITS.get(name, 36)
        if not value or len(value) > limit or not all(" " <= ch <= "~" for ch in value):
            raise OcpiError(
                StatusCode.INVALID_PARAMETERS,
                f"{name} in the URL must be 1 to {limit} printable ASCII characters",
            )


@bp.after_request
def _correlation(response: Response) -> Response:
    # Echo the peer's request id, or give the response one of its own.
    response.headers["X-Request-ID"] = request.headers.get("X-Request-ID") or new_request_id()
    response.headers["X-Correlation-ID"] = request.headers.get("X-Correlation-ID", "")
    # As authenticated (not g.party, which a commit has expired: no second look-up).
    country_code, party_id = g.get("party_routing") or (None, None)
    routed = request.endpoint not in CONFIGURATION_ENDPOINTS and "/2.1.1/" not in request.path
    if country_code and routed:  # 2.1.1 has no routing headers
        response.headers["OCPI-from-country-code"] = current_app.config["OCPI_COUNTRY_CODE"]
        response.headers["OCPI-from-party-id"] = current_app.config["OCPI_PARTY_ID"]
        response.headers["OCPI-to-country-code"] = request.headers.get(
            "OCPI-from-country-code", country_code
        )
        response.headers["OCPI-to-party-id"] = request.headers.get(
            "OCPI-from-party-id", party_id or ""
        )
    return response


def json_body() -> Any:
    """The request's JSON: numbers exact (Decimal), no NUL anywhere, at most
    MAX_DEPTH deep; else OcpiError 2001 (HTTP 400 for a body that is no JSON)."""
    raw = request.get_data(cache=True)
    if len(raw) > MAX_BODY_BYTES:
        raise OcpiError(StatusCode.CLIENT_ERROR, "Request body too large", http_status=413)
    if b"\x00" in raw:
        # Never valid in UTF-8 JSON text (json.loads would also take UTF-16 and -32, which
        # OCPI does not allow and which are full of NUL bytes).
        raise OcpiError(StatusCode.INVALID_PARAMETERS,
                        "Request body is not valid JSON: it contains a NUL byte", 400)
    try:
        data = json.loads(raw, parse_float=Decimal, parse_constant=_not_json)
    except RecursionError as exc:
        # Valid JSON, too deep for Python's parser (about 1000 levels).
        raise OcpiError(StatusCode.INVALID_PARAMETERS,
                        f"JSON nested deeper than {MAX_DEPTH} levels") from exc
    except ValueError as exc:
        # status_codes.asciidoc: a body that is not valid JSON is an HTTP 400.
        raise OcpiError(
            StatusCode.INVALID_PARAMETERS, f"Request body is not valid JSON: {exc}", 400
        ) from exc
    check_tree(data)  # escaped NUL (\\u0000) in a string or key; depth
    return data


def _not_json(constant: str) -> Any:
    # Python's json reads NaN and Infinity, which JSON does not have.
    raise ValueError(f"{constant} is not JSON")


def require_owner(country_code: str, party_id: str) -> Party:
    party: Party = g.party
    if not party.owns(country_code, party_id):
        raise OcpiError(
            StatusCode.CLIENT_ERROR,
            f"{country_code}/{party_id} is not a party of this connection",
            http_status=404,
        )
    return party


def require_match(data: Any, country_code: str, party_id: str, field: str, value: str) -> None:
    if not isinstance(data, dict):
        raise OcpiError(StatusCode.INVALID_PARAMETERS, "Request body must be a JSON object")
    for name, expected in (("country_code", country_code), ("party_id", party_id),
                           (field, value)):
        sent = data.get(name)
        if sent is not None and str(sent).upper() != expected.upper():
            raise OcpiError(
                StatusCode.INVALID_PARAMETERS,
                f"{name} {sent!r} in the body differs from {expected!r} in the URL",
            )
