"""The simulator's HTTP face: OCPI CPO endpoints under /ocpi/<version> for every offered
version and, unauthenticated, test controls under /sim.

Routes stay thin: authentication, envelopes, pagination and the message log are done here
once, the behaviour lives in cpo_simulator.core (and the layers it is made of) and the JSON
shapes in the dialect of the version in the URL. The routes are two blueprints, shared by
every simulator's app; each finds its simulator in the app's extensions.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

from flask import Blueprint, Flask, Response, current_app, g, request

from cpo_simulator.jsonio import loads
from cpo_simulator.model import PartyRef
from cpo_simulator.web import (
    envelope_response,
    json_body,
    paginated,
    plain_json,
    public_base,
    register_error_handlers,
)
from ocpi.transport import (
    ROUTING_HEADERS,
    OcpiError,
    StatusCode,
    new_request_id,
    now_utc,
    token_candidates,
)

if TYPE_CHECKING:
    from cpo_simulator.core import Simulator
    from cpo_simulator.dialect import Dialect

logger = logging.getLogger(__name__)

# Modules token A may use: registration must be possible before anything else is.
CONFIGURATION_MODULES = {"versions", "credentials"}
PREFIX = "/ocpi/<version>"
EXTENSION = "cpo_simulator"

ocpi_api = Blueprint("ocpi", __name__)
controls = Blueprint("controls", __name__, url_prefix="/sim")


def create_app(sim: Simulator) -> Flask:
    app = Flask("cpo_simulator")
    app.url_map.strict_slashes = False  # '/locations' and '/locations/' are both in use
    app.extensions[EXTENSION] = sim
    app.before_request(authenticate)
    app.after_request(finish)
    register_error_handlers(app, "simulator", StatusCode.SERVER_ERROR)
    app.register_blueprint(ocpi_api)
    app.register_blueprint(controls)
    return app


def simulator() -> Simulator:
    """The simulator whose app serves the current request."""
    return cast("Simulator", current_app.extensions[EXTENSION])


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


def _base() -> str:
    return public_base(simulator().settings.base_url)


def versions_url() -> str:
    return f"{_base()}/ocpi/versions"


def version_url(version: str) -> str:
    return f"{_base()}/ocpi/{version}"


def dialect(version: str) -> Dialect:
    found = simulator().dialect_for(version)
    if found is None:
        raise OcpiError(StatusCode.CLIENT_ERROR,
                        f"OCPI {version} is not offered here; see /ocpi/versions", 404)
    return found


# --- authentication, headers and the message log --------------------------------------


def authenticate() -> Response | None:
    g.request_id = request.headers.get("X-Request-ID") or new_request_id()
    g.correlation_id = request.headers.get("X-Correlation-ID") or new_request_id()
    if not request.path.startswith("/ocpi"):
        return None
    g.module = module_of(request.path)
    who = simulator().authenticate(token_candidates(request.headers.get("Authorization")))
    if who is None:
        return envelope_response(status_code=StatusCode.CLIENT_ERROR,
                                 message="Missing or unknown credentials token",
                                 http_status=401)
    if who == "token_a" and g.module not in CONFIGURATION_MODULES:
        return envelope_response(status_code=StatusCode.CLIENT_ERROR,
                                 message="Token A only gives access to versions and credentials",
                                 http_status=401)
    g.who = who
    return None


def finish(response: Response) -> Response:
    if not request.path.startswith("/ocpi"):
        return response
    sim = simulator()
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


# --- versions and credentials ---------------------------------------------------------


@ocpi_api.get("/ocpi/versions")
def versions() -> Response:
    return envelope_response([dialect(v).version_entry(version_url(v))
                              for v in simulator().versions])


@ocpi_api.get(PREFIX)
def version_details(version: str) -> Response:
    return envelope_response(dialect(version).version_details(version_url(version)))


@ocpi_api.route(f"{PREFIX}/credentials", methods=["GET", "POST", "PUT", "DELETE"])
def credentials(version: str) -> Response:
    sim = simulator()
    spoken = dialect(version)
    if request.method == "GET":
        return envelope_response(sim.own_credentials(versions_url(), spoken))
    if request.method == "DELETE":
        sim.unregister()
        return envelope_response()
    update = request.method == "PUT"
    return envelope_response(sim.register(json_body(), versions_url(), spoken, update=update))


# --- Sender interfaces ------------------------------------------------------------------


def _page(items: list[tuple[datetime, dict[str, Any]]]) -> Response:
    return paginated(items, simulator().settings.page_limit, _base())


@ocpi_api.get(f"{PREFIX}/locations")
def locations(version: str) -> Response:
    return _page(simulator().location_items(dialect(version)))


@ocpi_api.get(f"{PREFIX}/locations/<location_id>")
@ocpi_api.get(f"{PREFIX}/locations/<location_id>/<evse_uid>")
@ocpi_api.get(f"{PREFIX}/locations/<location_id>/<evse_uid>/<connector_id>")
def location_object(
    version: str, location_id: str, evse_uid: str | None = None,
    connector_id: str | None = None,
) -> Response:
    return envelope_response(simulator().location_object(dialect(version), location_id,
                                                         evse_uid, connector_id))


@ocpi_api.get(f"{PREFIX}/tariffs")
def tariffs(version: str) -> Response:
    return _page(simulator().tariff_items(dialect(version)))


@ocpi_api.get(f"{PREFIX}/sessions")
def sessions(version: str) -> Response:
    spoken = dialect(version)
    if spoken.sessions_need_date_from and not request.args.get("date_from"):
        raise OcpiError(StatusCode.INVALID_PARAMETERS,
                        f"date_from is required for Sessions in OCPI {version}")
    return _page(simulator().session_items(spoken))


@ocpi_api.get(f"{PREFIX}/cdrs")
def cdrs(version: str) -> Response:
    return _page(simulator().cdr_items(dialect(version)))


# --- commands (Receiver) ----------------------------------------------------------------


@ocpi_api.post(f"{PREFIX}/commands/<command>")
def command(version: str, command: str) -> Response:
    spoken = dialect(version)
    requester = None
    if spoken.routing:
        sender = (request.headers.get("OCPI-from-country-code"),
                  request.headers.get("OCPI-from-party-id"))
        if sender[0] and sender[1]:
            requester = PartyRef(sender[0], sender[1])
    outcome = simulator().command(command, json_body(), g.correlation_id, spoken, requester)
    return envelope_response(outcome.response, outcome.status_code, outcome.message)


# --- test controls, unauthenticated ------------------------------------------------------


@controls.route("/behaviour", methods=["GET", "POST"])
def behaviour() -> Response:
    sim = simulator()
    if request.method == "POST":
        try:
            changes = loads(request.get_data() or b"{}")
            if not isinstance(changes, dict):
                raise TypeError("expected a JSON object of behaviour keys")
            sim.set_behaviour(**changes)
        except (ValueError, TypeError) as exc:
            return plain_json({"error": str(exc)}, 400)
    return plain_json(sim.behaviour.to_json())


@controls.get("/log")
def message_log() -> Response:
    return plain_json(simulator().log)


@controls.post("/reset")
def reset() -> Response:
    sim = simulator()
    sim.reset()
    return plain_json({"reset": True, "behaviour": sim.behaviour.to_json()})


@controls.get("/state")
def state() -> Response:
    return plain_json(simulator().state())


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
