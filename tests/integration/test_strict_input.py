"""Strict where it matters, tolerant where meaning is clear (docs/ocpi.md, "What ScanCharge
refuses and what it tolerates"): one row per case an attacker found, for the 2.2.1 and
2.1.1 receivers, each checked for its answer and for nothing stored; the tolerances taken
in with their deviation notice; a refused CDR flagging its charge."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from test_ocpi_server import (
    AUTH,
    Api,
    add_command,
    add_party,
    b64,
    cdr,
    command_row,
    error,
    issue_tokens,
    location,
    ok,
    session,
    tariff,
)

from charging.models import Charge, ChargeEvent
from charging.states import ChargeStatus
from extensions import db
from ocpi import commands
from ocpi.models import (
    OcpiCdr,
    OcpiCommand,
    OcpiEvse,
    OcpiLocation,
    OcpiMessage,
    OcpiNotice,
    OcpiSession,
    OcpiTariff,
    Party,
)
from ocpi.modules.commands import CommandType
from ocpi.modules.sessions import Session
from ocpi.transport import OcpiError, json_dumps

V = "/ocpi/2.2.1"
W = "/ocpi/2.1.1"
SPEC_211 = Path("/work/shared/ocpi-spec/2.1.1")
AUTH_211 = {"Authorization": f"Token {b64('tok-211')}"}
STORED = (OcpiLocation, OcpiEvse, OcpiTariff, OcpiSession, OcpiCdr)


@pytest.fixture
def party(app: Any) -> Party:
    return add_party("tok-C", "SE", "SIM")


@pytest.fixture
def party211(app: Any) -> Party:
    row = add_party("tok-211", "NL", "OLD")
    row.version = "2.1.1"
    db.session.commit()
    return row


@pytest.fixture
def api(client: Any, party: Party, party211: Party) -> Api:
    return Api(client)


def stored() -> dict[str, int]:
    db.session.rollback()  # what an uncommitted request left behind is not stored
    return {m.__tablename__: db.session.scalar(select(func.count()).select_from(m))
            for m in STORED}


def notices(kind: str | None = None) -> dict[str, int]:
    db.session.rollback()
    query = select(OcpiNotice)
    if kind:
        query = query.where(OcpiNotice.kind == kind)
    return {n.code: n.count for n in db.session.scalars(query)}


# --- 2.1.1 bodies: the spec's own examples (mod_*.md) -----------------------------------


def _spec_211(name: str, *keys: str) -> dict[str, Any]:
    """The first JSON example in a 2.1.1 module text holding all `keys`."""
    text = (SPEC_211 / name).read_text(encoding="utf-8")
    for block in re.findall(r"```json\n(.*?)```", text, re.S):
        try:
            data = json.loads(block, parse_float=Decimal)
        except ValueError:
            continue
        if isinstance(data, dict) and all(k in data for k in keys):
            return data
    raise LookupError(f"no example with {keys} in {name}")


def location211(**changes: Any) -> dict[str, Any]:
    return {**_spec_211("mod_locations.md", "id", "evses", "address"), **changes}


def session211(**changes: Any) -> dict[str, Any]:
    return {**_spec_211("mod_sessions.md", "id", "auth_id", "kwh"), **changes}


def cdr211(**changes: Any) -> dict[str, Any]:
    return {**_spec_211("mod_cdrs.md", "id", "stop_date_time"), **changes}


def tariff211(**changes: Any) -> dict[str, Any]:
    return {**_spec_211("mod_tariffs.md", "id", "elements", "last_updated"), **changes}


def at(data: Any, path: str, value: Any) -> Any:
    """A copy of `data` with the item at dotted `path` set (or deleted for DELETE)."""
    data = copy.deepcopy(data)
    *parents, last = [int(p) if p.isdigit() else p for p in path.split(".")]
    target = data
    for key in parents:
        target = target[key]
    if value is DELETE:
        del target[last]
    else:
        target[last] = value
    return data


DELETE = object()


def deep_in(body: Any, depth: int, key: str = "x_vendor") -> bytes:
    """`body` as JSON text with an unknown field `depth` levels deep (written as text:
    json_dumps, like the attacker's structure, would recurse that deep)."""
    text = json_dumps(body)
    deep = '{"x": ' * depth + "1" + "}" * depth
    return (text[:-1] + f', "{key}": {deep}}}').encode()


def raw_deep(depth: int) -> bytes:
    # Built as text: a structure this deep cannot be serialised by recursion either.
    return b'{"id": "101", "x_vendor": ' + b'{"x": ' * depth + b"1" + b"}" * depth + b"}"


# --- The attacker's list: 2.2.1 ---------------------------------------------------------

LOC = f"{V}/locations/SE/SIM/LOC1"
SES = f"{V}/sessions/SE/SIM/101"
TAR = f"{V}/tariffs/SE/SIM/20"
LONG = "X" * 37
URL300 = "https://cpo.example.com/" + "v" * 276

# (id, method, path, body or raw bytes, http status, OCPI status)
CASES_221: list[tuple[str, str, str, Any, int, int]] = [
    ("location-publish-yes", "PUT", LOC, location(publish="yes"), 200, 2001),
    ("location-voltage-text", "PUT", LOC,
     at(location(), "evses.0.connectors.0.max_voltage", "230"), 200, 2001),
    ("location-id-nul", "PUT", LOC, location(id="LOC1\u0000"), 200, 2001),
    ("location-id-non-ascii", "PUT", f"{V}/locations/SE/SIM/stra%C3%9Fe",
     location(id="straße"), 200, 2001),
    ("location-id-too-long", "PUT", f"{V}/locations/SE/SIM/{LONG}", location(id=LONG),
     200, 2001),
    ("location-evse-uid-too-long", "PUT", LOC, at(location(), "evses.0.uid", LONG), 200,
     2001),
    ("location-url-300", "PUT", LOC, at(location(), "operator",
                                        {"name": "Op", "website": URL300}), 200, 2001),
    ("location-url-not-web", "PUT", LOC, at(location(), "operator",
                                            {"name": "Op", "website": "file:///etc"}),
     200, 2001),
    ("location-deep-400", "PUT", LOC, deep_in(location(), 400), 200, 2001),
    ("location-deep-5000", "PUT", LOC, raw_deep(5000), 200, 2001),
    ("location-nul-key", "PUT", LOC, location(**{"x\u0000": 1}), 200, 2001),
    ("location-raw-nul", "PUT", LOC, b'{"id": "LOC1"\x00}', 400, 2001),
    ("location-path-nul", "PUT", f"{V}/locations/SE/SIM/LOC%00", location(), 200, 2001),
    ("location-path-party-too-long", "PUT", f"{V}/locations/SE/SIMX/LOC1", location(),
     200, 2001),
    ("tariff-price-text", "PUT", TAR, at(tariff(), "elements.0.price_components.0.price",
                                         "0.25"), 200, 2001),
    ("tariff-step-size-float", "PUT", TAR,
     at(tariff(), "elements.0.price_components.0.step_size", Decimal("1.5")), 200, 2001),
    ("tariff-price-1e16", "PUT", TAR, at(tariff(), "elements.0.price_components.0.price",
                                         Decimal("1E16")), 200, 2001),
    ("tariff-alt-url-300", "PUT", TAR, tariff(tariff_alt_url=URL300), 200, 2001),
    ("tariff-id-non-ascii", "PUT", f"{V}/tariffs/SE/SIM/t%C3%A4", tariff(id="tä"), 200,
     2001),
    ("session-kwh-text", "PUT", SES, session(kwh="12.5"), 200, 2001),
    ("session-kwh-huge", "PUT", SES, session(kwh=Decimal("1E9")), 200, 2001),
    ("session-kwh-bool", "PUT", SES, session(kwh=True), 200, 2001),
    ("session-id-too-long", "PUT", f"{V}/sessions/SE/SIM/{LONG}", session(id=LONG), 200,
     2001),
    ("session-token-uid-nul", "PUT", SES, at(session(), "cdr_token.uid", "12\u00003"), 200,
     2001),
    ("session-token-uid-non-ascii", "PUT", SES, at(session(), "cdr_token.uid", "ÅÄÖ"), 200,
     2001),
    ("session-meter-id-300", "PUT", SES, session(meter_id="m" * 300), 200, 2001),
    ("cdr-total-1e16", "POST", f"{V}/cdrs",
     cdr(total_cost={"excl_vat": Decimal("1E16"), "incl_vat": Decimal("1E16")}), 200, 2001),
    ("cdr-total-text", "POST", f"{V}/cdrs",
     cdr(total_cost={"excl_vat": "4.00", "incl_vat": "4.40"}), 200, 2001),
    ("cdr-energy-text", "POST", f"{V}/cdrs", cdr(total_energy="15.342"), 200, 2001),
    ("cdr-negative-total", "POST", f"{V}/cdrs",
     cdr(total_cost={"excl_vat": Decimal("-4.00"), "incl_vat": Decimal("-4.40")}), 200,
     2001),
    ("cdr-negative-incl-only", "POST", f"{V}/cdrs",
     cdr(total_cost={"excl_vat": Decimal("4.00"), "incl_vat": Decimal("-4.40")}), 200,
     2001),
    ("cdr-credit-text", "POST", f"{V}/cdrs", cdr(credit="true"), 200, 2001),
    ("cdr-id-too-long", "POST", f"{V}/cdrs", cdr(id="C" * 40), 200, 2001),
    ("cdr-deep-400", "POST", f"{V}/cdrs", deep_in(cdr(), 400, "signed_data"), 200, 2001),
]


@pytest.mark.parametrize(("method", "path", "body", "http", "status"),
                         [c[1:] for c in CASES_221], ids=[c[0] for c in CASES_221])
def test_221_receivers_refuse_and_store_nothing(api: Api, method: str, path: str, body: Any,
                                                http: int, status: int) -> None:
    before = stored()
    raw = body if isinstance(body, bytes) else None
    response = api(method, path, None if raw else body, raw=raw)
    error(response, http, status)
    assert stored() == before


# PATCHes refused against what is stored: the stored object stays as it was.
PATCHES_221 = [
    ("location-patch-publish-yes", LOC, {"publish": "yes",
                                         "last_updated": "2019-06-24T12:39:09Z"}),
    ("location-patch-evse-status-nul", f"{LOC}/3256",
     {"status": "AVAILABLE\u0000", "last_updated": "2019-06-24T12:39:09Z"}),
    ("location-patch-deep", LOC, deep_in({"last_updated": "2019-06-24T12:39:09Z"}, 100)),
    ("session-patch-kwh-text", SES, {"kwh": "12.5", "last_updated": "2019-06-23T08:16:02Z"}),
    ("session-patch-total-huge", SES,
     {"total_cost": {"excl_vat": Decimal("1E16")}, "last_updated": "2019-06-23T08:16:02Z"}),
]


@pytest.mark.parametrize(("path", "patch"), [p[1:] for p in PATCHES_221],
                         ids=[p[0] for p in PATCHES_221])
def test_221_patches_refused_change_nothing(api: Api, path: str, patch: Any) -> None:
    ok(api("PUT", LOC, location()), 201)
    ok(api("PUT", SES, session()), 201)
    db.session.rollback()
    before = {r.pk: r.raw for m in (OcpiLocation, OcpiSession) for r in db.session.scalars(
        select(m))}
    raw = patch if isinstance(patch, bytes) else None
    error(api("PATCH", path, None if raw else patch, raw=raw), 200, 2001)
    db.session.rollback()
    assert {r.pk: r.raw for m in (OcpiLocation, OcpiSession)
            for r in db.session.scalars(select(m))} == before


def test_cistrings_that_upper_case_alike_no_longer_collide(api: Api) -> None:
    # "straße".upper() == "STRASSE": the ASCII id is taken, the other refused.
    ok(api("PUT", f"{V}/locations/SE/SIM/STRASSE", location(id="STRASSE")), 201)
    error(api("PUT", f"{V}/locations/SE/SIM/stra%C3%9Fe", location(id="straße")), 200, 2001)
    error(api("PUT", f"{V}/locations/SE/SIM/STRASSE", location(id="straße")), 200, 2001)
    assert [r.location_id for r in db.session.scalars(select(OcpiLocation))] == ["STRASSE"]


def test_free_text_may_be_unicode(api: Api) -> None:
    # string (not CiString) is printable UTF-8: a Swedish street name is fine.
    sent = {**location(), "name": "Sergels torg – Malmskillnadsgatan",
            "address": "Drottninggatan 1, Åre"}
    ok(api("PUT", LOC, sent), 201)
    assert ok(api("GET", LOC))["data"]["address"] == "Drottninggatan 1, Åre"


def test_credit_cdr_may_carry_negative_totals(api: Api) -> None:
    credit = cdr(id="12345-C", credit=True, credit_reference_id="12345",
                 total_cost={"excl_vat": Decimal("-4.00"), "incl_vat": Decimal("-4.40")})
    ok(api("POST", f"{V}/cdrs", credit), 201)
    row = db.session.scalar(select(OcpiCdr))
    assert row.total_cost_excl_vat == Decimal("-4.00")


def test_cdr_totals_are_stored_to_four_places(api: Api) -> None:
    sent = cdr(total_cost={"excl_vat": Decimal("4.123456"),
                           "incl_vat": Decimal("999999999999.99994")})
    ok(api("POST", f"{V}/cdrs", sent), 201)
    row = db.session.scalar(select(OcpiCdr))
    assert row.total_cost_excl_vat == Decimal("4.1235")
    assert row.total_cost_incl_vat == Decimal("999999999999.9999")
    assert ok(api("GET", f"{V}/cdrs/{row.pk}"))["data"]["total_cost"] == sent["total_cost"]


def test_integers_are_fine_for_numbers(api: Api) -> None:
    ok(api("PUT", SES, session(kwh=41, total_cost={"excl_vat": 8, "incl_vat": 9})), 201)


# Commands, Tokens, Credentials: the other receivers.
OTHER_CASES_221: list[tuple[str, str, str, Any, int, int]] = [
    ("command-result-nul", "POST", f"{V}/commands/START_SESSION/cmd-1",
     {"result": "ACCEPTED", "message": [{"language": "en", "text": "o\u0000k"}]}, 200, 2001),
    ("command-result-deep", "POST", f"{V}/commands/START_SESSION/cmd-1",
     deep_in({"result": "ACCEPTED"}, 400), 200, 2001),
    ("command-result-raw-deep", "POST", f"{V}/commands/START_SESSION/cmd-1", raw_deep(5000),
     200, 2001),
    ("command-uid-too-long", "POST", f"{V}/commands/START_SESSION/{'c' * 37}",
     {"result": "ACCEPTED"}, 200, 2001),
    ("command-uid-non-ascii", "POST", f"{V}/commands/START_SESSION/c%C3%A9",
     {"result": "ACCEPTED"}, 200, 2001),
    ("tokens-offset-huge", "GET", f"{V}/tokens?offset=99999999999999999999", None, 200, 2001),
    ("tokens-offset-unicode-digit", "GET", f"{V}/tokens?offset=%D9%A5", None, 200, 2001),
    ("tokens-limit-negative", "GET", f"{V}/tokens?limit=-1", None, 200, 2001),
    ("tokens-date-garbage", "GET", f"{V}/tokens?date_from=2024-01-01T00:00:00%00", None,
     200, 2001),
    ("tokens-date-overflow", "GET", f"{V}/tokens?date_from=9999-12-31T23:59:59-23:59",
     None, 200, 2001),
    ("authorize-uid-nul", "POST", f"{V}/tokens/TOKEN00%00/authorize", None, 200, 2001),
    ("authorize-uid-too-long", "POST", f"{V}/tokens/{'T' * 37}/authorize", None, 200, 2001),
    ("authorize-refs-text", "POST", f"{V}/tokens/TOKEN00/authorize?type=AD_HOC_USER",
     {"location_id": "LOC1", "evse_uids": "3256"}, 200, 2001),
    ("authorize-refs-non-ascii", "POST", f"{V}/tokens/TOKEN00/authorize?type=AD_HOC_USER",
     {"location_id": "LÖC1"}, 200, 2001),
    ("cdr-pk-huge", "GET", f"{V}/cdrs/99999999999999999999999", None, 200, 2001),
    ("credentials-put-url-300", "PUT", f"{V}/credentials",
     {"token": "abc", "url": URL300, "roles": [
         {"role": "CPO", "party_id": "SIM", "country_code": "SE",
          "business_details": {"name": "Sim"}}]}, 200, 2001),
    ("credentials-put-token-nul", "PUT", f"{V}/credentials",
     {"token": "a\u0000b", "url": "https://x.example/ocpi/versions", "roles": []}, 200, 2001),
    ("credentials-put-party-non-ascii", "PUT", f"{V}/credentials",
     {"token": "abc", "url": "https://x.example/ocpi/versions", "roles": [
         {"role": "CPO", "party_id": "SİM", "country_code": "SE",
          "business_details": {"name": "Sim"}}]}, 200, 2001),
]


@pytest.mark.parametrize(("method", "path", "body", "http", "status"),
                         [c[1:] for c in OTHER_CASES_221], ids=[c[0] for c in OTHER_CASES_221])
def test_221_other_receivers_refuse(api: Api, party: Party, method: str, path: str,
                                    body: Any, http: int, status: int) -> None:
    add_command(party)
    issue_tokens(1)
    before = db.session.get(Party, party.pk).endpoints
    raw = body if isinstance(body, bytes) else None
    error(api(method, path, None if raw else body, raw=raw), http, status)
    assert command_row().result is None
    assert db.session.get(Party, party.pk).endpoints == before
    assert db.session.get(Party, party.pk).status == "CONNECTED"


def test_credentials_post_of_a_pending_party_refuses_a_long_url(api: Api) -> None:
    add_party("tok-A", None, None, status="PENDING")
    body = {"token": "abc", "url": URL300, "roles": [
        {"role": "CPO", "party_id": "NEW", "country_code": "SE",
         "business_details": {"name": "New"}}]}
    error(api("POST", f"{V}/credentials", body, auth=False,
              headers={"Authorization": f"Token {b64('tok-A')}"}), 200, 2001)
    pending = db.session.scalar(select(Party).where(Party.status == "PENDING"))
    assert pending.versions_url is None


# --- The attacker's list: 2.1.1 ---------------------------------------------------------

LOC211 = f"{W}/locations/NL/OLD/LOC1"
SES211 = f"{W}/sessions/NL/OLD/101"
TAR211 = f"{W}/tariffs/NL/OLD/12"


def test_211_spec_examples_are_taken_in(api: Api) -> None:
    ok(api("PUT", LOC211, location211(), headers=AUTH_211, auth=False), 201)
    ok(api("PUT", f"{W}/tariffs/NL/OLD/{tariff211()['id']}", tariff211(), headers=AUTH_211,
           auth=False), 201)
    ok(api("PUT", f"{W}/sessions/NL/OLD/{session211()['id']}", session211(),
           headers=AUTH_211, auth=False), 201)
    # The spec's CDR example writes a tariff price as text: read as a number, and noted.
    ok(api("POST", f"{W}/cdrs", cdr211(), headers=AUTH_211, auth=False), 201)
    assert notices("DEVIATION") == {"CDR_TARIFF_NUMBER_AS_TEXT": 1}
    stored_cdr = db.session.scalar(select(OcpiCdr)).data
    assert stored_cdr["tariffs"][0]["elements"][0]["price_components"][0]["price"] == 2


CASES_211: list[tuple[str, str, str, Any, int, int]] = [
    ("location-voltage-text", "PUT", LOC211,
     at(location211(), "evses.0.connectors.0.voltage", "230"), 200, 2001),
    ("location-evses-not-a-list", "PUT", LOC211, location211(evses="3256"), 200, 2001),
    ("location-id-non-ascii", "PUT", f"{W}/locations/NL/OLD/stra%C3%9Fe",
     location211(id="straße"), 200, 2001),
    ("location-id-too-long", "PUT", f"{W}/locations/NL/OLD/{LONG}", location211(id=LONG),
     200, 2001),
    ("location-deep-400", "PUT", LOC211, deep_in(location211(), 400), 200, 2001),
    ("location-deep-5000", "PUT", LOC211, raw_deep(5000), 200, 2001),
    ("location-path-nul", "PUT", f"{W}/locations/NL/OLD/L%00", location211(), 200, 2001),
    ("tariff-price-text", "PUT", TAR211,
     at(tariff211(), "elements.0.price_components.0.price", "2.00"), 200, 2001),
    ("tariff-price-1e16", "PUT", TAR211,
     at(tariff211(), "elements.0.price_components.0.price", Decimal("1E16")), 200, 2001),
    ("session-kwh-text", "PUT", SES211, session211(kwh="12.5"), 200, 2001),
    ("session-total-text", "PUT", SES211, session211(total_cost="2.5"), 200, 2001),
    ("session-auth-id-nul", "PUT", SES211, session211(auth_id="A\u0000"), 200, 2001),
    ("session-location-not-object", "PUT", SES211, session211(location=[1]), 200, 2001),
    ("cdr-total-1e16", "POST", f"{W}/cdrs", cdr211(total_cost=Decimal("1E16")), 200, 2001),
    ("cdr-total-text", "POST", f"{W}/cdrs", cdr211(total_cost="4.00"), 200, 2001),
    ("cdr-total-negative", "POST", f"{W}/cdrs", cdr211(total_cost=Decimal("-4.00")), 200,
     2001),
    ("cdr-energy-text", "POST", f"{W}/cdrs", cdr211(total_energy="15.342"), 200, 2001),
    ("cdr-evses-garbage", "POST", f"{W}/cdrs",
     at(cdr211(), "location.evses", [1, 2]), 200, 2001),
    ("cdr-deep", "POST", f"{W}/cdrs", deep_in(cdr211(), 400), 200, 2001),
]


@pytest.mark.parametrize(("method", "path", "body", "http", "status"),
                         [c[1:] for c in CASES_211], ids=[c[0] for c in CASES_211])
def test_211_receivers_refuse_and_store_nothing(api: Api, method: str, path: str, body: Any,
                                                http: int, status: int) -> None:
    before = stored()
    raw = body if isinstance(body, bytes) else None
    error(api(method, path, None if raw else body, raw=raw, headers=AUTH_211, auth=False),
          http, status)
    assert stored() == before


def test_211_patches_refused_change_nothing(api: Api) -> None:
    ok(api("PUT", LOC211, location211(), headers=AUTH_211, auth=False), 201)
    ok(api("PUT", SES211, session211(id="101"), headers=AUTH_211, auth=False), 201)
    db.session.rollback()
    before = [r.raw for m in (OcpiLocation, OcpiSession) for r in db.session.scalars(select(m))]
    for path, patch in [
        (LOC211, {"evses": 7, "last_updated": "2019-06-24T12:39:09Z"}),
        (LOC211, {"name": "N\u0000", "last_updated": "2019-06-24T12:39:09Z"}),
        (f"{LOC211}/3256", {"status": "CHARGING", "last_updated": 5}),
        (SES211, {"kwh": "12.5", "last_updated": "2019-06-23T08:16:02Z"}),
        (SES211, {"total_cost": "1", "last_updated": "2019-06-23T08:16:02Z"}),
        (SES211, {"location": "x", "last_updated": "2019-06-23T08:16:02Z"}),
    ]:
        error(api("PATCH", path, patch, headers=AUTH_211, auth=False), 200, 2001)
    db.session.rollback()
    assert [r.raw for m in (OcpiLocation, OcpiSession)
            for r in db.session.scalars(select(m))] == before


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [("POST", f"{W}/commands/START_SESSION/cmd-9", deep_in({"result": "ACCEPTED"}, 400)),
     ("POST", f"{W}/commands/START_SESSION/{'c' * 37}", {"result": "ACCEPTED"}),
     ("GET", f"{W}/tokens?offset=1e3", None),
     ("GET", f"{W}/tokens?date_to=0000-01-01", None),
     ("POST", f"{W}/tokens/%E2%82%AC/authorize", None),
     ("PUT", f"{W}/credentials", {"token": "abc", "url": URL300, "party_id": "OLD",
                                   "country_code": "NL", "business_details": {"name": "O"}})],
    ids=["command-deep", "command-uid-long", "offset", "date", "authorize-uid",
         "credentials-url-300"],
)
def test_211_other_receivers_refuse(api: Api, party211: Party, method: str, path: str,
                                    body: Any) -> None:
    add_command(party211, uid="cmd-9")
    raw = body if isinstance(body, bytes) else None
    error(api(method, path, None if raw else body, raw=raw, headers=AUTH_211, auth=False),
          200, 2001)
    assert command_row("cmd-9").result is None
    assert db.session.get(Party, party211.pk).versions_url is None


