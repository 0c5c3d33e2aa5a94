"""The simulated hub in front of two CPO simulators (SE/SIM and SE/SI2), with a stub eMSP
playing ScanCharge (SE/SCN), all over real HTTP.

The eMSP talks only to the hub, with the hub's token; the hub talks to each CPO with that
CPO's token, and routes by the OCPI-to-country-code/OCPI-to-party-id headers.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests
from flask import Flask, Response, request
from stub_peers import RecordingStub, Switch, answer, b64, wait_until

from cpo_simulator import Simulator, SimulatorSettings, create_simulator
from cpo_simulator.hub import Hub, HubSettings, create_hub
from cpo_simulator.model import PartyRef
from ocpi.transport import next_link
from servers import ServerThread

HUB_TOKEN_A = "hub-token-a-for-the-emsp"
TOKEN_B = "stub-emsp-token-b-for-the-hub"

DRIVER_TOKEN = {
    "country_code": "SE",
    "party_id": "SCN",
    "uid": "ADHOC-0001",
    "type": "AD_HOC_USER",
    "contract_id": "SE-SCN-C00000001-X",
    "issuer": "ScanCharge",
    "valid": True,
    "whitelist": "NEVER",
    "last_updated": "2026-01-01T00:00:00Z",
}


def route_of(headers: Any) -> tuple[str | None, ...]:
    """(from country, from party, to country, to party) of a request's or answer's headers."""
    get = headers.get
    return (get("OCPI-from-country-code"), get("OCPI-from-party-id"),
            get("OCPI-to-country-code"), get("OCPI-to-party-id"))


# --- stub eMSP ------------------------------------------------------------------------------


class StubEmsp(RecordingStub):
    """A 2.2.1 eMSP's Receiver endpoints (and a hubclientinfo Receiver), recording everything."""

    def __init__(self) -> None:
        super().__init__()
        self.cdrs: list[Any] = []
        self.app = self._build()

    def reset(self) -> None:
        self.clear_received()
        with self.lock:
            self.cdrs.clear()

    def authorized(self, header: str | None) -> bool:
        return header == f"Token {b64(TOKEN_B)}"

    def _build(self) -> Flask:
        app = self.recording_app("stub-emsp-hub")

        @app.get("/emsp/versions")
        def versions() -> Response:
            return answer([{"version": "2.2.1", "url": f"{self.base_url}/emsp/2.2.1"}])

        @app.get("/emsp/2.2.1")
        def details() -> Response:
            base = f"{self.base_url}/emsp/2.2.1"
            endpoints = [
                {"identifier": "credentials", "role": "SENDER", "url": f"{base}/credentials"},
                {"identifier": "locations", "role": "RECEIVER", "url": f"{base}/locations"},
                {"identifier": "sessions", "role": "RECEIVER", "url": f"{base}/sessions"},
                {"identifier": "cdrs", "role": "RECEIVER", "url": f"{base}/cdrs"},
                {"identifier": "commands", "role": "SENDER", "url": f"{base}/commands"},
                {"identifier": "hubclientinfo", "role": "RECEIVER",
                 "url": f"{base}/hubclientinfo"},
            ]
            return answer({"version": "2.2.1", "endpoints": endpoints})

        @app.route("/emsp/2.2.1/sessions/<cc>/<pid>/<sid>", methods=["PUT", "PATCH"])
        def sessions(cc: str, pid: str, sid: str) -> Response:
            return answer()

        @app.post("/emsp/2.2.1/cdrs")
        def post_cdr() -> Response:
            with self.lock:
                self.cdrs.append(request.get_json())
                number = len(self.cdrs)
            return answer(status=201,
                          headers={"Location": f"{self.base_url}/emsp/2.2.1/cdrs/{number}"})

        @app.get("/emsp/2.2.1/cdrs/<int:number>")
        def get_cdr(number: int) -> Response:
            with self.lock:
                return answer(self.cdrs[number - 1])

        @app.patch("/emsp/2.2.1/locations/<cc>/<pid>/<loc>/<evse>")
        def evse_status(cc: str, pid: str, loc: str, evse: str) -> Response:
            return answer()

        @app.put("/emsp/2.2.1/hubclientinfo/<cc>/<pid>")
        def client_info(cc: str, pid: str) -> Response:
            return answer()

        @app.post("/emsp/results/<command>/<uid>")
        def command_result(command: str, uid: str) -> Response:
            return answer()

        return app


