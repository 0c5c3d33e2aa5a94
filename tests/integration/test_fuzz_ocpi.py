"""Every OCPI receiver, 2.2.1 and 2.1.1, under generated input: bodies (the official
examples mutated with wrong types, huge numbers, NUL, unicode, deep nesting and missing
fields; arbitrary JSON; broken bytes), headers (Authorization variants, OCPI-from-*,
X-Request-ID garbage) and path segments. Whatever comes, the answer is an OCPI envelope
and never a 5xx, and afterwards everything stored re-validates with its wire model and
has clean key columns.

Examples share one app and database per test (created once; what valid requests store
accumulates, as it would in production). Sized for about a minute on SQLite in the
thorough profile, a third of that in the default `ci` one (tests/fuzz_profiles.py); also
runs on PostgreSQL (TEST_DATABASE_URL).
"""

from __future__ import annotations

import base64
import copy
import json
import os
import re
import time
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from extensions import db
from ocpi import credentials
from ocpi.models import (
    IssuedToken,
    OcpiCdr,
    OcpiCommand,
    OcpiEvse,
    OcpiLocation,
    OcpiSession,
    OcpiTariff,
    Party,
    PartyGrant,
    token_hash,
)
from ocpi.modules.cdrs import Cdr
from ocpi.modules.common import OcpiModel, parse
from ocpi.modules.locations import Location
from ocpi.modules.sessions import Session
from ocpi.modules.tariffs import Tariff
from ocpi.transport import OcpiError, StatusCode, json_dumps
from tests import fuzz_profiles

EXAMPLES = Path(os.environ.get("OCPI_SPEC_DIR", "/work/shared/ocpi-spec/2.2.1")) / "examples"
SPEC_211 = EXAMPLES.parent.parent / "2.1.1"
# Examples per test: four tests, about 5000 requests in all in the thorough profile
# (tests/fuzz_profiles.py; FUZZ_EXAMPLES sets the count outright).
EXAMPLES_PER_TEST = int(os.environ.get("FUZZ_EXAMPLES", fuzz_profiles.examples(700)))
FUZZ = settings(max_examples=EXAMPLES_PER_TEST, deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow, HealthCheck.data_too_large])
REQUESTS: list[float] = []  # durations, for the summary at the end


def b64(token: str) -> str:
    return base64.b64encode(token.encode()).decode()


def example(name: str) -> Any:
    return json.loads((EXAMPLES / name).read_text(encoding="utf-8"), parse_float=Decimal)


def spec_211(name: str, *keys: str) -> dict[str, Any]:
    text = (SPEC_211 / name).read_text(encoding="utf-8")
    for block in re.findall(r"```json\n(.*?)```", text, re.S):
        try:
            data = json.loads(block, parse_float=Decimal)
        except ValueError:
            continue
        if isinstance(data, dict) and all(k in data for k in keys):
            return data
    raise LookupError(name)


def owned(data: Any, country_code: str, party_id: str) -> Any:
    data = copy.deepcopy(data)
    data.update(country_code=country_code, party_id=party_id)
    return data


# --- The world the requests meet ---------------------------------------------------------

TOKENS = {"221": "tok-C", "211": "tok-211", "pending": "tok-A"}


def _add_party(token: str, country_code: str | None, party_id: str | None, status: str,
               version: str | None) -> Party:
    party = Party(name=f"CPO {party_id}", country_code=country_code, party_id=party_id,
                  status=status, version=version, incoming_token_hash=token_hash(token),
                  outgoing_token="tok-B", endpoints=[],
                  grants=[PartyGrant(role="CPO", country_code=country_code,
                                     party_id=party_id)] if country_code else [])
    db.session.add(party)
    db.session.commit()
    return party


