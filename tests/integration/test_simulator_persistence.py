"""The simulator's state file: atomic writes, and a simulator built again on the same file
carrying on where the previous one stopped (registration, sessions, starts, CDRs)."""

from __future__ import annotations

import json
import os
from decimal import Decimal
from pathlib import Path

import pytest
import test_simulator
from stub_peers import wait_until
from test_simulator import (
    TOKEN_A,
    TOKEN_B,
    Client,
    StubEmsp,
    emsp_credentials,
    start,
    stop,
    wait_for_session_put,
)

from cpo_simulator.persistence import StateError, StateFile

# test_simulator's stub eMSP and simulator server, as fixtures of this module too.
stub_server = test_simulator.stub_server
sim_server = test_simulator.sim_server
stub = test_simulator.stub
make_sim = test_simulator.make_sim


def test_state_file_round_trip(tmp_path: Path) -> None:
    state = StateFile(tmp_path / "sub" / "simulator.json")
    assert state.load() is None
    document = {"format": 1, "sessions": [{"id": "s1", "kwh": "1.234"}]}
    assert state.save(document, 1)
    assert StateFile(state.path).load() == document
    # A snapshot taken earlier but written later never replaces a newer one.
    assert not state.save({"format": 1, "sessions": []}, 1)
    assert state.load() == document


