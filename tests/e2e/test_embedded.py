"""`python app.py`: the one command that runs everything on a fresh machine, started as a
newcomer would, twice on the same instance folder (the second start migrates nothing and
reconnects to a fresh simulator)."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]


def free_port_pair() -> int:
    for _ in range(50):
        with socket.socket() as first:
            first.bind(("127.0.0.1", 0))
            port = first.getsockname()[1]
        with socket.socket() as second:
            try:
                second.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return port
    raise RuntimeError("no two free consecutive ports")


def start(instance: Path, port: int) -> tuple[subprocess.Popen, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in {"DATABASE_URL", "QUEUE_URL", "STRIPE_SECRET_KEY", "PUBLIC_BASE_URL"}}
    env.update(SCANCHARGE_INSTANCE_DIR=str(instance), PYTHONUNBUFFERED="1")
    process = subprocess.Popen(
        [sys.executable, "app.py", "--port", str(port)], cwd=ROOT, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    output = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line and process.poll() is not None:
            break
        output.append(line)
        if "Press Ctrl+C to stop." in line:
            return process, "".join(output)
    process.kill()
    raise AssertionError("app.py did not start:\n" + "".join(output))


def stop(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        raise


def test_python_app_py_runs_the_whole_embedded_default(tmp_path: Path) -> None:
    port = free_port_pair()
    process, output = start(tmp_path, port)
    try:
        assert f"ScanCharge is running at http://127.0.0.1:{port}" in output
        assert "payments: demo gateway" in output
        charger_url = re.search(r"Demo charger:\s+(\S+)", output).group(1)
        page = requests.get(charger_url, timeout=10)
        assert page.status_code == 200
        assert "DEMO" in page.text
        email, password = re.search(r"Operator dashboard: \S+\s+\((\S+) / (\S+)\)",
                                    output).groups()
        session = requests.Session()
        login = session.get(f"http://127.0.0.1:{port}/dashboard/login", timeout=10).text
        token = re.search(r'name="csrf" value="([^"]+)"', login).group(1)
        signed_in = session.post(f"http://127.0.0.1:{port}/dashboard/login", timeout=10,
                                 data={"email": email, "password": password, "csrf": token})
        assert "Charges" in signed_in.text
        versions = requests.get(f"http://127.0.0.1:{port}/ocpi/versions", timeout=10)
        assert versions.status_code == 401  # OCPI wants a credentials token
    finally:
        stop(process)
    assert (tmp_path / "scancharge.db").exists()
    assert (tmp_path / "queue.db").exists()

    process, output = start(tmp_path, port)
    try:
        assert "Demo charger:" in output
        charger_url = re.search(r"Demo charger:\s+(\S+)", output).group(1)
        assert requests.get(charger_url, timeout=10).status_code == 200
    finally:
        stop(process)
