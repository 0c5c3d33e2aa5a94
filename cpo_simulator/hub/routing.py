"""The simulated hub's routed modules: a request to /ocpi/2.2.1/<side>/<module> forwarded to
the party named by OCPI-to (its answer relayed back), a GET All via Hubs, a Broadcast Push,
and the URLs that lead back to a party behind the hub rewritten to point at the hub."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import urlencode, urlsplit

import requests
from flask import Blueprint, Response, g, request

from cpo_simulator.hub.context import current_hub, hub_base
from cpo_simulator.hub.model import (
    BROADCAST_MODULES,
    CLIENT_OWNED,
    MAX_PAGES,
    PREFIX,
    ROUTED_MODULES,
    SIDES,
    Connection,
    PendingCommand,
    PostedCdr,
    Routed,
    join_url,
    parsed_json,
    party_key,
    party_name,
)
from cpo_simulator.jsonio import dumps, loads
from cpo_simulator.model import PartyRef
from cpo_simulator.web import envelope_response, paginated
from ocpi.transport import OcpiError, StatusCode, next_link

routed_api = Blueprint("routed", __name__)


@routed_api.route(f"{PREFIX}/<side>/<module>",
                  methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
@routed_api.route(f"{PREFIX}/<side>/<module>/<path:rest>",
                  methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
def routed(side: str, module: str, rest: str = "") -> Response:
    hub = current_hub()
    if side not in SIDES or module not in ROUTED_MODULES:
        raise OcpiError(StatusCode.CLIENT_ERROR, f"No {side} {module} at this hub", 404)
    role = SIDES[side]
    connection: Connection = g.connection
    requester = sender_of(connection)
    g.requester = requester
    method = request.method
    segments = [s for s in rest.split("/") if s]

    if module == "commands" and role == "SENDER" and method == "POST" and segments:
        return command_result(segments[0], connection)
    if module == "cdrs" and role == "RECEIVER" and method == "GET" and segments:
        posted = hub.posted_cdr(segments[0])
        if posted is not None:
            return fetch_posted_cdr(posted, connection, requester)
    if module in CLIENT_OWNED and role == "RECEIVER" and len(segments) >= 2:
        owner = PartyRef(segments[0], segments[1])
        if party_key(owner) != party_key(requester):
            raise OcpiError(StatusCode.CLIENT_ERROR,
                            f"{requester.country_code}/{requester.party_id} may not "
                            f"touch objects of {party_name(owner)}", 404)

    receiver = receiver_of()
    if receiver is None or party_key(receiver) == party_key(hub.party):
        if method == "GET" and role == "SENDER" and not segments:
            return get_all(module, connection, requester)
        if method != "GET" and role == "RECEIVER" and module in BROADCAST_MODULES:
            return broadcast(module, rest, connection, requester)
        raise OcpiError(StatusCode.HUB_UNKNOWN_RECEIVER,
                        "OCPI-to-country-code and OCPI-to-party-id must name the "
                        f"receiver of this {method} {module} request (this hub routes "
                        "by headers only)")
    target = hub.connection_of(receiver)
    if target is None or target.configuring:
        raise OcpiError(StatusCode.HUB_UNKNOWN_RECEIVER,
                        f"Unknown receiver {party_name(receiver)}")
    base = target.url(module, role)
    if base is None:
        raise OcpiError(StatusCode.HUB_ERROR,
                        f"{party_name(receiver)} offers no {module} {role} interface")
    url = join_url(base, rest) + (f"?{request.query_string.decode()}"
                                  if request.query_string else "")
    data = request.get_data() or None
    if module == "commands" and role == "RECEIVER" and method == "POST" and data:
        data = rewrite_response_url(data, connection, requester, target, receiver)
    reply = hub.forward(method, url, target, module, sender=requester, receiver=receiver,
                        correlation_id=g.correlation_id, data=data)
    headers: dict[str, str] = {}
    for name in ("X-Total-Count", "X-Limit"):
        if name in reply.headers:
            headers[name] = reply.headers[name]
    link = next_link(reply.headers.get("Link"))
    if link:
        headers["Link"] = f'<{hub_url_for(link, base, side, module)}>; rel="next"'
    location = reply.headers.get("Location")
    if location and module == "cdrs" and method == "POST":
        ref = hub.remember_cdr(PostedCdr(url=location, receiver=receiver,
                                         receiver_connection=target.number,
                                         poster_connection=connection.number))
        headers["Location"] = f"{hub_base()}{PREFIX}/receiver/cdrs/{ref}"
    return relay(reply, headers, receiver, requester)


def sender_of(connection: Connection) -> PartyRef:
    """The requesting party: OCPI-from, which must be one of the caller's own parties;
    without it, the caller's only party."""
    cc = request.headers.get("OCPI-from-country-code")
    pid = request.headers.get("OCPI-from-party-id")
    if bool(cc) != bool(pid):
        raise OcpiError(StatusCode.INVALID_PARAMETERS,
                        "OCPI-from-country-code and OCPI-from-party-id go together")
    if cc and pid:
        party = PartyRef(cc, pid)
        own = next((p for p in connection.parties if party_key(p) == party_key(party)), None)
        if own is None:
            raise OcpiError(StatusCode.CLIENT_ERROR,
                            f"OCPI-from names {party_name(party)}, which these credentials "
                            f"are not for")
        return own
    if len(connection.parties) != 1:
        raise OcpiError(StatusCode.INVALID_PARAMETERS,
                        "OCPI-from-country-code and OCPI-from-party-id are required: "
                        "these credentials are for several parties")
    return next(iter(connection.parties))


