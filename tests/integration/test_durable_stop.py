"""A driver's stop is never lost: kept on the charge until the session ends, sent as soon as
the CPO names the session, retried with backoff while it is refused or lost, shown to the
driver with what to do, and handed to a person when the charger never confirms.

The CPO is a stub on a real socket whose answer to each STOP_SESSION the test scripts; the
domain's own functions run as the queue would run them (tests use the in-memory queue, so a
test calls the task the code enqueued)."""

from __future__ import annotations

import base64
import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask, current_app, request

from charging import driver_actions, starting, stopping, sweeper
from charging.models import Charge, ChargeEvent
from charging.states import ChargeStatus as S
from extensions import db
from ocpi.models import OcpiCdr, OcpiCommand, Party, PartyGrant, dump_json, token_hash
from ocpi.transport import now_utc
from servers import ServerThread
from tests.stub_peers import answer

CPO_AUTH = {"Authorization": "Token " + base64.b64encode(b"tok-cpo").decode()}


class StubCpo:
    """Answers each STOP_SESSION with the next scripted result (the last one repeats)."""

    def __init__(self) -> None:
        self.app = Flask("stub-cpo")
        self.results = ["ACCEPTED"]
        self.received: list[dict[str, Any]] = []
        self.lock = threading.Lock()

        @self.app.post("/cpo/2.2.1/commands/<command>")
        def command(command: str) -> Any:
            with self.lock:
                self.received.append({"command": command, **(request.get_json() or {})})
                result = self.results.pop(0) if len(self.results) > 1 else self.results[0]
            if result == "HTTP_500":
                return answer(status=500, code=3000)
            return answer({"result": result, "timeout": 30})

    def stops(self) -> list[dict[str, Any]]:
        with self.lock:
            return [r for r in self.received if r["command"] == "STOP_SESSION"]


@pytest.fixture
def cpo() -> Iterator[StubCpo]:
    stub = StubCpo()
    server = ServerThread(stub.app).start()
    stub.url = server.url
    yield stub
    server.stop()


@pytest.fixture
def charge(app: Any, cpo: StubCpo) -> Charge:
    party = Party(
        name="Stub CPO", status="CONNECTED", country_code="SE", party_id="SIM", version="2.2.1",
        incoming_token_hash=token_hash("tok-cpo"), outgoing_token="tok-out",
        endpoints=[{"identifier": "commands", "role": "RECEIVER",
                    "url": f"{cpo.url}/cpo/2.2.1/commands"}],
        grants=[PartyGrant(role="CPO", country_code="SE", party_id="SIM")],
    )
    db.session.add(party)
    db.session.flush()
    row = Charge(party_pk=party.pk, cpo_country_code="SE", cpo_party_id="SIM",
                 location_id="LOC1", evse_uid="EVSE1", evse_id="SE*SIM*E1", connector_id="1",
                 currency="SEK", hold_minor=20000, gateway="demo", hold_id="pi_demo_stop",
                 token_uid="TOKSTOP", authorization_reference="REFSTOP",
                 status=S.CHARGING.value)
    db.session.add(row)
    db.session.commit()
    return row


def reload(charge: Charge) -> Charge:
    db.session.expire_all()
    return db.session.get(Charge, charge.pk)


