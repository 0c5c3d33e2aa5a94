"""The simulated hub's HTTP face: authentication, routing headers and the message log for
every request, the configuration modules (versions, credentials, hubclientinfo) between a
party and the hub itself, the routed modules (cpo_simulator.hub.routing) and, unauthenticated,
test controls under /hub."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flask import Blueprint, Flask, Response, g, request

from cpo_simulator.hub.context import EXTENSION, current_hub, hub_base
from cpo_simulator.hub.model import (
    CONFIGURATION_MODULES,
    PREFIX,
    ROUTED_MODULES,
    SIDES,
    VERSION,
    Caller,
    Connection,
    Routed,
    parsed_json,
    stamp,
)
from cpo_simulator.hub.routing import routed_api
from cpo_simulator.web import (
    envelope_response,
    json_body,
    paginated,
    plain_json,
    register_error_handlers,
)
from ocpi.modules.versions import Endpoint, InterfaceRole, Version, VersionDetails
from ocpi.transport import OcpiError, StatusCode, new_request_id, parse_datetime

if TYPE_CHECKING:
    from cpo_simulator.hub.state import Hub

configuration = Blueprint("configuration", __name__)
controls = Blueprint("controls", __name__, url_prefix="/hub")


def create_hub_app(hub: Hub) -> Flask:
    app = Flask("cpo_simulator.hub")
    app.url_map.strict_slashes = False
    app.extensions[EXTENSION] = hub
    app.before_request(authenticate)
    app.after_request(finish)
    register_error_handlers(app, "hub", StatusCode.HUB_ERROR)
    app.register_blueprint(configuration)
    app.register_blueprint(routed_api)
    app.register_blueprint(controls)
    return app


def module_of(path: str) -> str:
    parts = [p for p in path.split("/") if p]
    if len(parts) >= 4 and parts[2] in SIDES:
        return parts[3]
    return parts[2] if len(parts) >= 3 else "versions"


# --- authentication, routing headers, log ------------------------------------------------


def authenticate() -> Response | None:
    g.request_id = request.headers.get("X-Request-ID") or new_request_id()
    g.correlation_id = request.headers.get("X-Correlation-ID") or new_request_id()
    if not request.path.startswith("/ocpi"):
        return None
    g.module = module_of(request.path)
    caller = current_hub().authenticate(request.headers.get("Authorization"))
    if caller is None:
        return envelope_response(status_code=StatusCode.CLIENT_ERROR,
                                 message="Missing or unknown credentials token",
                                 http_status=401)
    if caller.configuration_only and g.module not in {"versions", "credentials"}:
        return envelope_response(status_code=StatusCode.CLIENT_ERROR,
                                 message="Token A only gives access to versions and credentials",
                                 http_status=401)
    g.caller = caller
    g.connection = caller.connection
    return None


def finish(response: Response) -> Response:
    if not request.path.startswith("/ocpi"):
        return response
    response.headers["X-Request-ID"] = g.get("request_id") or new_request_id()
    response.headers["X-Correlation-ID"] = g.get("correlation_id") or new_request_id()
    module = g.get("module") or module_of(request.path)
    routed: Routed | None = g.get("routed")
    if module not in CONFIGURATION_MODULES:
        answer_from = routed.answer_from if routed else current_hub().party
        answer_to = routed.answer_to if routed else g.get("requester")
        response.headers["OCPI-from-country-code"] = answer_from.country_code
        response.headers["OCPI-from-party-id"] = answer_from.party_id
        if answer_to is not None:
            response.headers["OCPI-to-country-code"] = answer_to.country_code
            response.headers["OCPI-to-party-id"] = answer_to.party_id
    current_hub().record(_log_entry(module, response, routed))
    return response


def _log_entry(module: str, response: Response, routed: Routed | None) -> dict[str, Any]:
    body = parsed_json(response.get_data())
    connection: Connection | None = g.get("connection")
    entry: dict[str, Any] = {
        "direction": "in", "method": request.method, "url": request.path,
        "module": module, "party": connection.label if connection else None,
        "from": request.headers.get("OCPI-from-party-id"),
        "to": request.headers.get("OCPI-to-party-id"),
        "correlation_id": g.get("correlation_id"),
        "http_status": response.status_code,
        "ocpi_status": body.get("status_code") if isinstance(body, dict) else None,
        "request": parsed_json(request.get_data()), "response": body, "at": stamp(),
    }
    if request.query_string:
        entry["query"] = request.query_string.decode("utf-8")
    if routed is not None:
        entry.update(routed.log)
    return entry


# --- configuration modules ---------------------------------------------------------------


@configuration.get("/ocpi/versions")
def versions() -> Response:
    return envelope_response([Version(version=VERSION, url=f"{hub_base()}{PREFIX}").to_json()])


@configuration.get(PREFIX)
def version_details() -> Response:
    base = f"{hub_base()}{PREFIX}"
    endpoints = [
        Endpoint(identifier="credentials", role=InterfaceRole.SENDER,
                 url=f"{base}/credentials"),
        Endpoint(identifier="hubclientinfo", role=InterfaceRole.SENDER,
                 url=f"{base}/hubclientinfo"),
    ]
    for module in ROUTED_MODULES:
        for side, role in SIDES.items():
            endpoints.append(Endpoint(identifier=module, role=InterfaceRole(role),
                                      url=f"{base}/{side}/{module}"))
    return envelope_response(VersionDetails(version=VERSION, endpoints=endpoints).to_json())


def versions_url() -> str:
    return f"{hub_base()}/ocpi/versions"


@configuration.route(f"{PREFIX}/credentials", methods=["GET", "POST", "PUT", "DELETE"])
def credentials() -> Response:
    hub = current_hub()
    caller: Caller = g.caller
    connection = caller.connection
    if request.method == "GET":
        token = connection.token_ours if connection else caller.invite or ""
        return envelope_response(hub.own_credentials(token, versions_url()))
    if request.method == "POST":
        if connection is not None:
            raise OcpiError(StatusCode.CLIENT_ERROR,
                            "Already registered: use PUT to update or DELETE to "
                            "unregister", 405)
        return envelope_response(hub.register(json_body(), versions_url(), caller))
    if connection is None:
        raise OcpiError(StatusCode.CLIENT_ERROR, "Not registered: use POST to register",
                        405)
    if request.method == "PUT":
        return envelope_response(hub.register(json_body(), versions_url(), caller))
    hub.unregister(connection)
    return envelope_response()


@configuration.get(f"{PREFIX}/hubclientinfo")
def hubclientinfo() -> Response:
    hub = current_hub()
    connection: Connection = g.connection
    items = [(parse_datetime(info["last_updated"]), info)
             for info in hub.client_info(exclude=connection.parties)]
    return paginated(items, hub.settings.page_limit, hub_base())


# --- test controls, unauthenticated ------------------------------------------------------


@controls.get("/log")
def message_log() -> Response:
    return plain_json(current_hub().log)


@controls.get("/state")
def state() -> Response:
    return plain_json(current_hub().state())


@controls.post("/check-alive")
def check_alive() -> Response:
    return plain_json(current_hub().check_alive())
