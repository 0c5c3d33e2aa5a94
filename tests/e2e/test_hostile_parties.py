"""The trust model under attack, over real HTTP: CPO A (SE*SIM) and CPO B (SE*SI2)
connected directly, and a hub granted only DE*HB1 (a CPO simulator behind it), all at once.

Every attack is tried the way a misbehaving party would: with its own credentials token,
against ScanCharge's live OCPI server. Each must be refused or neutralised, and must leave
A's charge, its money (the demo gateway's intent), its timeline and A's stored OCPI objects
exactly as they were; afterwards A's own Session and CDR still settle A's charge with A's
amount, and a whole charge through the hub still works.
"""

from __future__ import annotations

import base64
import copy
import json
import re
import secrets
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from conftest import LiveStack
from sqlalchemy import func, select
from test_e2e_multi import Cpo, connect, scancharge, start_cpo

from extensions import db

EXAMPLES = Path("/work/shared/ocpi-spec/2.2.1/examples")
V = "/ocpi/2.2.1"


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Token {base64.b64encode(token.encode()).decode()}"}


@dataclass
class World:
    stack: LiveStack
    a: Cpo
    b: Cpo
    hb1: Cpo
    hub: Any
    hub_url: str

    def token_of(self, cpo: Cpo) -> str:
        """The credentials token a CPO simulator uses with ScanCharge."""
        return cpo.simulator._peer.token_b

    @property
    def hub_token(self) -> str:
        """The token the hub itself uses with ScanCharge: a hub gone rogue sends with it."""
        from cpo_simulator.model import PartyRef

        with self.hub._lock:
            return next(c.token_theirs for c in self.hub._connections.values()
                        if PartyRef("SE", "SCN") in c.parties)

    def ocpi(self, token: str, method: str, path: str, body: Any = None,
             headers: dict[str, str] | None = None) -> requests.Response:
        from ocpi.transport import json_dumps

        sent = {**auth(token), **(headers or {})}
        data = None
        if body is not None:
            data = json_dumps(body)
            sent["Content-Type"] = "application/json"
        return requests.request(method, self.stack.base_url + V + path, data=data,
                                headers=sent, timeout=10)

    def db(self) -> Any:
        return _AppSession(self.stack.app)


class _AppSession:
    def __init__(self, app: Any) -> None:
        self.app = app

    def __enter__(self) -> Any:
        self.ctx = self.app.app_context()
        self.ctx.push()
        return db.session

    def __exit__(self, *exc: Any) -> None:
        db.session.remove()
        self.ctx.pop()


@contextmanager
def world(make_app: Callable[..., Any]) -> Iterator[World]:
    from cpo_simulator import SimulatorSettings, create_simulator
    from cpo_simulator.hub import HubSettings, create_hub
    from servers import ServerThread

    with ExitStack() as resources:
        a, b = start_cpo(resources, "SIM"), start_cpo(resources, "SI2")
        hb1_sim = create_simulator(SimulatorSettings(
            base_url="", token_a=secrets.token_urlsafe(12), country_code="DE", party_id="HB1",
            time_factor=600.0, tick_seconds=0.2, result_delay=0.1))
        resources.callback(hb1_sim.shutdown)
        hb1_server = ServerThread(hb1_sim.app).start()
        resources.callback(hb1_server.stop)
        hub = create_hub(HubSettings(base_url="", token_a="hub-token-a"))
        resources.callback(hub.shutdown)
        hub_server = ServerThread(hub.app)
        hub.settings.base_url = hub_server.url
        hub_server.start()
        resources.callback(hub_server.stop)
        hub.connect(f"{hb1_server.url}/ocpi/versions", hb1_sim.settings.token_a)

        stack = resources.enter_context(scancharge(make_app))
        connect(stack, f"{a.url}/ocpi/versions", a.simulator.settings.token_a)
        connect(stack, f"{b.url}/ocpi/versions", b.simulator.settings.token_a)
        connect(stack, f"{hub_server.url}/ocpi/versions", "hub-token-a",
                acting_for=(("CPO", "DE", "HB1"),))
        yield World(stack, a, b, Cpo(hb1_sim, hb1_server.url), hub, hub_server.url)


