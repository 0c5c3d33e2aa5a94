"""OCPI transport rules (envelope, credentials token, pagination, DateTime, exact JSON) and
the wire models against the spec's own examples (/work/shared/ocpi-spec/2.2.1/examples)."""

from __future__ import annotations

import base64
import copy
import json
import os
import re
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from ocpi.modules.cdrs import Cdr
from ocpi.modules.common import DisplayText, OcpiModel, Price, parse
from ocpi.modules.credentials import Credentials
from ocpi.modules.locations import Evse, EvseStatus, Location
from ocpi.modules.sessions import Session
from ocpi.modules.tariffs import Tariff
from ocpi.modules.tokens import Token
from ocpi.modules.versions import InterfaceRole, Version, VersionDetails
from ocpi.transport import (
    OcpiError,
    StatusCode,
    authorization_header,
    encode_token,
    envelope,
    format_datetime,
    json_dumps,
    next_link,
    pagination_headers,
    parse_datetime,
    token_candidates,
    unwrap,
)

EXAMPLES = Path(os.environ.get("OCPI_SPEC_DIR", "/work/shared/ocpi-spec/2.2.1")) / "examples"
TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")


# --- The response envelope --------------------------------------------------------------


def _recent(text: str) -> bool:
    moment = datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    return abs(datetime.now(UTC) - moment) < timedelta(seconds=5)


def test_envelope_with_data() -> None:
    body = envelope({"id": "1"})
    assert list(body) == ["data", "status_code", "timestamp"]
    assert body["data"] == {"id": "1"}
    assert body["status_code"] == 1000
    assert type(body["status_code"]) is int
    assert TIMESTAMP.match(body["timestamp"])
    assert _recent(body["timestamp"])


def test_envelope_omits_data_when_none_and_keeps_empty_lists() -> None:
    body = envelope()
    assert set(body) == {"status_code", "timestamp"}
    assert envelope([])["data"] == []
    assert envelope({})["data"] == {}
    assert envelope(0)["data"] == 0
    assert "data" not in envelope({"x": 1}, include_data=False)


def test_envelope_error_with_message() -> None:
    body = envelope(status_code=StatusCode.INVALID_PARAMETERS,
                    status_message="Missing required field: type")
    assert body == {
        "status_code": 2001,
        "status_message": "Missing required field: type",
        "timestamp": body["timestamp"],
    }
    assert type(body["status_code"]) is int
    assert "status_message" not in envelope(status_message="")
    assert "status_message" not in envelope()


def test_ocpi_error_defaults_to_http_200() -> None:
    error = OcpiError(StatusCode.UNKNOWN_TOKEN, "Unknown Token")
    assert (error.status_code, error.message, error.http_status) == (2004, "Unknown Token", 200)
    assert OcpiError(2000, "x", 401).http_status == 401


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (datetime(2015, 6, 29, 20, 39, 9, tzinfo=UTC), "2015-06-29T20:39:09Z"),
        (datetime(2015, 6, 29, 20, 39, 9, 999999, tzinfo=UTC), "2015-06-29T20:39:09Z"),
        (datetime(2015, 6, 29, 22, 39, 9, tzinfo=timezone(timedelta(hours=2))),
         "2015-06-29T20:39:09Z"),
        (datetime(2015, 6, 29, 20, 39, 9), "2015-06-29T20:39:09Z"),  # naive is UTC
    ],
)
def test_format_datetime(value: datetime, text: str) -> None:
    assert format_datetime(value) == text


# --- DateTime parsing -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2015-06-29T20:39:09Z", datetime(2015, 6, 29, 20, 39, 9, tzinfo=UTC)),
        ("2015-06-29T20:39:09z", datetime(2015, 6, 29, 20, 39, 9, tzinfo=UTC)),
        ("2015-06-29T20:39:09", datetime(2015, 6, 29, 20, 39, 9, tzinfo=UTC)),  # no offset: UTC
        ("2015-06-29T22:39:09+02:00", datetime(2015, 6, 29, 20, 39, 9, tzinfo=UTC)),
        ("2015-06-29T18:39:09-02:00", datetime(2015, 6, 29, 20, 39, 9, tzinfo=UTC)),
        ("2015-06-29T20:39:09.123Z", datetime(2015, 6, 29, 20, 39, 9, 123000, tzinfo=UTC)),
        (" 2019-01-28T12:00:00 ", datetime(2019, 1, 28, 12, 0, 0, tzinfo=UTC)),
    ],
)
def test_parse_datetime(text: str, expected: datetime) -> None:
    parsed = parse_datetime(text)
    assert parsed == expected
    assert parsed.utcoffset() == timedelta(0)
    assert format_datetime(parsed) == format_datetime(expected)