def test_a_torn_write_leaves_the_previous_state_readable(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    state = StateFile(tmp_path / "simulator.json")
    previous = {"format": 1, "n": 1}
    state.save(previous, 1)

    # Killed after writing part of the new state, before the rename: what a SIGKILL at that
    # instant leaves behind.
    def killed(src: str, dst: str) -> None:
        with open(src, "r+b") as handle:
            handle.truncate(5)
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        state.save({"format": 1, "n": 2, "big": "x" * 10_000}, 2)
    monkeypatch.undo()
    assert StateFile(state.path).load() == previous

    # A leftover of a write cut short is ignored and cleared away at the next start.
    leftover = tmp_path / ".simulator.json.abc123.tmp"
    leftover.write_bytes(b'{"format": 1, "n"')
    assert StateFile(state.path).load() == previous
    assert not leftover.exists()


def test_an_unreadable_state_file_is_refused_not_dropped(tmp_path: Path) -> None:
    path = tmp_path / "simulator.json"
    path.write_text("{not json")
    with pytest.raises(StateError, match="delete it"):
        StateFile(path).load()
    path.write_text(json.dumps({"format": 999}))
    with pytest.raises(StateError, match="format"):
        StateFile(path).load()


def register(simulator_url: str, stub: StubEmsp) -> Client:
    client = Client(simulator_url, TOKEN_A)
    reply = client.call("POST", "/ocpi/2.2.1/credentials", emsp_credentials(stub))
    assert reply.status_code == 200, reply.text
    client.token = reply.json()["data"]["token"]
    return client


def test_without_a_state_path_nothing_is_written(make_sim, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    simulator = make_sim()
    simulator.resume()  # a no-op in memory
    assert list(tmp_path.iterdir()) == []


def test_an_active_session_carries_on_after_a_restart(make_sim, stub, sim_server,
                                                      tmp_path: Path) -> None:
    path = str(tmp_path / "simulator.json")
    first = make_sim(state_path=path)
    client = register(sim_server[1].url, stub)
    start(client, stub)
    session = wait_for_session_put(stub, "ACTIVE").body
    wait_until(lambda: len(stub.got("PATCH", "/emsp/2.2.1/sessions/")) >= 3)
    first.shutdown()  # the threads stop as with a kill: nothing more is written after this
    before = next(s for s in first.sessions if s["id"] == session["id"])
    on_disk = json.loads(Path(path).read_text())
    assert [s["id"] for s in on_disk["sessions"]] == [session["id"]]
    stub.clear_received()

    second = make_sim(state_path=path)
    assert second.registered
    assert second.peer_credentials().token == TOKEN_B
    assert second.authenticate([client.token]) == "peer"  # the same token C still works
    restored = next(s for s in second.sessions if s["id"] == session["id"])
    assert restored == before  # nothing lost, nothing charged while it was down
    evse = client.get("/ocpi/2.2.1/locations/SIM-STO/SIM-STO-1").json()["data"]
    assert evse["status"] == "CHARGING"

    second.resume()
    resumed = wait_for_session_put(stub, "ACTIVE").body
    assert resumed["id"] == session["id"]
    assert Decimal(str(resumed["kwh"])) == Decimal(str(before["kwh"]))
    wait_until(lambda: stub.got("PATCH", "/emsp/2.2.1/sessions/"))
    stop(client, stub, session["id"])
    completed = wait_for_session_put(stub, "COMPLETED").body
    assert Decimal(str(completed["kwh"])) > Decimal(str(before["kwh"]))
    cdr = wait_until(lambda: stub.got("POST", "/emsp/2.2.1/cdrs"))[0].body
    assert cdr["session_id"] == session["id"]
    # The periods go on from the last one persisted: one contiguous simulated clock.
    periods = cdr["charging_periods"]
    assert periods[0]["start_date_time"] == session["start_date_time"]
    assert Decimal(str(cdr["total_energy"])) == Decimal(str(completed["kwh"]))
    # Acknowledged, so no longer pending on disk (written just after the eMSP answered).
    wait_until(lambda: [c["pending"] for c in json.loads(Path(path).read_text())["cdrs"]]
               == [False])


def test_an_undelivered_cdr_is_delivered_after_a_restart(make_sim, stub, sim_server,
                                                         tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch
                                                         ) -> None:
    path = str(tmp_path / "simulator.json")
    first = make_sim(state_path=path)
    client = register(sim_server[1].url, stub)
    # Killed after the CDR was made and stored, before it was posted.
    monkeypatch.setattr(first, "_deliver_cdr", lambda cdr_id: False)
    start(client, stub)
    session = wait_for_session_put(stub, "ACTIVE").body
    stop(client, stub, session["id"])
    wait_for_session_put(stub, "COMPLETED")
    first.shutdown()
    assert not stub.got("POST", "/emsp/2.2.1/cdrs")
    assert [c["pending"] for c in json.loads(Path(path).read_text())["cdrs"]] == [True]
    stub.clear_received()

    second = make_sim(state_path=path)
    second.resume()
    cdr = wait_until(lambda: stub.got("POST", "/emsp/2.2.1/cdrs"))[0].body
    assert cdr["session_id"] == session["id"]
    assert cdr["id"] == second.cdrs[0]["id"]
    # Its completed session came first, in case the eMSP missed that too.
    assert stub.got("PUT", "/emsp/2.2.1/sessions/")[0].body["status"] == "COMPLETED"
    wait_until(lambda: [c["pending"] for c in json.loads(Path(path).read_text())["cdrs"]]
               == [False])
    second.shutdown()
    stub.clear_received()

    third = make_sim(state_path=path)  # delivered: not sent again
    third.resume()
    assert third.cdr_location(cdr["id"])
    assert not stub.got("POST", "/emsp/2.2.1/cdrs")


def test_a_pending_start_finishes_after_a_restart(make_sim, stub, sim_server,
                                                  tmp_path: Path) -> None:
    path = str(tmp_path / "simulator.json")
    first = make_sim(state_path=path)
    client = register(sim_server[1].url, stub)
    first.set_behaviour(result_delay=0.5)
    _, result_path = start(client, stub)
    first.shutdown()  # before the result was due
    assert not stub.got("POST", result_path)
    assert len(json.loads(Path(path).read_text())["pending_starts"]) == 1

    second = make_sim(state_path=path)
    # The EVSE turns CHARGING only when the session opens, after the restart.
    evse = client.get("/ocpi/2.2.1/locations/SIM-STO/SIM-STO-1").json()["data"]
    assert evse["status"] == "AVAILABLE"
    second.resume()
    result = wait_until(lambda: stub.got("POST", result_path))[0].body
    assert result["result"] == "ACCEPTED"
    wait_for_session_put(stub, "ACTIVE")
    state = json.loads(Path(path).read_text())
    assert state["pending_starts"] == []
    assert [s["status"] for s in state["sessions"]] == ["ACTIVE"]