# --- Tolerances ---------------------------------------------------------------------------


def test_cdr_without_evse_uid_takes_it_from_its_session(api: Api) -> None:
    ok(api("PUT", f"{V}/sessions/SE/SIM/101", session()), 201)
    sent = at(cdr(session_id="101"), "cdr_location.evse_uid", DELETE)
    ok(api("POST", f"{V}/cdrs", sent), 201)
    got = db.session.scalar(select(OcpiCdr)).data
    assert got["cdr_location"]["evse_uid"] == session()["evse_uid"]
    assert notices("DEVIATION") == {"CDR_WITHOUT_EVSE_UID": 1}
    ok(api("POST", f"{V}/cdrs", at(sent, "id", "12346")), 201)
    assert notices("DEVIATION") == {"CDR_WITHOUT_EVSE_UID": 2}  # counted, one row


def test_cdr_without_evse_uid_and_no_session_is_refused(api: Api, other_party: Party) -> None:
    sent = at(cdr(session_id="101"), "cdr_location.evse_uid", DELETE)
    assert "evse_uid" in error(api("POST", f"{V}/cdrs", sent), 200, 2001)
    # Another connection's Session of the same id is no source either.
    db.session.add(OcpiSession(party_pk=other_party.pk, country_code="SE", party_id="SIM",
                               session_id="101", token_uid="X", status="ACTIVE",
                               raw=json_dumps(session()),
                               last_updated=Session.model_validate(session())
                               .last_updated))
    db.session.commit()
    error(api("POST", f"{V}/cdrs", sent), 200, 2001)
    assert db.session.scalar(select(func.count()).select_from(OcpiCdr)) == 0
    assert "CDR_WITHOUT_EVSE_UID" not in notices()