@pytest.mark.parametrize("text", ["", "yesterday", "2015-13-01T00:00:00Z", "2015-06-29 nonsense"])
def test_parse_datetime_refuses_garbage(text: str) -> None:
    with pytest.raises(ValueError):
        parse_datetime(text)


# --- Credentials token in the Authorization header --------------------------------------


def test_encode_token_is_base64_of_utf8() -> None:
    assert encode_token("example-token") == "ZXhhbXBsZS10b2tlbg=="
    assert encode_token("tok-C") == "dG9rLUM="
    assert encode_token("ebf3b399-779f-4497-9b9d-ac6ad3cc44d2") == (
        "ZWJmM2IzOTktNzc5Zi00NDk3LTliOWQtYWM2YWQzY2M0NGQy"
    )
    assert base64.b64decode(encode_token("smörgås")).decode("utf-8") == "smörgås"


@pytest.mark.parametrize(
    ("version", "header"),
    [
        ("2.2.1", "Token dG9rLUM="),
        ("2.2", "Token dG9rLUM="),
        ("2.1.1", "Token tok-C"),
        ("2.1", "Token tok-C"),
    ],
)
def test_authorization_header(version: str, header: str) -> None:
    assert authorization_header("tok-C", version) == header


def test_authorization_header_defaults_to_221() -> None:
    assert authorization_header("tok-C") == "Token dG9rLUM="


@pytest.mark.parametrize(
    ("header", "candidates"),
    [
        # Base64 (2.2.x): decoded first, then as sent
        ("Token dG9rLUM=", ["tok-C", "dG9rLUM="]),
        ("token dG9rLUM=", ["tok-C", "dG9rLUM="]),
        ("Token   dG9rLUM=  ", ["tok-C", "dG9rLUM="]),
        # plain (2.1.1 and many 2.2 peers): only as sent
        ("Token tok-C", ["tok-C"]),
        ("Token ebf3b399-779f-4497-9b9d-ac6ad3cc44d2", ["ebf3b399-779f-4497-9b9d-ac6ad3cc44d2"]),
        # the spec's own examples encode a trailing newline
        ("Token ZXhhbXBsZS10b2tlbgo=", ["example-token", "ZXhhbXBsZS10b2tlbgo="]),
        ("Token ZWJmM2IzOTktNzc5Zi00NDk3LTliOWQtYWM2YWQzY2M0NGQyCg==",
         ["ebf3b399-779f-4497-9b9d-ac6ad3cc44d2",
          "ZWJmM2IzOTktNzc5Zi00NDk3LTliOWQtYWM2YWQzY2M0NGQyCg=="]),
        # valid Base64 that decodes to something that is no token: only as sent
        ("Token AAAA", ["AAAA"]),  # NUL bytes
        ("Token //79", ["//79"]),  # not UTF-8
        ("Token " + encode_token("a b"), [encode_token("a b")]),  # a space is not allowed
        # garbage is tried as sent (and will match no party)
        ("Token %%%", ["%%%"]),
        # wrong scheme, no scheme, nothing
        ("Bearer dG9rLUM=", []),
        ("Basic dG9rLUM=", []),
        ("dG9rLUM=", []),
        ("Tokendg9rLUM=", []),
        ("Token", []),
        ("Token ", []),
        ("Token    ", []),
        ("", []),
        (None, []),
    ],
)
def test_token_candidates(header: str | None, candidates: list[str]) -> None:
    assert token_candidates(header) == candidates


# --- Pagination -------------------------------------------------------------------------


def _link_query(headers: dict[str, str]) -> tuple[str, dict[str, list[str]]]:
    url = next_link(headers["Link"])
    assert url is not None
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}", parse_qs(parts.query)