def slow_app(release: threading.Event) -> Flask:
    """A CPO that answers only after the hub's timeout (or when the tests are done)."""
    app = Flask("slow-cpo")

    @app.route("/<path:anything>", methods=["GET", "POST"])
    def slow(anything: str) -> Response:
        release.wait(3)
        return Response('{"status_code":1000,"timestamp":"2026-01-01T00:00:00Z"}',
                        mimetype="application/json")

    return app


@dataclass
class Servers:
    stub: StubEmsp
    hub: ServerThread
    hub_switch: Switch
    sims: list[tuple[Switch, ServerThread]]
    slow_url: str


@pytest.fixture(scope="module")
def servers() -> Iterator[Servers]:
    stub = StubEmsp()
    stub_server = ServerThread(stub.app).start()
    stub.base_url = stub_server.url
    hub_switch = Switch()
    hub_server = ServerThread(hub_switch).start()
    sims = [(switch, ServerThread(switch).start()) for switch in (Switch(), Switch())]
    release = threading.Event()
    slow = ServerThread(slow_app(release)).start()
    yield Servers(stub, hub_server, hub_switch, sims, slow.url)
    release.set()
    for server in (stub_server, hub_server, slow, *(s for _, s in sims)):
        server.stop()


class EmspClient:
    """Plays ScanCharge (SE/SCN) in front of the hub: its token, its routing headers."""

    def __init__(self, base_url: str, token: str) -> None:
        self.base_url = base_url
        self.token = token
        self.correlation_id = ""

    def call(self, method: str, path_or_url: str, body: Any = None,
             to: tuple[str, str] | None = None, sender: tuple[str, str] = ("SE", "SCN"),
             token: str | None = None, extra: dict[str, str] | None = None,
             ) -> requests.Response:
        url = path_or_url if path_or_url.startswith("http") else self.base_url + path_or_url
        self.correlation_id = str(uuid.uuid4())
        headers = {"Authorization": f"Token {b64(token or self.token)}",
                   "X-Request-ID": str(uuid.uuid4()), "X-Correlation-ID": self.correlation_id,
                   "OCPI-from-country-code": sender[0], "OCPI-from-party-id": sender[1]}
        if to is not None:
            headers["OCPI-to-country-code"], headers["OCPI-to-party-id"] = to
        headers.update(extra or {})
        return requests.request(method, url, json=body, headers=headers, timeout=10)


@dataclass
class Net:
    hub: Hub
    cpo1: Simulator
    cpo2: Simulator
    emsp: EmspClient
    stub: StubEmsp
    credentials: dict[str, Any]
    servers: Servers

    @property
    def hub_url(self) -> str:
        return self.servers.hub.url


@pytest.fixture
def net(servers: Servers) -> Iterator[Net]:
    """A fresh hub and two fresh CPO simulators; the eMSP registered first, then the CPOs
    (so the eMSP is told about them through hubclientinfo)."""
    servers.stub.reset()
    hub = create_hub(HubSettings(base_url=servers.hub.url, token_a=HUB_TOKEN_A, page_limit=4,
                                 forward_timeout=1.0))
    servers.hub_switch.target = hub.app
    sims = []
    for (switch, server), party in zip(servers.sims, ("SIM", "SI2"), strict=True):
        sim = create_simulator(SimulatorSettings(
            base_url=server.url, token_a=f"token-a-{party}", party_id=party,
            time_factor=3600.0, tick_seconds=0.05, result_delay=0.02))
        switch.target = sim.app
        sims.append(sim)
    emsp = EmspClient(servers.hub.url, HUB_TOKEN_A)
    reply = emsp.call("POST", "/ocpi/2.2.1/credentials", {
        "token": TOKEN_B, "url": servers.stub.versions_url,
        "roles": [{"role": "EMSP", "party_id": "SCN", "country_code": "SE",
                   "business_details": {"name": "Stub eMSP"}}]})
    assert reply.status_code == 200 and reply.json()["status_code"] == 1000, reply.text
    credentials = reply.json()["data"]
    emsp.token = credentials["token"]
    for sim, (_, server) in zip(sims, servers.sims, strict=True):
        hub.connect(f"{server.url}/ocpi/versions", sim.settings.token_a)
    yield Net(hub, sims[0], sims[1], emsp, servers.stub, credentials, servers)
    for sim in sims:
        sim.shutdown()
    hub.shutdown()