@pytest.fixture
def other_party(app: Any) -> Party:
    return add_party("tok-N", "NL", "TNM")


def test_cdr_token_without_owner_is_the_emsps_token(api: Api, app: Any) -> None:
    sent = cdr()
    del sent["cdr_token"]["country_code"], sent["cdr_token"]["party_id"]
    ok(api("POST", f"{V}/cdrs", sent), 201)
    token = db.session.scalar(select(OcpiCdr)).data["cdr_token"]
    assert (token["country_code"], token["party_id"]) == (app.config["OCPI_COUNTRY_CODE"],
                                                          app.config["OCPI_PARTY_ID"])
    assert notices("DEVIATION") == {"CDR_TOKEN_WITHOUT_OWNER": 1}


class _Client:
    def __init__(self, data: Any) -> None:
        self.data = data

    def request(self, *args: Any, **kwargs: Any) -> tuple[dict[str, Any], None]:
        return {"data": self.data, "status_code": 1000}, None


@pytest.mark.parametrize(
    ("answer", "timeout", "deviation"),
    [({"result": "ACCEPTED", "timeout": 30}, 30, None),
     ({"result": "ACCEPTED"}, 60, "COMMAND_RESPONSE_WITHOUT_TIMEOUT"),
     ({"result": "ACCEPTED", "timeout": "30"}, None, None)],  # text: refused, ERROR
    ids=["with-timeout", "without-timeout", "timeout-text"],
)
def test_command_response_without_timeout_gets_the_default(
        app: Any, party: Party, monkeypatch: pytest.MonkeyPatch, answer: dict[str, Any],
        timeout: int | None, deviation: str | None) -> None:
    app.config["OCPI_DEFAULT_COMMAND_TIMEOUT"] = 60
    party.endpoints = [{"identifier": "commands", "role": "RECEIVER",
                        "url": "https://cpo.example/commands"}]
    db.session.commit()
    monkeypatch.setattr(commands.OcpiClient, "for_party", lambda *a, **k: _Client(answer))
    row = commands.send_command(party, CommandType.STOP_SESSION, {"session_id": "1"})
    assert row.timeout_seconds == timeout
    assert row.response_result == ("ACCEPTED" if timeout else "ERROR")
    assert notices("DEVIATION") == ({deviation: 1} if deviation else {})