def test_pagination_first_page_links_on_and_keeps_filters() -> None:
    url = ("https://www.server.com/ocpi/2.2.1/tokens?date_from=2016-01-01T00:00:00Z"
           "&date_to=2016-12-31T23:59:59Z&limit=2000")
    headers = pagination_headers(url, offset=0, limit=100, total=250, returned=100)
    assert headers["X-Total-Count"] == "250"
    assert headers["X-Limit"] == "100"
    assert headers["Link"].endswith('>; rel="next"')
    assert headers["Link"].startswith("<https://www.server.com/ocpi/2.2.1/tokens?offset=100&")
    base, query = _link_query(headers)
    assert base == "https://www.server.com/ocpi/2.2.1/tokens"
    assert query == {
        "offset": ["100"],
        "limit": ["100"],  # the server's limit, not the 2000 asked for
        "date_from": ["2016-01-01T00:00:00Z"],
        "date_to": ["2016-12-31T23:59:59Z"],
    }


def test_pagination_middle_page() -> None:
    url = "https://h/ocpi/2.2.1/tokens?offset=100&limit=100&date_from=2016-01-01T00:00:00Z"
    headers = pagination_headers(url, offset=100, limit=100, total=250, returned=100)
    _, query = _link_query(headers)
    assert query == {"offset": ["200"], "limit": ["100"], "date_from": ["2016-01-01T00:00:00Z"]}


@pytest.mark.parametrize(
    ("offset", "limit", "total", "returned"),
    [
        (200, 100, 250, 50),  # the last page
        (0, 100, 100, 100),  # exactly one full page
        (0, 100, 0, 0),  # nothing at all
        (300, 100, 250, 0),  # beyond the end
        (0, 10, 5, 0),  # an empty page while the count says more: no link at the same offset
    ],
)
def test_pagination_no_link_on_the_last_page(
    offset: int, limit: int, total: int, returned: int
) -> None:
    headers = pagination_headers("https://h/ocpi/2.2.1/tokens", offset, limit, total, returned)
    assert headers == {"X-Total-Count": str(total), "X-Limit": str(limit)}


@pytest.mark.parametrize(
    ("header", "url"),
    [
        ('<https://h/cdrs/?offset=150&limit=50>; rel="next"', "https://h/cdrs/?offset=150&limit=50"),
        ("<https://h/cdrs/?offset=150>; rel=next", "https://h/cdrs/?offset=150"),
        ('<https://h/cdrs/?offset=150>;rel="next"', "https://h/cdrs/?offset=150"),
        ('<https://h/cdrs/?offset=150> ; REL="NEXT"', "https://h/cdrs/?offset=150"),
        ('<https://h/a>; rel="prev", <https://h/b>; rel="next"', "https://h/b"),
        ('<https://h/b>; rel="next", <https://h/a>; rel="prev"', "https://h/b"),
        ('<https://h/b>; title="page 2"; rel="next"', "https://h/b"),
        ('<https://h/b>; rel="next last"', "https://h/b"),
        ('<https://h/cdrs?ids=1,2,3&offset=3>; rel="next"', "https://h/cdrs?ids=1,2,3&offset=3"),
        ('<https://h/a>; rel="prev"', None),
        ('<https://h/a>; rel="nextish"', None),
        ("<https://h/a>", None),
        ('https://h/a; rel="next"', None),
        ("garbage", None),
        ("", None),
        (None, None),
    ],
)
def test_next_link(header: str | None, url: str | None) -> None:
    assert next_link(header) == url


def test_pagination_round_trip() -> None:
    url = "https://h/ocpi/2.2.1/tokens?date_to=2020-01-01T00:00:00Z"
    seen, offset = [], 0
    while True:
        returned = min(40, 95 - offset)
        headers = pagination_headers(url, offset, 40, 95, returned)
        seen.append(offset)
        if "Link" not in headers:
            break
        url = next_link(headers["Link"])
        offset = int(parse_qs(urlsplit(url).query)["offset"][0])
        assert parse_qs(urlsplit(url).query)["date_to"] == ["2020-01-01T00:00:00Z"]
    assert seen == [0, 40, 80]


