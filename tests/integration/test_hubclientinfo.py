"""HubClientInfo on ScanCharge's side (mod_hub_client_info): the Receiver a hub pushes
ClientInfo to, the pull of the hub's Sender list, and what a hub's statuses do to what it
may push for the CPOs it acts for."""

from __future__ import annotations

import base64
import secrets
from collections.abc import Callable
from contextlib import ExitStack
from typing import Any

import pytest
import requests
from sqlalchemy import func, select

from cpo_simulator.demo_data import build_locations
from extensions import db
from ocpi.models import OcpiLocation, OcpiNotice, Party, PartyGrant, token_hash
from ocpi.transport import json_dumps

V = "/ocpi/2.2.1"


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Token {base64.b64encode(token.encode()).decode()}"}


def info(cc: str, pid: str, status: str, when: str = "2026-12-01T10:00:00Z",
         role: str = "CPO") -> dict[str, Any]:
    return {"country_code": cc, "party_id": pid, "role": role, "status": status,
            "last_updated": when}


@pytest.fixture
def parties(app: Any) -> dict[str, Party]:
    """A hub granted DE*HB1, and a CPO SE*SIM connected directly."""
    hub = Party(name="Hub", country_code="SE", party_id="HUB", status="CONNECTED",
                roles=[{"role": "HUB", "country_code": "SE", "party_id": "HUB",
                        "business_details": {"name": "Hub"}}],
                incoming_token_hash=token_hash("tok-hub"), outgoing_token="x", endpoints=[],
                grants=[PartyGrant(role="HUB", country_code="SE", party_id="HUB"),
                        PartyGrant(role="CPO", country_code="DE", party_id="HB1")])
    cpo = Party(name="CPO A", country_code="SE", party_id="SIM", status="CONNECTED",
                roles=[{"role": "CPO", "country_code": "SE", "party_id": "SIM",
                        "business_details": {"name": "A"}}],
                incoming_token_hash=token_hash("tok-a"), outgoing_token="y", endpoints=[],
                grants=[PartyGrant(role="CPO", country_code="SE", party_id="SIM")])
    db.session.add_all([hub, cpo])
    db.session.commit()
    return {"hub": hub, "cpo": cpo}


def call(client: Any, method: str, path: str, token: str, body: Any = None) -> Any:
    kwargs: dict[str, Any] = {"headers": auth(token)}
    if body is not None:
        kwargs.update(data=json_dumps(body), content_type="application/json")
    return client.open(V + path, method=method, **kwargs)


def grant_status(cc: str, pid: str) -> str | None:
    db.session.expire_all()
    return db.session.scalar(select(PartyGrant.hub_status).where(
        PartyGrant.role == "CPO", PartyGrant.country_code == cc, PartyGrant.party_id == pid))


def notices(code: str) -> list[OcpiNotice]:
    db.session.expire_all()
    return list(db.session.scalars(select(OcpiNotice).where(OcpiNotice.code == code)))


def location_of(cc: str, pid: str) -> dict[str, Any]:
    return next(loc.to_json() for loc in build_locations(cc, pid))


def put_location(client: Any, token: str, cc: str, pid: str) -> Any:
    body = location_of(cc, pid)
    return call(client, "PUT", f"/locations/{cc}/{pid}/{body['id']}", token, body)


def test_our_version_details_offer_the_receiver(client: Any, parties: dict) -> None:
    endpoints = call(client, "GET", "", "tok-hub").get_json()["data"]["endpoints"]
    assert {"identifier": "hubclientinfo", "role": "RECEIVER",
            "url": "http://127.0.0.1:5000/ocpi/2.2.1/hubclientinfo"} in endpoints


def test_a_suspended_party_cannot_be_pushed_for_until_connected_again(
        client: Any, parties: dict) -> None:
    reply = call(client, "PUT", "/hubclientinfo/DE/HB1", "tok-hub", info("DE", "HB1", "SUSPENDED"))
    assert reply.status_code == 200 and reply.get_json()["status_code"] == 1000
    assert grant_status("DE", "HB1") == "SUSPENDED"

    refused = put_location(client, "tok-hub", "DE", "HB1")
    assert refused.status_code == 404 and refused.get_json()["status_code"] == 2000
    assert db.session.scalar(select(func.count()).select_from(OcpiLocation)) == 0

    # PLANNED refuses as well; OFFLINE (a connection problem at the hub) does not.
    call(client, "PUT", "/hubclientinfo/DE/HB1", "tok-hub",
         info("DE", "HB1", "PLANNED", "2026-12-01T10:01:00Z"))
    assert put_location(client, "tok-hub", "DE", "HB1").status_code == 404

    call(client, "PUT", "/hubclientinfo/DE/HB1", "tok-hub",
         info("DE", "HB1", "CONNECTED", "2026-12-01T10:02:00Z"))
    assert grant_status("DE", "HB1") == "CONNECTED"
    assert put_location(client, "tok-hub", "DE", "HB1").status_code == 201

    call(client, "PUT", "/hubclientinfo/DE/HB1", "tok-hub",
         info("DE", "HB1", "OFFLINE", "2026-12-01T10:03:00Z"))
    assert put_location(client, "tok-hub", "DE", "HB1").status_code == 200


