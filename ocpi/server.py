"""ScanCharge's OCPI 2.2.1 server, eMSP role: versions, credentials, and the receivers CPOs
push to (Locations, Tariffs, Sessions, CDRs, CommandResults), plus the Tokens sender.

Every answer is the OCPI envelope. Authentication: the credentials token of a connected
party; a token A (an invited, not yet registered party) opens versions and credentials only.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

from flask import Blueprint, Response, g, request, url_for
from sqlalchemy import func, select
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from extensions import db
from ocpi import credentials as creds
from ocpi import messages, notices, signals, store
from ocpi.models import IssuedToken, OcpiCdr, OcpiCommand, Party, token_hash
from ocpi.modules.cdrs import Cdr
from ocpi.modules.commands import CommandResult
from ocpi.modules.common import MAX_DEPTH, CiString36, OcpiModel, check_tree, parse
from ocpi.modules.locations import Connector, Evse
from ocpi.transport import (
    OcpiError,
    StatusCode,
    envelope,
    format_datetime,
    json_dumps,
    new_request_id,
    now_utc,
    pagination_headers,
    parse_datetime,
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
        self, rule: str, endpoint: str | None = None, view_func: Any = None, **options: Any
    ) -> None:
        options.setdefault("strict_slashes", False)
        # A path with "//" (an id that decodes to a URL) is no OCPI URL: not redirected
        # (an HTML 308 from routing, outside any envelope) but answered 404 in the envelope.
        options.setdefault("merge_slashes", False)
        methods = options.pop("methods", None) or getattr(view_func, "methods", None) or ["GET"]
        name = endpoint or view_func.__name__
        self.allowed_methods.setdefault(name, set()).update(m.upper() for m in methods)
        super().add_url_rule(rule, endpoint, view_func, methods=ROUTED_METHODS, **options)


bp = _OcpiBlueprint("ocpi", __name__, url_prefix="/ocpi")

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
def _http_error(exc: HTTPException) -> Response:
    status = StatusCode.CLIENT_ERROR if (exc.code or 500) < 500 else StatusCode.SERVER_ERROR
    response = _json_response(
        envelope(status_code=status, status_message=exc.description), exc.code or 500
    )
    if exc.code == 405 and getattr(exc, "valid_methods", None):
        response.headers["Allow"] = ", ".join(exc.valid_methods)
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


@bp.before_request
def _authenticate() -> None:
    header = request.headers.get("Authorization")
    party = None
    for index, candidate in enumerate(token_candidates(header)):
        party = db.session.scalar(
            select(Party).where(Party.incoming_token_hash == token_hash(candidate))
        )
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
    party: Party | None = g.get("party")
    routed = request.endpoint not in CONFIGURATION_ENDPOINTS and "/2.1.1/" not in request.path
    if party is not None and party.country_code and routed:  # 2.1.1 has no routing headers
        from flask import current_app

        response.headers["OCPI-from-country-code"] = current_app.config["OCPI_COUNTRY_CODE"]
        response.headers["OCPI-from-party-id"] = current_app.config["OCPI_PARTY_ID"]
        response.headers["OCPI-to-country-code"] = request.headers.get(
            "OCPI-from-country-code", party.country_code
        )
        response.headers["OCPI-to-party-id"] = request.headers.get(
            "OCPI-from-party-id", party.party_id or ""
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


def _require_owner(country_code: str, party_id: str) -> Party:
    party: Party = g.party
    if not party.owns(country_code, party_id):
        raise OcpiError(
            StatusCode.CLIENT_ERROR,
            f"{country_code}/{party_id} is not a party of this connection",
            http_status=404,
        )
    return party


def _require_match(data: Any, country_code: str, party_id: str, field: str, value: str) -> None:
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


# --- Versions ---------------------------------------------------------------------------


@bp.get("/versions")
def versions() -> Response:
    return ocpi_response(
        [{"version": version, "url": f"{creds.ocpi_base_url()}/{version}"}
         for version in creds.SUPPORTED_VERSIONS]
    )


@bp.get(f"/{VERSION}")
def version_details() -> Response:
    base = f"{creds.ocpi_base_url()}/{VERSION}"
    endpoints = [
        {"identifier": identifier, "role": role, "url": f"{base}/{path}"}
        for identifier, role, path in creds.OUR_ENDPOINTS_221
    ]
    return ocpi_response({"version": VERSION, "endpoints": endpoints})


# --- Credentials ------------------------------------------------------------------------


@bp.route(f"/{VERSION}/credentials", methods=["GET", "POST", "PUT", "DELETE"])
def credentials() -> Response:
    return credentials_for(VERSION)


def credentials_for(version: str) -> Response:
    """The credentials module of `version`: registering here makes it the connection's."""
    party: Party = g.party
    registered = party.status == "CONNECTED"
    if request.method == "GET":
        if not registered:
            raise OcpiError(StatusCode.CLIENT_ERROR, "Not registered yet", http_status=405)
        # The token they use is stored hashed; GET returns our details with it redacted
        # only where we cannot know it, so we hand out the header value they authenticated with.
        token = token_candidates(request.headers.get("Authorization"))[0]
        return ocpi_response(creds.credentials_for_version(creds.our_credentials(token), version))
    if request.method == "POST":
        if registered:
            raise OcpiError(
                StatusCode.CLIENT_ERROR,
                "Already registered: use PUT to update, or DELETE first",
                http_status=405,
            )
        return ocpi_response(
            creds.register_incoming(party, json_body(), update=False, version=version)
        )
    if not registered:
        raise OcpiError(StatusCode.CLIENT_ERROR, "Not registered: POST first", http_status=405)
    if request.method == "PUT":
        return ocpi_response(
            creds.register_incoming(party, json_body(), update=True, version=version)
        )
    creds.unregister(party)
    return ocpi_response()


