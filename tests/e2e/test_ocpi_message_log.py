"""The OCPI message log: every request and answer, in and out, with its party, module,
statuses, duration and ids; credentials tokens never in clear; linked to its charge on the
dashboard; written beside the request's own transaction, never through it; pruned."""

from __future__ import annotations

import base64
import json
import re
import secrets
import socket
import time
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
import requests
from conftest import LiveStack
from flask import Flask
from sqlalchemy import select, text

from charging.models import Charge
from dashboard.models import set_operator
from extensions import db
from ocpi import messages
from ocpi.client import OcpiClient, PeerUnreachable
from ocpi.messages import REDACTED, module_of, scrub
from ocpi.models import OcpiCommand, OcpiMessage, Party, PartyGrant, token_hash
from ocpi.transport import json_dumps, now_utc
from servers import ServerThread

V = "/ocpi/2.2.1"


def b64(token: str) -> str:
    return base64.b64encode(token.encode()).decode()


AUTH = {"Authorization": f"Token {b64('tok-C')}"}


@pytest.fixture
def party(app: Flask) -> Party:
    """A connected CPO, SE/SIM, presenting token tok-C (as in test_ocpi_server)."""
    row = Party(name="CPO SIM", country_code="SE", party_id="SIM", status="CONNECTED",
                grants=[PartyGrant(role="CPO", country_code="SE", party_id="SIM")],
                roles=[{"role": "CPO", "country_code": "SE", "party_id": "SIM",
                        "business_details": {"name": "CPO SIM"}}],
                incoming_token_hash=token_hash("tok-C"), outgoing_token="tok-B", endpoints=[])
    db.session.add(row)
    db.session.commit()
    return row


def logged(**where: Any) -> list[OcpiMessage]:
    db.session.rollback()  # a fresh look at what was committed beside the test's session
    query = select(OcpiMessage).order_by(OcpiMessage.pk)
    for name, value in where.items():
        query = query.where(getattr(OcpiMessage, name) == value)
    return list(db.session.scalars(query))


def session_body(**changes: Any) -> dict[str, Any]:
    body = {
        "country_code": "SE", "party_id": "SIM", "id": "sess-101",
        "start_date_time": "2024-05-01T10:00:00Z", "kwh": 0,
        "cdr_token": {"country_code": "SE", "party_id": "SCN", "uid": "tok-uid-1",
                      "type": "AD_HOC_USER", "contract_id": "SESCN1"},
        "auth_method": "COMMAND", "authorization_reference": "ref-1",
        "location_id": "LOC1", "evse_uid": "EVSE1", "connector_id": "1", "currency": "SEK",
        "status": "PENDING", "last_updated": "2024-05-01T10:00:00Z",
    }
    return {**body, **changes}


# --- Scrubbing and modules ------------------------------------------------------------------


def test_scrub_redacts_credentials_tokens_in_requests_and_answers() -> None:
    credentials = {"token": "s3cret-token", "url": "https://cpo.example/ocpi/versions",
                   "roles": [{"role": "CPO", "party_id": "SIM", "country_code": "SE"}]}
    sent = json.dumps(credentials)
    assert "s3cret-token" not in scrub(sent)
    assert json.loads(scrub(sent)) == {**credentials, "token": REDACTED}
    assert scrub('{"token": "s3cret", "n": 8.50}') == '{"token":"***redacted***","n":8.50}'

    answered = json.dumps({"data": credentials, "status_code": 1000,
                           "timestamp": "2024-05-01T10:00:00Z"})
    assert json.loads(scrub(answered))["data"]["token"] == REDACTED

    # JSON may spell the key with escapes; it is still the token.
    escaped = '{"\\u0074oken": "s3cret-token", "url": "u"}'
    assert "s3cret-token" not in scrub(escaped)

    # Not JSON (cut short, malformed): cleaned as text, a cut-off token included.
    assert "s3cret" not in scrub('{"token": "s3cret-token", "url": "htt')
    assert "s3cret" not in scrub('{"roles": [], "token" : "s3cret-to')
    assert "s3cret" not in scrub('{"token":"s3cret\\"-token",')