# --- A's charge, and what must not move -------------------------------------------------


def start_charging(stack: LiveStack, evse_id: str) -> str:
    return stack.pay_and_charge(evse_id)


def stop_and_settle(stack: LiveStack, public_id: str) -> dict[str, Any]:
    assert stack.api("POST", f"/api/v1/charges/{public_id}/stop").status_code == 202
    return stack.wait_status(public_id, "CAPTURED", timeout=20)


def snapshot(w: World, public_id: str) -> dict[str, Any]:
    """Everything an attack on A's charge could change."""
    from charging.models import Charge, ChargeEvent
    from ocpi.models import OcpiCdr, OcpiCommand, OcpiLocation, OcpiSession, OcpiTariff
    from payments.models import DemoPaymentIntent, Receipt

    with w.db() as s:
        charge = s.scalar(select(Charge).where(Charge.public_id == public_id))
        intent = s.scalar(select(DemoPaymentIntent).where(
            DemoPaymentIntent.intent_id == charge.hold_id))
        a_rows = {}
        for model in (OcpiLocation, OcpiTariff, OcpiSession, OcpiCdr):
            a_rows[model.__name__] = sorted(
                (row.pk, row.raw) for row in s.scalars(select(model).where(
                    model.country_code == "SE", model.party_id == "SIM")))
        return {
            "charge": (charge.status, charge.captured_minor, charge.cost_incl_vat,
                       charge.energy_kwh, charge.session_id, charge.cdr_pk, charge.receipt_pk,
                       charge.party_pk),
            "intent": (intent.status, intent.amount_capturable_minor,
                       intent.amount_received_minor),
            "events": s.scalar(select(func.count()).select_from(ChargeEvent).where(
                ChargeEvent.charge_pk == charge.pk)),
            "commands": sorted((c.uid, c.result) for c in s.scalars(
                select(OcpiCommand).where(OcpiCommand.uid.in_(
                    [charge.start_command_uid, charge.stop_command_uid])))),
            "receipts": s.scalar(select(func.count()).select_from(Receipt)),
            "a_rows": a_rows,
        }


def settled(w: World, public_id: str, gate: LockGate) -> dict[str, Any]:
    """A's snapshot once nothing of A's can still change it: every thread of A's simulator
    waits at its frozen lock (so what it sent last has been answered), then ScanCharge's
    queue has run every task queued until then."""
    threads = [t for t in w.a.simulator._threads if t.is_alive()]
    gate.wait_for_waiters(len(threads))
    w.stack.wait_queue_drained()
    return snapshot(w, public_id)


def charge_row(w: World, public_id: str) -> Any:
    from charging.models import Charge

    with w.db() as s:
        charge = s.scalar(select(Charge).where(Charge.public_id == public_id))
        s.expunge(charge)
        return charge


def notices(w: World, kind: str, party_pk: int | None = None) -> list[Any]:
    from ocpi.models import OcpiNotice

    with w.db() as s:
        query = select(OcpiNotice).where(OcpiNotice.kind == kind)
        if party_pk is not None:
            query = query.where(OcpiNotice.party_pk == party_pk)
        rows = list(s.scalars(query))
        for row in rows:
            s.expunge(row)
        return rows


def party_pk(w: World, cc: str, pid: str) -> int:
    from ocpi.models import PartyGrant

    with w.db() as s:
        return s.scalar(select(PartyGrant.party_pk).where(
            PartyGrant.country_code == cc, PartyGrant.party_id == pid))


def refused(reply: requests.Response, http: int, ocpi: int) -> str:
    assert reply.status_code == http, (reply.status_code, reply.text)
    body = reply.json()
    assert body["status_code"] == ocpi, body
    assert "data" not in body or body["data"] is None
    return body.get("status_message", "")


