"""CPO connections from the dashboard (dashboard/cpos.py), against the CPO simulator over real
HTTP: an admin connects (the credentials handshake), syncs (the pull task, run by a queue
worker) and disconnects; an invitation's token A lets a CPO register; errors are told in
words; the health figures; support may look but not act."""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
import requests
from conftest import SimulatorBeside, simulator_beside
from sqlalchemy import func, select

from dashboard.models import OperatorAction, set_operator
from extensions import db
from ocpi import notices
from ocpi.models import OcpiLocation, OcpiMessage, OcpiTariff, Party, PartyGrant
from ocpi.transport import now_utc

ADMIN, SUPPORT, PASSWORD = "admin@example.com", "help@example.com", "correct horse battery"


@dataclass
class Stack(SimulatorBeside):
    """The stack, and what an operator does on it over HTTP."""

    def session(self, email: str = ADMIN) -> requests.Session:
        http = requests.Session()
        token = csrf(http.get(f"{self.base}/dashboard/login", timeout=10).text)
        signed = http.post(f"{self.base}/dashboard/login", timeout=10, allow_redirects=False,
                           data={"email": email, "password": PASSWORD, "csrf": token})
        assert signed.status_code == 302, signed.text
        return http

    def post(self, http: requests.Session, path: str, **form: str) -> requests.Response:
        token = csrf(http.get(f"{self.base}/dashboard/cpos", timeout=10).text)
        return http.post(f"{self.base}{path}", data={**form, "csrf": token}, timeout=30)

    def party(self) -> Party | None:
        db.session.remove()
        return db.session.scalar(select(Party).where(Party.status != "PENDING")
                                 .order_by(Party.pk.desc()))


def csrf(page: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', page).group(1)


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).replace("&#39;", "'")


@pytest.fixture
def stack(make_app: Callable[..., Any]) -> Iterator[Stack]:
    """ScanCharge and the simulator on real sockets, not connected; a queue worker; an admin
    and a support operator."""
    with simulator_beside(make_app, tick_seconds=0.2) as beside:
        app = beside.app
        with app.app_context():
            set_operator(ADMIN, PASSWORD)
            set_operator(SUPPORT, PASSWORD, role="support")
            db.session.commit()
            db.session.remove()
            try:
                yield Stack(app, beside.base, beside.simulator, beside.simulator_url,
                            beside.token_a)
            finally:
                db.session.remove()


def wait_for(predicate: Callable[[], Any], what: str, timeout: float = 20.0) -> Any:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        db.session.remove()
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def audited() -> list[str]:
    db.session.remove()
    return list(db.session.scalars(select(OperatorAction.action).where(
        OperatorAction.action.like("cpo_%")).order_by(OperatorAction.pk)))


def test_an_admin_connects_syncs_and_disconnects_a_cpo(stack: Stack) -> None:
    http = stack.session()
    connected = stack.post(http, "/dashboard/cpos/connect",
                           versions_url=f"{stack.simulator_url}/ocpi/versions",
                           token=stack.token_a, name="Sim CPO")
    assert connected.status_code == 200
    said = text_of(connected.text)
    assert "Connected to Sim CPO (SE*SIM), OCPI 2.2.1; granted CPO SE*SIM." in said
    party = stack.party()
    assert party is not None and party.status == "CONNECTED"
    assert stack.simulator.peer_credentials() is not None
    # The import runs in the background, through the pull task.
    wait_for(lambda: db.session.scalar(select(func.count()).select_from(OcpiLocation)) == 5,
             "the Locations to be imported")
    first_pull = wait_for(lambda: stack.party().last_pull_at, "the pull to finish")
    assert db.session.scalar(select(func.count()).select_from(OcpiTariff)) >= 1

    page = text_of(http.get(f"{stack.base}/dashboard/cpos", timeout=10).text)
    row = page.split("Sim CPO", 1)[1]
    assert "connected" in row and "CPO SE*SIM" in row
    assert "0 %" in row  # nothing failed in the handshake or the pull

    synced = stack.post(http, f"/dashboard/cpos/{party.pk}/sync")
    assert "Pulling the Locations and Tariffs of Sim CPO now." in text_of(synced.text)
    wait_for(lambda: stack.party().last_pull_at > first_pull, "the sync's pull")

    confirm = http.get(f"{stack.base}/dashboard/cpos/{party.pk}/disconnect", timeout=10)
    assert "Disconnect Sim CPO?" in text_of(confirm.text)
    gone = stack.post(http, f"/dashboard/cpos/{party.pk}/disconnect")
    assert "Sim CPO is disconnected: ScanCharge no longer accepts its requests" in \
        text_of(gone.text)
    assert stack.party().status == "DISCONNECTED"
    assert stack.simulator.peer_credentials() is None  # told, with credentials DELETE
    assert audited() == ["cpo_connect", "cpo_sync", "cpo_disconnect"]


