"""The trust model's pieces, one at a time: identities granted by the operator, claims
checked at registration, notices counted, EVSE-IDs claimed once, Sessions and CDRs matched
to charges by who sent them, Tokens shown only to their own party, and migration 0004's
backfill of what existed before. tests/test_hostile_parties.py tries the same over HTTP."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from sqlalchemy import create_engine, func, select, text

from charging import connectors, cpo
from charging.models import Charge
from charging.states import ChargeStatus as S
from extensions import db
from ocpi import credentials, notices, store
from ocpi.models import (
    IssuedToken,
    OcpiEvse,
    OcpiNotice,
    OcpiSession,
    Party,
    PartyGrant,
    dump_json,
    token_hash,
)
from ocpi.transport import OcpiError, now_utc


def b64(token: str) -> str:
    return base64.b64encode(token.encode()).decode()


def connected(name: str, token: str, *identities: tuple[str, str, str]) -> Party:
    _role, country_code, party_id = identities[0]
    party = Party(name=name, status="CONNECTED", country_code=country_code, party_id=party_id,
                  incoming_token_hash=token_hash(token), outgoing_token="out", endpoints=[],
                  grants=[PartyGrant(role=r, country_code=c, party_id=p)
                          for r, c, p in identities])
    db.session.add(party)
    db.session.commit()
    return party


# --- Identities --------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "expected"), [
    ("CPO:SE*ABC", ("CPO", "SE", "ABC")),
    ("hub:de*hb1", ("HUB", "DE", "HB1")),
    ("SE*ABC", ("CPO", "SE", "ABC")),
    ("SE/AB", ("CPO", "SE", "AB")),
])
def test_identities_are_read_as_role_country_and_party(text: str, expected: tuple) -> None:
    assert credentials.parse_identity(text) == expected


@pytest.mark.parametrize("text", [
    "EMSP:SE*ABC", "SE*ABCD", "S*ABC", "SEABC", "SE*", "SE*A-C", "SE*ÅBC", "CPO:SE*AB\x00",
])
def test_what_is_not_an_identity_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="is not an identity"):
        credentials.parse_identity(text)


def test_an_identity_belongs_to_one_connection(app: Any) -> None:
    connected("A", "tok-a", ("CPO", "SE", "ABC"))
    with pytest.raises(OcpiError, match="belongs to another connection"):
        credentials.invite("Impostor", [("CPO", "SE", "XYZ"), ("CPO", "SE", "ABC")])
    # Nothing of the refused invitation is kept, not even its first, free identity.
    assert db.session.scalar(select(func.count()).select_from(Party)) == 1
    assert db.session.scalar(select(func.count()).select_from(PartyGrant)) == 1


def test_an_invitation_names_at_least_one_identity(app: Any) -> None:
    with pytest.raises(ValueError):
        credentials.invite("Nobody", [])


def test_a_disconnected_connection_gives_its_identity_up(app: Any) -> None:
    old = connected("Old", "tok-old", ("CPO", "SE", "ABC"))
    old.status = "DISCONNECTED"
    db.session.commit()
    new, _ = credentials.invite("New", [("CPO", "SE", "ABC")])
    assert [g.party_pk for g in db.session.scalars(select(PartyGrant))] == [new.pk]
    assert db.session.get(Party, old.pk).owns("SE", "ABC") is False
    assert db.session.get(Party, new.pk).owns("se", "abc") is True


def test_a_hub_owns_only_what_it_was_granted_and_what_its_clients_info_allows(app: Any) -> None:
    hub = connected("Hub", "tok-h", ("HUB", "DE", "HUB"), ("CPO", "NL", "ABC"))
    assert hub.is_hub and hub.owns("NL", "ABC") and not hub.owns("SE", "SIM")
    assert not hub.owns("DE", "HUB")  # the hub's own identity pushes no charger objects
    grant = hub.grant_for("NL", "ABC")
    for status, usable in (("CONNECTED", True), ("OFFLINE", True), ("PLANNED", False),
                           ("SUSPENDED", False), (None, True)):
        grant.hub_status = status
        assert hub.owns("NL", "ABC") is usable, status


# --- Claims at registration --------------------------------------------------------------


def credentials_body(*roles: tuple[str, str, str]) -> dict[str, Any]:
    return {"token": "their-token", "url": "http://127.0.0.1:9/ocpi/versions",
            "roles": [{"role": r, "country_code": c, "party_id": p,
                       "business_details": {"name": "Them"}} for r, c, p in roles]}


@pytest.mark.parametrize("claimed", [
    [("CPO", "SE", "SIM")],                       # another connection's identity
    [("CPO", "SE", "NEW"), ("CPO", "SE", "SIM")],  # one granted, one not
    [("HUB", "SE", "NEW")],                       # a hub role it was not granted
    [("EMSP", "SE", "NEW")],                      # no CPO or HUB role at all
])
def test_registering_with_a_claim_not_granted_is_refused_and_changes_nothing(
    client: Any, claimed: list[tuple[str, str, str]]
) -> None:
    connected("Sim", "tok-sim", ("CPO", "SE", "SIM"))
    invited, token_a = credentials.invite("New CPO", [("CPO", "SE", "NEW")])
    answer = client.post("/ocpi/2.2.1/credentials", json=credentials_body(*claimed),
                         headers={"Authorization": f"Token {b64(token_a)}"})
    assert answer.status_code == 400
    assert answer.get_json()["status_code"] == 2001
    db.session.expire_all()
    party = db.session.get(Party, invited.pk)
    assert (party.status, party.outgoing_token, party.versions_url) == ("PENDING", None, None)
    assert [g.label for g in party.grants] == ["CPO SE*NEW"]
    assert party.incoming_token_hash == token_hash(token_a)


# --- Notices -----------------------------------------------------------------------------


def test_a_notice_is_counted_once_per_party_code_and_object(app: Any) -> None:
    party = connected("A", "tok-a", ("CPO", "SE", "ABC"))
    for _ in range(3):
        notices.deviation(party.pk, "COMMAND_RESPONSE_WITHOUT_TIMEOUT", "no timeout")
    notices.record(party.pk, "MISUSE", "FOREIGN_CDR", "first", object_key="CDR:1")
    notices.record(party.pk, "MISUSE", "FOREIGN_CDR", "second", object_key="CDR:2")
    db.session.commit()
    rows = {(n.code, n.object_key): (n.count, n.detail) for n in notices.for_party(party.pk)}
    assert rows == {("COMMAND_RESPONSE_WITHOUT_TIMEOUT", ""): (3, "no timeout"),
                    ("FOREIGN_CDR", "CDR:1"): (1, "first"),
                    ("FOREIGN_CDR", "CDR:2"): (1, "second")}
    with pytest.raises(ValueError):
        notices.record(party.pk, "WHATEVER", "X", "y")


# --- EVSE-IDs ----------------------------------------------------------------------------


def location(party_id: str, location_id: str, evse_id: str, updated: str) -> dict[str, Any]:
    return {
        "country_code": "SE", "party_id": party_id, "id": location_id, "publish": True,
        "address": "Gatan 1", "city": "Stockholm", "country": "SWE",
        "coordinates": {"latitude": "59.3", "longitude": "18.0"}, "time_zone": "Europe/Stockholm",
        "evses": [{"uid": f"{location_id}-1", "evse_id": evse_id, "status": "AVAILABLE",
                   "connectors": [{"id": "1", "standard": "IEC_62196_T2", "format": "SOCKET",
                                   "power_type": "AC_3_PHASE", "max_voltage": 230,
                                   "max_amperage": 32, "last_updated": updated}],
                   "last_updated": updated}],
        "last_updated": updated,
    }


def test_the_first_party_to_publish_an_evse_id_keeps_it(app: Any) -> None:
    first = connected("First", "tok-1", ("CPO", "SE", "ONE"))
    second = connected("Second", "tok-2", ("CPO", "SE", "TWO"))
    store.upsert_location(first, location("ONE", "L1", "SE*ONE*E1", "2026-01-01T00:00:00Z"))
    # The newcomer is newer, and writes the EVSE-ID differently: it still loses.
    store.upsert_location(second, location("TWO", "L2", "se-one-e1", "2026-06-01T00:00:00Z"))
    db.session.commit()
    evse, found, party = connectors.find_evse("SE*ONE*E1")
    assert (party.name, found.location_id, evse.clash) == ("First", "L1", False)
    clashing = db.session.scalar(select(OcpiEvse).where(OcpiEvse.evse_uid == "L2-1"))
    assert clashing.clash is True
    notice = db.session.scalar(select(OcpiNotice).where(OcpiNotice.kind == "CLASH"))
    assert (notice.party_pk, notice.object_key) == (second.pk, "SEONEE1")
    # The owner may publish it again, at another of its locations too.
    store.upsert_location(first, location("ONE", "L3", "SE*ONE*E1", "2026-07-01T00:00:00Z"))
    db.session.commit()
    assert db.session.scalar(select(OcpiEvse).where(OcpiEvse.evse_uid == "L3-1")).clash is False


@pytest.mark.parametrize(("evse_id", "country_code", "party_id", "matches"), [
    ("SE*ABC*E1", "SE", "ABC", True),
    ("se-abc-e1", "SE", "ABC", True),
    ("SEABCE1", "SE", "ABC", True),
    ("NL*ABC*E1", "SE", "ABC", False),
    ("SE*XYZ*E1", "SE", "ABC", False),
])
def test_an_evse_id_prefix_that_differs_from_its_party_is_noticed(
    evse_id: str, country_code: str, party_id: str, matches: bool
) -> None:
    assert store.evse_id_matches_owner(evse_id, country_code, party_id) is matches


def test_a_location_pushed_for_a_party_the_connection_does_not_hold_is_refused(app: Any) -> None:
    stranger = connected("Stranger", "tok-s", ("CPO", "SE", "STR"))
    with pytest.raises(store.NotOwner):
        store.upsert_location(stranger, location("ONE", "L1", "SE*ONE*E1",
                                                 "2026-01-01T00:00:00Z"))


# --- Sessions and CDRs are matched by who sent them ---------------------------------------


@pytest.fixture
def charge_at_a(app: Any) -> Charge:
    a = connected("A", "tok-a", ("CPO", "SE", "AAA"))
    charge = Charge(party_pk=a.pk, cpo_country_code="SE", cpo_party_id="AAA", location_id="L",
                    evse_uid="E", evse_id="SE*AAA*E1", connector_id="1", currency="SEK",
                    hold_minor=10000, gateway="demo", hold_id="pi_demo_a", token_uid="TOKA",
                    authorization_reference="REFA", status=S.STARTING.value)
    db.session.add(charge)
    db.session.commit()
    return charge


def session_row(party: Party, party_id: str, session_id: str) -> OcpiSession:
    row = OcpiSession(party_pk=party.pk, country_code="SE", party_id=party_id,
                      session_id=session_id, authorization_reference="REFA", token_uid="TOKA",
                      status="ACTIVE", raw="{}", last_updated=now_utc())
    db.session.add(row)
    db.session.commit()
    return row


def test_a_session_from_its_own_cpo_finds_the_charge(charge_at_a: Charge) -> None:
    a = db.session.get(Party, charge_at_a.party_pk)
    assert cpo.lock_charge_for_object(session_row(a, "AAA", "S1")) is charge_at_a


def test_a_session_from_another_cpo_with_our_references_moves_nothing(
    charge_at_a: Charge
) -> None:
    b = connected("B", "tok-b", ("CPO", "SE", "BBB"))
    assert cpo.lock_charge_for_object(session_row(b, "BBB", "S1")) is None
    notice = db.session.scalar(select(OcpiNotice))
    assert (notice.party_pk, notice.kind, notice.code, notice.object_key) == (
        b.pk, "MISUSE", "FOREIGN_SESSION", "Session:S1")
    assert db.session.get(Charge, charge_at_a.pk).status == S.STARTING.value


def test_the_same_identity_over_another_connection_is_not_the_owner(
    charge_at_a: Charge
) -> None:
    # A hub connection that once held SE*AAA, say: the charge was started over A's.
    hub = connected("Hub", "tok-h", ("HUB", "DE", "HUB"))
    assert cpo.owned_by(charge_at_a, hub.pk, "SE", "AAA") is False
    assert cpo.owned_by(charge_at_a, charge_at_a.party_pk, "se", "aaa") is True


# --- Tokens ------------------------------------------------------------------------------


def issued(uid: str, party: Party, party_id: str, country_code: str = "SE") -> None:
    data = {"country_code": "SE", "party_id": "SCN", "uid": uid, "type": "AD_HOC_USER",
            "contract_id": f"SESCN{uid}", "issuer": "ScanCharge", "valid": True,
            "whitelist": "ALLOWED", "last_updated": "2026-11-21T10:00:00Z"}
    db.session.add(IssuedToken(uid=uid, type="AD_HOC_USER", contract_id=data["contract_id"],
                               raw=dump_json(data), party_pk=party.pk,
                               country_code=country_code, party_id=party_id))
    db.session.commit()


def test_a_party_sees_and_asks_about_only_its_own_tokens(client: Any) -> None:
    a = connected("A", "tok-a", ("CPO", "SE", "AAA"))
    b = connected("B", "tok-b", ("CPO", "SE", "BBB"))
    issued("TOKA", a, "AAA")
    issued("TOKB", b, "BBB")
    for token, mine, theirs in (("tok-a", "TOKA", "TOKB"), ("tok-b", "TOKB", "TOKA")):
        auth = {"Authorization": f"Token {b64(token)}"}
        listed = client.get("/ocpi/2.2.1/tokens", headers=auth).get_json()
        assert [t["uid"] for t in listed["data"]] == [mine]
        asked = client.post(f"/ocpi/2.2.1/tokens/{theirs}/authorize?type=AD_HOC_USER",
                            headers=auth)
        assert (asked.status_code, asked.get_json()["status_code"]) == (404, 2004)
        listed_211 = client.get("/ocpi/2.1.1/tokens", headers={"Authorization": f"Token {token}"})
        assert [t["uid"] for t in listed_211.get_json()["data"]] == [mine]


def test_a_hub_sees_the_tokens_of_the_cpo_it_says_it_acts_for(client: Any) -> None:
    hub = connected("Hub", "tok-h", ("HUB", "DE", "HUB"), ("CPO", "NL", "ONE"),
                    ("CPO", "NL", "TWO"))
    issued("TOK1", hub, "ONE", "NL")
    issued("TOK2", hub, "TWO", "NL")
    auth = {"Authorization": f"Token {b64('tok-h')}"}

    def uids(**headers: str) -> Any:
        answer = client.get("/ocpi/2.2.1/tokens", headers={**auth, **headers})
        return answer.status_code, [t["uid"] for t in answer.get_json().get("data") or []]

    assert uids() == (200, ["TOK1", "TOK2"])
    assert uids(**{"OCPI-from-country-code": "NL", "OCPI-from-party-id": "ONE"}) == (
        200, ["TOK1"])
    assert uids(**{"OCPI-from-country-code": "SE", "OCPI-from-party-id": "SIM"})[0] == 404


# --- Migration 0004 ----------------------------------------------------------------------


def test_migration_0004_keeps_existing_connections_and_owners(tmp_path: Any) -> None:
    from flask_migrate import upgrade

    from app import MIGRATIONS_DIR, create_app
    from tests.conftest import _test_settings

    url = f"sqlite:///{tmp_path / 'old.db'}"
    old = create_app({**_test_settings(), "SQLALCHEMY_DATABASE_URI": url})
    with old.app_context():
        upgrade(directory=MIGRATIONS_DIR, revision="0003")
    engine = create_engine(url)
    roles = ('[{"role": "CPO", "country_code": "SE", "party_id": "SIM", '
             '"business_details": {"name": "Sim"}}]')
    with engine.begin() as conn:
        for pk, status in ((1, "CONNECTED"), (2, "CONNECTED"), (3, "DISCONNECTED")):
            # Party 2 claimed the same identity as party 1 before grants existed.
            conn.execute(text(
                "INSERT INTO ocpi_parties (pk, name, country_code, party_id, roles, status, "
                "endpoints, auth_encoding, created_at, updated_at) VALUES (:pk, 'p', 'SE', "
                "'SIM', :roles, :status, '[]', 'base64', '2026-01-01', '2026-01-01')"),
                {"pk": pk, "roles": roles, "status": status})
        conn.execute(text(
            "INSERT INTO ocpi_locations (pk, party_pk, country_code, party_id, location_id, "
            "time_zone, raw, last_updated) VALUES (1, 1, 'SE', 'SIM', 'LOC1', 'UTC', '{}', "
            "'2026-01-01')"))
        conn.execute(text(
            "INSERT INTO charges (pk, public_id, status, lock_version, party_pk, location_id, "
            "evse_uid, evse_id, connector_id, currency, hold_minor, refunded_minor, gateway, "
            "token_uid, authorization_reference, energy_kwh, language, created_at, updated_at)"
            " VALUES (1, 'pub', 'CHARGING', 0, 1, 'LOC1', 'E', 'SE*SIM*E1', '1', 'SEK', 100, "
            "0, 'demo', 'TOK1', 'REF1', 0, 'sv', '2026-01-01', '2026-01-01')"))
        conn.execute(text(
            "INSERT INTO ocpi_tokens (pk, uid, type, contract_id, valid, raw, last_updated) "
            "VALUES (1, 'TOK1', 'AD_HOC_USER', 'C', 1, '{}', '2026-01-01')"))
    with old.app_context():
        upgrade(directory=MIGRATIONS_DIR)
    with engine.connect() as conn:
        grants = conn.execute(text(
            "SELECT party_pk, role, country_code, party_id FROM ocpi_grants")).all()
        charge = conn.execute(text("SELECT cpo_country_code, cpo_party_id FROM charges")).one()
        token = conn.execute(text(
            "SELECT party_pk, country_code, party_id FROM ocpi_tokens")).one()
    engine.dispose()
    assert grants == [(1, "CPO", "SE", "SIM")]  # the first keeps it; the disconnected none
    assert tuple(charge) == ("SE", "SIM")
    assert tuple(token) == (1, "SE", "SIM")
