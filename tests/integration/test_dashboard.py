"""The operator dashboard: sign-in, the charges list, a charge's timeline, QR stickers."""

from __future__ import annotations

import re
from typing import Any

import pytest

from charging.models import Charge, ChargeEvent
from dashboard.models import set_operator
from extensions import db
from ocpi.models import Party, PartyGrant


@pytest.fixture
def operator(app: Any) -> tuple[str, str]:
    set_operator("ops@example.com", "correct horse")
    return "ops@example.com", "correct horse"


def csrf(client: Any, path: str) -> str:
    page = client.get(path).get_data(as_text=True)
    return re.search(r'name="csrf" value="([^"]+)"', page).group(1)


def sign_in(client: Any, email: str, password: str) -> Any:
    token = csrf(client, "/dashboard/login")
    return client.post("/dashboard/login", data={"email": email, "password": password,
                                                 "csrf": token})


@pytest.fixture
def charge(app: Any) -> Charge:
    party = Party(name="Sim CPO", status="CONNECTED", country_code="SE", party_id="SIM",
                  grants=[PartyGrant(role="CPO", country_code="SE", party_id="SIM")])
    db.session.add(party)
    db.session.flush()
    row = Charge(party_pk=party.pk, cpo_country_code="SE", cpo_party_id="SIM",
                 location_id="LOC1", evse_uid="EVSE1",
                 evse_id="SE*SIM*E00001", connector_id="1", currency="SEK", hold_minor=30000,
                 captured_minor=2125, gateway="demo", hold_id="pi_demo_1", token_uid="TOK1",
                 authorization_reference="REF1", status="CAPTURED")
    db.session.add(row)
    db.session.flush()
    db.session.add_all([
        ChargeEvent(charge_pk=row.pk, from_status=None, to_status="CREATED", cause="driver"),
        ChargeEvent(charge_pk=row.pk, from_status="ENDED", to_status="CAPTURED",
                    cause="payment", cause_ref="pi_demo_1",
                    note="captured SEK 21.25 of SEK 300.00 held"),
    ])
    db.session.commit()
    return row


def test_pages_need_a_signed_in_operator(client: Any) -> None:
    for path in ("/dashboard/", "/dashboard/chargers", "/dashboard/cpos",
                 "/dashboard/qr/SE*SIM*E00001.png"):
        response = client.get(path)
        assert response.status_code == 302
        assert "/dashboard/login" in response.headers["Location"]


def test_wrong_password_is_refused_with_a_message(client: Any, operator: tuple) -> None:
    response = sign_in(client, operator[0], "wrong")
    assert response.status_code == 200
    assert "Wrong e-mail or password" in response.get_data(as_text=True)
    assert client.get("/dashboard/").status_code == 302


def test_login_without_the_form_token_is_refused(client: Any, operator: tuple) -> None:
    response = client.post("/dashboard/login", data={"email": operator[0],
                                                     "password": operator[1]})
    assert response.status_code == 400


def test_charges_list_and_timeline(client: Any, operator: tuple, charge: Charge) -> None:
    assert sign_in(client, *operator).status_code == 302
    listing = client.get("/dashboard/").get_data(as_text=True)
    assert "SE*SIM*E00001" in listing
    assert "SEK 300.00" in listing and "SEK 21.25" in listing
    assert "CAPTURED (1)" in listing
    detail = client.get(f"/dashboard/charges/{charge.public_id}").get_data(as_text=True)
    assert "ENDED → <strong>CAPTURED</strong>" in detail
    assert "captured SEK 21.25 of SEK 300.00 held" in detail
    assert "Sim CPO" in detail
    assert client.get("/dashboard/charges/nope").status_code == 404


def test_qr_stickers_from_the_dashboard(client: Any, operator: tuple) -> None:
    sign_in(client, *operator)
    png = client.get("/dashboard/qr/SE*SIM*E00001.png")
    assert png.status_code == 200 and png.mimetype == "image/png"
    svg = client.get("/dashboard/qr/SE*SIM*E00001.svg?download=1")
    assert svg.mimetype == "image/svg+xml"
    assert 'filename="SE_SIM_E00001.svg"' in svg.headers["Content-Disposition"]
    assert client.get("/dashboard/qr/SE*SIM*E00001.gif").status_code == 404


def test_sign_out(client: Any, operator: tuple) -> None:
    sign_in(client, *operator)
    token = csrf(client, "/dashboard/")
    assert client.post("/dashboard/logout", data={"csrf": token}).status_code == 302
    assert client.get("/dashboard/").status_code == 302


def test_an_operator_unlocks_a_stuck_connector(live_stack: Any) -> None:
    from conftest import LiveStack

    from charging.models import Charge

    stack: LiveStack = live_stack
    created = stack.api("POST", "/api/v1/charges", json={"evse_id": stack.evse_id}).json()
    with stack.app.app_context():
        set_operator("ops@example.com", "correct horse")
    client = stack.app.test_client()
    sign_in(client, "ops@example.com", "correct horse")
    token = csrf(client, f"/dashboard/charges/{created['id']}")
    answer = client.post(f"/dashboard/charges/{created['id']}/unlock", data={"csrf": token},
                         follow_redirects=True)
    assert "The CPO accepted the unlock" in answer.get_data(as_text=True)
    unlock = [m for m in stack.simulator.log
              if m["direction"] == "in" and m["url"].endswith("/UNLOCK_CONNECTOR")]
    assert unlock[0]["request"]["connector_id"] == created["connector_id"]
    with stack.app.app_context():
        charge = db.session.scalar(db.select(Charge))
        notes = [e.note for e in charge.events if e.cause == "operator"]
        assert notes and "ops@example.com asked to unlock connector" in notes[0]


def test_sessions_and_cdrs_for_no_charge_are_listed(client: Any, operator: tuple,
                                                    charge: Charge) -> None:
    from test_late_events import SESSION
    from test_settle_concurrency import CDR

    from ocpi import store

    party = db.session.get(Party, charge.party_pk)
    store.put_session(party, {**SESSION, "id": "STRAY", "authorization_reference": "NOPE",
                              "cdr_token": {**SESSION["cdr_token"], "uid": "NOPE"}})
    store.put_session(party, {**SESSION, "id": "OURS", "authorization_reference": "REF1"})
    store.store_cdr(party, {**CDR, "id": "STRAY-CDR", "authorization_reference": "NOPE",
                            "cdr_token": {**CDR["cdr_token"], "uid": "NOPE"}})
    db.session.commit()
    sign_in(client, *operator)
    page = client.get("/dashboard/unmatched").get_data(as_text=True)
    assert "STRAY" in page and "STRAY-CDR" in page
    assert ">OURS<" not in page