def test_scrub_keeps_everything_else_byte_for_byte() -> None:
    # A StartSession's Token object is not a credential; numbers keep their digits.
    start = '{"token": {"uid": "ABC", "type": "AD_HOC_USER"}, "kwh": 41.120}'
    assert scrub(start) == start
    session = json_dumps(session_body(kwh=12.50))
    assert scrub(session) == session
    assert scrub("not json at all") == "not json at all"
    assert scrub('{"status_message": "the token is wrong"}') == (
        '{"status_message": "the token is wrong"}'
    )


@pytest.mark.parametrize(
    ("path", "module"),
    [
        ("/ocpi/versions", "versions"),
        ("/ocpi/2.2.1", "versions"),
        ("/ocpi/2.2.1/", "versions"),
        ("/ocpi/2.2.1/credentials", "credentials"),
        ("/ocpi/2.2.1/sessions/SE/SIM/1", "sessions"),
        ("/ocpi/2.2.1/commands/START_SESSION/abc", "commands"),
        ("/ocpi/2.2.1/tokens/ABC/authorize", "tokens"),
        ("/ocpi/cpo/2.1.1/cdrs", "cdrs"),
        ("/ocpi/2.2.1/nonsense", None),
        ("/ocpi", None),
    ],
)
def test_module_comes_from_the_url(path: str, module: str | None) -> None:
    assert module_of(path) == module


# --- Incoming -------------------------------------------------------------------------------


def test_incoming_requests_are_logged_with_party_module_statuses_and_ids(
    client: Any, party: Party
) -> None:
    response = client.put(
        f"{V}/sessions/SE/SIM/sess-101", data=json_dumps(session_body()),
        content_type="application/json",
        headers={**AUTH, "X-Request-ID": "req-1", "X-Correlation-ID": "corr-1"},
    )
    assert response.status_code == 201
    [message] = logged()
    assert (message.direction, message.party_pk, message.method, message.module) == (
        "in", party.pk, "PUT", "sessions")
    assert message.url == f"{V}/sessions/SE/SIM/sess-101"
    assert (message.http_status, message.ocpi_status) == (201, 1000)
    assert 0 <= message.duration_ms < 5000
    assert (message.request_id, message.correlation_id) == ("req-1", "corr-1")
    # What ties it to a charge, upper-cased like every stored CiString.
    assert (message.object_id, message.authorization_reference, message.token_uid) == (
        "SESS-101", "REF-1", "TOK-UID-1")
    assert json.loads(message.request_body) == json.loads(json_dumps(session_body()))
    assert json.loads(message.response_body)["status_code"] == 1000
    assert not message.request_truncated and not message.response_truncated
    assert now_utc() - message.at < timedelta(minutes=1)

    # A PATCH names the session in its URL only; an answer of ours gets its own request id.
    client.patch(f"{V}/sessions/SE/SIM/sess-101?x=1", headers=AUTH,
                 data=json_dumps({"kwh": 1.5, "last_updated": "2024-05-01T10:05:00Z"}),
                 content_type="application/json")
    patch = logged(method="PATCH")[0]
    assert (patch.object_id, patch.authorization_reference, patch.url) == (
        "SESS-101", None, f"{V}/sessions/SE/SIM/sess-101?x=1")
    assert patch.correlation_id is None
    assert len(patch.request_id) == 36


def test_cdrs_command_results_and_authorizations_carry_their_keys(
    client: Any, party: Party
) -> None:
    db.session.add(OcpiCommand(uid="cmd-uid-1", party_pk=party.pk, command="START_SESSION",
                               request="{}", response_result="ACCEPTED"))
    db.session.commit()
    assert client.post(f"{V}/commands/START_SESSION/cmd-uid-1", headers=AUTH,
                       json={"result": "ACCEPTED"}).status_code == 200
    cdr = {"id": "cdr-9", "authorization_reference": "ref-9",
           "cdr_token": {"uid": "tok-uid-9"}}  # invalid: answered 2001, logged all the same
    answered = client.post(f"{V}/cdrs", headers=AUTH, json=cdr)
    assert answered.json["status_code"] == 2001
    client.post(f"{V}/tokens/tok-uid-7/authorize", headers=AUTH)

    result, cdr_message, authorize = logged()
    assert (result.module, result.object_id, result.ocpi_status) == (
        "commands", "CMD-UID-1", 1000)
    assert (cdr_message.module, cdr_message.object_id, cdr_message.authorization_reference,
            cdr_message.token_uid, cdr_message.ocpi_status) == (
        "cdrs", "CDR-9", "REF-9", "TOK-UID-9", 2001)
    assert (authorize.module, authorize.token_uid, authorize.http_status,
            authorize.ocpi_status) == ("tokens", "TOK-UID-7", 404, 2004)