def accepted(reply: requests.Response, *http: int) -> None:
    assert reply.status_code in (http or (200, 201)), (reply.status_code, reply.text)
    assert reply.json()["status_code"] == 1000, reply.text


# --- the attacks ------------------------------------------------------------------------


def cpo_b_lists_and_authorizes_a_token(w: World, victim: Any) -> None:
    """1: the Tokens sender and real-time authorization answer only for B's own Tokens."""
    listed = w.ocpi(w.token_of(w.b), "GET", "/tokens")
    accepted(listed, 200)
    assert victim.token_uid not in {t["uid"].upper() for t in listed.json()["data"]}
    assert listed.headers["X-Total-Count"] == "0"
    path = f"/tokens/{victim.token_uid}/authorize?type=AD_HOC_USER"
    body = {"location_id": victim.location_id, "evse_uids": [victim.evse_uid]}
    answer = w.ocpi(w.token_of(w.b), "POST", path, body)
    assert refused(answer, 404, 2004) == "Unknown Token"
    # A itself is answered (the control: the Token exists and is open).
    own = w.ocpi(w.token_of(w.a), "POST", path, body)
    accepted(own, 200)
    assert own.json()["data"]["allowed"] == "ALLOWED"


def foreign_session(w: World, victim: Any, cc: str, pid: str, session_id: str,
                    status: str = "COMPLETED") -> dict[str, Any]:
    """A copy of A's own Session (from A's simulator), re-owned and naming A's references."""
    from ocpi.transport import format_datetime, now_utc

    own = copy.deepcopy(next(s for s in w.a.simulator.sessions
                             if s["authorization_reference"] == victim.authorization_reference))
    own.update(country_code=cc, party_id=pid, id=session_id, status=status,
               kwh=123, last_updated=format_datetime(now_utc()))
    own["total_cost"] = {"excl_vat": 800, "incl_vat": 1000}
    assert own["cdr_token"]["uid"].upper() == victim.token_uid
    return own


def foreign_cdr(victim: Any, cc: str, pid: str, cdr_id: str) -> dict[str, Any]:
    cdr = json.loads((EXAMPLES / "cdr_example.json").read_text())
    cdr.update(country_code=cc, party_id=pid, id=cdr_id, currency="SEK",
               authorization_reference=victim.authorization_reference,
               session_id=victim.session_id)
    cdr["cdr_token"] = {"country_code": "SE", "party_id": "SCN", "uid": victim.token_uid,
                        "type": "AD_HOC_USER", "contract_id": victim.token_uid}
    cdr["tariffs"] = []
    cdr["total_cost"] = {"excl_vat": 8, "incl_vat": 10}
    return cdr


def cpo_b_sends_session_and_cdr_for_a_charge(w: World, victim: Any) -> None:
    """2: stored as B's own objects, but they move nothing and are flagged as misuse."""
    from ocpi.models import OcpiCdr, OcpiSession

    b_pk = party_pk(w, "SE", "SI2")
    accepted(w.ocpi(w.token_of(w.b), "PUT", "/sessions/SE/SI2/EVIL-S1",
                    foreign_session(w, victim, "SE", "SI2", "EVIL-S1")), 201)
    cdr = w.ocpi(w.token_of(w.b), "POST", "/cdrs", foreign_cdr(victim, "SE", "SI2", "EVIL-C1"))
    accepted(cdr, 201)
    w.stack.wait_for(lambda: {n.object_key for n in notices(w, "MISUSE", b_pk)} == {
        "Session:EVIL-S1", "CDR:EVIL-C1"}, 10, "MISUSE notices for B")
    with w.db() as s:
        session = s.scalar(select(OcpiSession).where(OcpiSession.session_id == "EVIL-S1"))
        assert (session.party_pk, session.country_code, session.party_id) == (b_pk, "SE", "SI2")
        stored = s.scalar(select(OcpiCdr).where(OcpiCdr.cdr_id == "EVIL-C1"))
        assert (stored.party_pk, stored.country_code, stored.party_id) == (b_pk, "SE", "SI2")
    # The hub, for its own CPO, naming A's references: the same.
    hub_pk = party_pk(w, "DE", "HB1")
    accepted(w.ocpi(w.hub_token, "PUT", "/sessions/DE/HB1/EVIL-S2",
                    foreign_session(w, victim, "DE", "HB1", "EVIL-S2"),
                    headers={"OCPI-from-country-code": "DE", "OCPI-from-party-id": "HB1"}))
    w.stack.wait_for(lambda: {n.object_key for n in notices(w, "MISUSE", hub_pk)} == {
        "Session:EVIL-S2"}, 10, "MISUSE notice for the hub")