@pytest.fixture
def world(app: Any, client: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Three connections (2.2.1 SE/SIM, 2.1.1 NL/OLD, a pending one with token A), a
    stored Location, Session and Tariff, an issued Token and open commands."""
    # Registering fetches the peer's versions: never leave the test for a generated URL.
    def unreachable(*args: Any, **kwargs: Any) -> Any:
        raise credentials.PeerUnreachable("fuzz: no peers")

    monkeypatch.setattr(credentials, "_negotiate", unreachable)
    sim = _add_party(TOKENS["221"], "SE", "SIM", "CONNECTED", "2.2.1")
    old = _add_party(TOKENS["211"], "NL", "OLD", "CONNECTED", "2.1.1")
    _add_party(TOKENS["pending"], None, None, "PENDING", None)
    for path, body in [
        ("/ocpi/2.2.1/locations/SE/SIM/LOC1", owned(example("location_example.json"),
                                                    "SE", "SIM")),
        ("/ocpi/2.2.1/sessions/SE/SIM/101",
         owned(example("session_example_2_short_finished.json"), "SE", "SIM")),
        ("/ocpi/2.2.1/tariffs/SE/SIM/12", owned(example("tariff_1_simple_2hour.json"),
                                                "SE", "SIM")),
        ("/ocpi/2.1.1/locations/NL/OLD/LOC1", spec_211("mod_locations.md", "id", "evses")),
        ("/ocpi/2.1.1/sessions/NL/OLD/101",
         {**spec_211("mod_sessions.md", "id", "auth_id", "kwh"), "id": "101"}),
    ]:
        token = TOKENS["211"] if "/2.1.1/" in path else TOKENS["221"]
        response = client.put(path, data=json_dumps(body), content_type="application/json",
                              headers={"Authorization": f"Token {b64(token)}"})
        assert response.status_code in {200, 201}, response.get_json()
    token = {"country_code": "SE", "party_id": "SCN", "uid": "TOKEN00", "type": "AD_HOC_USER",
             "contract_id": "SESCN00", "issuer": "ScanCharge", "valid": True,
             "whitelist": "ALLOWED", "last_updated": "2024-01-01T00:00:00Z"}
    db.session.add(IssuedToken(uid="TOKEN00", type="AD_HOC_USER", contract_id="SESCN00",
                               raw=json_dumps(token), party_pk=sim.pk, country_code="SE",
                               party_id="SIM"))
    for party, uid in ((sim, "cmd-1"), (old, "cmd-9")):
        db.session.add(OcpiCommand(uid=uid, party_pk=party.pk, command="START_SESSION",
                                   request="{}", response_result="ACCEPTED"))
    db.session.commit()
    yield client
    check_stored()


# --- Generated input ---------------------------------------------------------------------

ODD_TEXT = st.sampled_from([
    "yes", "true", "230", "12.5", "", " ", "\x00", "a\x00b", "straße", "STRASSE", "ÅÄÖ",
    "1e16", "NaN", "-0", "2019-06-24T12:39:09Z", "9999-12-31T23:59:59-23:59", "€", "\u202e",
    "X" * 37, "https://cpo.example/" + "v" * 280, "file:///etc/passwd", "null",
])
NUMBERS = st.one_of(
    st.integers(min_value=-(10**30), max_value=10**30),
    st.builds(lambda m, e: Decimal(m).scaleb(e),
              st.integers(min_value=-(10**20), max_value=10**20),
              st.integers(min_value=-60, max_value=30)),
    st.sampled_from([Decimal("1E16"), Decimal("-4.00"), Decimal("9999999999999.9999"),
                     Decimal("0.30000000000000004"), 2**63, -(2**31)]),
)
SCALARS = st.one_of(st.text(max_size=40), ODD_TEXT, NUMBERS, st.booleans(), st.none())
JSON_VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.one_of(st.text(max_size=8), ODD_TEXT), inner, max_size=3),
    max_leaves=8,
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _paths(item, (*prefix, index))
    return found


def deep_text(depth: int, body: Any = None) -> bytes:
    deep = '{"x": ' * depth + "1" + "}" * depth
    if isinstance(body, dict) and body:
        return (json_dumps(body)[:-1] + f', "x_deep": {deep}}}').encode()
    return deep.encode()


@st.composite
def mutated(draw: Any, base: Any) -> bytes:
    """The example with a few of its values replaced, removed, or joined by odd ones."""
    data = copy.deepcopy(base)
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        paths = _paths(data)
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = data
        for key in path[:-1]:
            parent = parent[key]
        action = draw(st.sampled_from(["replace", "replace", "delete", "add"]))
        if action == "delete" and isinstance(parent, dict):
            del parent[path[-1]]
        elif action == "add" and isinstance(parent, dict):
            parent[draw(st.one_of(ODD_TEXT, st.text(max_size=10)))] = draw(JSON_VALUES)
        else:
            parent[path[-1]] = draw(JSON_VALUES)
    return json_dumps(data).encode()


def bodies(base: Any) -> Any:
    valid = json_dumps(base).encode()
    return st.one_of(
        mutated(base),
        mutated(base),
        mutated(base),
        st.just(valid),
        JSON_VALUES.map(lambda v: json_dumps(v).encode()),
        st.binary(max_size=64),
        st.integers(min_value=1, max_value=2000).map(lambda d: deep_text(d, base)),
        st.integers(min_value=1, max_value=len(valid)).map(lambda n: valid[:n]),
        st.just(valid.replace(b'"', b'"\x00', 1)),
    )


SEGMENT = st.one_of(
    ODD_TEXT,
    st.text(max_size=40),
    st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=50),
)
HEADER_TEXT = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0xFF,
                                             exclude_characters="\x7f"), max_size=80)


def auth_headers(version: str) -> Any:
    token = TOKENS[version]
    return st.one_of(
        *[st.just({"Authorization": f"Token {b64(token)}"})] * 6,
        st.just({"Authorization": f"Token {token}"}),
        st.just({"Authorization": f"Token {b64(TOKENS['pending'])}"}),
        st.just({}),
        HEADER_TEXT.map(lambda v: {"Authorization": v}),
        HEADER_TEXT.map(lambda v: {"Authorization": f"Token {v}"}),
    )


OTHER_HEADERS = st.fixed_dictionaries({}, optional={
    "X-Request-ID": HEADER_TEXT,
    "X-Correlation-ID": HEADER_TEXT,
    "OCPI-from-country-code": st.one_of(HEADER_TEXT, st.sampled_from(["SE", "NL", "se"])),
    "OCPI-from-party-id": st.one_of(HEADER_TEXT, st.sampled_from(["SIM", "OLD", "TNM"])),
    "OCPI-to-country-code": HEADER_TEXT,
    "OCPI-to-party-id": HEADER_TEXT,
    "Content-Type": st.sampled_from(["application/json", "text/plain", "", "application/x"]),
})


def receivers_221() -> list[tuple[str, list[str], Any]]:
    loc = owned(example("location_example.json"), "SE", "SIM")
    session = owned(example("session_example_2_short_finished.json"), "SE", "SIM")
    return [
        ("PUT", ["locations", "SE", "SIM", "LOC1"], loc),
        ("PUT", ["locations", "SE", "SIM", "LOC1", "3256"], loc["evses"][0]),
        ("PUT", ["locations", "SE", "SIM", "LOC1", "3256", "1"],
         loc["evses"][0]["connectors"][0]),
        ("PATCH", ["locations", "SE", "SIM", "LOC1"],
         example("location_patch_example_location.json")),
        ("PATCH", ["locations", "SE", "SIM", "LOC1", "3256"],
         example("location_patch_example_status.json")),
        ("PATCH", ["locations", "SE", "SIM", "LOC1", "3256", "2"],
         example("location_patch_example_tariff.json")),
        ("GET", ["locations", "SE", "SIM", "LOC1", "3256", "1"], None),
        ("PUT", ["tariffs", "SE", "SIM", "12"],
         owned(example("tariff_1_simple_2hour.json"), "SE", "SIM")),
        ("PUT", ["tariffs", "SE", "SIM", "20"],
         owned(example("tariff_12_025kwh_min_price.json"), "SE", "SIM")),
        ("DELETE", ["tariffs", "SE", "SIM", "20"], None),
        ("PUT", ["sessions", "SE", "SIM", "101"], session),
        ("PATCH", ["sessions", "SE", "SIM", "101"],
         example("session_patch_example_charging_period.json")),
        ("PATCH", ["sessions", "SE", "SIM", "101"],
         example("session_patch_example_total_cost.json")),
        ("GET", ["sessions", "SE", "SIM", "101"], None),
        ("POST", ["cdrs"], owned(example("cdr_example.json"), "SE", "SIM")),
        ("GET", ["cdrs", "1"], None),
        ("POST", ["commands", "START_SESSION", "cmd-1"], {"result": "ACCEPTED"}),
        ("GET", ["tokens"], None),
        ("POST", ["tokens", "TOKEN00", "authorize"],
         {"location_id": "LOC1", "evse_uids": ["3256"]}),
        ("PUT", ["credentials"], example("credentials_example.json")),
        ("POST", ["credentials"], example("credentials_example.json")),
        ("GET", ["credentials"], None),
    ]


def receivers_211() -> list[tuple[str, list[str], Any]]:
    loc = spec_211("mod_locations.md", "id", "evses")
    return [
        ("PUT", ["locations", "NL", "OLD", "LOC1"], loc),
        ("PATCH", ["locations", "NL", "OLD", "LOC1"],
         {"name": "Gent", "last_updated": "2019-06-24T12:39:09Z"}),
        ("PATCH", ["locations", "NL", "OLD", "LOC1", loc["evses"][0]["uid"]],
         {"status": "CHARGING", "last_updated": "2019-06-24T12:39:09Z"}),
        ("PUT", ["tariffs", "NL", "OLD", "12"],
         spec_211("mod_tariffs.md", "id", "elements", "last_updated")),
        ("PUT", ["sessions", "NL", "OLD", "101"],
         {**spec_211("mod_sessions.md", "id", "auth_id", "kwh"), "id": "101"}),
        ("PATCH", ["sessions", "NL", "OLD", "101"],
         {"kwh": 5, "last_updated": "2019-06-24T12:39:09Z"}),
        ("POST", ["cdrs"], spec_211("mod_cdrs.md", "id", "stop_date_time")),
        ("POST", ["commands", "START_SESSION", "cmd-9"], {"result": "ACCEPTED"}),
        ("GET", ["tokens"], None),
        ("POST", ["tokens", "TOKEN00", "authorize"], {"location_id": "LOC1"}),
        ("PUT", ["credentials"], {"token": "abc", "url": "https://cpo.example/versions",
                                  "party_id": "OLD", "country_code": "NL",
                                  "business_details": {"name": "Old"}}),
        ("POST", ["credentials"], {"token": "abc", "url": "https://cpo.example/versions",
                                   "party_id": "NEW", "country_code": "NL",
                                   "business_details": {"name": "New"}}),
    ]


QUERY = st.one_of(
    st.just(""),
    st.fixed_dictionaries({}, optional={
        "offset": st.one_of(SEGMENT, st.integers(min_value=-5, max_value=10**25).map(str)),
        "limit": st.one_of(SEGMENT, st.integers(min_value=-5, max_value=10**25).map(str)),
        "date_from": st.one_of(SEGMENT, st.just("2024-01-01T00:00:00Z")),
        "date_to": SEGMENT,
        "type": st.one_of(SEGMENT, st.just("AD_HOC_USER")),
    }).map(lambda q: "&".join(f"{k}={quote(v, safe='')}" for k, v in q.items())),
)


@st.composite
def requests_for(draw: Any, version: str) -> tuple[str, str, bytes | None, dict[str, str]]:
    table = receivers_221() if version == "221" else receivers_211()
    method, segments, base = draw(st.sampled_from(table))
    segments = list(segments)
    if draw(st.integers(min_value=0, max_value=3)) == 0:  # one segment of the path odd
        segments[draw(st.integers(min_value=0, max_value=len(segments) - 1))] = draw(SEGMENT)
    if draw(st.integers(min_value=0, max_value=7)) == 0:  # sometimes another method
        method = draw(st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"]))
    path = "/ocpi/" + ("2.2.1/" if version == "221" else "2.1.1/") + "/".join(
        quote(s, safe="") for s in segments)
    if segments[0] == "tokens":
        query = draw(QUERY)
        path += f"?{query}" if query else ""
    body = None
    if method in {"POST", "PUT", "PATCH"}:
        body = draw(bodies(base if base is not None else {}))
    headers = {**draw(auth_headers(version)), **draw(OTHER_HEADERS)}
    return method, path, body, headers


def send(client: Any, method: str, path: str, body: bytes | None,
         headers: dict[str, str]) -> None:
    started = time.perf_counter()
    headers = dict(headers)
    content_type = headers.pop("Content-Type", "application/json")
    response = client.open(path, method=method, data=body, headers=headers,
                           content_type=content_type or None)
    REQUESTS.append(time.perf_counter() - started)
    db.session.rollback()  # the next example starts from what was committed
    assert response.status_code < 500, (method, path, body, response.data[:500])
    if method == "HEAD":
        return
    assert response.mimetype == "application/json", response.data[:200]
    envelope = json.loads(response.data)
    assert isinstance(envelope, dict) and type(envelope["status_code"]) is int, envelope
    assert set(envelope) <= {"data", "status_code", "status_message", "timestamp"}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", envelope["timestamp"])
    if response.status_code >= 400:
        assert envelope["status_code"] >= 2000, envelope
    # Never a server error in the envelope either: bad input is the client's.
    assert not 3000 <= envelope["status_code"] < 4000 or envelope["status_code"] in {
        int(StatusCode.UNABLE_TO_USE_CLIENT_API)}, envelope


# --- What may be stored ------------------------------------------------------------------

KEYS: dict[Any, dict[str, int]] = {
    OcpiLocation: {"country_code": 2, "party_id": 3, "location_id": 36},
    OcpiEvse: {"evse_uid": 36},
    OcpiTariff: {"country_code": 2, "party_id": 3, "tariff_id": 36},
    OcpiSession: {"country_code": 2, "party_id": 3, "session_id": 36,
                  "authorization_reference": 36, "token_uid": 36},
    OcpiCdr: {"country_code": 2, "party_id": 3, "cdr_id": 39, "session_id": 36,
              "authorization_reference": 36, "token_uid": 36},
}
MODELS: dict[Any, type[OcpiModel]] = {OcpiLocation: Location,
                                           OcpiTariff: Tariff,
                                           OcpiSession: Session, OcpiCdr: Cdr}


def check_stored() -> None:
    db.session.rollback()
    for table, columns in KEYS.items():
        for row in db.session.scalars(select(table)):
            for column, limit in columns.items():
                value = getattr(row, column)
                assert value is None or (
                    0 < len(value) <= limit and all(" " <= ch <= "~" for ch in value)
                    and value == value.upper()), (table.__tablename__, column, value)
            if table in MODELS:
                try:
                    parse(MODELS[table], row.data)
                except OcpiError as exc:  # pragma: no cover - the failure message is the point
                    raise AssertionError(f"{table.__tablename__} {row.pk}: {exc.message}")\
                        from exc


# --- The properties ------------------------------------------------------------------------


@FUZZ
@given(request=requests_for("221"))
def test_fuzz_221_receivers(world: Any, request: tuple[Any, ...]) -> None:
    send(world, *request)


@FUZZ
@given(request=requests_for("211"))
def test_fuzz_211_receivers(world: Any, request: tuple[Any, ...]) -> None:
    send(world, *request)


@FUZZ
@given(data=st.data())
def test_fuzz_valid_then_mutated_sequences(world: Any, data: Any) -> None:
    """A few requests in a row on one version, so later ones meet what earlier ones
    stored (PATCH after PUT, CDR after its Session)."""
    version = data.draw(st.sampled_from(["221", "211"]))
    for _ in range(data.draw(st.integers(min_value=2, max_value=5))):
        send(world, *data.draw(requests_for(version)))


@FUZZ
@given(path=st.lists(SEGMENT, min_size=1, max_size=7), method=st.sampled_from(
    ["GET", "POST", "PUT", "PATCH", "DELETE"]), version=st.sampled_from(["2.2.1", "2.1.1",
                                                                          "9.9", ""]),
       headers=OTHER_HEADERS, auth=auth_headers("221"))
def test_fuzz_paths(world: Any, path: list[str], method: str, version: str,
                    headers: dict[str, str], auth: dict[str, str]) -> None:
    url = "/ocpi/" + "/".join(quote(s, safe="") for s in [version, *path] if s)
    send(world, method, url, b"{}" if method != "GET" else None, {**auth, **headers})


def test_zz_fuzz_summary() -> None:
    # Not a property: the count and time of the requests above, for the report (-s).
    if REQUESTS:
        print(f"\nfuzz: {len(REQUESTS)} requests in {sum(REQUESTS):.1f} s "
              f"({1000 * sum(REQUESTS) / len(REQUESTS):.1f} ms each)")