# --- JSON with exact numbers ------------------------------------------------------------


def test_json_dumps_keeps_decimals_exact_and_numeric() -> None:
    value = {
        "kwh": Decimal("41.120"),
        "price": Decimal("0.1234567890123456789"),
        "big": Decimal("1E+3"),
        "tiny": Decimal("1E-7"),
        "neg": Decimal("-0.50"),
        "count": 3,
        "ratio": 0.5,
        "ok": True,
        "none": None,
        "name": "Malmö \"C\"",
        "when": datetime(2015, 6, 29, 20, 39, 9, tzinfo=UTC),
        "list": [Decimal("2.00"), "x"],
    }
    text = json_dumps(value)
    assert '"kwh":41.120' in text
    assert '"price":0.1234567890123456789' in text
    assert '"big":1000' in text
    assert '"tiny":0.0000001' in text
    assert '"neg":-0.50' in text
    assert '"name":"Malmö \\"C\\""' in text
    back = json.loads(text, parse_float=Decimal)
    assert back == {
        "kwh": Decimal("41.120"), "price": Decimal("0.1234567890123456789"), "big": 1000,
        "tiny": Decimal("0.0000001"), "neg": Decimal("-0.50"), "count": 3,
        "ratio": Decimal("0.5"), "ok": True, "none": None, "name": "Malmö \"C\"",
        "when": "2015-06-29T20:39:09Z", "list": [Decimal("2.00"), "x"],
    }


@pytest.mark.parametrize("bad", [Decimal("NaN"), Decimal("Infinity"), float("nan")])
def test_json_dumps_refuses_what_json_cannot_carry(bad: Any) -> None:
    with pytest.raises(ValueError):
        json_dumps({"x": bad})


def test_unwrap_keeps_numbers_exact() -> None:
    payload = unwrap(b'{"data": {"excl_vat": 0.10, "n": 3}, "status_code": 1000}')
    assert payload["data"] == {"excl_vat": Decimal("0.10"), "n": 3}
    assert isinstance(payload["data"]["excl_vat"], Decimal)


@pytest.mark.parametrize("body", [b"<html>", b"[1, 2]", b'{"data": []}', b""])
def test_unwrap_refuses_what_is_no_envelope(body: bytes) -> None:
    with pytest.raises(OcpiError) as raised:
        unwrap(body)
    assert raised.value.status_code == 3000


# --- Wire models ------------------------------------------------------------------------


def _example(name: str) -> Any:
    return json.loads((EXAMPLES / name).read_text(encoding="utf-8"), parse_float=Decimal)


def _session() -> dict[str, Any]:
    return _example("session_example_1_simple_start.json")


def _parse_error(model: type[OcpiModel], data: Any) -> str:
    with pytest.raises(OcpiError) as raised:
        parse(model, data)
    assert raised.value.status_code == 2001
    assert raised.value.http_status == 200
    return raised.value.message


def test_parse_names_a_missing_field() -> None:
    data = _session()
    del data["kwh"]
    assert _parse_error(Session, data) == "Invalid Session: kwh: Field required"


def test_parse_names_a_nested_field() -> None:
    data = _session()
    del data["cdr_token"]["uid"]
    assert _parse_error(Session, data) == "Invalid Session: cdr_token.uid: Field required"
    data = _example("cdr_example.json")
    data["charging_periods"][0]["dimensions"][0]["volume"] = "much"
    message = _parse_error(Cdr, data)
    assert message.startswith("Invalid Cdr: charging_periods.0.dimensions.0.volume: ")


@pytest.mark.parametrize(
    ("field", "value", "named"),
    [
        ("kwh", "lots", "kwh"),
        ("kwh", True, "kwh"),
        ("kwh", None, "kwh"),
        ("status", "RUNNING", "status"),
        ("cdr_token", "123abc", "cdr_token"),
        ("currency", 978, "currency"),
        ("currency", "EURO", "currency"),  # String(3)
        ("start_date_time", "yesterday", "start_date_time"),
        # pydantic would read a number as Unix time; an OCPI DateTime is text
        ("start_date_time", 1583749029, "start_date_time"),
        ("last_updated", 1.5, "last_updated"),
        ("id", "x" * 37, "id"),  # CiString(36)
    ],
)
def test_parse_names_a_wrong_field(field: str, value: Any, named: str) -> None:
    data = _session()
    data[field] = value
    message = _parse_error(Session, data)
    assert message.startswith(f"Invalid Session: {named}: ")


