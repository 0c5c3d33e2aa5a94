"""The simulator's HTTP face: OCPI CPO endpoints under /ocpi/<version> for every offered
version and, unauthenticated, test controls under /sim.

Routes stay thin: authentication, envelopes, pagination and the message log are done here
once, the behaviour lives in cpo_simulator.core and the JSON shapes in the dialect of the
version in the URL.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from flask import Flask, Response, g, request
from werkzeug.exceptions import HTTPException

from cpo_simulator.jsonio import dumps, loads
from cpo_simulator.model import PartyRef
from ocpi.transport import (
    ROUTING_HEADERS,
    OcpiError,
    StatusCode,
    envelope,
    new_request_id,
    now_utc,
    pagination_headers,
    parse_datetime,
    token_candidates,
)

if TYPE_CHECKING:
    from cpo_simulator.core import Simulator
    from cpo_simulator.dialect import Dialect

logger = logging.getLogger(__name__)

# Modules token A may use: registration must be possible before anything else is.
CONFIGURATION_MODULES = {"versions", "credentials"}



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


def module_of(path: str) -> str:
    """'versions' for /ocpi/versions and /ocpi/<version>, else the segment after the version."""
    parts = [p for p in path.split("/") if p]
    return parts[2] if len(parts) >= 3 else "versions"


def version_of(path: str) -> str | None:
    """The version segment of /ocpi/<version>/..., None for /ocpi/versions."""
    parts = [p for p in path.split("/") if p]
    if len(parts) >= 2 and parts[1] != "versions":
        return parts[1]
    return None


def create_app(sim: Simulator) -> Flask:
    app = Flask("cpo_simulator")
    app.url_map.strict_slashes = False  # '/locations' and '/locations/' are both in use
    prefix = "/ocpi/<version>"

    def public_base() -> str:
        return (sim.settings.base_url or request.host_url).rstrip("/")

    def versions_url() -> str:
        return f"{public_base()}/ocpi/versions"

    def version_url(version: str) -> str:
        return f"{public_base()}/ocpi/{version}"

    def dialect(version: str) -> Dialect:
        found = sim.dialect_for(version)
        if found is None:
            raise OcpiError(StatusCode.CLIENT_ERROR,
                            f"OCPI {version} is not offered here; see /ocpi/versions", 404)
        return found

    ocpi_response = envelope_response

    def json_body() -> Any:
        raw = request.get_data()
        if not raw:
            raise OcpiError(StatusCode.INVALID_PARAMETERS, "A JSON body is required", 400)
        try:
            return loads(raw)
        except ValueError as exc:
            raise OcpiError(StatusCode.INVALID_PARAMETERS, f"Invalid JSON: {exc}", 400) from exc

    # --- authentication, headers and the message log ----------------------------------

    @app.before_request
    def authenticate() -> Response | None:
        g.request_id = request.headers.get("X-Request-ID") or new_request_id()
        g.correlation_id = request.headers.get("X-Correlation-ID") or new_request_id()
        if not request.path.startswith("/ocpi"):
            return None
        g.module = module_of(request.path)
        who = sim.authenticate(token_candidates(request.headers.get("Authorization")))
        if who is None:
            return ocpi_response(status_code=StatusCode.CLIENT_ERROR,
                                 message="Missing or unknown credentials token",
                                 http_status=401)
        if who == "token_a" and g.module not in CONFIGURATION_MODULES:
            return ocpi_response(status_code=StatusCode.CLIENT_ERROR,
                                 message="Token A only gives access to versions and credentials",
                                 http_status=401)
        g.who = who
        return None

    @app.after_request
    def finish(response: Response) -> Response:
        if not request.path.startswith("/ocpi"):
            return response
        response.headers["X-Request-ID"] = g.get("request_id") or new_request_id()
        response.headers["X-Correlation-ID"] = g.get("correlation_id") or new_request_id()
        module = g.get("module") or module_of(request.path)
        spoken = sim.dialect_for(version_of(request.path) or "")
        if module not in CONFIGURATION_MODULES and spoken is not None and spoken.routing:
            # A direct response goes back to whoever the request came from.
            incoming = {h.lower(): request.headers.get(h) for h in ROUTING_HEADERS}
            response.headers["OCPI-from-country-code"] = sim.settings.country_code
            response.headers["OCPI-from-party-id"] = sim.settings.party_id
            for theirs, ours in (("OCPI-from-country-code", "OCPI-to-country-code"),
                                 ("OCPI-from-party-id", "OCPI-to-party-id")):
                if incoming.get(theirs.lower()):
                    response.headers[ours] = incoming[theirs.lower()]
        sim.record(_log_entry(module, response))
        return response

    # --- errors ---------------------------------------------------------------------

    register_error_handlers(app, "simulator", StatusCode.SERVER_ERROR)

    # --- versions and credentials -----------------------------------------------------

    @app.get("/ocpi/versions")
    def versions() -> Response:
        return ocpi_response([dialect(v).version_entry(version_url(v)) for v in sim.versions])

    @app.get(prefix)
    def version_details(version: str) -> Response:
        return ocpi_response(dialect(version).version_details(version_url(version)))

    @app.route(f"{prefix}/credentials", methods=["GET", "POST", "PUT", "DELETE"])
    def credentials(version: str) -> Response:
        spoken = dialect(version)
        if request.method == "GET":
            return ocpi_response(sim.own_credentials(versions_url(), spoken))
        if request.method == "DELETE":
            sim.unregister()
            return ocpi_response()
        update = request.method == "PUT"
        return ocpi_response(sim.register(json_body(), versions_url(), spoken, update=update))

    # --- Sender interfaces --------------------------------------------------------------

    def paginated(items: list[tuple[datetime, dict[str, Any]]]) -> Response:
        date_from = date_arg("date_from")
        date_to = date_arg("date_to")
        offset = int_arg("offset", 0)
        limit = int_arg("limit", sim.settings.page_limit)
        if offset < 0 or limit < 1:
            raise OcpiError(StatusCode.INVALID_PARAMETERS,
                            "offset must be 0 or more and limit 1 or more")
        limit = min(limit, sim.settings.page_limit)
        matching = [doc for updated, doc in items
                    if (date_from is None or updated >= date_from)
                    and (date_to is None or updated < date_to)]
        page = matching[offset:offset + limit]
        query = request.query_string.decode("utf-8")
        url = f"{public_base()}{request.path}" + (f"?{query}" if query else "")
        headers = pagination_headers(url, offset, limit, len(matching), len(page))
        return ocpi_response(page, headers=headers)

    @app.get(f"{prefix}/locations")
    def locations(version: str) -> Response:
        return paginated(sim.location_items(dialect(version)))

    @app.get(f"{prefix}/locations/<location_id>")
    @app.get(f"{prefix}/locations/<location_id>/<evse_uid>")
    @app.get(f"{prefix}/locations/<location_id>/<evse_uid>/<connector_id>")
    def location_object(
        version: str, location_id: str, evse_uid: str | None = None,
        connector_id: str | None = None,
    ) -> Response:
        return ocpi_response(sim.location_object(dialect(version), location_id, evse_uid,
                                                 connector_id))

    @app.get(f"{prefix}/tariffs")
    def tariffs(version: str) -> Response:
        return paginated(sim.tariff_items(dialect(version)))

    @app.get(f"{prefix}/sessions")
    def sessions(version: str) -> Response:
        spoken = dialect(version)
        if spoken.sessions_need_date_from and not request.args.get("date_from"):
            raise OcpiError(StatusCode.INVALID_PARAMETERS,
                            f"date_from is required for Sessions in OCPI {version}")
        return paginated(sim.session_items(spoken))

    @app.get(f"{prefix}/cdrs")
    def cdrs(version: str) -> Response:
        return paginated(sim.cdr_items(dialect(version)))

    # --- commands (Receiver) ------------------------------------------------------------

    @app.post(f"{prefix}/commands/<command>")
    def command(version: str, command: str) -> Response:
        spoken = dialect(version)
        requester = None
        if spoken.routing:
            sender = (request.headers.get("OCPI-from-country-code"),
                      request.headers.get("OCPI-from-party-id"))
            if sender[0] and sender[1]:
                requester = PartyRef(sender[0], sender[1])
        outcome = sim.command(command, json_body(), g.correlation_id, spoken, requester)
        return ocpi_response(outcome.response, outcome.status_code, outcome.message)

    # --- test controls, unauthenticated ------------------------------------------------

    def plain_json(data: Any, status: int = 200) -> Response:
        return Response(dumps(data), status=status, mimetype="application/json")

    @app.route("/sim/behaviour", methods=["GET", "POST"])
    def behaviour() -> Response:
        if request.method == "POST":
            try:
                changes = loads(request.get_data() or b"{}")
                if not isinstance(changes, dict):
                    raise TypeError("expected a JSON object of behaviour keys")
                sim.set_behaviour(**changes)
            except (ValueError, TypeError) as exc:
                return plain_json({"error": str(exc)}, 400)
        return plain_json(sim.behaviour.to_json())

    @app.get("/sim/log")
    def message_log() -> Response:
        return plain_json(sim.log)

    @app.post("/sim/reset")
    def reset() -> Response:
        sim.reset()
        return plain_json({"reset": True, "behaviour": sim.behaviour.to_json()})

    @app.get("/sim/state")
    def state() -> Response:
        return plain_json(sim.state())

    return app


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


def _log_entry(module: str, response: Response) -> dict[str, Any]:
    def parsed(raw: bytes) -> Any:
        try:
            return loads(raw) if raw else None
        except ValueError:
            return None

    body = parsed(response.get_data())
    entry: dict[str, Any] = {
        "direction": "in",
        "method": request.method,
        "url": request.path,
        "module": module,
        "http_status": response.status_code,
        "ocpi_status": body.get("status_code") if isinstance(body, dict) else None,
        "request": parsed(request.get_data()),
        "response": body,
        "at": now_utc().isoformat(timespec="milliseconds").replace("+00:00", "Z"),
    }
    if request.query_string:
        entry["query"] = request.query_string.decode("utf-8")
    return entry