def start_body(stub: StubEmsp, location: str, evse: str) -> tuple[dict[str, Any], str]:
    uid = uuid.uuid4().hex
    path = f"/emsp/results/START_SESSION/{uid}"
    return {"response_url": f"{stub.base_url}{path}", "token": DRIVER_TOKEN,
            "location_id": location, "evse_uid": evse, "connector_id": "1",
            "authorization_reference": f"AUTH-{uid[:8]}"}, path


def commands_in(sim: Simulator) -> list[dict[str, Any]]:
    return [e for e in sim.log if e["direction"] == "in" and e["module"] == "commands"]


# --- registration and hubclientinfo --------------------------------------------------------


def test_the_hub_reports_only_itself_and_lists_the_cpos(net: Net):
    assert net.credentials["roles"] == [{
        "role": "HUB", "party_id": "HUB", "country_code": "SE",
        "business_details": {"name": "ScanCharge Test Hub"}}]
    assert net.credentials["url"] == f"{net.hub_url}/ocpi/versions"
    details = net.emsp.call("GET", "/ocpi/2.2.1").json()["data"]
    offered = {(e["identifier"], e["role"]) for e in details["endpoints"]}
    assert {("hubclientinfo", "SENDER"), ("credentials", "SENDER"), ("commands", "RECEIVER"),
            ("locations", "SENDER"), ("tariffs", "SENDER"), ("sessions", "RECEIVER"),
            ("cdrs", "RECEIVER")} <= offered

    reply = net.emsp.call("GET", "/ocpi/2.2.1/hubclientinfo")
    assert route_of(reply.headers) == (None, None, None, None)  # a configuration module
    infos = reply.json()["data"]
    assert [(i["country_code"], i["party_id"], i["role"], i["status"]) for i in infos] == [
        ("SE", "SIM", "CPO", "CONNECTED"), ("SE", "SI2", "CPO", "CONNECTED")]
    # ... and pushed to the eMSP as the CPOs connected.
    pushed = net.stub.got("PUT", "/emsp/2.2.1/hubclientinfo/")
    assert [r.path for r in pushed] == ["/emsp/2.2.1/hubclientinfo/SE/SIM",
                                        "/emsp/2.2.1/hubclientinfo/SE/SI2"]
    assert pushed[0].body["status"] == "CONNECTED" and pushed[0].body["role"] == "CPO"
    assert route_of(pushed[0].headers) == (None, None, None, None)

    # Each CPO is registered with the hub as its peer: the hub's party, not the eMSP's.
    for sim in (net.cpo1, net.cpo2):
        assert sim.state()["emsp"]["party_id"] == "HUB"
    # Token A is spent; the eMSP's token opens nothing at the CPOs themselves.
    assert net.emsp.call("GET", "/ocpi/versions", token=HUB_TOKEN_A).status_code == 401
    sim_url = net.servers.sims[0][1].url
    assert net.emsp.call("GET", f"{sim_url}/ocpi/2.2.1/locations").status_code == 401
    # Tokens never reach the log.
    text = json.dumps(net.hub.log, default=str)
    assert TOKEN_B not in text and net.emsp.token not in text


# --- routing by headers ----------------------------------------------------------------------