def test_parse_reports_several_fields() -> None:
    data = _session()
    for field in ("kwh", "status", "currency"):
        del data[field]
    message = _parse_error(Session, data)
    for field in ("kwh", "status", "currency"):
        assert f"{field}: Field required" in message


@pytest.mark.parametrize("data", [None, [], "session", 42])
def test_parse_refuses_what_is_no_object(data: Any) -> None:
    assert _parse_error(Session, data) == "expected a Session object"


def test_parse_accepts_nulls_for_optional_and_ignores_unknown_fields() -> None:
    data = _session()
    data.update(end_date_time=None, charging_periods=None, meter_id=None,
                authorization_reference=None, x_vendor={"foo": 1})
    session = parse(Session, data)
    assert session.end_date_time is None
    assert session.charging_periods is None
    assert "x_vendor" not in session.to_json()
    assert "end_date_time" not in session.to_json()


def test_to_json_keeps_exact_numbers_and_writes_datetimes_with_z() -> None:
    data = _example("session_example_2_short_finished.json")
    out = parse(Session, data).to_json()
    assert out["kwh"] == Decimal("41.12")
    assert isinstance(out["kwh"], Decimal)
    assert out["total_cost"] == {"excl_vat": Decimal("8.50"), "incl_vat": Decimal("9.35")}
    assert str(out["total_cost"]["excl_vat"]) == "8.50"
    assert out["charging_periods"][2]["dimensions"][0]["volume"] == Decimal("0.718")
    assert out["start_date_time"] == "2015-06-29T22:39:09Z"
    assert out["status"] == "COMPLETED"
    assert type(out["status"]) is str
    # Written with json_dumps, the object is the example again, digit for digit.
    assert json.loads(json_dumps(out), parse_float=Decimal) == data
    assert '"excl_vat":8.50' in json_dumps(out)


def test_to_json_converts_offsets_to_utc() -> None:
    data = _session()
    data["start_date_time"] = "2020-03-09T11:17:09+01:00"
    assert parse(Session, data).to_json()["start_date_time"] == "2020-03-09T10:17:09Z"


# --- Every official example an eMSP receives --------------------------------------------

RECEIVED = {
    "cdr_example.json": Cdr,
    "credentials_example.json": Credentials,
    "credentials_example2.json": Credentials,
    "credentials_example3.json": Credentials,
    "credentials_example4.json": Credentials,
    "location_example.json": Location,
    "location_example_parking_garage_opening_hours.json": Location,
    "location_example_uc2_destination_charger.json": Location,
    "location_example_uc3_destination_charger_not_published.json": Location,
    "location_example_uc4_limited_visibility.json": Location,
    "location_example_uc5_home_charge_point.json": Location,
    "session_example_1_simple_start.json": Session,
    "session_example_2_short_finished.json": Session,
    "tariff_1_simple_2hour.json": Tariff,
    "tariff_2_alt_text.json": Tariff,
    "tariff_3_alt_url.json": Tariff,
    "tariff_4_complex.json": Tariff,
    "tariff_5_free_of_charge.json": Tariff,
    "tariff_6_025kwh_start_max_price.json": Tariff,
    "tariff_8_simple_025kwh.json": Tariff,
    "tariff_9_025kwh_start.json": Tariff,
    "tariff_10_025kwh_parking_start.json": Tariff,
    "tariff_11_not_possible_alt_text.json": Tariff,
    "tariff_12_025kwh_min_price.json": Tariff,
    "tariff_13_simple_3hour_5parking.json": Tariff,
    "tariff_14_step_size.json": Tariff,
    "tariff_15_reservation_5_euro_per_hour.json": Tariff,
    "tariff_16_reservation_2_euro_fee_5_euro_per_hour.json": Tariff,
    "tariff_17_reservation_with_expire_fee.json": Tariff,
    "tariff_18_reservation_with_expire_time.json": Tariff,
    "tariffrestriction_example_max_duration.json": Tariff,
    "tariffrestriction_example_max_power.json": Tariff,
    "token_example_1_app_user.json": Token,
    "token_example_2_full_rfid.json": Token,
    "token_put_example.json": Token,
    "version_details_example.json": VersionDetails,
    "version_details_example2.json": VersionDetails,
    "type_displaytext_example.json": DisplayText,
}

