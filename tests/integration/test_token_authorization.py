"""Real-time authorization of the one-time Tokens ScanCharge issues: from the charge's
state and location (mod_tokens: POST {tokens}/{uid}/authorize)."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from charging.models import Charge
from charging.states import ChargeStatus as S
from extensions import db
from ocpi.models import IssuedToken, Party, PartyGrant, dump_json, token_hash

AUTH = {"Authorization": "Token " + base64.b64encode(b"tok-C").decode()}


@pytest.fixture
def charge(app: Any) -> Charge:
    party = Party(name="Sim", status="CONNECTED", country_code="SE", party_id="SIM",
                  grants=[PartyGrant(role="CPO", country_code="SE", party_id="SIM")],
                  incoming_token_hash=token_hash("tok-C"), outgoing_token="tok-B",
                  roles=[{"role": "CPO", "party_id": "SIM", "country_code": "SE",
                          "business_details": {"name": "Sim"}}], version="2.2.1")
    db.session.add(party)
    db.session.flush()
    row = Charge(party_pk=party.pk, cpo_country_code="SE", cpo_party_id="SIM",
                 location_id="LOC1", evse_uid="EVSE1",
                 evse_id="SE*SIM*E00001", connector_id="1", currency="SEK", hold_minor=10000,
                 gateway="demo", hold_id="pi_demo_1", token_uid="TOK1",
                 authorization_reference="REF1", status=S.CHARGING.value)
    db.session.add(row)
    token = {"country_code": "SE", "party_id": "SCN", "uid": "TOK1", "type": "AD_HOC_USER",
             "contract_id": "SESCN1", "issuer": "ScanCharge", "valid": True,
             "whitelist": "ALLOWED", "last_updated": "2026-11-21T10:00:00Z"}
    db.session.add(IssuedToken(uid="TOK1", type="AD_HOC_USER", contract_id="SESCN1",
                               party_pk=party.pk, country_code="SE", party_id="SIM",
                               raw=dump_json(token)))
    db.session.commit()
    return row


def authorize(client: Any, body: Any = None, uid: str = "TOK1") -> Any:
    return client.post(f"/ocpi/2.2.1/tokens/{uid}/authorize?type=AD_HOC_USER", json=body,
                       headers=AUTH)


def test_allowed_at_its_own_location_with_the_reference(client: Any, charge: Charge) -> None:
    data = authorize(client, {"location_id": "loc1", "evse_uids": ["EVSE1"]}).get_json()["data"]
    assert data["allowed"] == "ALLOWED"
    assert data["authorization_reference"] == "REF1"
    assert data["location"] == {"location_id": "loc1", "evse_uids": ["EVSE1"]}
    assert data["token"]["uid"] == "TOK1"


@pytest.mark.parametrize("refs", [{"location_id": "OTHER"},
                                  {"location_id": "LOC1", "evse_uids": ["EVSE2"]}])
def test_not_allowed_anywhere_else(client: Any, charge: Charge, refs: dict) -> None:
    data = authorize(client, refs).get_json()["data"]
    assert data["allowed"] == "NOT_ALLOWED"
    assert "authorization_reference" not in data and "location" not in data


def test_expired_once_the_charge_is_over(client: Any, charge: Charge) -> None:
    charge.status = S.CAPTURED.value
    db.session.commit()
    assert authorize(client, {"location_id": "LOC1"}).get_json()["data"]["allowed"] == "EXPIRED"


def test_bad_location_references_are_2001(client: Any, charge: Charge) -> None:
    answer = authorize(client, {"evse_uids": ["EVSE1"]})
    assert answer.get_json()["status_code"] == 2001
    assert "location_id" in answer.get_json()["status_message"]


def test_unknown_token_is_404_with_2004(client: Any, charge: Charge) -> None:
    answer = authorize(client, None, uid="NOPE")
    assert answer.status_code == 404 and answer.get_json()["status_code"] == 2004