def test_an_older_client_info_changes_nothing(client: Any, parties: dict) -> None:
    call(client, "PUT", "/hubclientinfo/DE/HB1", "tok-hub",
         info("DE", "HB1", "CONNECTED", "2026-12-01T12:00:00Z"))
    call(client, "PUT", "/hubclientinfo/DE/HB1", "tok-hub",
         info("DE", "HB1", "SUSPENDED", "2026-12-01T11:00:00Z"))
    assert grant_status("DE", "HB1") == "CONNECTED"
    got = call(client, "GET", "/hubclientinfo/de/hb1", "tok-hub").get_json()
    assert got["data"] == info("DE", "HB1", "CONNECTED", "2026-12-01T12:00:00Z")


def test_client_info_of_a_party_the_hub_was_not_granted_is_stored_nowhere(
        client: Any, parties: dict) -> None:
    # SE*SIM is connected directly: the hub must not be able to suspend (or revive) it.
    reply = call(client, "PUT", "/hubclientinfo/SE/SIM", "tok-hub", info("SE", "SIM", "SUSPENDED"))
    assert reply.status_code == 200 and reply.get_json()["status_code"] == 1000
    assert grant_status("SE", "SIM") is None
    assert put_location(client, "tok-a", "SE", "SIM").status_code == 201
    # An eMSP (or any role but CPO) under the hub is not one of its CPOs either.
    call(client, "PUT", "/hubclientinfo/DE/HB1", "tok-hub",
         info("DE", "HB1", "SUSPENDED", role="EMSP"))
    assert grant_status("DE", "HB1") is None
    skipped = notices("CLIENT_INFO_NOT_GRANTED")
    assert {n.object_key for n in skipped} == {"ClientInfo:CPO:SE*SIM", "ClientInfo:EMSP:DE*HB1"}
    assert {n.kind for n in skipped} == {"SKIPPED"}
    assert all(n.party_pk == parties["hub"].pk for n in skipped)
    assert call(client, "GET", "/hubclientinfo/SE/SIM", "tok-hub").status_code == 404


def test_only_a_hub_may_send_client_info(client: Any, parties: dict) -> None:
    reply = call(client, "PUT", "/hubclientinfo/SE/SIM", "tok-a", info("SE", "SIM", "SUSPENDED"))
    assert reply.status_code == 404 and reply.get_json()["status_code"] == 2000
    assert call(client, "GET", "/hubclientinfo/SE/SIM", "tok-a").status_code == 404
    assert grant_status("SE", "SIM") is None
    assert [n.kind for n in notices("CLIENT_INFO_NOT_A_HUB")] == ["REFUSED"]
    assert call(client, "PUT", "/hubclientinfo/DE/HB1", "no-such-token",
                info("DE", "HB1", "SUSPENDED")).status_code == 401


@pytest.mark.parametrize("body, problem", [
    (info("DE", "HB1", "GONE"), "status"),
    ({**info("DE", "HB1", "SUSPENDED"), "role": "cpo"}, "role"),
    ({**info("DE", "HB1", "SUSPENDED"), "last_updated": 1764583200}, "last_updated"),
    ({k: v for k, v in info("DE", "HB1", "SUSPENDED").items() if k != "last_updated"},
     "last_updated"),
    ({k: v for k, v in info("DE", "HB1", "SUSPENDED").items() if k != "party_id"}, "party_id"),
    (info("DE", "HB2", "SUSPENDED"), "party_id"),
    ([info("DE", "HB1", "SUSPENDED")], "object"),
])
def test_a_malformed_client_info_is_2001_and_changes_nothing(
        client: Any, parties: dict, body: Any, problem: str) -> None:
    reply = call(client, "PUT", "/hubclientinfo/DE/HB1", "tok-hub", body)
    answer = reply.get_json()
    assert answer["status_code"] == 2001, answer
    assert problem in answer["status_message"]
    assert grant_status("DE", "HB1") is None


def test_a_number_is_no_party_id(client: Any, parties: dict) -> None:
    # Strict: pydantic would otherwise read 7 as "7".
    from ocpi.modules.hubclientinfo import parse_client_info
    from ocpi.transport import OcpiError

    with pytest.raises(OcpiError) as caught:
        parse_client_info({**info("DE", "HB1", "SUSPENDED"), "party_id": 7})
    assert caught.value.status_code == 2001 and "party_id" in caught.value.message


# --- through the hub simulator, over real HTTP -------------------------------------------