# --- Locations receiver -----------------------------------------------------------------


@bp.route(
    f"/{VERSION}/locations/<country_code>/<party_id>/<location_id>",
    methods=["GET", "PUT", "PATCH"],
)
@bp.route(
    f"/{VERSION}/locations/<country_code>/<party_id>/<location_id>/<evse_uid>",
    methods=["GET", "PUT", "PATCH"],
)
@bp.route(
    f"/{VERSION}/locations/<country_code>/<party_id>/<location_id>/<evse_uid>/<connector_id>",
    methods=["GET", "PUT", "PATCH"],
)
def location(
    country_code: str,
    party_id: str,
    location_id: str,
    evse_uid: str | None = None,
    connector_id: str | None = None,
) -> Response:
    party = _require_owner(country_code, party_id)
    row = store.find_location(country_code, party_id, location_id)
    if request.method == "GET":
        if row is None:
            raise OcpiError(StatusCode.UNKNOWN_LOCATION, "Unknown Location", http_status=404)
        data = row.data
        if evse_uid is not None:
            data = store._child(data.get("evses") or [], "uid", evse_uid, "EVSE")
            if connector_id is not None:
                data = store._child(data.get("connectors") or [], "id", connector_id,
                                    "Connector")
        return ocpi_response(data)
    body = json_body()
    if request.method == "PATCH":
        if row is None:
            raise OcpiError(StatusCode.UNKNOWN_LOCATION, "Unknown Location", http_status=404)
        if not isinstance(body, dict):
            raise OcpiError(StatusCode.INVALID_PARAMETERS, "PATCH body must be an object")
        store.patch_location(row, body, evse_uid, connector_id)
        db.session.commit()
        signals.location_updated.send("ocpi", party_pk=party.pk, location_id=row.location_id,
                                      evse_uid=evse_uid)
        return ocpi_response()
    # PUT
    if evse_uid is None:
        _require_match(body, country_code, party_id, "id", location_id)
        row, created = store.upsert_location(party, body)
    else:
        if row is None:
            raise OcpiError(StatusCode.UNKNOWN_LOCATION, "Unknown Location", http_status=404)
        data = row.data
        evses = data.setdefault("evses", [])
        if connector_id is None:
            evse_in = parse(Evse, body)
            _require_same_id("uid", evse_in.uid, evse_uid)
            created = _replace(evses, "uid", evse_uid, body)
        else:
            connector = parse(Connector, body)
            _require_same_id("id", connector.id, connector_id)
            evse = store._child(evses, "uid", evse_uid, "EVSE")
            created = _replace(evse.setdefault("connectors", []), "id", connector_id, body)
            # mod_locations: a Connector PUT sets the new last_updated on its EVSE too...
            evse["last_updated"] = body["last_updated"]
        # ...and an EVSE or Connector PUT on the Location.
        data["last_updated"] = body["last_updated"]
        row, _ = store.upsert_location(party, data)
    db.session.commit()
    signals.location_updated.send("ocpi", party_pk=party.pk, location_id=row.location_id,
                                  evse_uid=evse_uid)
    return ocpi_response(http_status=201 if created else 200)