def receiver_of() -> PartyRef | None:
    cc = request.headers.get("OCPI-to-country-code")
    pid = request.headers.get("OCPI-to-party-id")
    if bool(cc) != bool(pid):
        raise OcpiError(StatusCode.INVALID_PARAMETERS,
                        "OCPI-to-country-code and OCPI-to-party-id go together")
    return PartyRef(cc, pid) if cc and pid else None


def relay(reply: requests.Response, headers: dict[str, str], answer_from: PartyRef,
          answer_to: PartyRef) -> Response:
    """The receiver's answer, as it was (errors included, status_codes 4xxx), unless it
    is no OCPI answer at all."""
    body = parsed_json(reply.content)
    if not isinstance(body, dict) or "status_code" not in body:
        raise OcpiError(StatusCode.HUB_ERROR,
                        f"{party_name(answer_from)} answered HTTP {reply.status_code} without "
                        f"an OCPI envelope")
    g.routed = Routed(answer_from=answer_from, answer_to=answer_to,
                      log={"forwarded_to": party_name(answer_from)})
    return Response(reply.content, status=reply.status_code, headers=headers,
                    mimetype="application/json")


def hub_url_for(link: str, base: str, side: str, module: str) -> str:
    """The hub's URL for a party's own URL below one of its module endpoints."""
    ours = f"{hub_base()}{PREFIX}/{side}/{module}"
    stripped = base.rstrip("/")
    if link.startswith(stripped):
        return ours + link[len(stripped):]
    query = urlsplit(link).query
    return ours + (f"?{query}" if query else "")


def rewrite_response_url(data: bytes, requester_connection: Connection,
                         requester: PartyRef, target: Connection,
                         receiver: PartyRef) -> bytes:
    """The command's response_url, replaced by one at the hub: the party behind the hub
    cannot reach the requester's URL with its own token."""
    hub = current_hub()
    try:
        body = loads(data)
    except ValueError:
        return data  # the receiver will answer 2001 for it
    if not isinstance(body, dict) or not isinstance(body.get("response_url"), str):
        return data
    ref = hub.remember_command(PendingCommand(
        response_url=body["response_url"], requester=requester,
        requester_connection=requester_connection.number, target=receiver,
        target_connection=target.number))
    body["response_url"] = f"{hub_base()}{PREFIX}/sender/commands/{ref}"
    return dumps(body).encode("utf-8")