def push_session(client: Any, status: str, session_id: str = "S1") -> None:
    body = {
        "country_code": "SE", "party_id": "SIM", "id": session_id,
        "start_date_time": "2026-12-01T10:00:00Z", "kwh": 3, "cdr_token": {
            "country_code": "SE", "party_id": "SCN", "uid": "TOKSTOP", "type": "AD_HOC_USER",
            "contract_id": "SESCNTOKSTOP"},
        "auth_method": "COMMAND", "authorization_reference": "REFSTOP", "location_id": "LOC1",
        "evse_uid": "EVSE1", "connector_id": "1", "currency": "SEK", "status": status,
        "last_updated": now_utc().strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    if status != "ACTIVE":
        body["end_date_time"] = body["last_updated"]
    answered = client.put(f"/ocpi/2.2.1/sessions/SE/SIM/{session_id}", json=body,
                          headers=CPO_AUTH)
    assert answered.status_code in (200, 201), answered.get_json()


def make_due(charge: Charge) -> None:
    """Time passes: the next scheduled try is now."""
    row = reload(charge)
    row.stop_next_at = now_utc()
    db.session.commit()


def timeline(charge: Charge) -> list[str]:
    return [e.note or "" for e in db.session.scalars(
        db.select(ChargeEvent).where(ChargeEvent.charge_pk == charge.pk)
        .order_by(ChargeEvent.pk))]


def driver_view(client: Any, charge: Charge) -> dict[str, Any]:
    public_id = reload(charge).public_id
    return client.get(f"/api/v1/charges/{public_id}?lang=en").get_json()


def test_a_stop_before_the_first_session_is_sent_when_the_session_comes(
    client: Any, charge: Charge, cpo: StubCpo
) -> None:
    driver_actions.request_stop(charge.pk)
    stopping.send_stop(charge.pk)
    row = reload(charge)
    assert (row.status, row.stop_requested_at is not None, row.stop_next_at) == (
        "STOPPING", True, None)
    assert cpo.stops() == []  # no session id to name yet
    push_session(client, "ACTIVE", "S-LATE")
    assert reload(charge).stop_next_at is not None  # due now: the Session named it
    stopping.send_stop(charge.pk)
    assert [s["session_id"] for s in cpo.stops()] == ["S-LATE"]
    push_session(client, "COMPLETED", "S-LATE")
    row = reload(charge)
    assert (row.status, row.end_reason, row.stop_next_at) == ("ENDED", "DRIVER_STOPPED", None)


def test_a_refused_stop_stands_is_shown_and_is_retried_until_accepted(
    client: Any, charge: Charge, cpo: StubCpo
) -> None:
    push_session(client, "ACTIVE")
    cpo.results = ["REJECTED", "REJECTED", "ACCEPTED"]
    driver_actions.request_stop(charge.pk)
    stopping.send_stop(charge.pk)
    row = reload(charge)
    assert (row.status, row.failure_code) == ("STOPPING", "STOP_REJECTED")
    assert row.stop_next_at > now_utc()  # backing off, not hammering
    shown = driver_view(client, charge)
    assert shown["status"] == "STOPPING"
    assert shown["failure"]["code"] == "STOP_REJECTED"
    assert "unplug" in shown["failure"]["message"]
    stopping.send_stop(charge.pk)  # an early duplicate of the scheduled try sends nothing
    assert len(cpo.stops()) == 1
    for _ in range(2):
        make_due(charge)
        stopping.send_stop(charge.pk)
    assert len(cpo.stops()) == 3
    assert reload(charge).status == "STOPPING"
    push_session(client, "COMPLETED")
    row = reload(charge)
    assert (row.status, row.failure_code, row.end_reason) == ("ENDED", None, "DRIVER_STOPPED")
    assert sum("trying again in" in note for note in timeline(charge)) == 2


def test_a_failed_command_result_keeps_the_stop(client: Any, charge: Charge,
                                                  cpo: StubCpo) -> None:
    push_session(client, "ACTIVE")
    driver_actions.request_stop(charge.pk)
    stopping.send_stop(charge.pk)
    uid = reload(charge).stop_command_uid
    result = client.post(f"/ocpi/2.2.1/commands/STOP_SESSION/{uid}", headers=CPO_AUTH,
                         json={"result": "FAILED"})
    assert result.status_code == 200
    row = reload(charge)
    assert (row.status, row.failure_code) == ("STOPPING", "STOP_FAILED")
    assert row.stop_next_at > now_utc()
    assert driver_view(client, charge)["failure"]["code"] == "STOP_FAILED"


@pytest.mark.parametrize("answer_to_stop", ["HTTP_500", "UNKNOWN_SESSION"])
def test_a_cpo_that_fails_or_lost_the_session_is_asked_again(
    client: Any, charge: Charge, cpo: StubCpo, answer_to_stop: str
) -> None:
    push_session(client, "ACTIVE")
    cpo.results = [answer_to_stop, "ACCEPTED"]
    driver_actions.request_stop(charge.pk)
    stopping.send_stop(charge.pk)
    row = reload(charge)
    assert row.status == "STOPPING"
    assert row.failure_code == ("STOP_ERROR" if answer_to_stop == "HTTP_500"
                                else "STOP_UNKNOWN_SESSION")
    make_due(charge)
    assert sweeper.sweep()["stop"] == 1  # the sweeper re-drives a due stop by itself
    stopping.send_stop(charge.pk)
    assert len(cpo.stops()) == 2


def test_backoff_grows_with_jitter_and_is_capped(app: Any) -> None:
    base, cap = app.config["STOP_RETRY_BASE_DELAY"], app.config["STOP_RETRY_MAX_DELAY"]
    for attempts in range(12):
        ceiling = min(cap, base * 2 ** attempts)
        delays = {stopping.stop_retry_delay(attempts) for _ in range(20)}
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert len(delays) > 1  # jitter
    assert stopping.stop_retry_delay(1000) <= cap


def test_a_stop_never_confirmed_goes_to_a_person(client: Any, charge: Charge,
                                                   cpo: StubCpo) -> None:
    push_session(client, "ACTIVE")
    cpo.results = ["REJECTED"]
    driver_actions.request_stop(charge.pk)
    row = reload(charge)
    row.stop_requested_at = now_utc() - timedelta(
        seconds=client.application.config["STOP_RETRY_FOR"] + 1)
    db.session.commit()
    stopping.send_stop(charge.pk)
    row = reload(charge)
    assert (row.status, row.failure_code, row.stop_next_at) == (
        "STOPPING", "STOP_UNCONFIRMED", None)
    assert "call support" in driver_view(client, charge)["failure"]["message"]
    # No stop is sent again by itself; the charge still settles when the session ends.
    row.updated_at = now_utc() - timedelta(hours=1)
    db.session.commit()
    assert sweeper.sweep()["stop"] == 0
    push_session(client, "COMPLETED")
    assert reload(charge).status == "ENDED"


def test_a_stop_asked_for_while_starting_is_sent_once_charging(
    client: Any, charge: Charge, cpo: StubCpo
) -> None:
    row = reload(charge)
    row.status = S.STARTING.value
    row.start_command_uid = "start-1"
    db.session.add(OcpiCommand(uid="start-1", party_pk=row.party_pk, command="START_SESSION",
                               request="{}", response_result="ACCEPTED"))
    db.session.commit()
    driver_actions.request_stop(charge.pk)
    row = reload(charge)
    assert (row.status, row.stop_requested_at is not None) == ("STARTING", True)
    assert driver_view(client, charge)["status"] == "STARTING"
    client.post("/ocpi/2.2.1/commands/START_SESSION/start-1", headers=CPO_AUTH,
                json={"result": "ACCEPTED"})
    assert reload(charge).status == "STOPPING"
    push_session(client, "ACTIVE")
    stopping.send_stop(charge.pk)
    assert [s["session_id"] for s in cpo.stops()] == ["S1"]


def test_the_cpo_ending_the_session_is_its_own_reason(client: Any, charge: Charge) -> None:
    push_session(client, "ACTIVE")
    push_session(client, "COMPLETED")
    assert reload(charge).end_reason == "CPO_ENDED"


def test_an_invalid_session_says_so(client: Any, charge: Charge) -> None:
    push_session(client, "ACTIVE")
    push_session(client, "INVALID")
    assert (reload(charge).status, reload(charge).end_reason) == ("ENDED", "SESSION_INVALID")


# --- The sweeper covers every open state -------------------------------------------------


def age(charge: Charge, **fields: Any) -> None:
    row = reload(charge)
    for name, value in {"updated_at": now_utc() - timedelta(hours=2), **fields}.items():
        setattr(row, name, value)
    db.session.commit()


@pytest.mark.parametrize("status", [S.CANCELLED, S.EXPIRED])
def test_a_lost_release_of_a_cancelled_or_expired_charge_is_driven_again(
    charge: Charge, status: S
) -> None:
    age(charge, status=status.value)
    assert sweeper.sweep()["release"] == 1
    age(charge, hold_released_at=now_utc())
    assert sweeper.sweep()["release"] == 0


def test_a_cdr_stored_while_charging_ends_and_settles_the_charge(charge: Charge) -> None:
    from tests.charge_factory import CDR

    data = {**CDR, "id": "CDR-WHILE-CHARGING", "authorization_reference": "REFSTOP",
            "cdr_token": {**CDR["cdr_token"], "uid": "TOKSTOP"}}
    cdr = OcpiCdr(party_pk=charge.party_pk, country_code="SE", party_id="SIM",
                  cdr_id="CDR-WHILE-CHARGING", authorization_reference="REFSTOP",
                  token_uid="TOKSTOP", currency="SEK", total_cost_excl_vat=36,
                  total_cost_incl_vat=45, raw=dump_json(data))
    db.session.add(cdr)
    db.session.commit()
    age(charge, status=S.STOPPING.value)
    assert sweeper.sweep()["ended"] == 1
    row = reload(charge)
    assert (row.status, row.cdr_pk) == ("ENDED", cdr.pk)


def test_a_silent_charge_is_asked_about(charge: Charge) -> None:
    age(charge, session_updated_at=now_utc() - timedelta(hours=1))
    assert sweeper.sweep()["silent"] == 1  # one CPO asked for its Sessions and CDRs
    age(charge, session_updated_at=now_utc())
    assert sweeper.sweep()["silent"] == 0


def test_a_silent_charge_at_the_capture_deadline_is_ended_and_settled(charge: Charge) -> None:
    hours = db.session.get(Charge, charge.pk) and current_app.config[
        "HOLD_CAPTURE_DEADLINE_HOURS"]
    age(charge, created_at=now_utc() - timedelta(hours=hours + 1),
        session_updated_at=now_utc() - timedelta(hours=hours))
    sweeper.sweep()
    row = reload(charge)
    assert (row.status, row.end_reason) == ("ENDED", "CPO_SILENT")


# --- A CommandResponse slower than the HTTP timeout --------------------------------------


def test_a_start_sent_but_unanswered_is_uncertain_not_nothing_charged(
    client: Any, charge: Charge, cpo: StubCpo
) -> None:
    """The CPO got START_SESSION but answered after our deadline: the charger may still
    start, so the driver is not told "nothing was charged" and the hold waits for a late
    Session (LATE_SESSION_GRACE) instead of being released at once."""
    answered_late = threading.Event()

    @cpo.app.before_request
    def slow() -> None:
        answered_late.wait(10)  # released once our side has given up waiting

    client.application.config["OCPI_HTTP_TIMEOUT"] = 0.5
    row = reload(charge)
    row.status = S.AUTHORIZED.value
    db.session.commit()
    try:
        starting.start(charge.pk)
    finally:
        answered_late.set()
    row = reload(charge)
    command = db.session.scalar(db.select(OcpiCommand).where(
        OcpiCommand.uid == row.start_command_uid))
    assert command.response_result == "NO_RESPONSE"
    assert (row.status, row.failure_code) == ("START_FAILED", "START_NO_RESPONSE")
    message = driver_view(client, charge)["failure"]["message"]
    assert "Nothing was charged" not in message and "only for what you charge" in message
    push_session(client, "ACTIVE")  # it did start after all: charged as any other
    assert (reload(charge).status, reload(charge).failure_code) == ("CHARGING", None)


def test_a_cpo_that_cannot_be_reached_at_all_is_certain(
    client: Any, charge: Charge, cpo: StubCpo
) -> None:
    row = reload(charge)
    row.status = S.AUTHORIZED.value
    db.session.get(Party, row.party_pk).endpoints = [
        {"identifier": "commands", "role": "RECEIVER", "url": "http://127.0.0.1:9/commands"}]
    db.session.commit()
    starting.start(charge.pk)
    assert reload(charge).failure_code == "CPO_UNREACHABLE"


def test_migration_0005_gives_a_charge_already_stopping_its_standing_stop(tmp_path: Any) -> None:
    from flask_migrate import upgrade
    from sqlalchemy import create_engine, text

    from app import MIGRATIONS_DIR, create_app
    from tests.conftest import _test_settings

    url = f"sqlite:///{tmp_path / 'old.db'}"
    old = create_app({**_test_settings(), "SQLALCHEMY_DATABASE_URI": url})
    with old.app_context():
        upgrade(directory=MIGRATIONS_DIR, revision="0004")
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO ocpi_parties (pk, name, roles, status, endpoints, auth_encoding, "
            "created_at, updated_at) VALUES (1, 'p', '[]', 'CONNECTED', '[]', 'base64', "
            "'2026-01-01', '2026-01-01')"))
        for pk, status in ((1, "STOPPING"), (2, "CHARGING")):
            conn.execute(text(
                "INSERT INTO charges (pk, public_id, status, lock_version, party_pk, "
                "location_id, evse_uid, evse_id, connector_id, currency, hold_minor, "
                "refunded_minor, gateway, token_uid, authorization_reference, energy_kwh, "
                "language, created_at, updated_at) VALUES (:pk, :pub, :status, 0, 1, 'L', "
                "'E', 'SE*SIM*E1', '1', 'SEK', 100, 0, 'demo', :tok, :ref, 0, 'sv', "
                "'2026-01-01', '2026-01-01 10:00:00')"),
                {"pk": pk, "pub": f"p{pk}", "status": status, "tok": f"T{pk}", "ref": f"R{pk}"})
    with old.app_context():
        upgrade(directory=MIGRATIONS_DIR)
    with engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT status, stop_requested_by, stop_next_at IS NOT NULL FROM charges "
            "ORDER BY pk")).all()
    engine.dispose()
    assert [tuple(r) for r in rows] == [("STOPPING", "driver", 1), ("CHARGING", None, 0)]


def test_a_session_that_never_ends_is_settled_and_stopped_at_the_capture_deadline(
    client: Any, charge: Charge, cpo: StubCpo
) -> None:
    """The CPO keeps pushing an ACTIVE Session past the card authorisation's window: the
    charge is ended and settled from the last cost, and the session stopped."""
    from jobs import queue

    push_session(client, "ACTIVE")
    hours = client.application.config["HOLD_CAPTURE_DEADLINE_HOURS"]
    age(charge, created_at=now_utc() - timedelta(hours=hours + 1),
        session_updated_at=now_utc())
    assert sweeper.sweep()["capture_deadline"] == 1
    row = reload(charge)
    assert (row.status, row.end_reason) == ("ENDED", "CAPTURE_DEADLINE")
    queued = [task.name for task in queue.huey(client.application).pending()]
    assert "charging.settle_without_cdr" in queued
    assert "charging.stop_unpaid_session" in queued


def test_a_charge_within_its_window_is_left_to_charge(client: Any, charge: Charge) -> None:
    push_session(client, "ACTIVE")
    age(charge, capture_before=now_utc() + timedelta(days=3), session_updated_at=now_utc())
    assert sweeper.sweep()["capture_deadline"] == 0
    assert reload(charge).status == "CHARGING"