def _replace(items: list[dict[str, Any]], field: str, value: str, new: dict[str, Any]) -> bool:
    """Put `new` in place of the item whose `field` is `value`; True if it was added."""
    for index, item in enumerate(items):
        if str(item.get(field, "")).upper() == value.upper():
            items[index] = new
            return False
    items.append(new)
    return True


def _require_same_id(field: str, sent: str, in_url: str) -> None:
    # transport_and_format, Client Owned Object Push: an id differing from the URL is 2001.
    if sent.upper() != in_url.upper():
        raise OcpiError(
            StatusCode.INVALID_PARAMETERS,
            f"{field} {sent!r} in the body differs from {in_url!r} in the URL",
        )


# --- Tariffs receiver -------------------------------------------------------------------


@bp.route(
    f"/{VERSION}/tariffs/<country_code>/<party_id>/<tariff_id>",
    methods=["GET", "PUT", "DELETE"],
)
def tariff(country_code: str, party_id: str, tariff_id: str) -> Response:
    party = _require_owner(country_code, party_id)
    row = store.find_tariff(country_code, party_id, tariff_id)
    if request.method == "GET":
        if row is None:
            raise OcpiError(StatusCode.CLIENT_ERROR, "Unknown Tariff", http_status=404)
        return ocpi_response(row.data)
    if request.method == "DELETE":
        if row is None:
            raise OcpiError(StatusCode.CLIENT_ERROR, "Unknown Tariff", http_status=404)
        db.session.delete(row)
        db.session.commit()
        return ocpi_response()
    body = json_body()
    _require_match(body, country_code, party_id, "id", tariff_id)
    _, created = store.upsert_tariff(party, body)
    db.session.commit()
    return ocpi_response(http_status=201 if created else 200)


# --- Sessions receiver ------------------------------------------------------------------


@bp.route(
    f"/{VERSION}/sessions/<country_code>/<party_id>/<session_id>",
    methods=["GET", "PUT", "PATCH"],
)
def session(country_code: str, party_id: str, session_id: str) -> Response:
    return session_endpoint(country_code, party_id, session_id)


def session_endpoint(
    country_code: str,
    party_id: str,
    session_id: str,
    *,
    put_body: Any = None,
    patch_body: Any = None,
    append_periods: bool = True,
) -> Response:
    """The Sessions receiver: GET the stored Session, or take a PUT or PATCH.

    `put_body`/`patch_body` turn a version's own Session (or patch) into the stored 2.2.1
    shape; 2.2.1 needs none.
    """
    party = _require_owner(country_code, party_id)
    row = store.find_session(country_code, party_id, session_id)
    if request.method == "GET":
        if row is None:
            raise OcpiError(StatusCode.CLIENT_ERROR, "Unknown Session", http_status=404)
        return ocpi_response(row.data)
    body = json_body()
    _require_match(body, country_code, party_id, "id", session_id)
    if request.method == "PUT":
        canonical = put_body(body, country_code, party_id) if put_body else body
        return receive_session(party, row, canonical, patch=False)
    canonical = patch_body(body) if patch_body else body
    return receive_session(party, row, canonical, patch=True, append_periods=append_periods)