def test_start_session_is_routed_to_the_cpo_named_in_the_headers(net: Net):
    body, result_path = start_body(net.stub, "SI2-MMO", "SI2-MMO-1")
    reply = net.emsp.call("POST", "/ocpi/2.2.1/receiver/commands/START_SESSION", body,
                          to=("SE", "SI2"))
    correlation_id = net.emsp.correlation_id
    assert reply.status_code == 200, reply.text
    assert reply.json()["status_code"] == 1000
    assert reply.json()["data"] == {"result": "ACCEPTED", "timeout": 30}
    assert route_of(reply.headers) == ("SE", "SI2", "SE", "SCN")
    assert reply.headers["X-Correlation-ID"] == correlation_id
    assert commands_in(net.cpo1) == []
    [received] = commands_in(net.cpo2)
    # The CPO got a response_url at the hub, not the eMSP's own.
    assert received["request"]["response_url"].startswith(
        f"{net.hub_url}/ocpi/2.2.1/sender/commands/")

    # The CommandResult comes back through the hub to the eMSP's own response_url.
    result = wait_until(lambda: net.stub.got("POST", result_path))[0]
    assert result.body == {"result": "ACCEPTED"}
    assert result.headers["Authorization"] == f"Token {b64(TOKEN_B)}"
    assert route_of(result.headers) == ("SE", "SI2", "SE", "SCN")
    assert result.headers["X-Correlation-Id"] == correlation_id

    # The session push from CPO 2 reaches the eMSP from SE/SI2, to SE/SCN.
    put = wait_until(lambda: net.stub.got("PUT", "/emsp/2.2.1/sessions/"))[0]
    session = put.body
    assert put.path == f"/emsp/2.2.1/sessions/SE/SI2/{session['id']}"
    assert route_of(put.headers) == ("SE", "SI2", "SE", "SCN")
    assert put.headers["Authorization"] == f"Token {b64(TOKEN_B)}"
    assert (session["party_id"], session["location_id"], session["evse_uid"]) == (
        "SI2", "SI2-MMO", "SI2-MMO-1")
    assert session["authorization_reference"] == body["authorization_reference"]
    # The EVSE status was a Broadcast Push: it arrives from the hub.
    patch = wait_until(lambda: net.stub.got("PATCH", "/emsp/2.2.1/locations/"))[0]
    assert patch.path == "/emsp/2.2.1/locations/SE/SI2/SI2-MMO/SI2-MMO-1"
    assert route_of(patch.headers) == ("SE", "HUB", "SE", "SCN")

    # Stop through the hub; the CDR arrives from SE/SI2.
    stop = net.emsp.call("POST", "/ocpi/2.2.1/receiver/commands/STOP_SESSION", {
        "response_url": f"{net.stub.base_url}/emsp/results/STOP_SESSION/1",
        "session_id": session["id"]}, to=("SE", "SI2"))
    assert stop.json()["data"]["result"] == "ACCEPTED"
    cdr_post = wait_until(lambda: net.stub.got("POST", "/emsp/2.2.1/cdrs"))[0]
    assert route_of(cdr_post.headers) == ("SE", "SI2", "SE", "SCN")
    assert cdr_post.body["party_id"] == "SI2" and cdr_post.body["session_id"] == session["id"]
    assert cdr_post.body["cdr_location"]["evse_id"] == "SE*SI2*E00006"  # STO 1-3, GBG 4-5, MMO 6
    # The CPO was given a Location at the hub, through which it can read its CDR back.
    cdr_id = cdr_post.body["id"]
    location = wait_until(lambda: net.cpo2.cdr_location(cdr_id))
    assert location.startswith(f"{net.hub_url}/ocpi/2.2.1/receiver/cdrs/")
    connection = net.hub.connection_of(PartyRef("SE", "SI2"))
    assert connection is not None
    back = net.emsp.call("GET", location, token=connection.token_ours, sender=("SE", "SI2"))
    assert back.status_code == 200 and back.json()["data"]["id"] == cdr_id
    assert route_of(back.headers) == ("SE", "SCN", "SE", "SI2")
    # The other CPO cannot.
    other = net.hub.connection_of(PartyRef("SE", "SIM"))
    assert other is not None
    assert net.emsp.call("GET", location, token=other.token_ours,
                         sender=("SE", "SIM")).status_code == 404


def test_two_cpos_at_once_each_push_arrives_from_its_own_party(net: Net):
    for to, location, evse in ((("SE", "SIM"), "SIM-STO", "SIM-STO-1"),
                               (("SE", "SI2"), "SI2-STO", "SI2-STO-3")):
        body, _ = start_body(net.stub, location, evse)
        reply = net.emsp.call("POST", "/ocpi/2.2.1/receiver/commands/START_SESSION", body,
                              to=to)
        assert reply.json()["data"]["result"] == "ACCEPTED"
        assert route_of(reply.headers) == (*to, "SE", "SCN")
    puts = wait_until(lambda: (p := net.stub.got("PUT", "/emsp/2.2.1/sessions/"))
                      and len(p) == 2 and p)
    by_party = {r.body["party_id"]: r for r in puts}
    assert set(by_party) == {"SIM", "SI2"}
    for party, put in by_party.items():
        assert put.path.startswith(f"/emsp/2.2.1/sessions/SE/{party}/")
        assert route_of(put.headers) == ("SE", party, "SE", "SCN")
    assert by_party["SI2"].body["evse_uid"] == "SI2-STO-3"
    # The hub's log shows each push forwarded to the eMSP.
    # The hub writes its log entry once the eMSP has answered: wait for both.
    forwarded = wait_until(lambda: len(f := [e for e in net.hub.log if e["direction"] == "out"
                                             and e["module"] == "sessions"
                                             and e["method"] == "PUT"]) == 2 and f)
    assert {e["from"] for e in forwarded} == {"SIM", "SI2"}
    assert {e["to"] for e in forwarded} == {"SCN"}


