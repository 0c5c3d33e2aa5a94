"""ScanCharge's OCPI 2.2.1 server (eMSP) through the Flask test client: authentication,
the envelope, and the receivers (Sessions, CDRs, Locations, Tariffs, CommandResult) and
the Tokens sender, checked against the spec and its official examples."""

from __future__ import annotations

import base64
import copy
import json
import os
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import func, select

from extensions import db
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
from ocpi.transport import json_dumps, next_link

EXAMPLES = Path(os.environ.get("OCPI_SPEC_DIR", "/work/shared/ocpi-spec/2.2.1")) / "examples"
BASE = "http://127.0.0.1:5000"  # TestConfig.PUBLIC_BASE_URL
V = "/ocpi/2.2.1"
TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")


def b64(token: str) -> str:
    return base64.b64encode(token.encode()).decode()


AUTH = {"Authorization": f"Token {b64('tok-C')}"}


def example(name: str, **changes: Any) -> Any:
    data = json.loads((EXAMPLES / name).read_text(encoding="utf-8"), parse_float=Decimal)
    if isinstance(data, dict):
        data.update(changes)
    return data


def cpo_role(country_code: str, party_id: str, name: str) -> dict[str, Any]:
    return {"role": "CPO", "country_code": country_code, "party_id": party_id,
            "business_details": {"name": name}}


def add_party(token: str, country_code: str | None, party_id: str | None,
              status: str = "CONNECTED") -> Party:
    roles = [cpo_role(country_code, party_id, f"CPO {party_id}")] if country_code else []
    party = Party(name=f"CPO {party_id}", country_code=country_code, party_id=party_id,
                  roles=roles, status=status, incoming_token_hash=token_hash(token),
                  outgoing_token="tok-B", endpoints=[],
                  grants=[PartyGrant(role="CPO", country_code=country_code, party_id=party_id)]
                  if country_code else [])
    db.session.add(party)
    db.session.commit()
    return party


@pytest.fixture
def party(app: Any) -> Party:
    return add_party("tok-C", "SE", "SIM")


@pytest.fixture
def other(app: Any) -> Party:
    """Another connected CPO, NL/TNM, presenting token tok-N."""
    return add_party("tok-N", "NL", "TNM")


OTHER_AUTH = {"Authorization": f"Token {b64('tok-N')}"}