def test_unauthenticated_requests_are_logged_without_a_party(client: Any,
                                                             party: Party) -> None:
    assert client.get(f"{V}/tokens", headers=AUTH).status_code == 200
    # Same test, same app context: the party of the request before must not stick.
    assert client.get(f"{V}/tokens?offset=0", headers={"Authorization": "Token nope"}
                      ).status_code == 401
    assert client.get(f"{V}/tokens").status_code == 401
    assert client.get(f"{V}/nonsense", headers=AUTH).status_code == 404  # matches no route

    ok, wrong, missing, nonsense = logged()
    assert ok.party_pk == party.pk
    for message in (wrong, missing):
        assert (message.party_pk, message.http_status, message.ocpi_status, message.module) == (
            None, 401, 2000, "tokens")
    assert wrong.url == f"{V}/tokens?offset=0"
    assert (nonsense.http_status, nonsense.module, nonsense.url) == (404, None,
                                                                     f"{V}/nonsense")


def test_a_request_that_wrote_and_failed_is_logged_without_waiting_for_itself(
    client: Any, party: Party
) -> None:
    # An unencoded token: authentication records the encoding, which the lookup of the
    # session flushes; the 404 leaves that write uncommitted, holding SQLite's write lock.
    started = time.monotonic()
    response = client.patch(f"{V}/sessions/SE/SIM/nope", headers={"Authorization": "Token tok-C"},
                            json={"kwh": 1, "last_updated": "2024-05-01T10:00:00Z"})
    assert response.status_code == 404
    assert time.monotonic() - started < 2  # not SQLite's busy_timeout (10 s)
    [message] = logged()  # written once the request's transaction ended (here: rolled back)
    assert (message.party_pk, message.http_status, message.object_id) == (party.pk, 404, "NOPE")


def test_large_bodies_are_cut_and_flagged(client: Any, party: Party) -> None:
    body = session_body(padding="x" * (messages.BODY_LIMIT + 100))
    client.put(f"{V}/sessions/SE/SIM/sess-101", data=json_dumps(body),
               content_type="application/json", headers=AUTH)
    [message] = logged()
    assert message.request_truncated
    assert len(message.request_body.encode()) == messages.BODY_LIMIT
    assert message.authorization_reference == "REF-1"  # keys come from the whole body


def test_a_failing_log_does_not_break_ocpi(client: Any, party: Party,
                                            monkeypatch: pytest.MonkeyPatch,
                                            caplog: pytest.LogCaptureFixture) -> None:
    def broken(*args: Any) -> None:
        raise RuntimeError("log table gone")

    monkeypatch.setattr(messages, "_insert", broken)
    # Alembic's fileConfig (the template migration) disabled the loggers that existed then.
    monkeypatch.setattr(messages.log, "disabled", False)
    response = client.put(f"{V}/sessions/SE/SIM/sess-101", data=json_dumps(session_body()),
                          content_type="application/json", headers=AUTH)
    assert response.status_code == 201 and response.json["status_code"] == 1000
    assert "could not store" in caplog.text
    with pytest.raises(PeerUnreachable):  # the peer's failure, not the log's
        OcpiClient("tok").request("GET", f"http://127.0.0.1:{closed_port()}/ocpi/versions",
                                  module="versions")
    monkeypatch.undo()
    assert logged() == []
    from ocpi.models import OcpiSession

    assert db.session.scalar(select(OcpiSession.session_id)) == "SESS-101"