# Whole responses, envelope included: the model parses `data`.
RECEIVED_ENVELOPES = {
    "transport_and_format_get_token_example.json": Token,
    "transport_and_format_get_token_list_example.json": Token,
    "transport_and_format_version_details_example.json": VersionDetails,
    "transport_and_format_version_info_example.json": Version,
}

# Fragments: PATCH bodies, and parts of a Location or Tariff. Each is applied to the object
# it belongs to, and the result must still parse.
FRAGMENTS = {
    "session_patch_example_charging_period.json",
    "session_patch_example_total_cost.json",
    "location_patch_example_location.json",
    "location_patch_example_status.json",
    "location_patch_example_remove_evse.json",
    "location_patch_example_tariff.json",
    "location_energymix_example_complete.json",
    "location_energymix_example_energy_provider.json",
    "location_energymix_example_simple.json",
    "location_hours_247_open_exception_closing.json",
    "location_hours_opening_hours_with_exceptional_closing.json",
    "location_hours_opening_hours_with_exceptional_opening.json",
    "location_regularhours_example.json",
    "token_patch_example.json",
}

# Two official examples break the spec's own field tables; the models rightly refuse them.
SPEC_DEFECTS = {
    # EVSE PUT example: its Connector lacks power_type, max_voltage, max_amperage and
    # last_updated, and physical_reference is a number where the table says string(16).
    "location_put_example_add_evse.json": (
        Evse,
        ["connectors.0.power_type: Field required",
         "connectors.0.max_voltage: Field required",
         "connectors.0.max_amperage: Field required",
         "connectors.0.last_updated: Field required",
         "physical_reference: Input should be a valid string"],
    ),
    # Tariff PUT example: last_updated is required (card. 1) but missing.
    "tariff_put_example.json": (Tariff, ["last_updated: Field required"]),
}

# Examples of what ScanCharge sends, not receives.
NOT_RECEIVED = {"versions_info_example.json"}  # a versions list: covered as an envelope too


def test_every_example_is_accounted_for() -> None:
    names = {p.name for p in EXAMPLES.glob("*.json")}
    assert len(names) == 59
    known = set(RECEIVED) | set(RECEIVED_ENVELOPES) | FRAGMENTS | set(SPEC_DEFECTS) | NOT_RECEIVED
    assert names == known


@pytest.mark.parametrize("name", sorted(RECEIVED))
def test_official_example_parses(name: str) -> None:
    data = _example(name)
    model = RECEIVED[name]
    parsed = parse(model, data)
    out = parsed.to_json()
    # Nothing the model knows is lost or changed on the way through.
    for key, value in out.items():
        if isinstance(value, str) and key in {"last_updated", "start_date_time",
                                              "end_date_time"}:
            assert parse_datetime(value) == parse_datetime(data[key])
        else:
            assert json.loads(json_dumps(value), parse_float=Decimal) == data[key], key


def test_official_versions_list_parses() -> None:
    versions = [parse(Version, v) for v in _example("versions_info_example.json")]
    assert [(v.version, v.url) for v in versions] == [
        ("2.1.1", "https://www.server.com/ocpi/2.1.1"),
        ("2.2.1", "https://www.server.com/ocpi/2.2.1"),
    ]


@pytest.mark.parametrize("name", sorted(RECEIVED_ENVELOPES))
def test_official_envelope_example_parses(name: str) -> None:
    payload = unwrap((EXAMPLES / name).read_bytes())
    assert payload["status_code"] == 1000
    assert TIMESTAMP.match(payload["timestamp"])
    data = payload["data"]
    items = data if isinstance(data, list) else [data]
    parsed = [parse(RECEIVED_ENVELOPES[name], item) for item in items]
    assert len(parsed) == len(items) >= 1