def cpo_b_pushes_under_a_identity(w: World, victim: Any) -> None:
    """3: a URL (or CDR body) naming A's party is not B's to push to: 404, nothing stored."""
    from ocpi.models import OcpiLocation, OcpiSession, OcpiTariff

    with w.db() as s:
        location = s.scalar(select(OcpiLocation).where(
            OcpiLocation.country_code == "SE", OcpiLocation.party_id == "SIM",
            OcpiLocation.location_id == victim.location_id)).data
        tariff = s.scalars(select(OcpiTariff).where(OcpiTariff.country_code == "SE",
                                                    OcpiTariff.party_id == "SIM")).first().data
        session = s.scalar(select(OcpiSession).where(
            OcpiSession.session_id == victim.session_id.upper())).data
    token = w.token_of(w.b)
    evil_location = {**location, "name": "Taken over"}
    assert "not a party of this connection" in refused(
        w.ocpi(token, "PUT", f"/locations/SE/SIM/{location['id']}", evil_location), 404, 2000)
    refused(w.ocpi(token, "PATCH", f"/locations/SE/SIM/{location['id']}/{victim.evse_uid}",
                   {"status": "OUTOFORDER", "last_updated": location["last_updated"]}), 404, 2000)
    refused(w.ocpi(token, "PUT", f"/tariffs/SE/SIM/{tariff['id']}",
                   {**tariff, "currency": "EUR"}), 404, 2000)
    refused(w.ocpi(token, "DELETE", f"/tariffs/SE/SIM/{tariff['id']}"), 404, 2000)
    refused(w.ocpi(token, "PUT", f"/sessions/SE/SIM/{session['id']}",
                   {**session, "status": "COMPLETED"}), 404, 2000)
    refused(w.ocpi(token, "PATCH", f"/sessions/SE/SIM/{session['id']}",
                   {"status": "COMPLETED", "last_updated": session["last_updated"]}), 404, 2000)
    refused(w.ocpi(token, "GET", f"/sessions/SE/SIM/{session['id']}"), 404, 2000)
    refused(w.ocpi(token, "POST", "/cdrs", foreign_cdr(victim, "SE", "SIM", "EVIL-C3")), 404,
            2000)