# --- Outgoing -------------------------------------------------------------------------------


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_request_that_reaches_no_one_is_logged_with_its_error(app: Flask,
                                                                party: Party) -> None:
    url = f"http://127.0.0.1:{closed_port()}/ocpi/2.2.1/locations"
    client = OcpiClient.for_party(party)
    with pytest.raises(PeerUnreachable):
        client.request("GET", url, module="locations", params={"date_from": "2024-05-01"},
                       correlation_id="corr-9")
    [message] = logged()
    assert (message.direction, message.party_pk, message.module, message.method) == (
        "out", party.pk, "locations", "GET")
    assert message.url == f"{url}?date_from=2024-05-01"
    assert message.http_status is None and message.ocpi_status is None
    assert message.error.startswith("ConnectionError")
    assert message.correlation_id == "corr-9" and len(message.request_id) == 36
    assert message.failed


def test_an_answer_that_is_not_ocpi_is_logged_with_its_error(app: Flask) -> None:
    html = Flask("not-ocpi")
    html.add_url_rule("/versions", "versions", lambda: "<html>maintenance</html>")
    server = ServerThread(html).start()
    try:
        with pytest.raises(PeerUnreachable):
            OcpiClient("tok").get(f"{server.url}/versions", module="versions")
    finally:
        server.stop()
    [message] = logged()
    assert (message.party_pk, message.http_status, message.ocpi_status) == (None, 200, None)
    assert message.error.startswith("not an OCPI answer")
    assert message.response_body == "<html>maintenance</html>"


def test_the_log_neither_commits_nor_waits_for_the_callers_transaction(
    app: Flask, party: Party
) -> None:
    # The caller has written and not committed (on SQLite: it holds the one write lock).
    db.session.add(Party(name="uncommitted", status="PENDING"))
    db.session.flush()
    started = time.monotonic()
    with pytest.raises(PeerUnreachable):
        OcpiClient.for_party(party).get(f"http://127.0.0.1:{closed_port()}/x",
                                        module="locations")
    assert time.monotonic() - started < 2  # not SQLite's busy_timeout (10 s)
    db.session.rollback()  # the caller changes its mind: its work goes, the log stays
    assert [p.name for p in db.session.scalars(select(Party))] == ["CPO SIM"]
    assert len(logged(direction="out")) == 1


# --- Tokens never in clear, after real handshakes ------------------------------------------


@pytest.fixture
def simulator() -> Iterator[Any]:
    from cpo_simulator import SimulatorSettings, create_simulator

    sim = create_simulator(SimulatorSettings(base_url="", token_a=secrets.token_urlsafe(12)))
    server = ServerThread(sim.app).start()
    sim.url = server.url
    try:
        yield sim
    finally:
        sim.shutdown()
        server.stop()


@pytest.fixture
def served_app(app: Flask) -> Iterator[Flask]:
    server = ServerThread(app).start()
    app.config["PUBLIC_BASE_URL"] = server.url
    try:
        yield app
    finally:
        server.stop()