class Api:
    """Requests with the party's token; bodies written with exact numbers; answers checked
    to be an OCPI envelope and read back with exact numbers."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def __call__(self, method: str, path: str, body: Any = None, *, raw: bytes | None = None,
                 headers: dict[str, str] | None = None, auth: bool = True) -> Any:
        sent = {**(AUTH if auth else {}), **(headers or {})}
        data = raw if raw is not None else (None if body is None else json_dumps(body))
        kwargs: dict[str, Any] = {"headers": sent}
        if data is not None:
            kwargs.update(data=data, content_type="application/json")
        response = self.client.open(path, method=method, **kwargs)
        response.body = envelope_of(response)
        return response


def envelope_of(response: Any) -> dict[str, Any]:
    assert response.mimetype == "application/json", response.data[:200]
    body = json.loads(response.data, parse_float=Decimal)
    assert isinstance(body, dict)
    assert type(body["status_code"]) is int
    assert TIMESTAMP.match(body["timestamp"]), body["timestamp"]
    assert set(body) <= {"data", "status_code", "status_message", "timestamp"}
    return body


@pytest.fixture
def api(client: Any, party: Party) -> Api:
    return Api(client)


def count(model: Any) -> int:
    db.session.rollback()  # what an uncommitted request left behind is not stored
    return db.session.scalar(select(func.count()).select_from(model))


def ok(response: Any, http: int = 200) -> dict[str, Any]:
    assert response.status_code == http, response.body
    assert response.body["status_code"] == 1000, response.body
    return response.body


def error(response: Any, http: int, status: int) -> str:
    assert response.status_code == http, response.body
    assert response.body["status_code"] == status, response.body
    assert "data" not in response.body
    return response.body.get("status_message", "")


# --- Versions ---------------------------------------------------------------------------

OUR_ENDPOINTS = [
    ("credentials", "SENDER"),
    ("locations", "RECEIVER"),
    ("tariffs", "RECEIVER"),
    ("sessions", "RECEIVER"),
    ("cdrs", "RECEIVER"),
    ("commands", "SENDER"),
    ("tokens", "SENDER"),
    ("hubclientinfo", "RECEIVER"),
]


@pytest.mark.parametrize("path", ["/ocpi/versions", "/ocpi/versions/"])
def test_versions(api: Api, path: str) -> None:
    body = ok(api("GET", path))
    assert body["data"] == [{"version": "2.2.1", "url": f"{BASE}/ocpi/2.2.1"},
                            {"version": "2.1.1", "url": f"{BASE}/ocpi/2.1.1"}]


@pytest.mark.parametrize("path", [V, f"{V}/"])
def test_version_details_lists_endpoints_and_roles(api: Api, path: str) -> None:
    response = api("GET", path)
    body = ok(response)
    assert body["data"]["version"] == "2.2.1"
    assert [(e["identifier"], e["role"], e["url"]) for e in body["data"]["endpoints"]] == [
        (identifier, role, f"{BASE}{V}/{identifier}") for identifier, role in OUR_ENDPOINTS
    ]
    # Configuration modules are not routed: no OCPI-from/to headers (transport_and_format).
    assert "OCPI-from-country-code" not in response.headers


def test_functional_modules_carry_routing_and_request_ids(api: Api) -> None:
    response = api("GET", f"{V}/tokens",
                   headers={"X-Request-ID": "req-1", "X-Correlation-ID": "corr-1"})
    ok(response)
    assert response.headers["X-Request-ID"] == "req-1"
    assert response.headers["X-Correlation-ID"] == "corr-1"
    assert response.headers["OCPI-from-country-code"] == "SE"
    assert response.headers["OCPI-from-party-id"] == "SCN"
    assert response.headers["OCPI-to-country-code"] == "SE"
    assert response.headers["OCPI-to-party-id"] == "SIM"


# --- Authentication ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": f"Token {b64('unknown')}"},
        {"Authorization": "Token unknown"},
        {"Authorization": f"Bearer {b64('tok-C')}"},
        {"Authorization": f"Basic {b64('tok-C')}"},
        {"Authorization": b64("tok-C")},
        {"Authorization": "Token "},
        {"Authorization": f"Token {b64('tok-C')[:-2]}"},  # truncated: neither form matches
    ],
    ids=["missing", "unknown", "unknown-plain", "bearer", "basic", "no-scheme", "empty",
         "truncated"],
)
@pytest.mark.parametrize("path", ["/ocpi/versions", f"{V}", f"{V}/sessions/SE/SIM/101",
                                  f"{V}/tokens"])
def test_401_with_envelope(api: Api, headers: dict[str, str], path: str) -> None:
    message = error(api("GET", path, headers=headers, auth=False), 401, 2000)
    assert "credentials token" in message


def test_disconnected_party_gets_401(api: Api) -> None:
    add_party("tok-D", "DE", "OLD", status="DISCONNECTED")
    error(api("GET", "/ocpi/versions", auth=False,
              headers={"Authorization": f"Token {b64('tok-D')}"}), 401, 2000)


def test_pending_party_token_a_opens_only_configuration_modules(api: Api) -> None:
    add_party("tok-A", None, None, status="PENDING")
    token_a = {"Authorization": f"Token {b64('tok-A')}"}
    ok(api("GET", "/ocpi/versions", headers=token_a, auth=False))
    ok(api("GET", V, headers=token_a, auth=False))
    for method, path in [("GET", f"{V}/sessions/SE/SIM/101"), ("GET", f"{V}/tokens"),
                         ("PUT", f"{V}/sessions/SE/SIM/101"), ("POST", f"{V}/cdrs")]:
        message = error(api(method, path, {}, headers=token_a, auth=False), 401, 2000)
        assert "register first" in message


def test_plain_token_is_accepted_and_remembered(api: Api, party: Party) -> None:
    plain = {"Authorization": "Token tok-C"}
    ok(api("GET", f"{V}/tokens", headers=plain, auth=False))
    ok(api("PUT", f"{V}/sessions/SE/SIM/101", session(), headers=plain, auth=False), 201)
    assert db.session.get(Party, party.pk).auth_encoding == "plain"
    ok(api("PUT", f"{V}/sessions/SE/SIM/101", session()), 200)
    assert db.session.get(Party, party.pk).auth_encoding == "base64"


def test_spec_example_token_with_trailing_newline_is_accepted(api: Api) -> None:
    add_party("example-token", "BE", "BEC")
    ok(api("GET", f"{V}/tokens", auth=False,
           headers={"Authorization": "Token ZXhhbXBsZS10b2tlbgo="}))


# --- Sessions ---------------------------------------------------------------------------


def session(name: str = "session_example_2_short_finished.json", **changes: Any) -> Any:
    return example(name, **{"country_code": "SE", "party_id": "SIM", **changes})


def get_session(api: Api, session_id: str = "101") -> dict[str, Any]:
    return ok(api("GET", f"{V}/sessions/SE/SIM/{session_id}"))["data"]


def test_put_session_then_get_returns_it_identical(api: Api) -> None:
    sent = session()
    response = api("PUT", f"{V}/sessions/SE/SIM/101", sent)
    body = ok(response, 201)
    assert "data" not in body
    got = api("GET", f"{V}/sessions/SE/SIM/101")
    assert ok(got)["data"] == sent  # compared as exact Decimals
    # Numbers stay JSON numbers with their digits, never strings or floats.
    assert '"kwh":41.12' in got.get_data(as_text=True)
    assert '"excl_vat":8.50' in got.get_data(as_text=True)
    assert isinstance(got.body["data"]["total_cost"]["incl_vat"], Decimal)

    ok(api("PUT", f"{V}/sessions/SE/SIM/101", sent), 200)
    assert count(OcpiSession) == 1
    row = db.session.scalar(select(OcpiSession))
    assert (row.country_code, row.party_id, row.session_id, row.status, row.token_uid) == (
        "SE", "SIM", "101", "COMPLETED", "123ABC")


def test_put_session_replaces_it_charging_periods_included(api: Api) -> None:
    ok(api("PUT", f"{V}/sessions/SE/SIM/101", session()), 201)
    simple = session("session_example_1_simple_start.json")
    simple["status"] = "ACTIVE"
    ok(api("PUT", f"{V}/sessions/SE/SIM/101", simple), 200)
    got = get_session(api)
    assert got == simple
    assert "charging_periods" not in got
    assert db.session.scalar(select(OcpiSession.status)) == "ACTIVE"


def test_session_urls_are_case_insensitive_and_tolerate_a_trailing_slash(api: Api) -> None:
    ok(api("PUT", f"{V}/sessions/se/sim/101/", session()), 201)
    assert get_session(api) == session()
    ok(api("GET", f"{V}/sessions/Se/Sim/101/"))


def test_patch_appends_charging_periods_and_replaces_total_cost(api: Api) -> None:
    original = session()
    ok(api("PUT", f"{V}/sessions/SE/SIM/101", original), 201)
    patch = example("session_patch_example_charging_period.json")
    ok(api("PATCH", f"{V}/sessions/SE/SIM/101", patch))
    got = get_session(api)
    assert got["charging_periods"] == original["charging_periods"] + patch["charging_periods"]
    assert len(got["charging_periods"]) == 4
    assert got["total_cost"] == {"excl_vat": Decimal("0.80"), "incl_vat": Decimal("0.88")}
    assert got["kwh"] == Decimal("15.00")
    assert got["last_updated"] == "2019-06-23T08:16:02Z"
    unchanged = {k: v for k, v in original.items()
                 if k not in {"charging_periods", "total_cost", "kwh", "last_updated"}}
    assert {k: got[k] for k in unchanged} == unchanged

    cost_patch = example("session_patch_example_total_cost.json")
    ok(api("PATCH", f"{V}/sessions/SE/SIM/101", cost_patch))
    got2 = get_session(api)
    assert got2["total_cost"] == {"excl_vat": Decimal("0.60"), "incl_vat": Decimal("0.66")}
    assert got2["charging_periods"] == got["charging_periods"]  # absent: unchanged
    assert got2["last_updated"] == "2019-06-23T08:11:00Z"

    ok(api("PATCH", f"{V}/sessions/SE/SIM/101",
           {"charging_periods": [], "last_updated": "2019-06-23T08:12:00Z"}))
    assert get_session(api)["charging_periods"] == got["charging_periods"]  # empty: unchanged


def test_patch_status_updates_the_index(api: Api) -> None:
    ok(api("PUT", f"{V}/sessions/SE/SIM/101", session("session_example_1_simple_start.json")),
       201)
    ok(api("PATCH", f"{V}/sessions/SE/SIM/101",
           {"status": "ACTIVE", "last_updated": "2020-03-09T10:18:00Z"}))
    assert get_session(api)["status"] == "ACTIVE"
    row = db.session.scalar(select(OcpiSession))
    assert row.status == "ACTIVE"
    assert row.last_updated.replace(tzinfo=UTC) == datetime(2020, 3, 9, 10, 18, tzinfo=UTC)


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ({"total_cost": {"excl_vat": 1}}, "PATCH must contain last_updated"),
        ({"kwh": "lots", "last_updated": "2019-06-23T08:16:02Z"},
         "Invalid Session: kwh: Input should be a valid decimal"),
        ({"status": "RUNNING", "last_updated": "2019-06-23T08:16:02Z"},
         "Invalid Session: status: "),
        ({"charging_periods": [{"dimensions": []}], "last_updated": "2019-06-23T08:16:02Z"},
         "Invalid Session: charging_periods.3.start_date_time: Field required"),
        ({"id": "102", "last_updated": "2019-06-23T08:16:02Z"},
         "id '102' in the body differs from '101' in the URL"),
        ({"party_id": "TNM", "last_updated": "2019-06-23T08:16:02Z"},
         "party_id 'TNM' in the body differs from 'SIM' in the URL"),
        ([{"last_updated": "2019-06-23T08:16:02Z"}], "Request body must be a JSON object"),
    ],
    ids=["no-last_updated", "kwh", "status", "period", "id", "party_id", "list"],
)
def test_bad_patch_is_2001_and_changes_nothing(api: Api, patch: Any, message: str) -> None:
    original = session()
    ok(api("PUT", f"{V}/sessions/SE/SIM/101", original), 201)
    assert error(api("PATCH", f"{V}/sessions/SE/SIM/101", patch), 200, 2001).startswith(message)
    assert get_session(api) == original
    assert db.session.scalar(select(OcpiSession.last_updated)).replace(tzinfo=UTC) == (
        datetime(2015, 6, 29, 23, 50, 17, tzinfo=UTC))


def test_patch_unknown_session_is_404(api: Api) -> None:
    message = error(api("PATCH", f"{V}/sessions/SE/SIM/999",
                        example("session_patch_example_total_cost.json")), 404, 2000)
    assert "Unknown Session" in message
    assert count(OcpiSession) == 0


def test_get_unknown_session_is_404(api: Api) -> None:
    error(api("GET", f"{V}/sessions/SE/SIM/999"), 404, 2000)


@pytest.mark.parametrize(
    ("url", "changes"),
    [
        (f"{V}/sessions/SE/SIM/102", {}),  # id differs from the URL
        (f"{V}/sessions/SE/SIM/101", {"id": "102"}),
        (f"{V}/sessions/SE/SIM/101", {"party_id": "XXX"}),
        (f"{V}/sessions/SE/SIM/101", {"country_code": "NL"}),
    ],
)
def test_put_with_body_differing_from_url_is_2001(api: Api, url: str,
                                                  changes: dict[str, Any]) -> None:
    message = error(api("PUT", url, session(**changes)), 200, 2001)
    assert "differs from" in message
    assert count(OcpiSession) == 0


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("PUT", f"{V}/sessions/NL/TNM/101"),
        ("PATCH", f"{V}/sessions/NL/TNM/101"),
        ("GET", f"{V}/sessions/NL/TNM/101"),
        ("PUT", f"{V}/sessions/SE/XXX/101"),
        ("PUT", f"{V}/tariffs/NL/TNM/12"),
        ("PUT", f"{V}/locations/NL/TNM/LOC1"),
    ],
)
def test_another_partys_url_is_404_and_stores_nothing(api: Api, other: Party, method: str,
                                                      url: str) -> None:
    cc, pid = url.split("/")[-3:-1]
    body = session(country_code=cc, party_id=pid)
    message = error(api(method, url, body), 404, 2000)
    assert "not a party of this connection" in message
    assert count(OcpiSession) == count(OcpiTariff) == count(OcpiLocation) == 0


def test_other_party_cannot_read_our_partys_session(api: Api, other: Party) -> None:
    ok(api("PUT", f"{V}/sessions/SE/SIM/101", session()), 201)
    error(api("GET", f"{V}/sessions/SE/SIM/101", auth=False, headers=OTHER_AUTH), 404, 2000)


@pytest.mark.parametrize(
    "raw",
    [b"{", b"not json", b'{"kwh": NaN}', b'{"kwh": Infinity}', b"", b"\xff\xfe"],
    ids=["truncated", "text", "nan", "infinity", "empty", "binary"],
)
def test_invalid_json_is_http_400_with_envelope(api: Api, raw: bytes) -> None:
    message = error(api("PUT", f"{V}/sessions/SE/SIM/101", raw=raw), 400, 2001)
    assert message.startswith("Request body is not valid JSON")
    assert count(OcpiSession) == 0


@pytest.mark.parametrize(
    ("remove", "named"),
    [
        (("kwh",), "kwh"),
        (("status",), "status"),
        (("last_updated",), "last_updated"),
        (("start_date_time",), "start_date_time"),
        (("cdr_token", "uid"), "cdr_token.uid"),
        (("currency",), "currency"),
        (("location_id",), "location_id"),
    ],
)
def test_missing_required_field_is_2001_naming_it(api: Api, remove: tuple[str, ...],
                                                  named: str) -> None:
    body = session()
    target = body
    for key in remove[:-1]:
        target = target[key]
    del target[remove[-1]]
    message = error(api("PUT", f"{V}/sessions/SE/SIM/101", body), 200, 2001)
    assert f"{named}: Field required" in message
    assert count(OcpiSession) == 0


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("kwh", "lots"),
        ("kwh", [1]),
        ("status", "RUNNING"),
        ("status", 1),
        ("start_date_time", 1435617549),  # a Unix time is no OCPI DateTime
        ("start_date_time", "29/06/2015"),
        ("cdr_token", "123abc"),
        ("charging_periods", {"start_date_time": "2015-06-29T22:39:09Z"}),
        ("currency", 978),
    ],
)
def test_wrong_typed_field_is_2001(api: Api, field: str, value: Any) -> None:
    message = error(api("PUT", f"{V}/sessions/SE/SIM/101", session(**{field: value})), 200,
                    2001)
    assert message.startswith(f"Invalid Session: {field}")
    assert count(OcpiSession) == 0


def test_explicit_nulls_for_optional_fields_are_accepted(api: Api) -> None:
    nulls = {"end_date_time": None, "authorization_reference": None, "meter_id": None,
             "charging_periods": None, "total_cost": None}
    ok(api("PUT", f"{V}/sessions/SE/SIM/101", session(**nulls)), 201)
    got = get_session(api)
    assert all(got.get(field) is None for field in nulls)
    assert got["kwh"] == Decimal("41.12")
    assert db.session.scalar(select(OcpiSession.authorization_reference)) is None


def test_unknown_extra_fields_are_accepted(api: Api) -> None:
    body = session(x_vendor_field={"anything": [1, 2]}, energy_mix=None)
    body["cdr_token"]["x_extra"] = "fine"
    ok(api("PUT", f"{V}/sessions/SE/SIM/101", body), 201)
    assert get_session(api)["kwh"] == Decimal("41.12")
    assert count(OcpiSession) == 1


def test_oversized_body_is_413(api: Api) -> None:
    raw = b'{"padding": "' + b"x" * 1_000_000 + b'"}'
    message = error(api("PUT", f"{V}/sessions/SE/SIM/101", raw=raw), 413, 2000)
    assert message == "Request body too large"
    error(api("POST", f"{V}/cdrs", raw=raw), 413, 2000)
    assert count(OcpiSession) == count(OcpiCdr) == 0


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("DELETE", f"{V}/sessions/SE/SIM/101", {"GET", "PUT", "PATCH"}),
        ("POST", f"{V}/sessions/SE/SIM/101", {"GET", "PUT", "PATCH"}),
        ("PUT", f"{V}/cdrs", {"POST"}),
        ("PATCH", f"{V}/cdrs/", {"POST"}),
        ("DELETE", f"{V}/cdrs/1", {"GET"}),
        ("PATCH", f"{V}/tariffs/SE/SIM/12", {"GET", "PUT", "DELETE"}),
        ("DELETE", f"{V}/locations/SE/SIM/LOC1", {"GET", "PUT", "PATCH"}),
        ("PUT", f"{V}/tokens", {"GET"}),
        ("GET", f"{V}/tokens/ABC/authorize", {"POST"}),
        ("GET", f"{V}/commands/START_SESSION/abc", {"POST"}),
        ("POST", "/ocpi/versions", {"GET"}),
    ],
)
def test_wrong_method_is_405_with_envelope(api: Api, method: str, path: str,
                                           allowed: set[str]) -> None:
    response = api(method, path, {})
    error(response, 405, 2000)
    assert set(response.headers["Allow"].split(", ")) - {"HEAD", "OPTIONS"} == allowed


# --- CDRs -------------------------------------------------------------------------------


def cdr(**changes: Any) -> Any:
    return example("cdr_example.json", **{"country_code": "SE", "party_id": "SIM", **changes})


@pytest.mark.parametrize("path", [f"{V}/cdrs", f"{V}/cdrs/"])
def test_post_cdr_then_get_it_at_the_location_header(api: Api, path: str) -> None:
    sent = cdr()
    response = api("POST", path, sent)
    ok(response, 201)
    row = db.session.scalar(select(OcpiCdr))
    assert response.headers["Location"] == f"{BASE}{V}/cdrs/{row.pk}"
    assert (row.cdr_id, row.currency, row.token_uid) == ("12345", "EUR", "012345678")
    assert (row.total_cost_excl_vat, row.total_cost_incl_vat) == (Decimal("4.00"),
                                                                 Decimal("4.40"))

    got = api("GET", response.headers["Location"].removeprefix(BASE))
    assert ok(got)["data"] == sent
    assert '"incl_vat":4.40' in got.get_data(as_text=True)

    again = api("POST", path, sent)
    assert ok(again)["status_code"] == 1000
    assert again.status_code == 200
    assert again.headers["Location"] == response.headers["Location"]
    assert count(OcpiCdr) == 1


def test_cdr_for_another_party_is_404(api: Api, other: Party) -> None:
    error(api("POST", f"{V}/cdrs", cdr(country_code="NL", party_id="TNM")), 404, 2000)
    assert count(OcpiCdr) == 0


def test_cdr_is_only_readable_by_its_sender(api: Api, other: Party) -> None:
    location = api("POST", f"{V}/cdrs", cdr()).headers["Location"].removeprefix(BASE)
    error(api("GET", location, auth=False, headers=OTHER_AUTH), 404, 2000)
    error(api("GET", f"{V}/cdrs/99999"), 404, 2000)


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"total_cost": None}, "total_cost"),
        ({"charging_periods": []}, "charging_periods"),
        ({"cdr_location": {"id": "LOC1"}}, "cdr_location.address"),
        ({"end_date_time": 1435617549}, "end_date_time"),
    ],
)
def test_invalid_cdr_is_2001_and_not_stored(api: Api, changes: dict[str, Any],
                                            named: str) -> None:
    message = error(api("POST", f"{V}/cdrs", cdr(**changes)), 200, 2001)
    assert f"Invalid Cdr: {named}" in message
    assert count(OcpiCdr) == 0


# --- Locations --------------------------------------------------------------------------


def location(**changes: Any) -> Any:
    return example("location_example.json",
                   **{"country_code": "SE", "party_id": "SIM", **changes})


LOC = f"{V}/locations/SE/SIM/LOC1"


def evse_index() -> dict[str, tuple[str | None, str]]:
    db.session.rollback()
    return {e.evse_uid: (e.evse_id, e.status) for e in db.session.scalars(select(OcpiEvse))}


def get_location(api: Api, suffix: str = "") -> dict[str, Any]:
    return ok(api("GET", LOC + suffix))["data"]


def test_put_location_then_get_at_every_level(api: Api) -> None:
    sent = location()
    ok(api("PUT", LOC, sent), 201)
    assert get_location(api) == sent
    assert get_location(api, "/3256") == sent["evses"][0]
    assert get_location(api, "/3256/2") == sent["evses"][0]["connectors"][1]
    assert get_location(api, "/3257/1/") == sent["evses"][1]["connectors"][0]
    assert evse_index() == {"3256": ("BEBECE041503001", "AVAILABLE"),
                            "3257": ("BEBECE041503002", "RESERVED")}
    ok(api("PUT", LOC, sent), 200)
    assert count(OcpiLocation) == 1


@pytest.mark.parametrize(
    "suffix", ["", "/3256", "/3256/1"], ids=["location", "evse", "connector"]
)
def test_get_unknown_location_objects_is_404_2003(api: Api, suffix: str) -> None:
    error(api("GET", f"{V}/locations/SE/SIM/NOPE{suffix}"), 404, 2003)
    ok(api("PUT", LOC, location()), 201)
    if suffix:
        error(api("GET", f"{LOC}/9999{suffix.removeprefix('/3256')}"), 404, 2003)
        error(api("GET", f"{LOC}/3256/9"), 404, 2003)


def test_patch_evse_status_updates_evse_location_and_index(api: Api) -> None:
    ok(api("PUT", LOC, location()), 201)
    patch = example("location_patch_example_status.json")
    ok(api("PATCH", f"{LOC}/3256", patch))
    evse = get_location(api, "/3256")
    assert evse["status"] == "CHARGING"
    assert evse["last_updated"] == patch["last_updated"]
    assert get_location(api)["last_updated"] == patch["last_updated"]
    assert evse_index()["3256"] == ("BEBECE041503001", "CHARGING")
    assert evse_index()["3257"] == ("BEBECE041503002", "RESERVED")

    ok(api("PATCH", f"{LOC}/3256", example("location_patch_example_remove_evse.json")))
    assert evse_index()["3256"] == ("BEBECE041503001", "REMOVED")


def test_patch_connector_sets_last_updated_on_evse_and_location(api: Api) -> None:
    sent = location()
    ok(api("PUT", LOC, sent), 201)
    patch = example("location_patch_example_tariff.json")
    ok(api("PATCH", f"{LOC}/3256/2", patch))
    got = get_location(api)
    connector = got["evses"][0]["connectors"][1]
    assert connector["tariff_ids"] == ["15"]
    assert connector["last_updated"] == patch["last_updated"]
    assert got["evses"][0]["last_updated"] == patch["last_updated"]
    assert got["last_updated"] == patch["last_updated"]
    assert got["evses"][0]["connectors"][0] == sent["evses"][0]["connectors"][0]
    assert got["evses"][1] == sent["evses"][1]


def test_patch_location_name(api: Api) -> None:
    sent = location()
    ok(api("PUT", LOC, sent), 201)
    ok(api("PATCH", LOC, example("location_patch_example_location.json")))
    got = get_location(api)
    assert got["name"] == "Interparking Gent Zuid"
    assert got == sent | {"name": "Interparking Gent Zuid",
                          "last_updated": "2019-06-24T12:39:09Z"}


@pytest.mark.parametrize(
    ("suffix", "patch", "status"),
    [
        ("/3256", {"status": "CHARGING"}, 2001),  # no last_updated
        ("/3256", {"status": "BROKEN", "last_updated": "2019-06-24T12:39:09Z"}, 2001),
        ("", {"publish": "maybe", "last_updated": "2019-06-24T12:39:09Z"}, 2001),
        ("", ["not", "an", "object"], 2001),
    ],
)
def test_bad_location_patch_changes_nothing(api: Api, suffix: str, patch: Any,
                                            status: int) -> None:
    sent = location()
    ok(api("PUT", LOC, sent), 201)
    error(api("PATCH", LOC + suffix, patch), 200, status)
    assert get_location(api) == sent
    assert evse_index()["3256"] == ("BEBECE041503001", "AVAILABLE")


def test_patch_unknown_location_evse_or_connector_is_404(api: Api) -> None:
    patch = example("location_patch_example_status.json")
    error(api("PATCH", f"{V}/locations/SE/SIM/NOPE/3256", patch), 404, 2003)
    ok(api("PUT", LOC, location()), 201)
    error(api("PATCH", f"{LOC}/9999", patch), 404, 2003)
    error(api("PATCH", f"{LOC}/3256/9", example("location_patch_example_tariff.json")), 404,
          2003)


def new_evse(uid: str = "3258", **changes: Any) -> dict[str, Any]:
    evse = copy.deepcopy(location()["evses"][1])
    evse.update({"uid": uid, "evse_id": "BE*BEC*E041503003", "status": "AVAILABLE",
                 "last_updated": "2019-06-24T12:39:09Z", **changes})
    return evse


def test_put_evse_adds_or_replaces_and_the_index_follows(api: Api) -> None:
    ok(api("PUT", LOC, location()), 201)
    added = new_evse()
    ok(api("PUT", f"{LOC}/3258", added), 201)
    assert get_location(api, "/3258") == added
    got = get_location(api)
    assert [e["uid"] for e in got["evses"]] == ["3256", "3257", "3258"]
    assert got["last_updated"] == "2019-06-24T12:39:09Z"
    assert evse_index()["3258"] == ("BEBECE041503003", "AVAILABLE")

    replaced = new_evse(status="OUTOFORDER", last_updated="2019-06-25T00:00:00Z")
    ok(api("PUT", f"{LOC}/3258", replaced), 200)
    assert get_location(api, "/3258") == replaced
    assert get_location(api)["last_updated"] == "2019-06-25T00:00:00Z"
    assert evse_index()["3258"] == ("BEBECE041503003", "OUTOFORDER")
    assert len(evse_index()) == 3


def test_put_connector_sets_last_updated_on_evse_and_location(api: Api) -> None:
    sent = location()
    ok(api("PUT", LOC, sent), 201)
    connector = dict(sent["evses"][0]["connectors"][0], max_amperage=32,
                     last_updated="2019-07-01T10:00:00Z")
    ok(api("PUT", f"{LOC}/3256/1", connector), 200)
    got = get_location(api)
    assert got["evses"][0]["connectors"][0] == connector
    assert got["evses"][0]["last_updated"] == "2019-07-01T10:00:00Z"
    assert got["last_updated"] == "2019-07-01T10:00:00Z"

    third = dict(connector, id="3", last_updated="2019-07-02T10:00:00Z")
    ok(api("PUT", f"{LOC}/3256/3", third), 201)
    assert [c["id"] for c in get_location(api, "/3256")["connectors"]] == ["1", "2", "3"]


@pytest.mark.parametrize(
    ("suffix", "body"),
    [
        ("/3259", new_evse("3258")),  # EVSE uid differs from the URL
        ("/3256/7", dict(location()["evses"][0]["connectors"][0], id="1")),
        ("/3256", example("location_put_example_add_evse.json")),  # the spec's own, invalid
        ("/3256", {"uid": "3256", "last_updated": "2019-06-24T12:39:09Z"}),
    ],
    ids=["evse-uid", "connector-id", "spec-example", "partial"],
)
def test_bad_evse_or_connector_put_is_2001_and_changes_nothing(api: Api, suffix: str,
                                                               body: Any) -> None:
    sent = location()
    ok(api("PUT", LOC, sent), 201)
    error(api("PUT", LOC + suffix, body), 200, 2001)
    assert get_location(api) == sent
    assert set(evse_index()) == {"3256", "3257"}


def test_put_evse_to_unknown_location_is_404(api: Api) -> None:
    error(api("PUT", f"{V}/locations/SE/SIM/NOPE/3258", new_evse()), 404, 2003)
    assert count(OcpiLocation) == 0


def test_put_location_with_other_id_is_2001(api: Api) -> None:
    error(api("PUT", f"{V}/locations/SE/SIM/LOC2", location()), 200, 2001)
    error(api("PUT", LOC, location(publish="yes please")), 200, 2001)
    assert count(OcpiLocation) == 0
    assert count(OcpiEvse) == 0


# --- Tariffs ----------------------------------------------------------------------------


TARIFF = f"{V}/tariffs/SE/SIM/20"


def tariff(**changes: Any) -> Any:
    return example("tariff_12_025kwh_min_price.json",
                   **{"country_code": "SE", "party_id": "SIM", **changes})


def test_tariff_put_get_delete(api: Api) -> None:
    sent = tariff()
    ok(api("PUT", TARIFF, sent), 201)
    got = api("GET", TARIFF)
    assert ok(got)["data"] == sent
    assert '"excl_vat":0.50' in got.get_data(as_text=True)
    changed = tariff(min_price={"excl_vat": Decimal("1.00"), "incl_vat": Decimal("1.10")},
                     last_updated="2019-01-01T00:00:00Z")
    ok(api("PUT", f"{TARIFF}/", changed), 200)
    assert ok(api("GET", TARIFF))["data"] == changed
    assert count(OcpiTariff) == 1

    assert "data" not in ok(api("DELETE", TARIFF))
    error(api("GET", TARIFF), 404, 2000)
    error(api("DELETE", TARIFF), 404, 2000)
    assert count(OcpiTariff) == 0


@pytest.mark.parametrize(
    ("url", "body", "named"),
    [
        (f"{V}/tariffs/SE/SIM/12", example("tariff_put_example.json", country_code="SE",
                                           party_id="SIM"), "last_updated: Field required"),
        (f"{V}/tariffs/SE/SIM/21", tariff(), "differs from"),
        (TARIFF, tariff(elements=[]), "elements"),
        (TARIFF, tariff(currency=None), "currency"),
    ],
    ids=["spec-put-example-without-last_updated", "id", "elements", "currency"],
)
def test_bad_tariff_is_2001_and_not_stored(api: Api, url: str, body: Any, named: str) -> None:
    assert named in error(api("PUT", url, body), 200, 2001)
    assert count(OcpiTariff) == 0


# --- Tokens (sender) --------------------------------------------------------------------


def issue_tokens(n: int) -> list[dict[str, Any]]:
    start = datetime(2024, 1, 1, tzinfo=UTC)
    owner = db.session.scalar(select(Party).where(Party.party_id == "SIM"))
    tokens = []
    for i in range(n):
        uid = f"TOKEN{i:02d}"
        data = {"country_code": "SE", "party_id": "SCN", "uid": uid, "type": "AD_HOC_USER",
                "contract_id": f"SESCN{uid}", "issuer": "ScanCharge", "valid": i != 1,
                "whitelist": "ALLOWED",
                "last_updated": (start + timedelta(hours=i)).strftime("%Y-%m-%dT%H:%M:%SZ")}
        tokens.append(data)
        db.session.add(IssuedToken(uid=uid, type="AD_HOC_USER", contract_id=data["contract_id"],
                                   valid=data["valid"], raw=json_dumps(data),
                                   last_updated=start + timedelta(hours=i),
                                   party_pk=owner.pk, country_code="SE", party_id="SIM"))
    db.session.commit()
    return tokens


def test_tokens_get_paginates_with_link_total_and_limit(api: Api) -> None:
    tokens = issue_tokens(5)
    pages, path = [], f"{V}/tokens?limit=2"
    while path:
        response = api("GET", path)
        pages.append(ok(response)["data"])
        assert response.headers["X-Total-Count"] == "5"
        assert response.headers["X-Limit"] == "2"
        url = next_link(response.headers.get("Link"))
        path = url.removeprefix("http://localhost") if url else None
    assert [len(p) for p in pages] == [2, 2, 1]
    assert [t for page in pages for t in page] == tokens


def test_tokens_get_keeps_filters_in_the_link(api: Api) -> None:
    tokens = issue_tokens(5)
    response = api("GET", f"{V}/tokens/?date_from=2024-01-01T01:00:00Z"
                          "&date_to=2024-01-01T04:00:00Z&limit=1")
    assert ok(response)["data"] == [tokens[1]]
    assert response.headers["X-Total-Count"] == "3"  # 01:00 inclusive .. 04:00 exclusive
    query = parse_qs(urlsplit(next_link(response.headers["Link"])).query)
    assert query == {"offset": ["1"], "limit": ["1"], "date_from": ["2024-01-01T01:00:00Z"],
                     "date_to": ["2024-01-01T04:00:00Z"]}


def test_tokens_get_caps_the_limit_and_ends_without_link(api: Api) -> None:
    tokens = issue_tokens(3)
    response = api("GET", f"{V}/tokens?limit=1000")
    assert ok(response)["data"] == tokens
    assert response.headers["X-Limit"] == "100"
    assert response.headers["X-Total-Count"] == "3"
    assert "Link" not in response.headers
    empty = api("GET", f"{V}/tokens?offset=10")
    assert ok(empty)["data"] == []
    assert "Link" not in empty.headers


@pytest.mark.parametrize("query", ["offset=x", "limit=ten", "date_from=yesterday"])
def test_tokens_get_bad_parameters_are_2001(api: Api, query: str) -> None:
    error(api("GET", f"{V}/tokens?{query}"), 200, 2001)


@pytest.mark.parametrize(
    "path",
    [f"{V}/tokens/UNKNOWN/authorize", f"{V}/tokens/UNKNOWN/authorize?type=AD_HOC_USER",
     f"{V}/tokens/TOKEN00/authorize",  # known, but the type defaults to RFID
     f"{V}/tokens/TOKEN00/authorize?type=RFID"],
)
def test_authorize_unknown_token_is_404_2004(api: Api, path: str) -> None:
    issue_tokens(1)
    message = error(api("POST", path), 404, 2004)
    assert message == "Unknown Token"


def test_authorize_known_token(api: Api) -> None:
    tokens = issue_tokens(2)
    body = ok(api("POST", f"{V}/tokens/token00/authorize?type=AD_HOC_USER"))
    assert body["data"] == {"allowed": "ALLOWED", "token": tokens[0]}
    refs = {"location_id": "LOC1", "evse_uids": ["3256"]}
    body = ok(api("POST", f"{V}/tokens/TOKEN01/authorize/?type=AD_HOC_USER", refs))
    # mod_tokens: `location` only "if the EV driver is allowed to charge at that location".
    assert body["data"] == {"allowed": "EXPIRED", "token": tokens[1]}


# --- CommandResult (commands sender) ----------------------------------------------------


def add_command(party: Party, uid: str = "cmd-1", command: str = "START_SESSION") -> None:
    db.session.add(OcpiCommand(uid=uid, party_pk=party.pk, command=command, request="{}",
                               response_result="ACCEPTED"))
    db.session.commit()


def command_row(uid: str = "cmd-1") -> OcpiCommand:
    db.session.rollback()
    return db.session.scalar(select(OcpiCommand).where(OcpiCommand.uid == uid))


def test_command_result_for_unknown_uid_is_404(api: Api) -> None:
    error(api("POST", f"{V}/commands/START_SESSION/nope", {"result": "ACCEPTED"}), 404, 2000)


@pytest.mark.parametrize(
    "path",
    [f"{V}/commands/STOP_SESSION/cmd-1",  # another command type
     f"{V}/commands/START_SESSION/cmd-2"],
)
def test_command_result_must_match_the_command(api: Api, party: Party, path: str) -> None:
    add_command(party)
    error(api("POST", path, {"result": "ACCEPTED"}), 404, 2000)
    assert command_row().result is None


def test_command_result_from_another_party_is_404(api: Api, party: Party,
                                                  other: Party) -> None:
    add_command(party)
    error(api("POST", f"{V}/commands/START_SESSION/cmd-1", {"result": "ACCEPTED"},
              auth=False, headers=OTHER_AUTH), 404, 2000)
    assert command_row().result is None


def test_command_result_is_stored_once(api: Api, party: Party) -> None:
    add_command(party)
    result = {"result": "REJECTED",
              "message": [{"language": "en", "text": "EVSE busy"},
                          {"language": "sv", "text": "Upptagen"}]}
    body = ok(api("POST", f"{V}/commands/START_SESSION/cmd-1", result))
    assert "data" not in body
    row = command_row()
    assert (row.result, row.result_message) == ("REJECTED", "EVSE busy; Upptagen")
    first_at = row.result_at
    assert first_at is not None

    ok(api("POST", f"{V}/commands/START_SESSION/cmd-1/", {"result": "ACCEPTED"}))
    row = command_row()
    assert (row.result, row.result_message, row.result_at) == (
        "REJECTED", "EVSE busy; Upptagen", first_at)


def test_command_result_wrapped_in_a_list_is_accepted(api: Api, party: Party) -> None:
    add_command(party, command="STOP_SESSION")
    ok(api("POST", f"{V}/commands/stop_session/cmd-1", [{"result": "ACCEPTED"}]))
    assert command_row().result == "ACCEPTED"


@pytest.mark.parametrize(
    "body", [{"result": "MAYBE"}, {}, [{"result": "ACCEPTED"}, {"result": "FAILED"}], []]
)
def test_bad_command_result_is_2001_and_not_stored(api: Api, party: Party, body: Any) -> None:
    add_command(party)
    error(api("POST", f"{V}/commands/START_SESSION/cmd-1", body), 200, 2001)
    assert command_row().result is None


# --- The envelope everywhere ------------------------------------------------------------


def _requests(party: Party) -> list[tuple[str, str, Any]]:
    return [
        ("GET", "/ocpi/versions", None),
        ("GET", V, None),
        ("PUT", f"{V}/sessions/SE/SIM/101", session()),
        ("GET", f"{V}/sessions/SE/SIM/101", None),
        ("PATCH", f"{V}/sessions/SE/SIM/101", example("session_patch_example_total_cost.json")),
        ("PUT", LOC, location()),
        ("GET", f"{LOC}/3256/1", None),
        ("PATCH", f"{LOC}/3256", example("location_patch_example_status.json")),
        ("PUT", TARIFF, tariff()),
        ("DELETE", TARIFF, None),
        ("POST", f"{V}/cdrs", cdr()),
        ("GET", f"{V}/tokens", None),
        ("POST", f"{V}/tokens/X/authorize", None),
        ("POST", f"{V}/commands/START_SESSION/nope", {"result": "ACCEPTED"}),
        ("GET", f"{V}/sessions/SE/SIM/nope", None),
        ("DELETE", f"{V}/cdrs", None),
    ]


def test_every_answer_is_an_envelope(api: Api, party: Party) -> None:
    statuses = []
    for method, path, body in _requests(party):
        response = api(method, path, body)  # envelope_of() checks shape and timestamp
        statuses.append((response.status_code, response.body["status_code"]))
    assert statuses == [
        (200, 1000), (200, 1000), (201, 1000), (200, 1000), (200, 1000), (201, 1000),
        (200, 1000), (200, 1000), (201, 1000), (200, 1000), (201, 1000), (200, 1000),
        (404, 2004), (404, 2000), (404, 2000), (405, 2000),
    ]



def test_unknown_ocpi_path_answers_in_the_envelope(client: Any, party: Party) -> None:
    response = client.get("/ocpi/2.2.1/nonsense", headers=AUTH)
    assert response.status_code == 404
    body = envelope_of(response)
    assert 2000 <= body["status_code"] < 3000


def test_request_ids_are_echoed_or_created(client: Any, party: Party) -> None:
    echoed = client.get("/ocpi/versions", headers={**AUTH, "X-Request-ID": "req-1",
                                                   "X-Correlation-ID": "corr-1"})
    assert echoed.headers["X-Request-ID"] == "req-1"
    assert echoed.headers["X-Correlation-ID"] == "corr-1"
    created = client.get("/ocpi/versions", headers=AUTH)
    assert len(created.headers["X-Request-ID"]) == 36