def identities_cannot_be_claimed(w: World) -> None:
    """4: registering (POST), re-registering (PUT) and connecting may claim only what the
    operator granted, and a refusal changes nothing."""
    from ocpi.credentials import connect as ocpi_connect
    from ocpi.credentials import invite
    from ocpi.models import Party, PartyGrant
    from ocpi.transport import OcpiError

    with w.db():
        newcomer, token_a = invite("New CPO", [("CPO", "SE", "NEW")])
        newcomer_pk = newcomer.pk

    def credentials(role: str, cc: str, pid: str) -> dict[str, Any]:
        return {"token": secrets.token_urlsafe(16), "url": f"{w.b.url}/ocpi/versions",
                "roles": [{"role": role, "country_code": cc, "party_id": pid,
                           "business_details": {"name": "Claimer"}}]}

    for claim in (("CPO", "SE", "SIM"), ("HUB", "SE", "NEW"), ("HUB", "SE", "HUB"),
                  ("CPO", "DE", "HB1")):
        message = refused(w.ocpi(token_a, "POST", "/credentials", credentials(*claim)), 400, 2001)
        assert "may not claim" in message and "CPO SE*NEW" in message
    with w.db() as s:
        newcomer = s.get(Party, newcomer_pk)
        assert newcomer.status == "PENDING" and newcomer.outgoing_token is None
        assert [g.label for g in newcomer.grants] == ["CPO SE*NEW"]
    # Token A still only opens versions and credentials.
    refused(w.ocpi(token_a, "GET", "/tokens"), 401, 2000)

    b_token = w.token_of(w.b)
    with w.db() as s:
        b = s.get(Party, party_pk(w, "SE", "SI2"))
        before = ([g.label for g in b.grants], b.incoming_token_hash, b.outgoing_token,
                  b.country_code, b.party_id, b.roles)
    for claim in (("CPO", "SE", "SIM"), ("HUB", "SE", "SI2")):
        refused(w.ocpi(b_token, "PUT", "/credentials", credentials(*claim)), 400, 2001)
    with w.db() as s:
        b = s.get(Party, party_pk(w, "SE", "SI2"))
        assert ([g.label for g in b.grants], b.incoming_token_hash, b.outgoing_token,
                b.country_code, b.party_id, b.roles) == before
    accepted(w.ocpi(b_token, "GET", "/credentials"), 200)
    accepted(w.ocpi(b_token, "GET", "/tokens"), 200)

    # `cpo connect` to a platform declaring A's identity: refused, and undone on both sides.
    with ExitStack() as resources:
        twin = start_cpo(resources, "SIM")
        with w.db() as s:
            parties_before = s.scalar(select(func.count()).select_from(Party))
            grants_before = sorted((g.role, g.country_code, g.party_id, g.party_pk)
                                   for g in s.scalars(select(PartyGrant)))
            with pytest.raises(OcpiError) as caught:
                ocpi_connect(f"{twin.url}/ocpi/versions", twin.simulator.settings.token_a)
            assert "CPO SE*SIM belongs to another connection" in caught.value.message
        with w.db() as s:
            assert s.scalar(select(func.count()).select_from(Party)) == parties_before
            assert sorted((g.role, g.country_code, g.party_id, g.party_pk)
                          for g in s.scalars(select(PartyGrant))) == grants_before
        assert not twin.simulator.registered  # we told it we are gone


def hub_pushes_for_a_and_for_its_own(w: World) -> None:
    """5: a hub may push only for the CPOs it was granted: never for directly connected A."""
    from cpo_simulator.demo_data import build_locations
    from ocpi.models import OcpiLocation

    a_location = build_locations("SE", "SIM")[0].to_json()
    a_location["name"] = "Hub was here"
    for headers in ({}, {"OCPI-from-country-code": "SE", "OCPI-from-party-id": "SIM"}):
        refused(w.ocpi(w.hub_token, "PUT", f"/locations/SE/SIM/{a_location['id']}",
                       a_location, headers=headers), 404, 2000)
        refused(w.ocpi(w.hub_token, "PUT", "/sessions/SE/SIM/EVIL-S4",
                       {"id": "EVIL-S4"}, headers=headers), 404, 2000)

    own = build_locations("DE", "HB1")[0].to_json()
    own["name"] = "Pushed by the hub for HB1"
    accepted(w.ocpi(w.hub_token, "PUT", f"/locations/DE/HB1/{own['id']}", own,
                    headers={"OCPI-from-country-code": "DE", "OCPI-from-party-id": "HB1"}), 200)
    # And the same through the hub, routed from HB1's own simulator.
    hb1_token = next(c.token_ours for c in w.hub._connections.values()
                     if any(p.party_id == "HB1" for p in c.parties))
    from ocpi.transport import json_dumps

    own["name"] = "Routed through the hub"
    routed = requests.put(
        f"{w.hub_url}/ocpi/2.2.1/receiver/locations/DE/HB1/{own['id']}", data=json_dumps(own),
        timeout=10, headers={**auth(hb1_token), "Content-Type": "application/json",
                             "OCPI-to-country-code": "SE", "OCPI-to-party-id": "SCN"})
    accepted(routed, 200)
    with w.db() as s:
        names = {(loc.country_code, loc.party_id, loc.location_id): loc.data["name"]
                 for loc in s.scalars(select(OcpiLocation))}
    assert names[("DE", "HB1", own["id"])] == "Routed through the hub"
    assert names[("SE", "SIM", a_location["id"])] != "Hub was here"