def receive_session(party: Party, row: Any, body: dict[str, Any], *, patch: bool,
                    append_periods: bool = True) -> Response:
    """Store a pushed Session (PUT, or PATCH of the stored `row`) and announce it."""
    created = False
    if not patch:
        row, created = store.put_session(party, body)
    else:
        if row is None:
            raise OcpiError(
                StatusCode.CLIENT_ERROR, "Unknown Session: PUT it first", http_status=404
            )
        store.patch_session(row, body, append_periods=append_periods)
    db.session.commit()
    signals.session_updated.send(
        "ocpi",
        session_pk=row.pk,
        status=row.status,
        authorization_reference=row.authorization_reference,
        token_uid=row.token_uid,
    )
    return ocpi_response(http_status=201 if created else 200)


# --- CDRs receiver ----------------------------------------------------------------------


@bp.post(f"/{VERSION}/cdrs")
def cdrs() -> Response:
    party: Party = g.party
    with flagging_refused_cdr(party):
        body = json_body()
        if not isinstance(body, dict):
            raise OcpiError(StatusCode.INVALID_PARAMETERS, "CDR must be a JSON object")
        body = store.tolerate_cdr(party, body)
        cdr = parse(Cdr, body)
        return receive_cdr(_require_owner(cdr.country_code, cdr.party_id), body)


@contextmanager
def flagging_refused_cdr(party: Party, owner: tuple[str, str] | None = None) -> Iterator[None]:
    """A CDR that cannot be taken in (2001) is still announced: the charge it is for
    must not wait for it in silence. `owner` is the CDR's owner when the version's CDR
    names none (2.1.1); else it is read from the body, or the connection's own."""
    try:
        yield
    except OcpiError as exc:
        if exc.status_code == StatusCode.INVALID_PARAMETERS:
            refuse_cdr(party, exc.message, owner)
        raise


_SHORT = re.compile(r"[ -~]{1,39}")
_RAW_KEY = re.compile(r'"(authorization_reference|uid|auth_id)"\s*:\s*"([ -!#-\[\]-~]{1,36})"')


def _short(value: Any) -> str | None:
    # Only plain short printable text is passed on: it is looked up, never trusted.
    return value if isinstance(value, str) and _SHORT.fullmatch(value) else None


def refused_cdr_keys(raw: bytes, party: Party,
                     owner: tuple[str, str] | None = None) -> dict[str, str | None]:
    """Best effort: the ids a refused CDR's raw body names, however broken it is."""
    keys: dict[str, str | None] = {"cdr_id": None, "authorization_reference": None,
                                   "token_uid": None}
    data: Any = None
    text = raw[:MAX_BODY_BYTES].decode("utf-8", errors="replace")
    try:
        data = json.loads(text, parse_float=Decimal)
    except (ValueError, RecursionError):
        for name, value in _RAW_KEY.findall(text):
            field = "authorization_reference" if name == "authorization_reference" \
                else "token_uid"
            keys[field] = keys[field] or value
    if isinstance(data, dict):
        token = data.get("cdr_token")
        keys["cdr_id"] = _short(data.get("id"))
        keys["authorization_reference"] = _short(data.get("authorization_reference"))
        keys["token_uid"] = (_short(token.get("uid")) if isinstance(token, dict) else None) \
            or _short(data.get("auth_id"))  # 2.1.1 names the Token by auth_id
    country_code, party_id = owner or (None, None)
    if owner is None and isinstance(data, dict):
        country_code, party_id = _short(data.get("country_code")), _short(data.get("party_id"))
        if not (country_code and len(country_code) == 2 and party_id and len(party_id) == 3):
            country_code = party_id = None
    return {"country_code": country_code or party.country_code or "",
            "party_id": party_id or party.party_id or "", **keys}