def command_result(ref: str, connection: Connection) -> Response:
    """A CommandResult posted to a response_url the hub gave out: to the requester."""
    hub = current_hub()
    pending = hub.pending_command(ref)
    if pending is None or pending.target_connection != connection.number:
        raise OcpiError(StatusCode.CLIENT_ERROR, f"Unknown command response URL {ref}",
                        404)
    requester = hub.connection_of(pending.requester)
    if requester is None:
        raise OcpiError(StatusCode.HUB_UNKNOWN_RECEIVER,
                        f"{party_name(pending.requester)} is no longer connected")
    reply = hub.forward("POST", pending.response_url, requester, "commands",
                        sender=pending.target, receiver=pending.requester,
                        correlation_id=g.correlation_id,
                        data=request.get_data() or None)
    return relay(reply, {}, pending.requester, pending.target)


def fetch_posted_cdr(posted: PostedCdr, connection: Connection,
                     requester: PartyRef) -> Response:
    hub = current_hub()
    if posted.poster_connection != connection.number:
        raise OcpiError(StatusCode.CLIENT_ERROR, "Not your CDR", 404)
    receiver = hub.connection_of(posted.receiver)
    if receiver is None:
        raise OcpiError(StatusCode.HUB_UNKNOWN_RECEIVER,
                        f"{party_name(posted.receiver)} is no longer connected")
    reply = hub.forward("GET", posted.url, receiver, "cdrs", sender=requester,
                        receiver=posted.receiver, correlation_id=g.correlation_id,
                        data=None)
    return relay(reply, {}, posted.receiver, requester)


def get_all(module: str, connection: Connection, requester: PartyRef) -> Response:
    """GET All via Hubs: every other-role party's objects, combined, paginated here.
    A party that cannot be read fails the whole request: a silently partial list would
    tell the requester that the missing objects are gone."""
    hub = current_hub()
    g.routed = Routed(answer_from=hub.party, answer_to=requester,
                      log={"get_all": True})
    filters = {k: v for k, v in request.args.items() if k in ("date_from", "date_to")}
    items: list[Any] = []
    for target, party in hub.targets(connection, module, "SENDER"):
        url: str | None = join_url(target.url(module, "SENDER") or "", "") + (
            f"?{urlencode(filters)}" if filters else "")
        for _ in range(MAX_PAGES):
            if url is None:
                break
            reply = hub.forward("GET", url, target, module, sender=requester,
                                receiver=party, correlation_id=g.correlation_id,
                                data=None)
            body = parsed_json(reply.content)
            if (reply.status_code != 200 or not isinstance(body, dict)
                    or body.get("status_code") != StatusCode.SUCCESS
                    or not isinstance(body.get("data"), list)):
                status = body.get("status_code") if isinstance(body, dict) else None
                raise OcpiError(StatusCode.HUB_ERROR,
                                f"GET All: {party_name(party)} answered HTTP "
                                f"{reply.status_code}, OCPI {status}")
            items.extend(body["data"])
            url = next_link(reply.headers.get("Link"))
    return _page([(None, item) for item in items])


def broadcast(module: str, rest: str, connection: Connection,
              requester: PartyRef) -> Response:
    """Broadcast Push: accepted by the hub, then sent on with the hub as sender; the
    receivers' answers are logged, not returned (status_codes 4xxx)."""
    hub = current_hub()
    g.routed = Routed(answer_from=hub.party, answer_to=requester,
                      log={"broadcast": True})
    data = request.get_data() or None
    delivered = []
    for target, party in hub.targets(connection, module, "RECEIVER"):
        url = join_url(target.url(module, "RECEIVER") or "", rest)
        try:
            reply = hub.forward(request.method, url, target, module, sender=hub.party,
                                receiver=party, correlation_id=g.correlation_id,
                                data=data)
            delivered.append({"to": party_name(party), "http_status": reply.status_code})
        except OcpiError as exc:
            delivered.append({"to": party_name(party), "ocpi_status": exc.status_code})
    g.routed.log["delivered"] = delivered
    return envelope_response()


def _page(items: list[tuple[datetime | None, Any]]) -> Response:
    return paginated(items, current_hub().settings.page_limit, hub_base())