def test_a_wrong_token_is_told_in_words_and_leaves_nothing(stack: Stack) -> None:
    http = stack.session()
    refused = stack.post(http, "/dashboard/cpos/connect",
                         versions_url=f"{stack.simulator_url}/ocpi/versions", token="wrong")
    assert refused.status_code == 502
    said = text_of(refused.text)
    assert "Not connected: The CPO did not accept the token" in said
    # The form keeps what was typed, but never the token.
    assert f'value="{stack.simulator_url}/ocpi/versions"' in refused.text
    assert 'value="wrong"' not in refused.text
    unreachable = stack.post(http, "/dashboard/cpos/connect",
                             versions_url="http://127.0.0.1:9/ocpi/versions", token="x")
    assert "The CPO could not be reached" in text_of(unreachable.text)
    db.session.remove()
    assert db.session.scalar(select(func.count()).select_from(Party)) == 0
    assert audited() == ["cpo_connect_failed", "cpo_connect_failed"]


def test_an_invitations_token_a_lets_the_cpo_register(stack: Stack) -> None:
    http = stack.session()
    bad = stack.post(http, "/dashboard/cpos/invite", name="Nya CPO", roles="SE-SIM")
    assert bad.status_code == 400 and "Not invited:" in text_of(bad.text)
    made = stack.post(http, "/dashboard/cpos/invite", name="Nya CPO", roles="CPO:SE*SIM")
    assert made.status_code == 200
    assert "Invitation for Nya CPO made: it may register as CPO SE*SIM." in text_of(made.text)
    versions_url = re.search(r'id="invite-versions-url">([^<]+)<', made.text).group(1)
    token_a = re.search(r'id="invite-token">([^<]+)<', made.text).group(1)
    assert versions_url == f"{stack.base}/ocpi/versions"

    # The CPO's side of it: with token A, register its own credentials (the simulator's
    # versions URL and a token that opens it) at our credentials endpoint.
    auth = {"Authorization": "Token " + base64.b64encode(token_a.encode()).decode()}
    versions = requests.get(versions_url, headers=auth, timeout=10).json()["data"]
    details_url = next(v["url"] for v in versions if v["version"] == "2.2.1")
    details = requests.get(details_url, headers=auth, timeout=10).json()["data"]
    credentials_url = next(e["url"] for e in details["endpoints"]
                           if e["identifier"] == "credentials")
    answer = requests.post(credentials_url, headers=auth, timeout=30, json={
        "token": stack.token_a, "url": f"{stack.simulator_url}/ocpi/versions",
        "roles": [{"role": "CPO", "country_code": "SE", "party_id": "SIM",
                   "business_details": {"name": "Nya CPO"}}]})
    assert answer.json()["status_code"] == 1000, answer.text
    party = stack.party()
    assert party is not None and party.name == "Nya CPO" and party.status == "CONNECTED"
    page = text_of(http.get(f"{stack.base}/dashboard/cpos", timeout=10).text)
    assert "Nya CPO" in page and token_a not in page  # the token is shown once only
    assert audited() == ["cpo_invite"]