def refuse_cdr(party: Party, reason: str, owner: tuple[str, str] | None = None) -> None:
    """Note the refused CDR (REFUSED notice; the message log keeps its body as sent)
    and announce it after this request's own transaction, which stores nothing of it."""
    party_pk = party.pk
    keys = refused_cdr_keys(request.get_data(cache=True), party, owner)
    db.session.rollback()
    cdr_id = keys["cdr_id"] or ""
    notices.record(
        party_pk, "REFUSED", "CDR_REFUSED",
        f"CDR {keys['country_code']}*{keys['party_id']} {cdr_id or '(no id)'} refused: "
        f"{reason}",
        object_key=f"CDR:{cdr_id}",
    )
    db.session.commit()
    signals.cdr_refused.send("ocpi", party_pk=party_pk, reason=reason, **keys)


def receive_cdr(party: Party, body: dict[str, Any]) -> Response:
    """Store a pushed CDR (once), answer where it can be read back, and announce it."""
    row, created = store.store_cdr(party, body)
    db.session.commit()
    location = url_for("ocpi.cdr", cdr_pk=row.pk, _external=False)
    from flask import current_app

    location = current_app.config["PUBLIC_BASE_URL"].rstrip("/") + location
    signals.cdr_received.send(
        "ocpi",
        cdr_pk=row.pk,
        authorization_reference=row.authorization_reference,
        token_uid=row.token_uid,
        session_id=row.session_id,
    )
    return ocpi_response(http_status=201 if created else 200, headers={"Location": location})


@bp.get(f"/{VERSION}/cdrs/<int:cdr_pk>")
def cdr(cdr_pk: int) -> Response:
    row = db.session.get(OcpiCdr, cdr_pk)
    if row is None or row.party_pk != g.party.pk:
        raise OcpiError(StatusCode.CLIENT_ERROR, "Unknown CDR", http_status=404)
    return ocpi_response(row.data)


# --- Commands: the asynchronous CommandResult -------------------------------------------


@bp.post(f"/{VERSION}/commands/<command>/<uid>")
def command_result(command: str, uid: str) -> Response:
    row = db.session.scalar(select(OcpiCommand).where(OcpiCommand.uid == uid))
    if row is None or row.command != command.upper() or row.party_pk != g.party.pk:
        raise OcpiError(StatusCode.CLIENT_ERROR, "Unknown command", http_status=404)
    body = json_body()
    if isinstance(body, list) and len(body) == 1:  # some CPOs wrap it in a list
        body = body[0]
    if row.party_pk and g.party.version == "2.1.1":
        from ocpi import v211

        result = v211.command_result(body)
    else:
        result = parse(CommandResult, body)
    message = "; ".join(m.text for m in result.message or []) or None
    first = row.result is None
    if first:
        row.result = result.result.value
        row.result_message = message
        row.result_at = now_utc()
        db.session.commit()
        signals.command_result_received.send(
            "ocpi", command_uid=row.uid, command_type=row.command,
            result=row.result, message=message,
        )
    return ocpi_response()


# --- Tokens sender ----------------------------------------------------------------------


def _page_args() -> tuple[int, int]:
    # Digits only, and few: int() also reads " 5", "٥" and 10**4000, and an OFFSET beyond
    # a 64-bit integer is a database error.
    values = []
    for name, default in (("offset", "0"), ("limit", str(MAX_PAGE))):
        text = request.args.get(name, default)
        if not (text.isascii() and text.isdigit() and len(text) <= 9):
            raise OcpiError(StatusCode.INVALID_PARAMETERS,
                            "offset and limit must be integers (at most 9 digits)")
        values.append(int(text))
    offset, limit = values
    return offset, max(1, min(limit, MAX_PAGE))


def _date_arg(name: str) -> Any:
    text = request.args.get(name)
    if not text:
        return None
    if len(text) > 64 or not all(" " <= ch <= "~" for ch in text):
        raise OcpiError(StatusCode.INVALID_PARAMETERS,
                        f"Bad date filter: {name} is no OCPI DateTime")
    try:
        return parse_datetime(text)
    except (ValueError, OverflowError) as exc:
        raise OcpiError(StatusCode.INVALID_PARAMETERS, f"Bad date filter: {exc}") from exc