def pulled_foreign_location_is_skipped(w: World) -> None:
    """6: B's Locations sender serves one of A's Locations: skipped on pull, shown."""
    from cpo_simulator.demo_data import build_locations
    from ocpi.models import OcpiLocation, Party
    from ocpi.sync import pull

    stolen = build_locations("SE", "SIM")[1]
    stolen = stolen.model_copy(update={"name": "B says this is A's"})
    with w.b.simulator._lock:  # the simulator has no knob for this: misbehave by hand
        w.b.simulator._locations[stolen.id] = stolen
    with w.db() as s:
        before = s.scalar(select(OcpiLocation).where(
            OcpiLocation.country_code == "SE", OcpiLocation.party_id == "SIM",
            OcpiLocation.location_id == stolen.id)).raw
        report = pull(s.get(Party, party_pk(w, "SE", "SI2")), full=True)
    assert report.locations == 5
    assert any("skipped" in problem and stolen.id in problem for problem in report.rejected)
    with w.db() as s:
        rows = list(s.scalars(select(OcpiLocation).where(
            OcpiLocation.location_id == stolen.id)))
        assert [(r.country_code, r.party_id, r.raw) for r in rows] == [("SE", "SIM", before)]
    skipped = notices(w, "SKIPPED", party_pk(w, "SE", "SI2"))
    assert [n.object_key for n in skipped] == [f"location:{stolen.id}"]


def evse_id_takeover(w: World, evse_id: str) -> dict[str, Any]:
    """7: B publishes an EVSE-ID A already uses, newer: A keeps the charger page."""
    from cpo_simulator.demo_data import build_locations
    from ocpi.models import OcpiEvse
    from ocpi.transport import format_datetime, now_utc

    before = w.stack.api("GET", f"/api/v1/chargers/{evse_id}").json()
    evil = build_locations("SE", "SI2")[0].to_json()
    evil.update(id="SI2-EVIL", name="Takeover", last_updated=format_datetime(now_utc()))
    evil["evses"] = [{**evil["evses"][0], "uid": "SI2-EVIL-1", "evse_id": evse_id,
                      "status": "AVAILABLE", "last_updated": format_datetime(now_utc())}]
    accepted(w.ocpi(w.token_of(w.b), "PUT", "/locations/SE/SI2/SI2-EVIL", evil), 201)

    page = w.stack.api("GET", f"/api/v1/chargers/{evse_id}")
    assert page.status_code == 200
    assert page.json()["location"] == before["location"]
    assert page.json()["location"]["name"] != "Takeover"
    with w.db() as s:
        rows = {(e.evse_uid, e.clash) for e in s.scalars(select(OcpiEvse).where(
            OcpiEvse.evse_id == OcpiEvse.normalise_evse_id(evse_id)))}
    assert ("SI2-EVIL-1", True) in rows and sum(1 for _, clash in rows if not clash) == 1
    clash = notices(w, "CLASH", party_pk(w, "SE", "SI2"))
    assert [n.object_key for n in clash] == [OcpiEvse.normalise_evse_id(evse_id)]
    return evil