def test_unknown_receiver_and_bad_routing_headers(net: Net):
    body, _ = start_body(net.stub, "SIM-STO", "SIM-STO-1")
    path = "/ocpi/2.2.1/receiver/commands/START_SESSION"
    reply = net.emsp.call("POST", path, body, to=("SE", "XXX"))
    assert reply.status_code == 200
    assert reply.json()["status_code"] == 4001
    assert "SE/XXX" in reply.json()["status_message"]
    assert route_of(reply.headers) == ("SE", "HUB", "SE", "SCN")
    # A command for nobody in particular, or for the hub itself, has no receiver either.
    assert net.emsp.call("POST", path, body).json()["status_code"] == 4001
    assert net.emsp.call("POST", path, body, to=("SE", "HUB")).json()["status_code"] == 4001
    # Half a routing address, or a sender that is not the caller, is the caller's error.
    half = net.emsp.call("POST", path, body, extra={"OCPI-to-party-id": "SIM"})
    assert half.json()["status_code"] == 2001
    posing = net.emsp.call("POST", path, body, to=("SE", "SI2"), sender=("SE", "SIM"))
    assert posing.json()["status_code"] == 2000
    assert commands_in(net.cpo1) == [] and commands_in(net.cpo2) == []
    # Receivers' own errors come back as they were.
    reply = net.emsp.call("GET", "/ocpi/2.2.1/sender/locations/NOPE", to=("SE", "SIM"))
    assert reply.status_code == 404 and reply.json()["status_code"] == 2003


def test_a_cpo_may_push_only_its_own_objects(net: Net):
    connection = net.hub.connection_of(PartyRef("SE", "SI2"))
    assert connection is not None
    reply = net.emsp.call("PUT", "/ocpi/2.2.1/receiver/sessions/SE/SIM/stolen", {"id": "x"},
                          to=("SE", "SCN"), sender=("SE", "SI2"), token=connection.token_ours)
    assert reply.status_code == 404 and reply.json()["status_code"] == 2000
    assert net.stub.got("PUT", "/emsp/2.2.1/sessions/") == []


# --- GET All --------------------------------------------------------------------------------


def walk(net: Net, url: str, **kw: Any) -> tuple[list[dict[str, Any]], list[requests.Response]]:
    items: list[dict[str, Any]] = []
    pages: list[requests.Response] = []
    next_url: str | None = url
    while next_url:
        reply = net.emsp.call("GET", next_url, **kw)
        assert reply.status_code == 200 and reply.json()["status_code"] == 1000, reply.text
        pages.append(reply)
        items.extend(reply.json()["data"])
        next_url = next_link(reply.headers.get("Link"))
        assert len(pages) < 20, "pagination does not end"
    return items, pages


def test_get_all_combines_the_locations_of_both_cpos(net: Net):
    expected = [f"{p}-{s}" for p in ("SIM", "SI2") for s in ("STO", "GBG", "MMO", "UPP", "JKG")]
    items, pages = walk(net, "/ocpi/2.2.1/sender/locations", to=("SE", "HUB"))
    assert [loc["id"] for loc in items] == expected
    assert [loc["party_id"] for loc in items] == ["SIM"] * 5 + ["SI2"] * 5
    assert len(pages) == 3  # the hub's own page size, 4
    assert all(p.headers["X-Total-Count"] == "10" and p.headers["X-Limit"] == "4"
               for p in pages)
    assert pages[0].headers["Link"].startswith(
        f"<{net.hub_url}/ocpi/2.2.1/sender/locations?")
    assert route_of(pages[0].headers) == ("SE", "HUB", "SE", "SCN")
    assert items[5]["evses"][0]["evse_id"] == "SE*SI2*E00001"
    # Without OCPI-to the same; date filters reach the CPOs.
    items, _ = walk(net, "/ocpi/2.2.1/sender/locations")
    assert len(items) == 10
    items, _ = walk(net, "/ocpi/2.2.1/sender/locations?date_from=2025-04-01T00:00:00Z")
    assert [loc["id"] for loc in items] == ["SIM-UPP", "SIM-JKG", "SI2-UPP", "SI2-JKG"]
    tariffs, _ = walk(net, "/ocpi/2.2.1/sender/tariffs", to=("SE", "HUB"))
    assert [(t["party_id"], t["id"]) for t in tariffs] == [
        ("SIM", "AC-ADHOC"), ("SIM", "DC-ADHOC"), ("SI2", "AC-ADHOC"), ("SI2", "DC-ADHOC")]