def test_support_sees_the_connections_but_may_not_act(stack: Stack) -> None:
    with stack.app.app_context():
        party = Party(name="Sim CPO", status="CONNECTED", country_code="SE", party_id="SIM",
                      grants=[PartyGrant(role="CPO", country_code="SE", party_id="SIM")])
        db.session.add(party)
        db.session.commit()
        pk = party.pk
    http = stack.session(SUPPORT)
    page = http.get(f"{stack.base}/dashboard/cpos", timeout=10)
    assert page.status_code == 200 and "Sim CPO" in page.text
    assert "Connect to a CPO" not in page.text and "Sync now" not in page.text
    token = csrf(page.text)
    for path in ("/dashboard/cpos/invite", "/dashboard/cpos/connect",
                 f"/dashboard/cpos/{pk}/sync", f"/dashboard/cpos/{pk}/disconnect"):
        refused = http.post(f"{stack.base}{path}", timeout=10,
                            data={"csrf": token, "name": "X", "roles": "CPO:SE*XYZ",
                                  "versions_url": f"{stack.simulator_url}/ocpi/versions",
                                  "token": stack.token_a})
        assert refused.status_code == 403, path
        assert "Not allowed for your role" in refused.text
    assert http.get(f"{stack.base}/dashboard/cpos/{pk}/disconnect",
                    timeout=10).status_code == 403
    assert stack.party().status == "CONNECTED"
    assert stack.simulator.peer_credentials() is None
    assert audited() == []


def message(party_pk: int, direction: str, ago: timedelta, http_status: int | None = 200,
            ocpi_status: int | None = 1000) -> OcpiMessage:
    return OcpiMessage(at=now_utc() - ago, direction=direction, party_pk=party_pk,
                       method="GET", url="/x", module="locations", http_status=http_status,
                       ocpi_status=ocpi_status, duration_ms=3)


def test_health_figures(app: Any) -> None:
    from test_dashboard import sign_in

    party = Party(name="Sim CPO", status="CONNECTED", country_code="SE", party_id="SIM",
                  last_pull_at=now_utc() - timedelta(hours=2),
                  grants=[PartyGrant(role="CPO", country_code="SE", party_id="SIM")])
    quiet = Party(name="Quiet CPO", status="CONNECTED", country_code="SE", party_id="QQQ")
    db.session.add_all([party, quiet])
    db.session.flush()
    # In the order they were logged (the log's order is its primary key's).
    db.session.add_all([
        # Outside the 24 hours: not in the error rate, though it failed.
        message(party.pk, "out", timedelta(hours=30), http_status=None, ocpi_status=None),
        message(party.pk, "in", timedelta(hours=3), http_status=500, ocpi_status=None),
        message(party.pk, "out", timedelta(hours=2)),
        message(party.pk, "out", timedelta(hours=1), ocpi_status=2001),
        message(party.pk, "in", timedelta(minutes=5)),
    ])
    for n in range(3):
        notices.deviation(party.pk, "CDR_WITHOUT_EVSE_UID", f"CDR {n}")
    notices.record(party.pk, "REFUSED", "BAD_CDR", "a CDR", object_key="CDR-9")
    db.session.commit()

    from dashboard.cpos import health

    figures = health([party, quiet])
    mine = figures[party.pk]
    assert (mine.messages, mine.failed, mine.error_percent) == (4, 2, 50)
    assert mine.last_in is not None and mine.last_out is not None
    assert now_utc() - mine.last_in < timedelta(minutes=6)
    assert timedelta(minutes=59) < now_utc() - mine.last_out < timedelta(minutes=61)
    assert (mine.deviations, mine.other_notices) == (3, 1)
    assert figures[quiet.pk].error_percent is None and figures[quiet.pk].last_in is None

    set_operator(ADMIN, PASSWORD)
    db.session.commit()
    client = app.test_client()
    sign_in(client, ADMIN, PASSWORD)
    page = text_of(client.get("/dashboard/cpos").get_data(as_text=True))
    row = page.split("Sim CPO", 1)[1].split("Quiet CPO", 1)[0]
    assert "50 % 2 of 4" in row
    assert "1 other notice" in row