# --- A refused CDR flags its charge -----------------------------------------------------


def waiting_charge(party: Party, n: int, status: ChargeStatus = ChargeStatus.ENDED) -> Charge:
    """A charge whose session ended and whose CDR it waits for (as charge_factory builds
    them, without the CDR)."""
    charge = Charge(party_pk=party.pk, cpo_country_code=party.country_code,
                    cpo_party_id=party.party_id, location_id="LOC1", evse_uid="3256",
                    evse_id="BE*BEC*E041503001", connector_id="1", currency="EUR",
                    hold_minor=30000, gateway="demo", token_uid=f"TOK{n}",
                    authorization_reference=f"REF{n}", status=status.value)
    db.session.add(charge)
    db.session.commit()
    return charge


def flagged(charge: Charge) -> tuple[str | None, list[str]]:
    db.session.rollback()
    row = db.session.get(Charge, charge.pk)
    notes = [e.note or "" for e in db.session.scalars(
        select(ChargeEvent).where(ChargeEvent.charge_pk == charge.pk))]
    return row.failure_code, notes


REFUSED_CDRS: list[tuple[str, Callable[[], Any]]] = [
    ("negative-total", lambda: cdr(authorization_reference="REF1", total_cost={
        "excl_vat": Decimal("-4.00"), "incl_vat": Decimal("-4.40")})),
    ("total-1e16", lambda: cdr(authorization_reference="REF1", total_cost={
        "excl_vat": Decimal("1E16")})),
    ("kwh-text", lambda: cdr(authorization_reference="REF1", total_energy="15")),
    ("token-uid-only", lambda: at(cdr(total_time="1"), "cdr_token.uid", "TOK1")),
    ("broken-json", lambda: b'{"id": "12345", "authorization_reference": "REF1", "total'),
    ("deep", lambda: raw_deep(5000)[:-1] + b', "authorization_reference": "REF1"}'),
]