def command_result_from_b(w: World, victim: Any) -> None:
    """8: the response_url of A's command is A's: B posting to it is 404."""
    from ocpi.models import OcpiCommand

    with w.db() as s:
        command = s.scalar(select(OcpiCommand).where(OcpiCommand.uid == victim.start_command_uid))
        uid, result = command.uid, command.result
    for token in (w.token_of(w.b), w.hub_token):
        refused(w.ocpi(token, "POST", f"/commands/START_SESSION/{uid}", {"result": "FAILED"}),
                404, 2000)
    with w.db() as s:
        assert s.scalar(select(OcpiCommand.result).where(OcpiCommand.uid == uid)) == result


def hub_authorizes_a_token(w: World, victim: Any) -> None:
    """9: the hub asks about A's Token: unknown, whoever it says it asks for."""
    body = {"location_id": victim.location_id, "evse_uids": [victim.evse_uid]}
    path = f"/tokens/{victim.token_uid}/authorize?type=AD_HOC_USER"
    assert refused(w.ocpi(w.hub_token, "POST", path, body), 404, 2004) == "Unknown Token"
    refused(w.ocpi(w.hub_token, "POST", path, body,
                   headers={"OCPI-from-country-code": "DE", "OCPI-from-party-id": "HB1"}),
            404, 2004)
    # Saying it asks for A is not believed: A is not one of the hub's CPOs.
    assert "not a party of this connection" in refused(
        w.ocpi(w.hub_token, "POST", path, body,
               headers={"OCPI-from-country-code": "SE", "OCPI-from-party-id": "SIM"}), 404, 2000)
    listed = w.ocpi(w.hub_token, "GET", "/tokens")
    assert victim.token_uid not in {t["uid"].upper() for t in listed.json()["data"]}


def dashboard_shows_it(w: World) -> None:
    from dashboard.models import set_operator

    with w.db():
        set_operator("ops@example.com", "correct horse")
    browser = requests.Session()
    page = browser.get(f"{w.stack.base_url}/dashboard/login", timeout=10).text
    token = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    browser.post(f"{w.stack.base_url}/dashboard/login", timeout=10,
                 data={"email": "ops@example.com", "password": "correct horse", "csrf": token})
    unmatched = browser.get(f"{w.stack.base_url}/dashboard/unmatched", timeout=10)
    assert unmatched.status_code == 200
    for row_id in ("EVIL-S1", "EVIL-C1", "EVIL-S2"):
        row = next(line for line in unmatched.text.splitlines() if row_id in line)
        assert "suspected misuse" in row, row
    cpos = browser.get(f"{w.stack.base_url}/dashboard/cpos", timeout=10).text
    for code in ("FOREIGN_SESSION", "FOREIGN_CDR", "EVSE_ID_TAKEN", "PULLED_FOREIGN_LOCATION"):
        assert code in cpos, code
    assert "CPO DE*HB1 (CONNECTED at the hub)" in cpos
    chargers = browser.get(f"{w.stack.base_url}/dashboard/chargers", timeout=10).text
    assert "EVSE-ID held by another CPO" in chargers


class LockGate:
    """A simulator's lock, counting the threads that wait for it."""

    def __init__(self, lock: Any) -> None:
        self.lock = lock
        self.waiting = 0
        self._changed = threading.Condition()

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        if self.lock.acquire(blocking=False):
            return True
        if not blocking:
            return False
        with self._changed:
            self.waiting += 1
            self._changed.notify_all()
        try:
            return self.lock.acquire(True, timeout)
        finally:
            with self._changed:
                self.waiting -= 1

    def release(self) -> None:
        self.lock.release()

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, *exc: Any) -> None:
        self.release()

    def wait_for_waiters(self, count: int, timeout: float = 15.0) -> None:
        with self._changed:
            if not self._changed.wait_for(lambda: self.waiting >= count, timeout):
                raise AssertionError(f"{self.waiting} of {count} simulator threads froze")