def test_official_example_details() -> None:
    cdr = parse(Cdr, _example("cdr_example.json"))
    assert cdr.total_cost.incl_vat == Decimal("4.40")
    assert cdr.total_energy == Decimal("15.342")
    assert cdr.cdr_location.evse_id == "BE*BEC*E041503003"
    location = parse(Location, _example("location_example.json"))
    assert [e.status for e in location.evses] == [EvseStatus.AVAILABLE,
                                                   EvseStatus.RESERVED]
    assert location.last_updated == datetime(2015, 6, 29, 20, 39, 9, tzinfo=UTC)
    tariff = parse(Tariff, _example("tariff_12_025kwh_min_price.json"))
    assert tariff.min_price == Price(excl_vat=Decimal("0.50"), incl_vat=Decimal("0.55"))
    details = parse(VersionDetails, _example("version_details_example2.json"))
    assert [(e.identifier, e.role) for e in details.endpoints][:2] == [
        ("credentials", InterfaceRole.RECEIVER), ("locations", InterfaceRole.SENDER)
    ]


@pytest.mark.parametrize("name", sorted(SPEC_DEFECTS))
def test_defective_official_example_is_refused_naming_the_fields(name: str) -> None:
    model, problems = SPEC_DEFECTS[name]
    message = _parse_error(model, _example(name))
    for problem in problems:
        assert problem in message


@pytest.mark.parametrize(
    "name", ["session_patch_example_charging_period.json", "session_patch_example_total_cost.json"]
)
def test_official_session_patch_applies(name: str) -> None:
    session = _example("session_example_2_short_finished.json")
    patch = _example(name)
    merged = copy.deepcopy(session)
    for key, value in patch.items():
        if key == "charging_periods":
            merged[key] = [*merged.get(key, []), *value]
        else:
            merged[key] = value
    parsed = parse(Session, merged)
    assert parsed.total_cost == Price(**patch["total_cost"])
    assert parsed.last_updated == parse_datetime(patch["last_updated"])
    assert len(parsed.charging_periods or []) == 3 + len(patch.get("charging_periods", []))


@pytest.mark.parametrize(
    ("name", "level"),
    [
        ("location_patch_example_location.json", "location"),
        ("location_patch_example_status.json", "evse"),
        ("location_patch_example_remove_evse.json", "evse"),
        ("location_patch_example_tariff.json", "connector"),
    ],
)
def test_official_location_patch_applies(name: str, level: str) -> None:
    location = _example("location_example.json")
    patch = _example(name)
    target = {
        "location": location,
        "evse": location["evses"][0],
        "connector": location["evses"][0]["connectors"][1],
    }[level]
    target.update(patch)
    parsed = parse(Location, location)
    if level == "evse":
        assert parsed.evses[0].status == patch["status"]
    elif level == "connector":
        assert parsed.evses[0].connectors[1].tariff_ids == ["15"]
    else:
        assert parsed.name == "Interparking Gent Zuid"


@pytest.mark.parametrize(
    "name",
    [
        "location_energymix_example_complete.json",
        "location_energymix_example_energy_provider.json",
        "location_energymix_example_simple.json",
        "location_hours_247_open_exception_closing.json",
        "location_hours_opening_hours_with_exceptional_closing.json",
        "location_hours_opening_hours_with_exceptional_opening.json",
        "location_regularhours_example.json",
    ],
)
def test_official_location_parts_parse_within_a_location(name: str) -> None:
    location = _example("location_example.json")
    part = _example(name)
    if "energy_mix" in part or "opening_times" in part:
        location.update(part)
    else:
        location["opening_times"] = part
    assert parse(Location, location).id == "LOC1"
    if "energy_mix" in part:
        tariff = _example("tariff_1_simple_2hour.json") | part
        assert parse(Tariff, tariff).energy_mix == part["energy_mix"]


def test_official_token_patch_applies() -> None:
    token = _example("token_put_example.json") | _example("token_patch_example.json")
    parsed = parse(Token, token)
    assert parsed.valid is False
    assert parsed.last_updated == datetime(2019, 6, 19, 2, 11, 11, tzinfo=UTC)