@pytest.mark.parametrize("make", [m for _, m in REFUSED_CDRS], ids=[i for i, _ in REFUSED_CDRS])
def test_refused_cdr_flags_its_charge(api: Api, party: Party, make: Callable[[], Any]) -> None:
    charge = waiting_charge(party, 1)
    body = make()
    raw = body if isinstance(body, bytes) else None
    response = api("POST", f"{V}/cdrs", None if raw else body, raw=raw)
    assert response.body["status_code"] == 2001
    assert response.status_code in {200, 400}
    code, notes = flagged(charge)
    assert code == "CDR_REFUSED"
    assert any(n.startswith("CDR refused: ") for n in notes)
    assert db.session.get(Charge, charge.pk).status == "ENDED"  # the sweeper still settles
    assert notices("REFUSED") == {"CDR_REFUSED": 1}
    assert db.session.scalar(select(func.count()).select_from(OcpiCdr)) == 0
    # The message log keeps what was sent, as sent.
    logged = db.session.scalars(select(OcpiMessage).where(OcpiMessage.url == f"{V}/cdrs"))
    sent = raw.decode() if raw else json_dumps(body)
    assert next(m.request_body for m in logged if m.ocpi_status == 2001) == sent


def test_refused_cdr_of_another_cpo_flags_nothing(api: Api, party: Party,
                                                  other_party: Party) -> None:
    charge = waiting_charge(party, 1)
    body = cdr(country_code="NL", party_id="TNM", authorization_reference="REF1",
               total_cost={"excl_vat": Decimal("-1")})
    error(api("POST", f"{V}/cdrs", body, auth=False,
              headers={"Authorization": f"Token {b64('tok-N')}"}), 200, 2001)
    assert flagged(charge)[0] is None
    assert notices("REFUSED") == {"CDR_REFUSED": 1}