@bp.get(f"/{VERSION}/tokens")
def tokens() -> Response:
    return tokens_page(lambda row: row.data)


def tokens_page(render: Any) -> Response:
    """One page of the Tokens we issued, each rendered for the connection's version."""
    offset, limit = _page_args()
    # A party sees only the Tokens issued for charges at its own locations.
    query = select(IssuedToken).where(*_tokens_of(g.party))
    date_from, date_to = _date_arg("date_from"), _date_arg("date_to")
    if date_from is not None:
        query = query.where(IssuedToken.last_updated >= date_from)
    if date_to is not None:
        query = query.where(IssuedToken.last_updated < date_to)
    total = db.session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = db.session.scalars(
        query.order_by(IssuedToken.last_updated, IssuedToken.pk).offset(offset).limit(limit)
    ).all()
    headers = pagination_headers(request.url, offset, limit, total, len(rows))
    return ocpi_response([render(r) for r in rows], headers=headers)


def _tokens_of(party: Party) -> list[Any]:
    """Conditions for the Tokens issued to this connection, and on a hub connection, to
    the CPO it says it acts for (OCPI-from headers), when that is one the hub may serve."""
    conditions: list[Any] = [IssuedToken.party_pk == party.pk]
    sender = (request.headers.get("OCPI-from-country-code", "").upper(),
              request.headers.get("OCPI-from-party-id", "").upper())
    if party.is_hub and all(sender):
        if not party.owns(*sender):
            raise OcpiError(StatusCode.CLIENT_ERROR,
                            f"{sender[0]}/{sender[1]} is not a party of this connection",
                            http_status=404)
        conditions += [IssuedToken.country_code == sender[0],
                       IssuedToken.party_id == sender[1]]
    return conditions


@bp.post(f"/{VERSION}/tokens/<uid>/authorize")
def authorize(uid: str) -> Response:
    row = db.session.scalar(select(IssuedToken).where(IssuedToken.uid == uid.upper(),
                                                      *_tokens_of(g.party)))
    token_type = request.args.get("type", "RFID").upper()
    if row is None or row.type != token_type:
        # Another party's Token is as unknown to this one as a Token never issued.
        raise OcpiError(StatusCode.UNKNOWN_TOKEN, "Unknown Token", http_status=404)
    return ocpi_response({**authorization_info(row), "token": row.data})


def authorization_info(row: IssuedToken) -> dict[str, Any]:
    """AllowedType (and, when allowed, the location and reference) for a Token we issued,
    from its state and, where the request names one, its location (mod_tokens)."""
    refs = json_body() if request.get_data() else None
    if refs is not None:
        refs = parse(LocationReferences, refs).to_json()
    answer = None
    for _receiver, said in signals.token_authorization_requested.send(
        "ocpi", token_uid=row.uid, location=refs, party_pk=g.party.pk,
        country_code=row.country_code, party_id=row.party_id,
    ):
        if said:
            answer = said
            break
    if answer is None:
        answer = {"allowed": "ALLOWED" if row.valid else "EXPIRED"}
    if not row.valid and answer["allowed"] == "ALLOWED":
        answer = {"allowed": "EXPIRED"}
    info: dict[str, Any] = {"allowed": answer["allowed"]}
    if answer["allowed"] == "ALLOWED":
        if answer.get("authorization_reference"):
            info["authorization_reference"] = answer["authorization_reference"]
        if refs is not None:
            evse_uids = answer.get("evse_uids") or refs.get("evse_uids")
            info["location"] = {"location_id": refs["location_id"],
                                **({"evse_uids": evse_uids} if evse_uids else {})}
    return info


class LocationReferences(OcpiModel):
    location_id: CiString36
    evse_uids: list[CiString36] | None = None


def _now_text() -> str:
    return format_datetime(now_utc())


# The 2.1.1 endpoints share this blueprint's authentication, errors and logging.
from ocpi import hubclientinfo, server_211  # noqa: E402, F401
