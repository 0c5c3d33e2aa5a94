"""Payment authorised -> START_SESSION sent: a standalone benchmark (not a pytest test).

    python bench/bench_start_latency.py [--mode embedded|scaled|both] [--charges 20]
                                        [--idle 2.0]

For each mode, ScanCharge and the CPO simulator run on real sockets, connected by the real
handshake, and `--charges` drivers pay one after the other with the demo gateway, each after
`--idle` seconds of nothing (longer than QUEUE_MAX_POLL_DELAY, so a polling worker would
have backed off). For each charge it reads, from the database, when the charge became
AUTHORIZED (its timeline) and when START_SESSION left for the CPO (the OCPI message log),
and prints p50, p95 and the worst of the difference.

- embedded: the default (`python app.py`): SQLite, the SQLite queue, the queue worker as
  threads in the web process;
- scaled: PostgreSQL (database `bench`, emptied) and Redis (db 13), the worker a separate
  process (`flask --app app worker`), as in a scaled-out deployment.
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import requests  # noqa: E402
from sqlalchemy import create_engine, text  # noqa: E402

PG_URL = os.environ.get("BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/bench")
REDIS_QUEUE = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")


def _settings(database: str, queue: str) -> dict[str, str]:
    return {"DATABASE_URL": database, "QUEUE_URL": queue, "SECRET_KEY": "bench-latency",
            "PUBLIC_BASE_URL": "http://127.0.0.1:5000", "SIMULATOR_ENABLED": "0",
            "RATE_LIMIT_STORAGE_URL": "memory://", "OCPI_ALLOWED_PRIVATE_TARGETS": "127.0.0.1",
            "RATE_LIMIT_CHARGES_PER_CLIENT": "10000/hour",
            "RATE_LIMIT_CHARGES_PER_EVSE": "10000/hour", "SCANCHARGE_ENV": "development"}


def run(mode: str, charges: int, idle: float) -> list[float]:
    from cpo_simulator import SimulatorSettings, create_simulator
    from servers import ServerThread

    if mode == "scaled":
        database, queue = PG_URL, REDIS_QUEUE
        engine = create_engine(PG_URL)
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        engine.dispose()
        import redis

        redis.Redis.from_url(REDIS_QUEUE).flushdb()
    else:
        folder = Path(tempfile.mkdtemp(prefix="bench-latency-"))
        database = f"sqlite:///{folder / 'scancharge.db'}"
        queue = f"sqlite:///{folder / 'queue.db'}"
    settings = _settings(database, queue)
    os.environ.update(settings)
    from app import create_app, upgrade_database
    from extensions import db
    from jobs import EmbeddedWorker
    from ocpi.credentials import connect
    from ocpi.models import OcpiEvse, OcpiLocation
    from ocpi.sync import pull

    token_a = secrets.token_urlsafe(16)
    simulator = create_simulator(SimulatorSettings(
        base_url="", token_a=token_a, time_factor=60.0, tick_seconds=0.5, result_delay=0.05))
    sim_server = ServerThread(simulator.app).start()
    app = create_app({"SQLALCHEMY_DATABASE_URI": database, "QUEUE_URL": queue})
    upgrade_database(app)
    server = ServerThread(app)
    app.config["PUBLIC_BASE_URL"] = server.url
    server.start()
    worker: Any = None
    if mode == "embedded":
        worker = EmbeddedWorker(app).start()
    else:
        worker = subprocess.Popen(
            [sys.executable, "-m", "flask", "--app", "app", "worker"], cwd=ROOT,
            env={**os.environ, **settings, "PUBLIC_BASE_URL": server.url},
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        with app.app_context():
            party = connect(f"{sim_server.url}/ocpi/versions", token_a, "CPO simulator")
            pull(party, full=True)
            evse_ids = [e["evse_id"] for location in db.session.scalars(db.select(OcpiLocation))
                        for e in location.data["evses"]
                        if db.session.scalar(db.select(OcpiEvse.status).where(
                            OcpiEvse.location_pk == location.pk,
                            OcpiEvse.evse_uid == e["uid"].upper())) == "AVAILABLE"]
            db.session.remove()
        return [_one(server.url, app, evse_ids[i % len(evse_ids):] + evse_ids[:i % len(evse_ids)],
                     idle) for i in range(charges)]
    finally:
        if mode == "embedded":
            worker.stop()
        else:
            worker.terminate()
            worker.wait(timeout=30)
        simulator.shutdown()
        server.stop()
        sim_server.stop()
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


def _one(base: str, app: Any, evse_ids: list[str], idle: float) -> float:
    """One driver pays at the first of `evse_ids` not in use (a charger still busy with an
    earlier driver answers 409), and stops once the start was sent, freeing the charger."""
    time.sleep(idle)  # the queue idles, as between two drivers
    for evse_id in evse_ids:
        answer = requests.post(f"{base}/api/v1/charges", timeout=30,
                               json={"evse_id": evse_id, "language": "en"})
        if answer.status_code != 409:
            break
    assert answer.status_code == 201, answer.text
    created = answer.json()
    try:
        return _latency(base, app, created)
    finally:
        requests.post(f"{base}/api/v1/charges/{created['id']}/stop", timeout=30)


def _latency(base: str, app: Any, created: dict[str, Any]) -> float:
    from charging.models import Charge, ChargeEvent
    from extensions import db
    from ocpi.models import OcpiMessage

    payment = created["payment"]
    confirmed = requests.post(f"{base}/payments/demo/confirm", timeout=30, json={
        "payment_intent": payment["payment_intent"], "client_secret": payment["client_secret"],
        "card_number": "4242424242424242"})
    assert confirmed.status_code == 200, confirmed.text
    deadline = time.monotonic() + 30
    with app.app_context():
        while time.monotonic() < deadline:
            charge = db.session.scalar(db.select(Charge).where(
                Charge.public_id == created["id"]))
            sent = db.session.scalar(db.select(OcpiMessage.at).where(
                OcpiMessage.direction == "out", OcpiMessage.url.like("%START_SESSION%"),
                # (before the correlation id had its own value, it was the public id)
                OcpiMessage.correlation_id.in_(
                    {getattr(charge, "correlation_id", charge.public_id), charge.public_id})))
            if sent is not None:
                authorized = db.session.scalar(db.select(ChargeEvent.at).where(
                    ChargeEvent.charge_pk == charge.pk, ChargeEvent.to_status == "AUTHORIZED"))
                db.session.remove()
                return (sent - authorized).total_seconds() * 1000
            db.session.remove()
            time.sleep(0.02)
    raise RuntimeError(f"no START_SESSION for {created['id']} within 30 s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--mode", choices=("embedded", "scaled", "both"), default="both")
    parser.add_argument("--charges", type=int, default=20)
    parser.add_argument("--idle", type=float, default=2.0)
    args = parser.parse_args(argv)
    for mode in ("embedded", "scaled") if args.mode == "both" else (args.mode,):
        latencies = sorted(run(mode, args.charges, args.idle))
        p95 = latencies[max(0, int(len(latencies) * 0.95) - 1)]
        print(f"{mode:<9} payment authorised -> START_SESSION sent, {len(latencies)} charges "
              f"after {args.idle} s idle each: p50 {statistics.median(latencies):6.1f} ms, "
              f"p95 {p95:6.1f} ms, worst {latencies[-1]:6.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