def test_valid_cdr_after_a_refused_one_settles_as_usual(api: Api, party: Party) -> None:
    charge = waiting_charge(party, 1)
    error(api("POST", f"{V}/cdrs", cdr(authorization_reference="REF1", total_energy="1")),
          200, 2001)
    ok(api("POST", f"{V}/cdrs", cdr(authorization_reference="REF1")), 201)
    db.session.rollback()
    assert db.session.get(Charge, charge.pk).cdr_pk is not None


def test_refused_211_cdr_flags_its_charge(api: Api, party211: Party) -> None:
    charge = waiting_charge(party211, 7, ChargeStatus.CHARGING)
    body = cdr211(auth_id="TOK7", total_cost="4.00")
    error(api("POST", f"{W}/cdrs", body, headers=AUTH_211, auth=False), 200, 2001)
    code, _notes = flagged(charge)
    assert code == "CDR_REFUSED"
    assert notices("REFUSED") == {"CDR_REFUSED": 1}
    assert db.session.get(Charge, charge.pk).status == "CHARGING"


def test_refusal_is_announced_with_the_ids_it_could_read(api: Api, party: Party) -> None:
    from ocpi import signals

    seen: list[dict[str, Any]] = []

    def receive(sender: str, **kw: Any) -> None:
        seen.append(kw)

    signals.cdr_refused.connect(receive)
    try:
        error(api("POST", f"{V}/cdrs", cdr(authorization_reference="R\u00e9F",
                                            total_energy="1")), 200, 2001)
        error(api("POST", f"{V}/cdrs", cdr(total_energy="1")), 200, 2001)
    finally:
        signals.cdr_refused.disconnect(receive)
    assert seen[0]["authorization_reference"] is None  # not plain ASCII: not passed on
    assert seen[1] == {"party_pk": party.pk, "country_code": "SE", "party_id": "SIM",
                       "cdr_id": "12345", "authorization_reference": None,
                       "token_uid": "012345678", "reason": seen[1]["reason"]}
    assert seen[1]["reason"].startswith("Invalid Cdr: total_energy")