@contextmanager
def frozen(simulator: Any) -> Iterator[LockGate]:
    """Hold the simulator's lock: its session threads stop sending until released."""
    gate = LockGate(simulator._lock)
    simulator._lock = gate  # a thread inside `with` now leaves through the lock it entered
    gate.acquire()
    try:
        yield gate
    finally:
        gate.release()
        simulator._lock = gate.lock


def attack_everything(w: World, victim: Any, public_id: str, gate: LockGate) -> None:
    before = settled(w, public_id, gate)
    assert before["intent"][0] == "requires_capture" and before["charge"][1] is None

    cpo_b_lists_and_authorizes_a_token(w, victim)
    cpo_b_sends_session_and_cdr_for_a_charge(w, victim)
    cpo_b_pushes_under_a_identity(w, victim)
    identities_cannot_be_claimed(w)
    hub_pushes_for_a_and_for_its_own(w)
    command_result_from_b(w, victim)
    hub_authorizes_a_token(w, victim)
    assert snapshot(w, public_id) == before

    pulled_foreign_location_is_skipped(w)
    evse_id_takeover(w, "SE*SIM*E00002")
    after = snapshot(w, public_id)
    assert {k: v for k, v in after.items() if k != "a_rows"} == {
        k: v for k, v in before.items() if k != "a_rows"}
    assert after["a_rows"] == before["a_rows"]
    dashboard_shows_it(w)

    # New charges on the contested EVSE-ID still go to A.
    from charging.models import Charge

    created = w.stack.api("POST", "/api/v1/charges",
                        json={"evse_id": "SE*SIM*E00002", "language": "en"})
    assert created.status_code == 201, created.text
    with w.db() as s:
        contested = s.scalar(select(Charge).where(Charge.public_id == created.json()["id"]))
        assert (contested.cpo_country_code, contested.cpo_party_id,
                contested.party_pk) == ("SE", "SIM", victim.party_pk)
        assert contested.location_id.startswith("SIM-")


# --- the proof ---------------------------------------------------------------------------


def test_no_party_touches_another_partys_charge(make_app: Callable[..., Any]) -> None:
    with world(make_app) as w:
        stack = w.stack
        public_id = start_charging(stack, "SE*SIM*E00001")
        stack.wait_for(lambda: charge_row(w, public_id).session_id, 10, "A's Session")
        victim = charge_row(w, public_id)
        assert victim.cpo_country_code == "SE" and victim.cpo_party_id == "SIM"
        # Freeze A's simulator (its session thread waits for this lock) while the attacks
        # run, so that what they must leave unchanged is exactly comparable.
        with frozen(w.a.simulator) as gate:
            attack_everything(w, victim, public_id, gate)

        # A's own Session and CDR still settle A's charge, with A's amount.
        done = stop_and_settle(stack, public_id)
        cdr = w.a.simulator.cdrs[-1]
        assert done["captured"]["amount_minor"] == int(cdr["total_cost"]["incl_vat"] * 100)
        from charging.models import Charge
        from ocpi.models import OcpiCdr
        from payments.models import DemoPaymentIntent

        with w.db() as s:
            charge = s.scalar(select(Charge).where(Charge.public_id == public_id))
            assert s.get(OcpiCdr, charge.cdr_pk).cdr_id == cdr["id"]
            intent = s.scalar(select(DemoPaymentIntent).where(
                DemoPaymentIntent.intent_id == charge.hold_id))
            assert intent.amount_received_minor == charge.captured_minor
            assert charge.receipt_pk is not None

        # And a whole charge through the hub, for the CPO it was granted.
        hub_charge = start_charging(stack, "DE*HB1*E00001")
        done = stop_and_settle(stack, hub_charge)
        assert done["captured"]["amount_minor"] == int(
            w.hb1.simulator.cdrs[-1]["total_cost"]["incl_vat"] * 100)
