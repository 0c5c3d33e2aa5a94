"""The CPO simulator on its own, over real HTTP, against a stub eMSP defined here.

One WSGI server serves whichever simulator the current test built (a switch in front of it),
so each test gets fresh simulator state without paying for a server restart.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import pytest
import requests
from flask import Flask, Response
from stub_peers import (
    Received,
    RecordingStub,
    Switch,
    answer,
    b64,
    wait_until,
    wait_until_idle,
)

from cpo_simulator import Simulator, SimulatorSettings, create_simulator
from cpo_simulator.pricing import price_session
from ocpi.modules.common import parse
from ocpi.modules.tariffs import Tariff
from ocpi.transport import next_link, parse_datetime, token_candidates
from servers import ServerThread

TOKEN_A = "sim-token-a-0001"
TOKEN_B = "stub-emsp-token-b"
CENT = Decimal("0.01")

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


def money(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def decimal_json(response: requests.Response) -> Any:
    return json.loads(response.content, parse_float=Decimal)


# --- stub eMSP ------------------------------------------------------------------------


class StubEmsp(RecordingStub):
    """Versions, version details and Receiver endpoints that record every request."""

    def __init__(self) -> None:
        super().__init__()
        self.token_b = TOKEN_B
        self.offer_versions = ["2.2.1"]
        self.offer_cdrs = True
        self.fail_sessions = False
        self.cdr_count = 0
        self.app = self._build()

    def reset(self) -> None:
        self.clear_received()
        self.token_b = TOKEN_B
        self.offer_versions = ["2.2.1"]
        self.offer_cdrs = True
        self.fail_sessions = False

    def authorized(self, header: str | None) -> bool:
        return self.token_b in token_candidates(header)

    def _build(self) -> Flask:
        app = self.recording_app("stub-emsp")

        @app.get("/emsp/versions")
        def versions() -> Response:
            return answer([{"version": v, "url": f"{self.base_url}/emsp/{v}"}
                           for v in self.offer_versions])

        @app.get("/emsp/<version>")
        def details(version: str) -> Response:
            base = f"{self.base_url}/emsp/{version}"
            endpoints = [
                {"identifier": "credentials", "role": "SENDER", "url": f"{base}/credentials"},
                {"identifier": "sessions", "role": "RECEIVER", "url": f"{base}/sessions"},
                {"identifier": "locations", "role": "RECEIVER", "url": f"{base}/locations/"},
                {"identifier": "commands", "role": "SENDER", "url": f"{base}/commands"},
            ]
            if self.offer_cdrs:
                endpoints.append(
                    {"identifier": "cdrs", "role": "RECEIVER", "url": f"{base}/cdrs"})
            return answer({"version": version, "endpoints": endpoints})

        @app.route("/emsp/2.2.1/sessions/<cc>/<pid>/<sid>", methods=["PUT", "PATCH"])
        def sessions(cc: str, pid: str, sid: str) -> Response:
            if self.fail_sessions:
                return Response("boom", status=500)
            return answer()

        @app.post("/emsp/2.2.1/cdrs")
        def cdrs() -> Response:
            with self.lock:
                self.cdr_count += 1
                number = self.cdr_count
            location = f"{self.base_url}/emsp/2.2.1/cdrs/{number}"
            return answer(status=201, headers={"Location": location})

        @app.patch("/emsp/2.2.1/locations/<cc>/<pid>/<loc>/<evse>")
        def evse_status(cc: str, pid: str, loc: str, evse: str) -> Response:
            return answer()

        @app.post("/emsp/commands/<command>/<uid>")
        def command_result(command: str, uid: str) -> Response:
            return answer()

        return app


# --- fixtures -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def stub_server() -> Iterator[StubEmsp]:
    stub = StubEmsp()
    server = ServerThread(stub.app).start()
    stub.base_url = server.url
    yield stub
    server.stop()


@pytest.fixture(scope="module")
def sim_server() -> Iterator[tuple[Switch, ServerThread]]:
    switch = Switch()
    server = ServerThread(switch).start()
    yield switch, server
    server.stop()


@pytest.fixture
def stub(stub_server: StubEmsp) -> StubEmsp:
    stub_server.reset()
    return stub_server


@pytest.fixture
def make_sim(sim_server: tuple[Switch, ServerThread]) -> Iterator[Callable[..., Simulator]]:
    switch, server = sim_server
    made: list[Simulator] = []

    def make(**overrides: Any) -> Simulator:
        values: dict[str, Any] = {
            "base_url": server.url,
            "token_a": TOKEN_A,
            "time_factor": 3600.0,  # 180 simulated seconds per 0.05 s tick
            "tick_seconds": 0.05,
            "result_delay": 0.02,
            "page_limit": 2,
        }
        values.update(overrides)
        simulator = create_simulator(SimulatorSettings(**values))
        switch.target = simulator.app
        made.append(simulator)
        return simulator

    yield make
    for simulator in made:
        simulator.shutdown()


class Client:
    """Talks OCPI to the simulator the way an eMSP would."""

    def __init__(self, base_url: str, token: str) -> None:
        self.base_url = base_url
        self.token = token
        self.last_correlation_id = ""

    def call(self, method: str, path_or_url: str, body: Any = None,
             token: str | None = None, raw_token: bool = False) -> requests.Response:
        url = path_or_url if path_or_url.startswith("http") else self.base_url + path_or_url
        value = token if token is not None else self.token
        self.last_correlation_id = str(uuid.uuid4())
        headers = {"Authorization": f"Token {value if raw_token else b64(value)}",
                   "X-Request-ID": str(uuid.uuid4()),
                   "X-Correlation-ID": self.last_correlation_id,
                   "OCPI-from-country-code": "SE", "OCPI-from-party-id": "SCN",
                   "OCPI-to-country-code": "SE", "OCPI-to-party-id": "SIM"}
        return requests.request(method, url, json=body, headers=headers, timeout=5)

    def get(self, path: str, **kw: Any) -> requests.Response:
        return self.call("GET", path, **kw)


def emsp_credentials(stub: StubEmsp, token: str = TOKEN_B) -> dict[str, Any]:
    return {
        "token": token,
        "url": stub.versions_url,
        "roles": [{"role": "EMSP", "party_id": "SCN", "country_code": "SE",
                   "business_details": {"name": "Stub eMSP"}}],
    }


@pytest.fixture
def registered(make_sim: Callable[..., Simulator], stub: StubEmsp,
               sim_server: tuple[Switch, ServerThread]) -> tuple[Simulator, Client]:
    simulator = make_sim()
    client = Client(sim_server[1].url, TOKEN_A)
    reply = client.call("POST", "/ocpi/2.2.1/credentials", emsp_credentials(stub))
    assert reply.status_code == 200, reply.text
    client.token = reply.json()["data"]["token"]
    with stub.lock:
        stub.received.clear()
    return simulator, client


def start(client: Client, stub: StubEmsp, location: str = "SIM-STO",
          evse: str | None = "SIM-STO-1", connector: str | None = "1",
          reference: str = "AUTH-1") -> tuple[dict[str, Any], str]:
    uid = uuid.uuid4().hex
    response_url = f"{stub.base_url}/emsp/commands/START_SESSION/{uid}"
    body: dict[str, Any] = {"response_url": response_url, "token": DRIVER_TOKEN,
                            "location_id": location, "authorization_reference": reference}
    if evse is not None:
        body["evse_uid"] = evse
    if connector is not None:
        body["connector_id"] = connector
    reply = client.call("POST", "/ocpi/2.2.1/commands/START_SESSION", body)
    assert reply.status_code == 200, reply.text
    return reply.json(), f"/emsp/commands/START_SESSION/{uid}"


def stop(client: Client, stub: StubEmsp, session_id: str) -> tuple[dict[str, Any], str]:
    uid = uuid.uuid4().hex
    response_url = f"{stub.base_url}/emsp/commands/STOP_SESSION/{uid}"
    reply = client.call("POST", "/ocpi/2.2.1/commands/STOP_SESSION",
                        {"response_url": response_url, "session_id": session_id})
    assert reply.status_code == 200, reply.text
    return reply.json(), f"/emsp/commands/STOP_SESSION/{uid}"


def wait_for_session_put(stub: StubEmsp, status: str) -> Received:
    return wait_until(lambda: next(
        (r for r in stub.got("PUT", "/emsp/2.2.1/sessions/") if r.body["status"] == status),
        None))


# --- versions, tokens, credentials ----------------------------------------------------


def test_versions_and_version_details(make_sim, sim_server):
    make_sim()
    client = Client(sim_server[1].url, TOKEN_A)
    versions = client.get("/ocpi/versions").json()
    assert versions["status_code"] == 1000
    assert versions["data"] == [{"version": "2.2.1",
                                 "url": f"{sim_server[1].url}/ocpi/2.2.1"}]
    details = client.get(versions["data"][0]["url"]).json()["data"]
    assert details["version"] == "2.2.1"
    assert {(e["identifier"], e["role"]) for e in details["endpoints"]} == {
        ("credentials", "SENDER"), ("locations", "SENDER"), ("tariffs", "SENDER"),
        ("sessions", "SENDER"), ("cdrs", "SENDER"), ("commands", "RECEIVER"),
    }
    assert all(e["url"].startswith(sim_server[1].url) for e in details["endpoints"])


def test_urls_follow_the_request_without_base_url(make_sim, sim_server):
    make_sim(base_url="")
    client = Client(sim_server[1].url, TOKEN_A)
    reply = client.get("/ocpi/versions")
    assert reply.json()["data"][0]["url"] == f"{sim_server[1].url}/ocpi/2.2.1"
    # Configuration modules carry no routing headers; request and correlation IDs echo back.
    assert "OCPI-from-party-id" not in reply.headers
    assert reply.headers["X-Correlation-ID"] == client.last_correlation_id


@pytest.mark.parametrize("header", [None, "Token " + b64("wrong"), "Token wrong",
                                    "Bearer " + b64(TOKEN_A), "Token "])
def test_missing_or_unknown_token_is_401(make_sim, sim_server, header):
    make_sim()
    headers = {"Authorization": header} if header is not None else {}
    for path in ("/ocpi/versions", "/ocpi/2.2.1/locations"):
        reply = requests.get(sim_server[1].url + path, headers=headers, timeout=5)
        assert reply.status_code == 401
        body = reply.json()
        assert 2000 <= body["status_code"] < 3000
        assert "data" not in body and body["timestamp"]


def test_token_a_opens_only_versions_and_credentials(make_sim, sim_server):
    make_sim()
    client = Client(sim_server[1].url, TOKEN_A)
    assert client.get("/ocpi/2.2.1/locations").status_code == 401
    assert client.get("/ocpi/2.2.1/tariffs").status_code == 401
    assert client.call("POST", "/ocpi/2.2.1/commands/START_SESSION", {}).status_code == 401
    assert client.get("/ocpi/versions").status_code == 200
    assert client.get("/ocpi/2.2.1/credentials").status_code == 200
    # Peers that do not Base64-encode are accepted too.
    assert client.get("/ocpi/versions", raw_token=True).status_code == 200


def test_credentials_handshake_and_lifecycle(make_sim, stub, sim_server):
    simulator = make_sim()
    base = sim_server[1].url
    client = Client(base, TOKEN_A)

    reply = client.call("POST", "/ocpi/2.2.1/credentials", emsp_credentials(stub))
    assert reply.status_code == 200
    body = reply.json()
    assert body["status_code"] == 1000
    creds = body["data"]
    token_c = creds["token"]
    assert token_c not in (TOKEN_A, TOKEN_B)
    assert creds["url"] == f"{base}/ocpi/versions"
    assert creds["roles"] == [{"role": "CPO", "party_id": "SIM", "country_code": "SE",
                               "business_details": {"name": "ScanCharge CPO Simulator"}}]
    # The simulator fetched our versions and details with token B, Base64-encoded.
    fetched = stub.got("GET")
    assert [r.path for r in fetched] == ["/emsp/versions", "/emsp/2.2.1"]
    assert all(r.headers["Authorization"] == f"Token {b64(TOKEN_B)}" for r in fetched)
    assert simulator.registered

    assert client.get("/ocpi/2.2.1/locations", token=token_c).status_code == 200
    assert client.get("/ocpi/versions").status_code == 401  # token A is spent
    assert client.call("POST", "/ocpi/2.2.1/credentials", emsp_credentials(stub),
                       token=token_c).status_code == 405
    assert client.get("/ocpi/2.2.1/credentials", token=token_c).json()["data"]["token"] \
        == token_c

    # PUT: new token B, endpoints fetched again with it, new token C.
    stub.token_b = "stub-emsp-token-b2"
    reply = client.call("PUT", "/ocpi/2.2.1/credentials",
                        emsp_credentials(stub, "stub-emsp-token-b2"), token=token_c)
    assert reply.status_code == 200 and reply.json()["status_code"] == 1000
    token_c2 = reply.json()["data"]["token"]
    assert token_c2 != token_c
    assert stub.got("GET")[-1].headers["Authorization"] == f"Token {b64('stub-emsp-token-b2')}"
    assert client.get("/ocpi/2.2.1/locations", token=token_c).status_code == 401
    assert client.get("/ocpi/2.2.1/locations", token=token_c2).status_code == 200

    # DELETE unregisters; token A works again, PUT/DELETE without registration are 405.
    reply = client.call("DELETE", "/ocpi/2.2.1/credentials", token=token_c2)
    assert reply.status_code == 200 and reply.json()["status_code"] == 1000
    assert not simulator.registered
    assert client.get("/ocpi/2.2.1/locations", token=token_c2).status_code == 401
    assert client.call("PUT", "/ocpi/2.2.1/credentials",
                       emsp_credentials(stub)).status_code == 405
    assert client.call("DELETE", "/ocpi/2.2.1/credentials").status_code == 405
    stub.token_b = TOKEN_B
    reply = client.call("POST", "/ocpi/2.2.1/credentials", emsp_credentials(stub))
    assert reply.status_code == 200 and reply.json()["status_code"] == 1000
    assert client.get("/ocpi/2.2.1/locations",
                      token=reply.json()["data"]["token"]).status_code == 200


@pytest.mark.parametrize(("setup", "expected"), [
    ("only_2_1_1", 3002),
    ("no_cdrs", 3003),
    ("unreachable", 3001),
    ("wrong_token_b", 3001),
])
def test_registration_failures(make_sim, stub, sim_server, setup, expected):
    simulator = make_sim()
    client = Client(sim_server[1].url, TOKEN_A)
    creds = emsp_credentials(stub)
    if setup == "only_2_1_1":
        stub.offer_versions = ["2.1.1"]
    elif setup == "no_cdrs":
        stub.offer_cdrs = False
    elif setup == "unreachable":
        creds["url"] = "http://127.0.0.1:9/versions"
    else:
        creds["token"] = "not-what-the-stub-expects"
    reply = client.call("POST", "/ocpi/2.2.1/credentials", creds)
    assert reply.json()["status_code"] == expected
    assert not simulator.registered
    assert client.get("/ocpi/versions").status_code == 200  # token A still valid
    # The failed exchange is in the message log, not an exception.
    outgoing = [e for e in simulator.log if e["direction"] == "out"]
    assert outgoing and outgoing[0]["module"] == "versions"
    if setup == "unreachable":
        assert outgoing[0]["http_status"] is None and "error" in outgoing[0]


# --- locations and tariffs ------------------------------------------------------------


def walk(client: Client, url: str) -> tuple[list[dict[str, Any]], list[requests.Response]]:
    items: list[dict[str, Any]] = []
    pages: list[requests.Response] = []
    next_url: str | None = url
    while next_url:
        reply = client.get(next_url)
        assert reply.status_code == 200, reply.text
        pages.append(reply)
        items.extend(decimal_json(reply)["data"])
        next_url = next_link(reply.headers.get("Link"))
        assert len(pages) < 20, "pagination does not end"
    return items, pages


def test_locations_pagination(registered):
    _, client = registered
    items, pages = walk(client, "/ocpi/2.2.1/locations?limit=100")
    assert [loc["id"] for loc in items] == ["SIM-STO", "SIM-GBG", "SIM-MMO", "SIM-UPP",
                                            "SIM-JKG"]
    assert len(pages) == 3
    for page in pages:
        assert page.headers["X-Total-Count"] == "5"
        assert page.headers["X-Limit"] == "2"  # capped at the server's page_limit
        assert len(page.json()["data"]) <= 2
    assert "Link" not in pages[-1].headers
    assert pages[0].headers["Link"].startswith(f'<{client.base_url}/ocpi/2.2.1/locations?')

    # date_from is inclusive and the filter survives in the Link header.
    items, pages = walk(client, "/ocpi/2.2.1/locations?date_from=2025-03-10T08:00:00Z")
    assert [loc["id"] for loc in items] == ["SIM-MMO", "SIM-UPP", "SIM-JKG"]
    assert pages[0].headers["X-Total-Count"] == "3"
    assert "date_from=2025-03-10T08%3A00%3A00Z" in pages[0].headers["Link"]
    # date_to is exclusive.
    items, _ = walk(client, "/ocpi/2.2.1/locations?date_from=2025-02-01T00:00:00Z"
                            "&date_to=2025-03-10T08:00:00Z")
    assert [loc["id"] for loc in items] == ["SIM-GBG"]

    bad = client.get("/ocpi/2.2.1/locations?date_from=yesterday").json()
    assert bad["status_code"] == 2001
    assert client.get("/ocpi/2.2.1/locations?offset=-1").json()["status_code"] == 2001


def test_demo_locations_look_real(registered):
    _, client = registered
    items, _ = walk(client, "/ocpi/2.2.1/locations")
    evses = [evse for loc in items for evse in loc["evses"]]
    assert all(loc["country"] == "SWE" and loc["time_zone"] == "Europe/Stockholm"
               and loc["operator"]["name"] for loc in items)
    assert all(1 <= len(loc["evses"]) <= 3 for loc in items)
    assert evses[0]["evse_id"] == "SE*SIM*E00001" and evses[0]["uid"] == "SIM-STO-1"
    assert any(evse["status"] == "OUTOFORDER" for evse in evses)
    connectors = [c for evse in evses for c in evse["connectors"]]
    ac = [c for c in connectors if c["power_type"] == "AC_3_PHASE"]
    dc = [c for c in connectors if c["power_type"] == "DC"]
    assert ac and dc and len(ac) + len(dc) == len(connectors)
    assert all(c["standard"] == "IEC_62196_T2" and c["max_electric_power"] == 22000
               and c["tariff_ids"] == ["AC-ADHOC"] for c in ac)
    assert all(c["standard"] == "IEC_62196_T2_COMBO" and c["max_electric_power"] == 150000
               and c["tariff_ids"] == ["DC-ADHOC"] for c in dc)


def test_tariffs_pagination_and_content(registered):
    _, client = registered
    items, pages = walk(client, "/ocpi/2.2.1/tariffs?limit=1")
    assert [t["id"] for t in items] == ["AC-ADHOC", "DC-ADHOC"]
    assert len(pages) == 2
    assert pages[0].headers["X-Limit"] == "1" and pages[0].headers["X-Total-Count"] == "2"
    ac = items[0]
    assert ac["currency"] == "SEK" and ac["type"] == "AD_HOC_PAYMENT"
    assert {t["language"] for t in ac["tariff_alt_text"]} == {"sv", "en"}
    components = {c["type"]: c for c in ac["elements"][0]["price_components"]}
    # Exact decimals on the wire, not floats.
    assert components["FLAT"]["price"] == Decimal("4.00")
    assert components["ENERGY"]["price"] == Decimal("3.60")
    assert components["ENERGY"]["vat"] == 25 and components["ENERGY"]["step_size"] == 1
    parse(Tariff, ac)  # a valid 2.2.1 Tariff (numbers as read: Decimals, never text)

    items, _ = walk(client, "/ocpi/2.2.1/tariffs?date_from=2025-01-01T00:00:00Z")
    assert [t["id"] for t in items] == ["DC-ADHOC"]


def test_location_evse_and_connector_objects(registered):
    _, client = registered
    location = client.get("/ocpi/2.2.1/locations/SIM-STO").json()
    assert location["data"]["name"] == "Stockholm Sergels torg"
    evse = client.get("/ocpi/2.2.1/locations/SIM-STO/SIM-STO-3").json()["data"]
    assert evse["uid"] == "SIM-STO-3" and evse["connectors"][0]["power_type"] == "DC"
    connector = client.get("/ocpi/2.2.1/locations/SIM-STO/SIM-STO-3/1").json()["data"]
    assert connector["max_electric_power"] == 150000
    for path in ("NOPE", "SIM-STO/NOPE", "SIM-STO/SIM-STO-3/9"):
        reply = client.get(f"/ocpi/2.2.1/locations/{path}")
        assert reply.status_code == 404
        assert reply.json()["status_code"] == 2003


# --- sessions, commands, CDRs ---------------------------------------------------------


def test_start_charge_stop_and_cdr(registered, stub):
    simulator, client = registered
    answer, result_path = start(client, stub)
    command_correlation_id = client.last_correlation_id
    assert answer["status_code"] == 1000
    assert answer["data"] == {"result": "ACCEPTED", "timeout": 30}

    result = wait_until(lambda: stub.got("POST", result_path))[0]
    assert result.body == {"result": "ACCEPTED"}
    assert result.headers["Authorization"] == f"Token {b64(TOKEN_B)}"
    assert (result.headers["Ocpi-From-Country-Code"], result.headers["Ocpi-From-Party-Id"],
            result.headers["Ocpi-To-Country-Code"], result.headers["Ocpi-To-Party-Id"]) == (
        "SE", "SIM", "SE", "SCN")
    assert result.headers["X-Request-Id"]
    # The asynchronous result carries the command's correlation ID, for tracing.
    assert result.headers["X-Correlation-Id"] == command_correlation_id

    put = wait_for_session_put(stub, "ACTIVE")
    session = put.body
    session_id = session["id"]
    assert put.path == f"/emsp/2.2.1/sessions/SE/SIM/{session_id}"
    assert stub.received.index(result) < stub.received.index(put)  # result first
    assert session["kwh"] == 0
    assert session["cdr_token"] == {k: DRIVER_TOKEN[k] for k in
                                    ("country_code", "party_id", "uid", "type", "contract_id")}
    assert session["auth_method"] == "COMMAND"
    assert session["authorization_reference"] == "AUTH-1"
    assert (session["location_id"], session["evse_uid"], session["connector_id"]) == (
        "SIM-STO", "SIM-STO-1", "1")
    assert session["currency"] == "SEK"
    evse_patch = wait_until(lambda: stub.got("PATCH", "/emsp/2.2.1/locations/"))[0]
    assert evse_patch.path == "/emsp/2.2.1/locations/SE/SIM/SIM-STO/SIM-STO-1"
    assert evse_patch.body["status"] == "CHARGING" and evse_patch.body["last_updated"]
    evse = client.get("/ocpi/2.2.1/locations/SIM-STO/SIM-STO-1").json()["data"]
    assert evse["status"] == "CHARGING"

    path = f"/emsp/2.2.1/sessions/SE/SIM/{session_id}"
    patches = wait_until(lambda: (p := stub.got("PATCH", path)) and len(p) >= 3 and p)
    previous_kwh, previous_cost, previous_time = Decimal(0), Decimal(0), session["last_updated"]
    for patch in patches[:3]:
        body = patch.body
        assert body["kwh"] > previous_kwh
        assert body["total_cost"]["incl_vat"] > body["total_cost"]["excl_vat"] > previous_cost
        assert len(body["charging_periods"]) == 1
        period = body["charging_periods"][0]
        dims = {d["type"]: d["volume"] for d in period["dimensions"]}
        # 22 kW for 180 simulated seconds: 1.1 kWh in 0.05 h.
        assert dims == {"ENERGY": Decimal("1.1"), "TIME": Decimal("0.05")}
        assert period["start_date_time"] == previous_time  # periods are contiguous
        assert parse_datetime(body["last_updated"]) > parse_datetime(previous_time)
        previous_kwh = body["kwh"]
        previous_cost = body["total_cost"]["excl_vat"]
        previous_time = body["last_updated"]

    answer, stop_path = stop(client, stub, session_id)
    assert answer["data"]["result"] == "ACCEPTED"
    assert wait_until(lambda: stub.got("POST", stop_path))[0].body == {"result": "ACCEPTED"}
    completed = wait_for_session_put(stub, "COMPLETED")
    cdr_post = wait_until(lambda: stub.got("POST", "/emsp/2.2.1/cdrs"))[0]
    evse_available = wait_until(lambda: [r for r in stub.got("PATCH", "/emsp/2.2.1/locations/")
                                         if r.body["status"] == "AVAILABLE"])[0]
    order = [stub.received.index(r) for r in (completed, evse_available, cdr_post)]
    assert order == sorted(order)

    final = completed.body
    cdr = cdr_post.body
    assert final["end_date_time"] and final["kwh"] == cdr["total_energy"]
    periods = cdr["charging_periods"]
    energy = sum(d["volume"] for p in periods for d in p["dimensions"] if d["type"] == "ENERGY")
    hours = sum(d["volume"] for p in periods for d in p["dimensions"] if d["type"] == "TIME")
    assert cdr["total_energy"] == energy
    assert abs(cdr["total_time"] - hours) <= Decimal("0.000001") * len(periods)
    duration = parse_datetime(cdr["end_date_time"]) - parse_datetime(cdr["start_date_time"])
    assert abs(Decimal(duration.total_seconds()) / 3600 - cdr["total_time"]) < Decimal("0.0003")
    # Energy is consistent with the connector's 22 kW over the charged time.
    assert abs(cdr["total_energy"] - 22 * cdr["total_time"]) <= Decimal("0.001") * len(periods)

    assert cdr["session_id"] == session_id
    assert cdr["cdr_token"] == session["cdr_token"]
    assert cdr["auth_method"] == "COMMAND" and cdr["authorization_reference"] == "AUTH-1"
    assert cdr["currency"] == "SEK"
    assert cdr["cdr_location"]["evse_id"] == "SE*SIM*E00001"
    assert cdr["cdr_location"]["connector_standard"] == "IEC_62196_T2"
    assert [t["id"] for t in cdr["tariffs"]] == ["AC-ADHOC"]
    assert "total_time_cost" not in cdr  # the AC tariff has no TIME component

    # The money, exactly: 4.00 start fee + 3.60/kWh, all excl. VAT, plus 25 % VAT.
    kwh = cdr["total_energy"]
    excl = Decimal("4.00") + kwh * Decimal("3.60")
    assert cdr["total_cost"] == {"excl_vat": money(excl), "incl_vat": money(excl * 125 / 100)}
    assert abs(cdr["total_cost"]["incl_vat"] - cdr["total_cost"]["excl_vat"] * 125 / 100) \
        <= CENT
    assert cdr["total_fixed_cost"] == {"excl_vat": Decimal("4.00"), "incl_vat": Decimal("5.00")}
    energy_excl = kwh * Decimal("3.60")
    assert cdr["total_energy_cost"] == {"excl_vat": money(energy_excl),
                                        "incl_vat": money(energy_excl * 125 / 100)}
    assert final["total_cost"] == cdr["total_cost"]

    # Stored once the simulator has read the eMSP's answer, just after the stub saw the POST.
    assert wait_until(lambda: simulator.cdr_location(cdr["id"])) == cdr_post_location(stub)
    state = simulator.state()
    assert state["sessions"][0]["status"] == "COMPLETED"
    assert [c["id"] for c in client.get("/ocpi/2.2.1/cdrs").json()["data"]] == [cdr["id"]]
    evse = client.get("/ocpi/2.2.1/locations/SIM-STO/SIM-STO-1").json()["data"]
    assert evse["status"] == "AVAILABLE"


def cdr_post_location(stub: StubEmsp) -> str:
    return f"{stub.base_url}/emsp/2.2.1/cdrs/{stub.cdr_count}"


def test_session_completes_by_itself_when_the_battery_is_full(registered, stub):
    simulator, client = registered
    simulator.set_behaviour(session_max_kwh="2.5")
    start(client, stub, evse="SIM-STO-3")  # DC, 150 kW: 7.5 kWh per tick, full at once
    completed = wait_for_session_put(stub, "COMPLETED")
    cdr = wait_until(lambda: stub.got("POST", "/emsp/2.2.1/cdrs"))[0].body
    assert completed.body["kwh"] == cdr["total_energy"] == Decimal("2.5")
    # 2.5 kWh at 150 kW take 60 s.
    assert cdr["total_time"] == Decimal("0.016667")
    assert cdr["total_cost"] == {"excl_vat": Decimal("17.00"), "incl_vat": Decimal("21.25")}
    assert len(stub.got("POST", "/emsp/commands/")) == 1  # only the START result


def test_start_rejected(registered, stub):
    simulator, client = registered
    simulator.set_behaviour(start="reject")
    answer, result_path = start(client, stub)
    assert answer["status_code"] == 1000
    assert answer["data"]["result"] == "REJECTED"
    wait_until_idle(simulator)
    assert stub.got("POST", result_path) == []
    assert stub.got(prefix="/emsp/2.2.1/sessions/") == []


@pytest.mark.parametrize(("behaviour", "result"), [
    ("failed", "FAILED"), ("timeout_result", "TIMEOUT"), ("evse_occupied", "EVSE_OCCUPIED"),
])
def test_start_failing_at_the_charge_point(registered, stub, behaviour, result):
    simulator, client = registered
    simulator.set_behaviour(start=behaviour)
    answer, result_path = start(client, stub)
    assert answer["data"]["result"] == "ACCEPTED"
    assert wait_until(lambda: stub.got("POST", result_path))[0].body == {"result": result}
    wait_until_idle(simulator)  # the start's thread ended after its result: no session
    assert stub.got(prefix="/emsp/2.2.1/sessions/") == []
    assert simulator.sessions == []
    evse = client.get("/ocpi/2.2.1/locations/SIM-STO/SIM-STO-1").json()["data"]
    assert evse["status"] == "AVAILABLE"


def test_start_with_no_result_stays_silent(registered, stub):
    simulator, client = registered
    simulator.set_behaviour(start="no_result")
    answer, result_path = start(client, stub)
    assert answer["data"] == {"result": "ACCEPTED", "timeout": 30}
    wait_until_idle(simulator)
    assert stub.got("POST", result_path) == []
    assert stub.got(prefix="/emsp/2.2.1/sessions/") == []
    assert simulator.sessions == []


def test_evse_state_decides_the_result(registered, stub):
    _, client = registered
    _, path = start(client, stub, location="SIM-GBG", evse="SIM-GBG-2")  # OUTOFORDER
    assert wait_until(lambda: stub.got("POST", path))[0].body["result"] == "EVSE_INOPERATIVE"
    start(client, stub)
    wait_for_session_put(stub, "ACTIVE")
    _, path = start(client, stub)  # the same EVSE, now charging
    assert wait_until(lambda: stub.got("POST", path))[0].body["result"] == "EVSE_OCCUPIED"
    # Without an EVSE the charge point picks a free one.
    _, path = start(client, stub, evse=None, connector=None)
    assert wait_until(lambda: stub.got("POST", path))[0].body["result"] == "ACCEPTED"
    sessions = wait_until(lambda: (s := stub.got("PUT", "/emsp/2.2.1/sessions/"))
                          and len(s) == 2 and s)
    assert sessions[1].body["evse_uid"] == "SIM-STO-2"


def test_stop_rejected_then_accepted(registered, stub):
    simulator, client = registered
    start(client, stub)
    session_id = wait_for_session_put(stub, "ACTIVE").body["id"]
    simulator.set_behaviour(stop="reject")
    answer, stop_path = stop(client, stub, session_id)
    assert answer["data"]["result"] == "REJECTED"
    # Two more progress PATCHes: the second comes from a tick that began after the
    # rejection, and a tick carries out any stop the session holds before it charges on.
    patches = len(stub.got("PATCH", "/emsp/2.2.1/sessions/"))
    wait_until(lambda: len(stub.got("PATCH", "/emsp/2.2.1/sessions/")) >= patches + 2)
    assert stub.got("POST", stop_path) == []
    assert simulator.sessions[0]["status"] == "ACTIVE"
    simulator.set_behaviour(stop="accept")
    answer, stop_path = stop(client, stub, session_id)
    assert answer["data"]["result"] == "ACCEPTED"
    wait_for_session_put(stub, "COMPLETED")
    # A second stop of a completed session is refused.
    assert stop(client, stub, session_id)[0]["data"]["result"] == "REJECTED"


def test_cdr_never_sent(registered, stub):
    simulator, client = registered
    simulator.set_behaviour(cdr="never")
    start(client, stub)
    session_id = wait_for_session_put(stub, "ACTIVE").body["id"]
    stop(client, stub, session_id)
    wait_for_session_put(stub, "COMPLETED")
    wait_until_idle(simulator)  # the session's thread has finished its CDR step
    assert stub.got("POST", "/emsp/2.2.1/cdrs") == []
    # The CPO still has it, for an eMSP that pulls.
    assert [c["session_id"] for c in simulator.cdrs] == [session_id]
    pulled = client.get("/ocpi/2.2.1/cdrs").json()["data"]
    assert [c["session_id"] for c in pulled] == [session_id]


def test_stop_of_unknown_session(registered, stub):
    simulator, client = registered
    answer, stop_path = stop(client, stub, "no-such-session")
    assert answer["status_code"] == 1000
    assert answer["data"]["result"] == "UNKNOWN_SESSION"
    wait_until_idle(simulator)
    assert stub.got("POST", stop_path) == []


@pytest.mark.parametrize(("location", "evse", "connector"), [
    ("NOWHERE", "SIM-STO-1", "1"), ("SIM-STO", "NOPE", "1"), ("SIM-STO", "SIM-STO-1", "9"),
])
def test_start_at_unknown_location(registered, stub, location, evse, connector):
    _, client = registered
    answer, _ = start(client, stub, location=location, evse=evse, connector=connector)
    assert answer["status_code"] == 2003
    assert answer["data"]["result"] == "REJECTED"


def test_invalid_command_body_is_2001(registered):
    _, client = registered
    reply = client.call("POST", "/ocpi/2.2.1/commands/START_SESSION", {"location_id": "X"})
    assert reply.status_code == 200 and reply.json()["status_code"] == 2001


def test_unlock_and_unsupported_commands(registered, stub):
    _, client = registered
    url = f"{stub.base_url}/emsp/commands/UNLOCK_CONNECTOR/u1"
    reply = client.call("POST", "/ocpi/2.2.1/commands/UNLOCK_CONNECTOR", {
        "response_url": url, "location_id": "SIM-MMO", "evse_uid": "SIM-MMO-1",
        "connector_id": "1"}).json()
    assert reply["data"]["result"] == "ACCEPTED"
    assert wait_until(lambda: stub.got("POST", "/emsp/commands/UNLOCK_CONNECTOR/u1"))[0] \
        .body == {"result": "ACCEPTED"}
    reply = client.call("POST", "/ocpi/2.2.1/commands/RESERVE_NOW", {
        "response_url": f"{stub.base_url}/emsp/commands/RESERVE_NOW/r1"}).json()
    assert reply["data"]["result"] == "NOT_SUPPORTED"


def test_emsp_errors_are_logged_not_fatal(registered, stub):
    simulator, client = registered
    stub.fail_sessions = True
    start(client, stub)
    session_id = wait_until(lambda: simulator.sessions and simulator.sessions[0]["id"])
    wait_until(lambda: len(stub.got("PATCH", "/emsp/2.2.1/sessions/")) >= 2)
    failures = [e for e in simulator.log if e["direction"] == "out"
                and e["module"] == "sessions"]
    assert failures and all(e["http_status"] == 500 for e in failures)
    assert failures[0]["response"] is None and "error" in failures[0]
    stub.fail_sessions = False
    stop(client, stub, session_id)
    assert wait_until(lambda: stub.got("POST", "/emsp/2.2.1/cdrs"))


def test_message_log_and_control_endpoints(registered, stub):
    simulator, client = registered
    base = client.base_url
    reply = requests.post(f"{base}/sim/behaviour", json={"start": "reject", "result_delay": 0},
                          timeout=5)
    assert reply.status_code == 200 and reply.json()["start"] == "reject"
    assert simulator.behaviour.start == "reject"
    bad = requests.post(f"{base}/sim/behaviour", json={"start": "explode"}, timeout=5)
    assert bad.status_code == 400 and "start" in bad.json()["error"]
    assert requests.post(f"{base}/sim/behaviour", json={"colour": "red"},
                         timeout=5).status_code == 400

    start(client, stub)
    log = requests.get(f"{base}/sim/log", timeout=5).json()
    keys = {"direction", "method", "url", "module", "http_status", "ocpi_status", "request",
            "response", "at"}
    assert all(keys <= set(entry) for entry in log)
    registration = next(e for e in log if e["module"] == "credentials")
    assert registration["direction"] == "in" and registration["method"] == "POST"
    assert registration["url"] == "/ocpi/2.2.1/credentials"
    assert registration["http_status"] == 200 and registration["ocpi_status"] == 1000
    fetch = next(e for e in log if e["direction"] == "out")
    assert fetch["url"] == stub.versions_url and fetch["module"] == "versions"
    command = [e for e in log if e["module"] == "commands"][-1]
    assert command["request"]["location_id"] == "SIM-STO"
    assert command["response"]["data"]["result"] == "REJECTED"

    state = requests.get(f"{base}/sim/state", timeout=5).json()
    assert state["registered"] is True and state["sessions"] == [] and state["cdrs"] == []

    assert requests.post(f"{base}/sim/reset", timeout=5).status_code == 200
    assert simulator.behaviour.start == "accept" and simulator.log == []
    assert simulator.registered  # reset keeps the registration
    assert client.get("/ocpi/2.2.1/locations").status_code == 200


def test_shutdown_stops_background_threads(registered, stub):
    simulator, client = registered
    start(client, stub)
    wait_until(lambda: stub.got("PATCH", "/emsp/2.2.1/sessions/"))
    simulator.shutdown()
    # Every simulator request comes from one of its threads, and shutdown has joined them
    # all: with none alive, nothing can follow (no need to watch the stub for a while).
    assert not [t for t in simulator._threads if t.is_alive()]


def test_pricing_applies_step_size_and_vat_per_component():
    tariff = parse(Tariff, {
        "country_code": "SE", "party_id": "SIM", "id": "T", "currency": "SEK",
        "elements": [
            {"price_components": [{"type": "TIME", "price": Decimal("9.99"), "step_size": 1}],
             # restricted: not priced by the simulator
             "restrictions": {"min_kwh": Decimal("100")}},
            {"price_components": [
                {"type": "FLAT", "price": Decimal("1.00"), "vat": Decimal("25"), "step_size": 1},
                {"type": "ENERGY", "price": Decimal("0.23"), "vat": Decimal("10"),
                 "step_size": 500},
                {"type": "TIME", "price": Decimal("2.00"), "vat": Decimal("20"), "step_size": 300},
            ]},
        ],
        "last_updated": "2025-01-01T00:00:00Z",
    })
    costs = price_session(tariff, Decimal("5.4"), 1234)
    # 5.4 kWh billed as 5.5 (500 Wh steps); 1234 s billed as 1500 s (5 min steps).
    assert costs.energy is not None and costs.time is not None and costs.fixed is not None
    # 5.5 x 0.23 = 1.265: half up gives 1.27 where banker's rounding would give 1.26.
    assert (costs.energy.excl_vat, costs.energy.incl_vat) == (Decimal("1.27"), Decimal("1.39"))
    assert (costs.time.excl_vat, costs.time.incl_vat) == (Decimal("0.83"), Decimal("1.00"))
    assert (costs.fixed.excl_vat, costs.fixed.incl_vat) == (Decimal("1.00"), Decimal("1.25"))
    # Totals round the unrounded sums: 3.098333.. and 3.6415.
    assert (costs.total.excl_vat, costs.total.incl_vat) == (Decimal("3.10"), Decimal("3.64"))