def test_get_from_one_cpo_keeps_its_pagination_through_the_hub(net: Net):
    items, pages = walk(net, "/ocpi/2.2.1/sender/locations", to=("SE", "SI2"))
    assert [loc["id"] for loc in items] == [f"SI2-{s}" for s in
                                            ("STO", "GBG", "MMO", "UPP", "JKG")]
    assert len(pages) == 3  # the CPO's page size, 2
    assert pages[0].headers["X-Total-Count"] == "5" and pages[0].headers["X-Limit"] == "2"
    # The CPO's Link, rewritten to the hub.
    assert pages[0].headers["Link"] == (
        f'<{net.hub_url}/ocpi/2.2.1/sender/locations?offset=2&limit=2>; rel="next"')
    assert route_of(pages[0].headers) == ("SE", "SI2", "SE", "SCN")
    evse = net.emsp.call("GET", "/ocpi/2.2.1/sender/locations/SI2-STO/SI2-STO-1",
                         to=("SE", "SI2")).json()["data"]
    assert evse["evse_id"] == "SE*SI2*E00001"


# --- a receiver that cannot be reached ---------------------------------------------------------


def test_unreachable_and_slow_receivers(net: Net):
    dead = "http://127.0.0.1:9"
    net.hub.add_party("CPO", "SE", "DED", token="t", versions_url=f"{dead}/versions",
                      endpoints={("commands", "RECEIVER"): f"{dead}/commands",
                                 ("locations", "SENDER"): f"{dead}/locations"})
    net.hub.add_party("CPO", "SE", "SLO", token="t",
                      endpoints={("commands", "RECEIVER"): f"{net.servers.slow_url}/commands"})
    body, _ = start_body(net.stub, "X", "X-1")
    path = "/ocpi/2.2.1/receiver/commands/START_SESSION"

    reply = net.emsp.call("POST", path, body, to=("SE", "DED"))
    assert reply.json()["status_code"] == 4003
    infos = {i["party_id"]: i["status"]
             for i in net.emsp.call("GET", "/ocpi/2.2.1/hubclientinfo").json()["data"]}
    assert infos == {"SIM": "CONNECTED", "SI2": "CONNECTED", "DED": "OFFLINE",
                     "SLO": "CONNECTED"}
    assert net.stub.got("PUT", "/emsp/2.2.1/hubclientinfo/SE/DED")[-1].body[
        "status"] == "OFFLINE"
    # A GET All that cannot read every CPO fails rather than hide their locations.
    assert net.emsp.call("GET", "/ocpi/2.2.1/sender/locations").json()["status_code"] == 4003

    started = time.monotonic()
    reply = net.emsp.call("POST", path, body, to=("SE", "SLO"))
    assert reply.json()["status_code"] == 4002
    assert time.monotonic() - started < 1.15  # answered at the hub's timeout, 1 s
    # A receiver without the module at all.
    reply = net.emsp.call("GET", "/ocpi/2.2.1/sender/tariffs", to=("SE", "SLO"))
    assert reply.json()["status_code"] == 4000


def test_still_alive_check_runs_until_shutdown():
    hub = create_hub(HubSettings(base_url="http://127.0.0.1:1", token_a="a",
                                 alive_interval=0.05, forward_timeout=0.5))
    hub.add_party("CPO", "SE", "DED", token="t", endpoints={},
                  versions_url="http://127.0.0.1:9/versions")
    assert hub.client_info()[0]["status"] == "CONNECTED"
    wait_until(lambda: hub.client_info()[0]["status"] == "OFFLINE")
    hub.shutdown()
    assert hub._alive_thread is not None and not hub._alive_thread.is_alive()