def test_auth_header_for_the_message_log_never_stored(api: Api) -> None:
    # Refused or not, the log keeps no headers: only the body (scrubbed of tokens).
    error(api("POST", f"{V}/cdrs", cdr(total_energy="1")), 200, 2001)
    for message in db.session.scalars(select(OcpiMessage)):
        assert AUTH["Authorization"].split()[1] not in (message.request_body or "")
    assert db.session.scalar(select(func.count()).select_from(OcpiCommand)) == 0


def test_a_deep_body_with_a_token_is_still_logged_scrubbed(api: Api) -> None:
    # Too deep to re-serialise after redaction: cleaned as text, but kept.
    body = deep_in({"token": "secret-token", "url": "https://x.example"}, 900)
    error(api("PUT", f"{V}/credentials", raw=body), 200, 2001)
    logged = [m.request_body for m in db.session.scalars(
        select(OcpiMessage).where(OcpiMessage.url == f"{V}/credentials"))]
    assert len(logged) == 1
    assert "secret-token" not in logged[0] and '"x_vendor": {"x": ' in logged[0]


def test_refused_cdr_keeps_a_flag_the_sweeper_obeys(api: Api, party: Party) -> None:
    charge = waiting_charge(party, 1)
    charge.failure_code = "UNPAID_SESSION"
    db.session.commit()
    error(api("POST", f"{V}/cdrs", cdr(authorization_reference="REF1", total_energy="1")),
          200, 2001)
    code, notes = flagged(charge)
    assert code == "UNPAID_SESSION"
    assert any(n.startswith("CDR refused: ") for n in notes)


def test_a_peer_answering_too_deep_json_is_no_envelope() -> None:
    from ocpi.transport import unwrap

    with pytest.raises(OcpiError):
        unwrap(b"[" * 100_000 + b"]" * 100_000)