def test_the_hub_pushes_and_is_pulled(make_app: Callable[..., Any]) -> None:
    """ScanCharge pulls the hub's ClientInfo list when connecting; then the hub's pushes
    (a CPO leaving the hub, coming back) decide what that CPO may push through the hub."""
    from cpo_simulator.hub import HubSettings, create_hub
    from servers import ServerThread
    from tests.e2e.test_e2e_multi import connect, scancharge

    with ExitStack() as resources:
        hub = create_hub(HubSettings(base_url="", token_a="hub-token-a"))
        resources.callback(hub.shutdown)
        hub_server = ServerThread(hub.app)
        hub.settings.base_url = hub_server.url
        hub_server.start()
        resources.callback(hub_server.stop)
        hb1_token = hub.add_party("CPO", "DE", "HB1", token=secrets.token_urlsafe(8),
                                  endpoints={})
        hub.add_party("CPO", "DE", "HB9", token=secrets.token_urlsafe(8), endpoints={})

        stack = resources.enter_context(scancharge(make_app))
        connect(stack, f"{hub_server.url}/ocpi/versions", "hub-token-a",
                acting_for=(("CPO", "DE", "HB1"),))
        with stack.app.app_context():
            assert grant_status("DE", "HB1") == "CONNECTED"  # pulled at connect
            # DE*HB9 is behind the hub, but the operator did not let the hub act for it.
            assert [n.object_key for n in notices("CLIENT_INFO_NOT_GRANTED")] == [
                "ClientInfo:CPO:DE*HB9"]
            db.session.remove()

        def push_location(name: str) -> requests.Response:
            body = {**location_of("DE", "HB1"), "name": name}
            return requests.put(
                f"{hub_server.url}/ocpi/2.2.1/receiver/locations/DE/HB1/{body['id']}",
                data=json_dumps(body), timeout=10, headers={
                    **auth(hb1_token), "Content-Type": "application/json",
                    "OCPI-from-country-code": "DE", "OCPI-from-party-id": "HB1",
                    "OCPI-to-country-code": "SE", "OCPI-to-party-id": "SCN"})

        assert push_location("first").status_code == 201

        # HB1 unregisters from the hub: the hub pushes SUSPENDED to ScanCharge.
        left = requests.delete(f"{hub_server.url}/ocpi/2.2.1/credentials",
                               headers=auth(hb1_token), timeout=10)
        assert left.status_code == 200
        with stack.app.app_context():
            stack.wait_for(lambda: grant_status("DE", "HB1") == "SUSPENDED", 10,
                           "the hub's SUSPENDED push")
            db.session.remove()
        hb1_token = hub.add_party("CPO", "DE", "HB1", token=secrets.token_urlsafe(8),
                                  endpoints={})
        # The hub announces CONNECTED again before it routes: until then a push is refused
        # by ScanCharge; after it, taken.
        with stack.app.app_context():
            stack.wait_for(lambda: grant_status("DE", "HB1") == "CONNECTED", 10,
                           "the hub's CONNECTED push")
            db.session.remove()
        assert push_location("second").status_code == 200
        with stack.app.app_context():
            names = [loc.data["name"] for loc in db.session.scalars(select(OcpiLocation))]
            assert names == ["second"]
            db.session.remove()
        pushed = [m for m in hub.log if m.get("direction") == "out"
                  and m.get("module") == "hubclientinfo" and m["method"] == "PUT"]
        assert [(m["request"]["status"], m["http_status"], m["ocpi_status"])
                for m in pushed if m["request"]["party_id"] == "HB1"] == [
            ("SUSPENDED", 200, 1000), ("CONNECTED", 200, 1000)]


def test_a_suspended_party_cannot_push_through_the_hub(make_app: Callable[..., Any]) -> None:
    """While the hub's own list says SUSPENDED (pulled), the hub's pushes for it are 404."""
    from cpo_simulator.hub import ConnectionStatus, HubSettings, create_hub
    from cpo_simulator.model import PartyRef
    from ocpi.modules.common import Role
    from servers import ServerThread
    from tests.e2e.test_e2e_multi import connect, scancharge

    with ExitStack() as resources:
        hub = create_hub(HubSettings(base_url="", token_a="hub-token-a"))
        resources.callback(hub.shutdown)
        hub_server = ServerThread(hub.app)
        hub.settings.base_url = hub_server.url
        hub_server.start()
        resources.callback(hub_server.stop)
        token = hub.add_party("CPO", "DE", "HB1", token="t", endpoints={})
        # The hub knows HB1 but says it is suspended (set in its table before we connect).
        hub._set_status({PartyRef("DE", "HB1"): Role.CPO}, ConnectionStatus.SUSPENDED)

        stack = resources.enter_context(scancharge(make_app))
        connect(stack, f"{hub_server.url}/ocpi/versions", "hub-token-a",
                acting_for=(("CPO", "DE", "HB1"),))
        body = location_of("DE", "HB1")
        reply = requests.put(
            f"{hub_server.url}/ocpi/2.2.1/receiver/locations/DE/HB1/{body['id']}",
            data=json_dumps(body), timeout=10, headers={
                **auth(token), "Content-Type": "application/json",
                "OCPI-to-country-code": "SE", "OCPI-to-party-id": "SCN"})
        assert reply.status_code == 404 and reply.json()["status_code"] == 2000
        with stack.app.app_context():
            assert grant_status("DE", "HB1") == "SUSPENDED"
            assert db.session.scalar(select(func.count()).select_from(OcpiLocation)) == 0
            db.session.remove()
