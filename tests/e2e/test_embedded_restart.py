"""`python app.py` killed with SIGKILL in the middle of charging, and started again on the same
instance folder: every open charge still ends, is captured once and gets its receipt.

The real embedded default runs as a subprocess: ScanCharge on SQLite, its queue on SQLite and
the built-in CPO simulator keeping its state in instance/simulator.json.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests

from tests.e2e.test_embedded import free_port_pair

ROOT = Path(__file__).resolve().parents[2]
FINAL = {"CAPTURED", "RELEASED"}
# AC EVSEs of the demo network (E00005 is out of order, the DC ones would fill up at once).
CHARGING_EVSES = ["SE*SIM*E00001", "SE*SIM*E00002", "SE*SIM*E00006", "SE*SIM*E00007"]
STARTING_EVSE = "SE*SIM*E00008"


def launch(instance: Path, port: int) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items()
           if k not in {"DATABASE_URL", "QUEUE_URL", "STRIPE_SECRET_KEY", "PUBLIC_BASE_URL",
                        "SIMULATOR_PORT", "SCANCHARGE_ENV"}}
    env.update(
        SCANCHARGE_INSTANCE_DIR=str(instance), PYTHONUNBUFFERED="1",
        # 5 simulated minutes per real second: a 60 kr charge takes some 7 s.
        SIMULATOR_TIME_FACTOR="300", QUEUE_MAX_POLL_DELAY="0.1",
        # The test polls five charges ten times a second from one address: far more than
        # one phone, which the look-up limit is sized for.
        RATE_LIMIT_LOOKUPS_PER_CLIENT="100000/minute",
    )
    process = subprocess.Popen(
        [sys.executable, "app.py", "--port", str(port)], cwd=ROOT, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    output = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line and process.poll() is not None:
            break
        output.append(line)
        if "Press Ctrl+C to stop." in line:
            return process
    process.kill()
    raise AssertionError("app.py did not start:\n" + "".join(output))


def wait_for(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def test_open_charges_settle_after_a_kill_9(tmp_path: Path) -> None:
    port = free_port_pair()
    base, sim = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{port + 1}"
    state_file = tmp_path / "simulator.json"

    def status(charge_id: str) -> dict[str, Any]:
        return requests.get(f"{base}/api/v1/charges/{charge_id}", timeout=10).json()

    def pay(evse_id: str) -> str:
        created = requests.post(f"{base}/api/v1/charges", timeout=10, json={
            "evse_id": evse_id, "language": "en", "max_amount_minor": 6000})
        assert created.status_code == 201, created.text
        charge = created.json()
        confirmed = requests.post(f"{base}/payments/demo/confirm", timeout=10, json={
            "payment_intent": charge["payment"]["payment_intent"],
            "client_secret": charge["payment"]["client_secret"],
            "card_number": "4242424242424242",
        })
        assert confirmed.status_code == 200, confirmed.text
        return charge["id"]

    process = launch(tmp_path, port)
    try:
        charging = [pay(evse) for evse in CHARGING_EVSES]
        wait_for(lambda: all(status(c)["status"] == "CHARGING"
                             and float(status(c)["energy_kwh"]) > 0 for c in charging),
                 15, "every charge to be charging")
        # The last charge's START_SESSION is accepted, its result held back: killed while
        # STARTING, with the start pending in the simulator's file.
        requests.post(f"{sim}/sim/behaviour", json={"result_delay": 3}, timeout=10)
        starting = pay(STARTING_EVSE)
        wait_for(lambda: json.loads(state_file.read_text())["pending_starts"], 10,
                 "the start to be pending in the simulator's state")
        assert status(starting)["status"] == "STARTING"
        assert {status(c)["status"] for c in charging} == {"CHARGING"}
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)

    process = launch(tmp_path, port)
    try:
        charges = [*charging, starting]
        # Drivers stop two of them from their phones; the others end at their cap.
        wait_for(lambda: status(starting)["status"] != "STARTING", 15, "the start to finish")
        for charge_id in charging[:2]:
            stopped = requests.post(f"{base}/api/v1/charges/{charge_id}/stop", timeout=10)
            assert stopped.status_code == 202, stopped.text
        done = wait_for(lambda: all(status(c)["status"] in FINAL for c in charges) and [
            status(c) for c in charges], 25, "every charge to settle")
        for charge in done:
            assert charge["status"] == "CAPTURED", charge
            assert charge["receipt_url"]
            receipt = requests.get(f"{base}/api/v1/charges/{charge['id']}/receipt",
                                   timeout=10)
            assert receipt.status_code == 200
            assert receipt.json()["total"]["amount_minor"] == charge["captured"]["amount_minor"]
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()

    with sqlite3.connect(tmp_path / "scancharge.db") as conn:
        for charge in done:
            pk, hold_id, captured = conn.execute(
                "select pk, hold_id, captured_minor from charges where public_id = ?",
                (charge["id"],)).fetchone()
            captures = conn.execute(
                "select count(*) from charge_events where charge_pk = ? and "
                "to_status = 'CAPTURED' and from_status <> 'CAPTURED'", (pk,)).fetchone()[0]
            assert captures == 1
            received, keys = conn.execute(
                "select amount_received_minor, applied_keys from demo_payment_intents "
                "where intent_id = ?", (hold_id,)).fetchone()
            assert received == captured > 0
            assert [k for k in json.loads(keys) if k.endswith("-capture")] == [
                f"charge-{charge['id']}-capture"]
        # One party for the simulator, kept across the restart, and no second handshake:
        # both sides still hold the tokens of the first.
        assert conn.execute("select count(*) from ocpi_parties").fetchone()[0] == 1
        assert conn.execute(
            "select count(*) from ocpi_messages where direction = 'out' and "
            "module = 'credentials' and method = 'POST'").fetchone()[0] == 1