@pytest.fixture
def issued_tokens(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every credentials token ScanCharge generates during the test."""
    from ocpi import credentials

    issued: list[str] = []
    original = credentials.new_token

    def recording() -> str:
        issued.append(original())
        return issued[-1]

    monkeypatch.setattr(credentials, "new_token", recording)
    return issued


def assert_nowhere_in_the_log(secrets_: list[str]) -> None:
    """No token, as it is or Base64-encoded, in any column of any logged message."""
    db.session.rollback()
    rows = db.session.execute(text("SELECT * FROM ocpi_messages")).all()
    dump = "\n".join(repr(tuple(row)) for row in rows)
    for secret in secrets_:
        assert secret not in dump
        assert b64(secret) not in dump


def test_tokens_are_never_logged_when_we_register_with_a_cpo(
    served_app: Flask, simulator: Any, issued_tokens: list[str]
) -> None:
    result = served_app.test_cli_runner().invoke(args=[
        "cpo", "connect", "--versions-url", f"{simulator.url}/ocpi/versions", "--token",
        simulator.settings.token_a, "--no-pull"])
    assert result.exit_code == 0, result.output
    party = db.session.scalar(select(Party))
    token_b = issued_tokens[0]
    assert_nowhere_in_the_log([simulator.settings.token_a, token_b, party.outgoing_token])

    # Our POST carried token B, the CPO's answer its token C: both redacted.
    [post] = logged(direction="out", module="credentials")
    assert json.loads(post.request_body)["token"] == REDACTED
    assert json.loads(post.response_body)["data"]["token"] == REDACTED
    assert post.http_status == 200 and post.ocpi_status == 1000
    # While answering, the CPO fetched our versions with token B: logged, header not kept.
    assert [m.url for m in logged(direction="in")] == ["/ocpi/versions", V]
    assert {m.module for m in logged(direction="out")} == {"versions", "credentials"}


def test_tokens_are_never_logged_when_a_cpo_registers_with_us(
    served_app: Flask, simulator: Any, issued_tokens: list[str]
) -> None:
    from ocpi.credentials import invite

    invited, token_a = invite("Invited CPO", [("CPO", "SE", "SIM")])
    base = served_app.config["PUBLIC_BASE_URL"]
    body = {"token": simulator.settings.token_a, "url": f"{simulator.url}/ocpi/versions",
            "roles": [{"role": "CPO", "party_id": "SIM", "country_code": "SE",
                       "business_details": {"name": "Invited CPO"}}]}
    answer = requests.post(f"{base}{V}/credentials", json=body, timeout=5,
                           headers={"Authorization": f"Token {b64(token_a)}"})
    assert answer.status_code == 200, answer.text
    token_c = answer.json()["data"]["token"]
    got = requests.get(f"{base}{V}/credentials", timeout=5,
                       headers={"Authorization": f"Token {b64(token_c)}"})
    assert got.json()["data"]["token"] == token_c

    assert token_c in issued_tokens
    assert_nowhere_in_the_log([token_a, token_c, simulator.settings.token_a])
    post, get = logged(direction="in", module="credentials")
    assert json.loads(post.request_body)["token"] == REDACTED
    assert json.loads(post.response_body)["data"]["token"] == REDACTED
    assert json.loads(get.response_body)["data"]["token"] == REDACTED
    assert post.party_pk == get.party_pk == invited.pk
    # What we fetched from the CPO while answering its registration is its traffic too.
    fetched = logged(direction="out")
    assert [m.module for m in fetched] == ["versions", "versions"]
    assert {m.party_pk for m in fetched} == {invited.pk}


# --- A charge's messages, end to end --------------------------------------------------------


def start_paid_charge(stack: LiveStack) -> dict[str, Any]:
    created = stack.api("POST", "/api/v1/charges", json={"evse_id": stack.evse_id,
                                                         "language": "en"})
    assert created.status_code == 201, created.text
    charge = created.json()
    confirmed = stack.api("POST", "/payments/demo/confirm", json={
        "payment_intent": charge["payment"]["payment_intent"],
        "client_secret": charge["payment"]["client_secret"],
        "card_number": "4242424242424242",
    })
    assert confirmed.status_code == 200, confirmed.text
    return charge


def sign_in(client: Any) -> None:
    page = client.get("/dashboard/login").get_data(as_text=True)
    csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    client.post("/dashboard/login", data={"email": "ops@example.com",
                                          "password": "correct horse", "csrf": csrf})


def test_a_charge_collects_its_messages_both_ways(live_stack: LiveStack) -> None:
    from dashboard import charge_messages

    stack = live_stack
    public_id = start_paid_charge(stack)["id"]
    stack.wait_status(public_id, "CHARGING")
    stack.wait_for(lambda: Decimal(stack.charge_status(public_id)["energy_kwh"]) > 0,
                   what="a Session PATCH")
    assert stack.api("POST", f"/api/v1/charges/{public_id}/stop").status_code == 202
    stack.wait_status(public_id, "CAPTURED", timeout=20)

    with stack.app.app_context():
        charge = db.session.scalar(select(Charge).where(Charge.public_id == public_id))

        def settled() -> list[OcpiMessage]:
            # A message is stored once answered, on SQLite after any writer ahead of it.
            db.session.rollback()
            rows = charge_messages(charge)
            kinds = [(m.direction, m.module) for m in rows]
            return rows if kinds.count(("out", "commands")) == 2 and (
                "in", "cdrs") in kinds and kinds.count(("in", "commands")) == 2 else []

        found = stack.wait_for(settled, what="the charge's messages")

        def of(direction: str, module: str, method: str | None = None) -> list[OcpiMessage]:
            return [m for m in found if (m.direction, m.module) == (direction, module)
                    and method in (None, m.method)]

        # The commands we sent carry the charge's correlation id: never its public id,
        # the driver's credential.
        start, stop = of("out", "commands")
        assert start.url.endswith("/START_SESSION") and stop.url.endswith("/STOP_SESSION")
        for command, uid in ((start, charge.start_command_uid),
                             (stop, charge.stop_command_uid)):
            assert command.correlation_id == charge.correlation_id != public_id
            assert command.object_id == uid.upper()
            assert (command.party_pk, command.http_status, command.ocpi_status) == (
                stack.party_pk, 200, 1000)
            assert json.loads(command.response_body)["data"]["result"] == "ACCEPTED"
        assert start.authorization_reference == charge.authorization_reference
        assert start.token_uid == charge.token_uid
        # The CPO's CommandResults, Session pushes and CDR, found by their own keys.
        results = of("in", "commands")
        assert {m.object_id for m in results} == {charge.start_command_uid.upper(),
                                                  charge.stop_command_uid.upper()}
        assert of("in", "sessions", "PUT") and of("in", "sessions", "PATCH")
        assert all(m.object_id == charge.session_id.upper() for m in of("in", "sessions"))
        [cdr] = of("in", "cdrs")
        assert (cdr.method, cdr.http_status, cdr.party_pk) == ("POST", 201, stack.party_pk)
        assert all(m.party_pk == stack.party_pk and not m.failed for m in found)
        assert [m.at for m in found] == sorted(m.at for m in found)
        # Nothing of another charge, and the pull and handshake are the CPO's, not the charge's.
        assert not [m for m in found if m.module in {"locations", "tariffs", "credentials"}]
        pulled = logged(direction="out", module="locations")
        assert pulled and pulled[0].party_pk == stack.party_pk

        set_operator("ops@example.com", "correct horse")
        client = stack.app.test_client()
        sign_in(client)
        page = client.get(f"/dashboard/charges/{public_id}").get_data(as_text=True)
        assert "OCPI messages" in page
        assert page.count("<details>") >= len(found)
        assert f"{charge.start_command_uid}" in page  # in the CommandResult URL
        assert "START_SESSION" in page and "STOP_SESSION" in page


# --- The dashboard --------------------------------------------------------------------------


def add_message(party_pk: int | None, **values: Any) -> OcpiMessage:
    row = OcpiMessage(**{"direction": "in", "party_pk": party_pk, "method": "GET",
                         "url": f"{V}/tokens", "module": "tokens", "http_status": 200,
                         "ocpi_status": 1000, "duration_ms": 3, **values})
    db.session.add(row)
    db.session.commit()
    return row


def test_the_cpo_message_log_filters_and_pages(client: Any, party: Party) -> None:
    set_operator("ops@example.com", "correct horse")
    sign_in(client)
    for index in range(60):
        add_message(party.pk, url=f"{V}/tokens?offset={index}")
    add_message(party.pk, module="sessions", method="PUT", url=f"{V}/sessions/SE/SIM/1",
                http_status=200, ocpi_status=2001, request_body='{"id": "1", "kwh": 8.50}')
    add_message(party.pk, direction="out", module="commands", method="POST",
                url="http://cpo/commands/START_SESSION", http_status=None, ocpi_status=None,
                error="ConnectionError: refused")
    add_message(None, url=f"{V}/tokens?offset=anonymous", http_status=401, ocpi_status=2000)

    cpos = client.get("/dashboard/cpos").get_data(as_text=True)
    assert f"/dashboard/cpos/{party.pk}/messages" in cpos

    first = client.get(f"/dashboard/cpos/{party.pk}/messages").get_data(as_text=True)
    assert "http://cpo/commands/START_SESSION" in first  # newest first
    assert "ConnectionError: refused" in first
    assert "offset=anonymous" not in first  # no party's message is no party's
    assert "Older →" in first and "← Newer" not in first
    assert first.count("<tr") == 1 + 50
    second = client.get(f"/dashboard/cpos/{party.pk}/messages?page=2").get_data(as_text=True)
    assert second.count("<tr") == 1 + 12 and "Older →" not in second
    assert f"{V}/tokens?offset=0<" in second

    failures = client.get(f"/dashboard/cpos/{party.pk}/messages?failures=1").get_data(
        as_text=True)
    assert failures.count("<tr") == 1 + 2
    assert "ConnectionError" in failures and f"{V}/sessions/SE/SIM/1" in failures
    sessions = client.get(f"/dashboard/cpos/{party.pk}/messages?module=sessions").get_data(
        as_text=True)
    assert sessions.count("<tr") == 1 + 1
    # The body, indented, in <details>, its numbers with the digits they came with.
    assert "{\n  &#34;id&#34;: &#34;1&#34;,\n  &#34;kwh&#34;: 8.50\n}" in sessions
    assert client.get("/dashboard/cpos/999/messages").status_code == 404


def test_the_charge_page_lists_messages_found_by_every_key(client: Any, party: Party) -> None:
    set_operator("ops@example.com", "correct horse")
    sign_in(client)
    charge = Charge(party_pk=party.pk, cpo_country_code="SE", cpo_party_id="SIM",
                    location_id="LOC1", evse_uid="EVSE1",
                    evse_id="SE*SIM*E1", connector_id="1", currency="SEK", hold_minor=30000,
                    gateway="demo", token_uid="TOKUID", authorization_reference="AUTHREF",
                    session_id="Sess-1", start_command_uid="cmd-a", status="CHARGING")
    db.session.add(charge)
    db.session.commit()
    add_message(party.pk, url="/by-correlation", correlation_id=charge.correlation_id)
    add_message(party.pk, url="/by-reference", authorization_reference="AUTHREF")
    add_message(party.pk, url="/by-token", token_uid="TOKUID")
    add_message(party.pk, url="/by-command", module="commands", object_id="CMD-A")
    add_message(party.pk, url="/by-session", module="sessions", object_id="SESS-1")
    add_message(None, url="/other-partys-session", module="sessions", object_id="SESS-1")
    add_message(party.pk, url="/a-tariff", module="tariffs", object_id="CMD-A")
    add_message(party.pk, url="/another-charge", correlation_id="someone-else")

    page = client.get(f"/dashboard/charges/{charge.public_id}").get_data(as_text=True)
    shown = re.findall(r"<code>(/[^<]+)</code>", page)
    assert shown == ["/by-correlation", "/by-reference", "/by-token", "/by-command",
                     "/by-session"]


# --- Retention ------------------------------------------------------------------------------


def test_prune_removes_only_messages_older_than_the_retention(app: Flask,
                                                              party: Party) -> None:
    from jobs import _PERIODIC

    now = now_utc()
    for days in (200, 91, 89, 0):
        add_message(party.pk, url=f"/{days}-days-old", at=now - timedelta(days=days))
    assert _PERIODIC["ocpi.prune_messages"][1] == "OCPI_MESSAGE_PRUNE_INTERVAL"
    assert app.config["OCPI_MESSAGE_RETENTION_DAYS"] == 90
    assert app.config["OCPI_MESSAGE_PRUNE_INTERVAL"] == 86400

    messages.prune_messages()
    assert [m.url for m in logged()] == ["/89-days-old", "/0-days-old"]
    assert messages.prune(timedelta(days=1), batch=1) == 1
    assert [m.url for m in logged()] == ["/0-days-old"]
    app.config["OCPI_MESSAGE_RETENTION_DAYS"] = 0  # kept forever
    add_message(party.pk, url="/ancient", at=now - timedelta(days=5000))
    messages.prune_messages()
    assert len(logged()) == 2

