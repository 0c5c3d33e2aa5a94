"""The CPO simulator in OCPI 2.1.1 mode, over real HTTP, against a 2.1.1 stub eMSP.

Every document the simulator sends is checked against the field tables of
../shared/ocpi-spec/2.1.1/, transcribed below independently of the simulator's own models:
required fields present, no field the table lacks (so nothing of 2.2.1 leaks in), types and
string lengths as the table says.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Iterator
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import pytest
import requests
from flask import Flask, Response
from stub_peers import Received, RecordingStub, Switch, answer, b64, wait_until

from cpo_simulator import Simulator, SimulatorSettings, create_simulator
from ocpi.transport import next_link, parse_datetime
from servers import ServerThread

TOKEN_A = "sim211-token-a"
TOKEN_B = "stub211-token-b"
CENT = Decimal("0.01")

# A 2.1.1 Token (mod_tokens.md 3.2): no party, auth_id instead of contract_id, type OTHER.
DRIVER_TOKEN = {
    "uid": "ADHOC-0001",
    "type": "OTHER",
    "auth_id": "SE-SCN-C00000001-X",
    "issuer": "ScanCharge",
    "valid": True,
    "whitelist": "NEVER",
    "last_updated": "2026-01-01T00:00:00Z",
}


def money(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


# --- the 2.1.1 field tables --------------------------------------------------------------
# Each table maps a field to (cardinality, type). Cardinality as in the spec: "1" required,
# "?" optional, "+" non-empty list, "*" optional list. A type is ("string", n), "datetime",
# "number", "int", "bool", a set of enum values, or another table (an object).

DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z?$")


def string(n: int) -> tuple[str, int]:
    return ("string", n)


DISPLAY_TEXT = {"language": ("1", string(2)), "text": ("1", string(512))}
GEO_LOCATION = {"latitude": ("1", string(10)), "longitude": ("1", string(11))}
IMAGE = {"url": ("1", string(255)), "thumbnail": ("?", string(255)),
         "category": ("1", {"CHARGER", "ENTRANCE", "LOCATION", "NETWORK", "OPERATOR", "OTHER",
                            "OWNER"}),
         "type": ("1", string(4)), "width": ("?", "int"), "height": ("?", "int")}
BUSINESS_DETAILS = {"name": ("1", string(100)), "website": ("?", string(255)),
                    "logo": ("?", IMAGE)}
STATUS = {"AVAILABLE", "BLOCKED", "CHARGING", "INOPERATIVE", "OUTOFORDER", "PLANNED",
          "REMOVED", "RESERVED", "UNKNOWN"}
CONNECTOR = {
    "id": ("1", string(36)),
    "standard": ("1", {"CHADEMO", "IEC_62196_T1", "IEC_62196_T1_COMBO", "IEC_62196_T2",
                       "IEC_62196_T2_COMBO", "IEC_62196_T3A", "IEC_62196_T3C", "TESLA_R",
                       "TESLA_S", "DOMESTIC_F", "IEC_60309_2_three_32"}),
    "format": ("1", {"SOCKET", "CABLE"}),
    "power_type": ("1", {"AC_1_PHASE", "AC_3_PHASE", "DC"}),
    "voltage": ("1", "int"),
    "amperage": ("1", "int"),
    "tariff_id": ("?", string(36)),
    "terms_and_conditions": ("?", string(255)),
    "last_updated": ("1", "datetime"),
}
EVSE = {
    "uid": ("1", string(39)),
    "evse_id": ("?", string(48)),
    "status": ("1", STATUS),
    "status_schedule": ("*", {"period_begin": ("1", "datetime"),
                              "period_end": ("?", "datetime"), "status": ("1", STATUS)}),
    "capabilities": ("*", {"CHARGING_PROFILE_CAPABLE", "CREDIT_CARD_PAYABLE",
                           "REMOTE_START_STOP_CAPABLE", "RESERVABLE", "RFID_READER",
                           "UNLOCK_CAPABLE"}),
    "connectors": ("+", CONNECTOR),
    "floor_level": ("?", string(4)),
    "coordinates": ("?", GEO_LOCATION),
    "physical_reference": ("?", string(16)),
    "directions": ("*", DISPLAY_TEXT),
    "parking_restrictions": ("*", {"EV_ONLY", "PLUGGED", "DISABLED", "CUSTOMERS",
                                   "MOTORCYCLES"}),
    "images": ("*", IMAGE),
    "last_updated": ("1", "datetime"),
}
LOCATION = {
    "id": ("1", string(39)),
    "type": ("1", {"ON_STREET", "PARKING_GARAGE", "UNDERGROUND_GARAGE", "PARKING_LOT",
                   "OTHER", "UNKNOWN"}),
    "name": ("?", string(255)),
    "address": ("1", string(45)),
    "city": ("1", string(45)),
    "postal_code": ("1", string(10)),
    "country": ("1", string(3)),
    "coordinates": ("1", GEO_LOCATION),
    "related_locations": ("*", {**GEO_LOCATION, "name": ("?", DISPLAY_TEXT)}),
    "evses": ("*", EVSE),
    "directions": ("*", DISPLAY_TEXT),
    "operator": ("?", BUSINESS_DETAILS),
    "suboperator": ("?", BUSINESS_DETAILS),
    "owner": ("?", BUSINESS_DETAILS),
    "facilities": ("*", {"HOTEL", "RESTAURANT", "CAFE", "MALL", "SUPERMARKET", "SPORT",
                         "RECREATION_AREA", "NATURE", "MUSEUM", "BUS_STOP", "TAXI_STAND",
                         "TRAIN_STATION", "AIRPORT", "CARPOOL_PARKING", "FUEL_STATION",
                         "WIFI"}),
    "time_zone": ("?", string(255)),
    "charging_when_closed": ("?", "bool"),
    "last_updated": ("1", "datetime"),
}
PRICE_COMPONENT = {"type": ("1", {"ENERGY", "FLAT", "PARKING_TIME", "TIME"}),
                   "price": ("1", "number"), "step_size": ("1", "int")}
TARIFF_ELEMENT = {"price_components": ("+", PRICE_COMPONENT),
                  "restrictions": ("?", {"start_time": ("?", string(5)),
                                         "end_time": ("?", string(5)),
                                         "min_kwh": ("?", "number"),
                                         "max_kwh": ("?", "number")})}
TARIFF = {
    "id": ("1", string(36)),
    "currency": ("1", string(3)),
    "tariff_alt_text": ("*", DISPLAY_TEXT),
    "tariff_alt_url": ("?", string(255)),
    "elements": ("+", TARIFF_ELEMENT),
    "last_updated": ("1", "datetime"),
}
CDR_DIMENSION = {"type": ("1", {"ENERGY", "FLAT", "MAX_CURRENT", "MIN_CURRENT",
                                "PARKING_TIME", "TIME"}),
                 "volume": ("1", "number")}
CHARGING_PERIOD = {"start_date_time": ("1", "datetime"), "dimensions": ("+", CDR_DIMENSION)}
AUTH_METHOD = {"AUTH_REQUEST", "WHITELIST"}
SESSION = {
    "id": ("1", string(36)),
    "start_datetime": ("1", "datetime"),
    "end_datetime": ("?", "datetime"),
    "kwh": ("1", "number"),
    "auth_id": ("1", string(36)),
    "auth_method": ("1", AUTH_METHOD),
    "location": ("1", LOCATION),
    "meter_id": ("?", string(255)),
    "currency": ("1", string(3)),
    "charging_periods": ("*", CHARGING_PERIOD),
    "total_cost": ("?", "number"),
    "status": ("1", {"ACTIVE", "COMPLETED", "INVALID", "PENDING"}),
    "last_updated": ("1", "datetime"),
}
CDR = {
    "id": ("1", string(36)),
    "start_date_time": ("1", "datetime"),
    "stop_date_time": ("1", "datetime"),
    "auth_id": ("1", string(36)),
    "auth_method": ("1", AUTH_METHOD),
    "location": ("1", LOCATION),
    "meter_id": ("?", string(255)),
    "currency": ("1", string(3)),
    "tariffs": ("*", TARIFF),
    "charging_periods": ("+", CHARGING_PERIOD),
    "total_cost": ("1", "number"),
    "total_energy": ("1", "number"),
    "total_time": ("1", "number"),
    "total_parking_time": ("?", "number"),
    "remark": ("?", string(255)),
    "last_updated": ("1", "datetime"),
}
COMMAND_RESPONSE = {"result": ("1", {"NOT_SUPPORTED", "REJECTED", "ACCEPTED", "TIMEOUT",
                                     "UNKNOWN_SESSION"})}
VERSION = {"version": ("1", {"2.0", "2.1", "2.1.1"}), "url": ("1", string(255))}
VERSION_DETAILS = {"version": ("1", {"2.0", "2.1", "2.1.1"}),
                   "endpoints": ("+", {"identifier": ("1", {"cdrs", "commands", "credentials",
                                                            "locations", "sessions",
                                                            "tariffs", "tokens"}),
                                       "url": ("1", string(255))})}
CREDENTIALS = {"token": ("1", string(64)), "url": ("1", string(255)),
               "business_details": ("1", BUSINESS_DETAILS), "party_id": ("1", string(3)),
               "country_code": ("1", string(2))}


def problems(value: Any, table: dict[str, Any], where: str = "") -> list[str]:
    """Everything in `value` that its 2.1.1 table does not allow; empty when conformant."""
    if not isinstance(value, dict):
        return [f"{where or 'document'}: not an object"]
    found = [f"{where}{name}: not in the 2.1.1 table" for name in value if name not in table]
    for name, (card, kind) in table.items():
        path = f"{where}{name}"
        if name not in value:
            if card in ("1", "+"):
                found.append(f"{path}: required but missing")
            continue
        item = value[name]
        if item is None:
            found.append(f"{path}: null")  # absent optional fields are omitted, not null
        elif card in ("*", "+"):
            if not isinstance(item, list) or (card == "+" and not item):
                found.append(f"{path}: expected a{' non-empty' if card == '+' else ''} list")
            else:
                for index, element in enumerate(item):
                    found += _check(element, kind, f"{path}[{index}]")
        else:
            found += _check(item, kind, path)
    return found


def _check(value: Any, kind: Any, path: str) -> list[str]:
    if isinstance(kind, dict):
        return problems(value, kind, f"{path}.")
    if isinstance(kind, set):
        return [] if value in kind else [f"{path}: {value!r} is not one of the 2.1.1 values"]
    if isinstance(kind, tuple):
        ok = isinstance(value, str) and len(value) <= kind[1] and value.isascii()
        return [] if ok else [f"{path}: not a string({kind[1]}): {value!r}"]
    ok = {
        "datetime": lambda v: isinstance(v, str) and bool(DATETIME.match(v)),
        "number": lambda v: isinstance(v, (int, Decimal)) and not isinstance(v, bool),
        "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "bool": lambda v: isinstance(v, bool),
    }[kind](value)
    return [] if ok else [f"{path}: not a {kind}: {value!r}"]


def patch_table(table: dict[str, Any]) -> dict[str, Any]:
    """The table a PATCH body is checked against: every field optional, same types."""
    optional = {"1": "?", "+": "*"}
    return {name: (optional.get(card, card), kind) for name, (card, kind) in table.items()}


def conforms(value: Any, table: dict[str, Any]) -> bool:
    found = problems(value, table)
    assert not found, "\n".join(found)
    return True


def test_the_table_checker_catches_2_2_1_shapes():
    connector = {"id": "1", "standard": "IEC_62196_T2", "format": "SOCKET",
                 "power_type": "AC_3_PHASE", "max_voltage": 230, "max_amperage": 32,
                 "last_updated": "2025-01-01T00:00:00Z"}
    found = problems(connector, CONNECTOR)
    assert "max_voltage: not in the 2.1.1 table" in found
    assert "voltage: required but missing" in found
    assert problems({"result": "ACCEPTED", "timeout": 30}, COMMAND_RESPONSE) == [
        "timeout: not in the 2.1.1 table"]
    assert problems({"result": "EVSE_OCCUPIED"}, COMMAND_RESPONSE)
    assert problems({"total_cost": {"excl_vat": 1}}, {"total_cost": ("1", "number")})


# --- a 2.1.1 stub eMSP --------------------------------------------------------------------


class StubEmsp211(RecordingStub):
    """A 2.1.1 eMSP (endpoints without roles) that records every request. It also speaks
    2.2.1 when told to offer it; tests check which token form each request used."""

    def __init__(self) -> None:
        super().__init__()
        self.offer_versions = ["2.1.1"]
        self.cdr_count = 0
        self.app = self._build()

    def reset(self) -> None:
        self.clear_received()
        self.offer_versions = ["2.1.1"]

    def authorized(self, header: str | None) -> bool:
        # 2.1.1 sends the token as it is; base64 is accepted too, as the simulator may.
        return header in (f"Token {TOKEN_B}", f"Token {b64(TOKEN_B)}")

    def _build(self) -> Flask:
        app = self.recording_app("stub-emsp-211")

        @app.get("/emsp/versions")
        def versions() -> Response:
            return answer([{"version": v, "url": f"{self.base_url}/emsp/{v}"}
                           for v in self.offer_versions])

        @app.get("/emsp/<version>")
        def details(version: str) -> Response:
            base = f"{self.base_url}/emsp/{version}"
            idents = ("credentials", "locations", "sessions", "cdrs", "tokens", "commands")
            if version == "2.1.1":
                endpoints = [{"identifier": i, "url": f"{base}/{i}"} for i in idents]
            else:
                endpoints = [
                    {"identifier": i, "role": "SENDER" if i in ("credentials", "tokens",
                                                                "commands") else "RECEIVER",
                     "url": f"{base}/{i}"} for i in idents]
            return answer({"version": version, "endpoints": endpoints})

        @app.route("/emsp/<version>/sessions/<cc>/<pid>/<sid>", methods=["PUT", "PATCH"])
        def sessions(version: str, cc: str, pid: str, sid: str) -> Response:
            return answer()

        @app.post("/emsp/<version>/cdrs")
        def cdrs(version: str) -> Response:
            with self.lock:
                self.cdr_count += 1
                number = self.cdr_count
            return answer(status=201,
                          headers={"Location": f"{self.base_url}/emsp/{version}/cdrs/{number}"})

        @app.patch("/emsp/<version>/locations/<cc>/<pid>/<loc>/<evse>")
        def evse_status(version: str, cc: str, pid: str, loc: str, evse: str) -> Response:
            return answer()

        @app.post("/emsp/results/<command>/<uid>")
        def command_result(command: str, uid: str) -> Response:
            return answer()

        return app


@pytest.fixture(scope="module")
def stub_server() -> Iterator[StubEmsp211]:
    stub = StubEmsp211()
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
def stub(stub_server: StubEmsp211) -> StubEmsp211:
    stub_server.reset()
    return stub_server


@pytest.fixture
def make_sim(sim_server: tuple[Switch, ServerThread]) -> Iterator[Callable[..., Simulator]]:
    switch, server = sim_server
    made: list[Simulator] = []

    def make(**overrides: Any) -> Simulator:
        values: dict[str, Any] = {
            "base_url": server.url, "token_a": TOKEN_A, "versions": ("2.1.1",),
            "time_factor": 3600.0, "tick_seconds": 0.05, "result_delay": 0.02,
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
    """Talks 2.1.1 to the simulator as an eMSP would: plain tokens, no routing headers."""

    def __init__(self, base_url: str, token: str) -> None:
        self.base_url = base_url
        self.token = token

    def call(self, method: str, path_or_url: str, body: Any = None,
             token: str | None = None, encode: bool = False) -> requests.Response:
        url = path_or_url if path_or_url.startswith("http") else self.base_url + path_or_url
        value = token if token is not None else self.token
        headers = {"Authorization": f"Token {b64(value) if encode else value}"}
        return requests.request(method, url, json=body, headers=headers, timeout=5)

    def get(self, path: str, **kw: Any) -> requests.Response:
        return self.call("GET", path, **kw)


def data(response: requests.Response) -> Any:
    return json.loads(response.content, parse_float=Decimal)["data"]


def emsp_credentials(stub: StubEmsp211) -> dict[str, Any]:
    return {"token": TOKEN_B, "url": stub.versions_url, "party_id": "SCN",
            "country_code": "SE", "business_details": {"name": "Stub eMSP 2.1.1"}}


@pytest.fixture
def registered(make_sim: Callable[..., Simulator], stub: StubEmsp211,
               sim_server: tuple[Switch, ServerThread]) -> tuple[Simulator, Client]:
    simulator = make_sim()
    client = Client(sim_server[1].url, TOKEN_A)
    reply = client.call("POST", "/ocpi/2.1.1/credentials", emsp_credentials(stub))
    assert reply.status_code == 200, reply.text
    client.token = reply.json()["data"]["token"]
    with stub.lock:
        stub.received.clear()
    return simulator, client


def start(client: Client, stub: StubEmsp211, location: str = "SIM-STO",
          evse: str | None = "SIM-STO-1") -> tuple[dict[str, Any], str]:
    uid = uuid.uuid4().hex
    body: dict[str, Any] = {"response_url": f"{stub.base_url}/emsp/results/START_SESSION/{uid}",
                            "token": DRIVER_TOKEN, "location_id": location}
    if evse is not None:
        body["evse_uid"] = evse
    reply = client.call("POST", "/ocpi/2.1.1/commands/START_SESSION", body)
    assert reply.status_code == 200, reply.text
    return reply.json(), f"/emsp/results/START_SESSION/{uid}"


def stop(client: Client, stub: StubEmsp211, session_id: str) -> tuple[dict[str, Any], str]:
    uid = uuid.uuid4().hex
    reply = client.call("POST", "/ocpi/2.1.1/commands/STOP_SESSION", {
        "response_url": f"{stub.base_url}/emsp/results/STOP_SESSION/{uid}",
        "session_id": session_id})
    assert reply.status_code == 200, reply.text
    return reply.json(), f"/emsp/results/STOP_SESSION/{uid}"


def session_puts(stub: StubEmsp211, status: str) -> Received:
    return wait_until(lambda: next(
        (r for r in stub.got("PUT", "/emsp/2.1.1/sessions/") if r.body["status"] == status),
        None))


def walk(client: Client, url: str) -> tuple[list[dict[str, Any]], list[requests.Response]]:
    items: list[dict[str, Any]] = []
    pages: list[requests.Response] = []
    next_url: str | None = url
    while next_url:
        reply = client.get(next_url)
        assert reply.status_code == 200, reply.text
        pages.append(reply)
        items.extend(data(reply))
        next_url = next_link(reply.headers.get("Link"))
        assert len(pages) < 20, "pagination does not end"
    return items, pages


# --- versions, credentials, tokens ---------------------------------------------------------


def test_versions_and_details_have_no_roles(make_sim, sim_server):
    make_sim()
    base = sim_server[1].url
    client = Client(base, TOKEN_A)
    versions = data(client.get("/ocpi/versions"))
    assert versions == [{"version": "2.1.1", "url": f"{base}/ocpi/2.1.1"}]
    assert all(conforms(v, VERSION) for v in versions)
    details = data(client.get(versions[0]["url"]))
    assert conforms(details, VERSION_DETAILS)
    assert {e["identifier"] for e in details["endpoints"]} == {
        "credentials", "locations", "tariffs", "sessions", "cdrs", "commands"}
    # Only the offered version is served.
    reply = client.get("/ocpi/2.2.1")
    assert reply.status_code == 404 and reply.json()["status_code"] == 2000


def test_handshake_with_plain_tokens(make_sim, stub, sim_server):
    simulator = make_sim()
    base = sim_server[1].url
    client = Client(base, TOKEN_A)
    reply = client.call("POST", "/ocpi/2.1.1/credentials", emsp_credentials(stub))
    assert reply.status_code == 200 and reply.json()["status_code"] == 1000
    creds = data(reply)
    assert conforms(creds, CREDENTIALS)
    assert (creds["party_id"], creds["country_code"], creds["url"]) == (
        "SIM", "SE", f"{base}/ocpi/versions")
    assert simulator.registered and simulator.version == "2.1.1"
    # The simulator fetched our versions and 2.1.1 details with token B, unencoded.
    fetched = stub.got("GET")
    assert [r.path for r in fetched] == ["/emsp/versions", "/emsp/2.1.1"]
    assert all(r.headers["Authorization"] == f"Token {TOKEN_B}" for r in fetched)
    assert all("Ocpi-From-Party-Id" not in r.headers for r in fetched)

    token_c = creds["token"]
    assert client.get("/ocpi/2.1.1/locations", token=token_c).status_code == 200
    # Base64 is accepted too, leniently.
    assert client.get("/ocpi/2.1.1/locations", token=token_c, encode=True).status_code == 200
    assert client.get("/ocpi/2.1.1/locations", token="wrong").status_code == 401
    assert client.get("/ocpi/versions").status_code == 401  # token A is spent
    own = data(client.get("/ocpi/2.1.1/credentials", token=token_c))
    assert conforms(own, CREDENTIALS) and own["token"] == token_c
    assert "OCPI-from-party-id" not in client.get("/ocpi/2.1.1/locations", token=token_c).headers


def test_2_2_1_credentials_are_refused_in_2_1_1(make_sim, stub, sim_server):
    simulator = make_sim()
    client = Client(sim_server[1].url, TOKEN_A)
    body = {"token": TOKEN_B, "url": stub.versions_url,
            "roles": [{"role": "EMSP", "party_id": "SCN", "country_code": "SE",
                       "business_details": {"name": "x"}}]}
    reply = client.call("POST", "/ocpi/2.1.1/credentials", body)
    assert reply.json()["status_code"] == 2001
    assert "business_details" in reply.json()["status_message"]
    assert not simulator.registered


def test_an_emsp_without_2_1_1_is_3002(make_sim, stub, sim_server):
    make_sim()
    stub.offer_versions = ["2.2.1"]
    reply = Client(sim_server[1].url, TOKEN_A).call("POST", "/ocpi/2.1.1/credentials",
                                                    emsp_credentials(stub))
    assert reply.json()["status_code"] == 3002


def test_offering_both_versions_the_emsp_chooses(make_sim, stub, sim_server):
    simulator = make_sim(versions=("2.1.1", "2.2.1"))
    base = sim_server[1].url
    client = Client(base, TOKEN_A)
    assert data(client.get("/ocpi/versions")) == [
        {"version": "2.1.1", "url": f"{base}/ocpi/2.1.1"},
        {"version": "2.2.1", "url": f"{base}/ocpi/2.2.1"}]
    stub.offer_versions = ["2.1.1", "2.2.1"]
    reply = client.call("POST", "/ocpi/2.1.1/credentials", emsp_credentials(stub))
    token_c = data(reply)["token"]
    assert simulator.version == "2.1.1"
    # The same catalogue in each version's shape.
    location_211 = data(client.get("/ocpi/2.1.1/locations/SIM-STO", token=token_c))
    location_221 = data(client.get("/ocpi/2.2.1/locations/SIM-STO", token=token_c))
    assert conforms(location_211, LOCATION)
    assert location_221["publish"] is True and "type" not in location_221

    # A PUT at the 2.2.1 credentials endpoint switches to 2.2.1 (credentials.md 1.3).
    body = {"token": TOKEN_B, "url": stub.versions_url,
            "roles": [{"role": "EMSP", "party_id": "SCN", "country_code": "SE",
                       "business_details": {"name": "Stub"}}]}
    reply = client.call("PUT", "/ocpi/2.2.1/credentials", body, token=token_c, encode=True)
    assert reply.json()["status_code"] == 1000, reply.text
    assert simulator.version == "2.2.1"
    assert "roles" in data(reply)
    assert stub.got("GET")[-1].path == "/emsp/2.2.1"
    assert stub.got("GET")[-1].headers["Authorization"] == f"Token {b64(TOKEN_B)}"


# --- locations, tariffs, sessions: pagination and shapes ----------------------------------


def test_locations_paginate_in_2_1_1_shape(registered):
    _, client = registered
    items, pages = walk(client, "/ocpi/2.1.1/locations?limit=10")
    assert [loc["id"] for loc in items] == ["SIM-STO", "SIM-GBG", "SIM-MMO", "SIM-UPP",
                                            "SIM-JKG"]
    assert len(pages) == 3
    assert all(p.headers["X-Total-Count"] == "5" and p.headers["X-Limit"] == "2"
               for p in pages)
    assert pages[0].headers["Link"].startswith(f'<{client.base_url}/ocpi/2.1.1/locations?')
    assert "Link" not in pages[-1].headers
    assert all(conforms(loc, LOCATION) for loc in items)
    sto = items[0]
    assert sto["type"] == "PARKING_GARAGE"
    assert sto["facilities"] == ["MALL"]  # METRO_STATION has no 2.1.1 name
    connector = sto["evses"][0]["connectors"][0]
    assert (connector["voltage"], connector["amperage"], connector["tariff_id"]) == (
        230, 32, "AC-ADHOC")
    assert sto["evses"][2]["connectors"][0]["tariff_id"] == "DC-ADHOC"
    assert sto["evses"][0]["evse_id"] == "SE*SIM*E00001"

    items, _ = walk(client, "/ocpi/2.1.1/locations?date_from=2025-03-10T08:00:00Z")
    assert [loc["id"] for loc in items] == ["SIM-MMO", "SIM-UPP", "SIM-JKG"]
    evse = data(client.get("/ocpi/2.1.1/locations/SIM-STO/SIM-STO-3"))
    assert conforms(evse, EVSE)
    connector = data(client.get("/ocpi/2.1.1/locations/SIM-STO/SIM-STO-3/1"))
    assert conforms(connector, CONNECTOR) and connector["power_type"] == "DC"
    missing = client.get("/ocpi/2.1.1/locations/NOPE")
    assert missing.status_code == 404 and missing.json()["status_code"] == 2003


def test_tariffs_have_no_vat_field(registered):
    _, client = registered
    items, pages = walk(client, "/ocpi/2.1.1/tariffs?limit=1")
    assert [t["id"] for t in items] == ["AC-ADHOC", "DC-ADHOC"] and len(pages) == 2
    assert all(conforms(t, TARIFF) for t in items)
    components = {c["type"]: c["price"] for c in items[0]["elements"][0]["price_components"]}
    assert components == {"FLAT": Decimal("4.00"), "ENERGY": Decimal("3.60")}  # excl. VAT


def test_sessions_get_requires_date_from(registered):
    _, client = registered
    reply = client.get("/ocpi/2.1.1/sessions")
    assert reply.json()["status_code"] == 2001 and "date_from" in reply.json()["status_message"]
    assert client.get("/ocpi/2.1.1/sessions?date_from=2020-01-01T00:00:00Z").json()[
        "status_code"] == 1000


# --- commands, sessions, CDRs ----------------------------------------------------------


def test_start_charge_stop_and_cdr_in_2_1_1(registered, stub):
    simulator, client = registered
    answer, result_path = start(client, stub)
    assert answer["status_code"] == 1000
    assert answer["data"] == {"result": "ACCEPTED"}  # no timeout in 2.1.1
    result = wait_until(lambda: stub.got("POST", result_path))[0]
    assert result.body == {"result": "ACCEPTED"} and conforms(result.body, COMMAND_RESPONSE)
    assert result.headers["Authorization"] == f"Token {TOKEN_B}"
    assert not any(h.lower().startswith("ocpi-") for h, _ in result.headers.items())

    put = session_puts(stub, "ACTIVE")
    session = put.body
    assert put.path == f"/emsp/2.1.1/sessions/SE/SIM/{session['id']}"
    assert conforms(session, SESSION)
    assert session["auth_id"] == DRIVER_TOKEN["auth_id"]
    assert session["auth_method"] == "AUTH_REQUEST"
    assert session["kwh"] == 0 and session["currency"] == "SEK"
    # The location as it was: only the EVSE and connector charged at.
    evses = session["location"]["evses"]
    assert session["location"]["id"] == "SIM-STO"
    assert [e["uid"] for e in evses] == ["SIM-STO-1"] and len(evses[0]["connectors"]) == 1
    assert evses[0]["status"] == "CHARGING"
    status_patch = wait_until(lambda: stub.got("PATCH", "/emsp/2.1.1/locations/"))[0]
    assert status_patch.path == "/emsp/2.1.1/locations/SE/SIM/SIM-STO/SIM-STO-1"
    assert status_patch.body["status"] == "CHARGING"

    path = f"/emsp/2.1.1/sessions/SE/SIM/{session['id']}"
    patches = wait_until(lambda: (p := stub.got("PATCH", path)) and len(p) >= 3 and p)
    for number, patch in enumerate(patches[:3], start=1):
        body = patch.body
        assert problems(body, patch_table(SESSION)) == []
        # 2.1.1 PATCH replaces the fields it names: the whole list of periods, every time.
        assert len(body["charging_periods"]) == number
        assert body["kwh"] == Decimal("1.1") * number
        assert body["total_cost"] == money(Decimal("4.00") + body["kwh"] * Decimal("3.60"))
        dims = {d["type"]: d["volume"] for d in body["charging_periods"][-1]["dimensions"]}
        assert dims == {"ENERGY": Decimal("1.1"), "TIME": Decimal("0.05")}

    answer, stop_path = stop(client, stub, session["id"])
    assert answer["data"] == {"result": "ACCEPTED"}
    assert wait_until(lambda: stub.got("POST", stop_path))[0].body == {"result": "ACCEPTED"}
    completed = session_puts(stub, "COMPLETED").body
    assert conforms(completed, SESSION) and completed["end_datetime"]
    cdr_post = wait_until(lambda: stub.got("POST", "/emsp/2.1.1/cdrs"))[0]
    cdr = cdr_post.body
    assert conforms(cdr, CDR)
    assert cdr["auth_id"] == DRIVER_TOKEN["auth_id"] and cdr["auth_method"] == "AUTH_REQUEST"
    assert cdr["start_date_time"] == session["start_datetime"]
    assert cdr["stop_date_time"] == completed["end_datetime"]
    assert cdr["location"]["evses"][0]["evse_id"] == "SE*SIM*E00001"
    assert [t["id"] for t in cdr["tariffs"]] == ["AC-ADHOC"]
    energy = sum(d["volume"] for p in cdr["charging_periods"] for d in p["dimensions"]
                 if d["type"] == "ENERGY")
    assert cdr["total_energy"] == energy == completed["kwh"]
    duration = parse_datetime(cdr["stop_date_time"]) - parse_datetime(cdr["start_date_time"])
    assert abs(Decimal(duration.total_seconds()) / 3600 - cdr["total_time"]) <= Decimal(
        "0.00005")
    assert -cdr["total_time"].as_tuple().exponent <= 4  # "numbers use 4 decimals"
    # total_cost is excl. VAT, as 2.1.1 defines it: 4.00 start + 3.60/kWh.
    assert cdr["total_cost"] == money(Decimal("4.00") + cdr["total_energy"] * Decimal("3.60"))
    assert completed["total_cost"] == cdr["total_cost"]
    assert wait_until(lambda: simulator.cdr_location(cdr["id"])) == (
        f"{stub.base_url}/emsp/2.1.1/cdrs/{stub.cdr_count}")
    # And the CPO serves the same CDR and session back in 2.1.1 shape.
    pulled = data(client.get("/ocpi/2.1.1/cdrs"))
    assert pulled == [cdr]
    sessions = data(client.get("/ocpi/2.1.1/sessions?date_from=2000-01-01T00:00:00Z"))
    assert sessions == [completed]


def test_report_vat_included(make_sim, stub, sim_server):
    make_sim(report_vat_included=True, session_max_kwh=Decimal("2.5"))
    client = Client(sim_server[1].url, TOKEN_A)
    reply = client.call("POST", "/ocpi/2.1.1/credentials", emsp_credentials(stub))
    client.token = data(reply)["token"]
    start(client, stub, evse="SIM-STO-3")  # DC 150 kW: full at 2.5 kWh in one tick
    cdr = wait_until(lambda: stub.got("POST", "/emsp/2.1.1/cdrs"))[0].body
    # (4.00 + 2.5 x 5.20) x 1.25
    assert cdr["total_energy"] == Decimal("2.5")
    assert cdr["total_cost"] == Decimal("21.25")


@pytest.mark.parametrize(("behaviour", "evse", "result"), [
    ("failed", "SIM-STO-1", "REJECTED"),
    ("evse_occupied", "SIM-STO-1", "REJECTED"),
    ("timeout_result", "SIM-STO-1", "TIMEOUT"),
    ("accept", "SIM-GBG-2", "REJECTED"),  # out of order: EVSE_INOPERATIVE has no 2.1.1 name
])
def test_charge_point_outcomes_in_2_1_1_terms(registered, stub, behaviour, evse, result):
    simulator, client = registered
    simulator.set_behaviour(start=behaviour)
    location = evse.rsplit("-", 1)[0]
    answer, path = start(client, stub, location=location, evse=evse)
    assert answer["data"] == {"result": "ACCEPTED"}
    assert wait_until(lambda: stub.got("POST", path))[0].body == {"result": result}


def test_rejections_and_unknowns(registered, stub):
    simulator, client = registered
    simulator.set_behaviour(start="reject")
    answer, _ = start(client, stub)
    # 2.1.1 has no message in the CommandResponse: the reason is in status_message.
    assert answer["data"] == {"result": "REJECTED"} and answer["status_message"]
    simulator.set_behaviour(start="accept")
    answer, _ = start(client, stub, location="NOWHERE")
    assert answer["status_code"] == 2003 and answer["data"] == {"result": "REJECTED"}
    answer, _ = stop(client, stub, "no-such-session")
    assert answer["data"] == {"result": "UNKNOWN_SESSION"}
    reply = client.call("POST", "/ocpi/2.1.1/commands/RESERVE_NOW", {
        "response_url": f"{stub.base_url}/emsp/results/RESERVE_NOW/1"})
    assert data(reply) == {"result": "NOT_SUPPORTED"}
    # Without an EVSE the Charge Point chooses one (and 2.1.1 never names a connector).
    _, path = start(client, stub, evse=None)
    assert wait_until(lambda: stub.got("POST", path))[0].body == {"result": "ACCEPTED"}
    session = session_puts(stub, "ACTIVE").body
    assert session["location"]["evses"][0]["uid"] == "SIM-STO-1"


def test_a_2_2_1_start_body_is_2001(registered, stub):
    _, client = registered
    token_221 = {"country_code": "SE", "party_id": "SCN", "uid": "ADHOC-0001",
                 "type": "AD_HOC_USER", "contract_id": "SE-SCN-C00000001-X",
                 "issuer": "ScanCharge", "valid": True, "whitelist": "NEVER",
                 "last_updated": "2026-01-01T00:00:00Z"}
    reply = client.call("POST", "/ocpi/2.1.1/commands/START_SESSION", {
        "response_url": f"{stub.base_url}/emsp/results/START_SESSION/x", "token": token_221,
        "location_id": "SIM-STO", "authorization_reference": "AUTH-1"})
    body = reply.json()
    assert body["status_code"] == 2001
    assert "token.type" in body["status_message"] and "token.auth_id" in body["status_message"]
