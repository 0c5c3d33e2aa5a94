"""Every update applied: PATCHes of one Session in flight at once, over real HTTP to a
threaded server, each adding its own charging period: every one is answered 1000 and every
period is stored (the PATCH merges under the Session's row lock, ocpi.store.lock_session).
On SQLite, and on PostgreSQL with TEST_DATABASE_URL."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import requests
from test_ocpi_server import AUTH, V, add_party, session

from ocpi.transport import json_dumps
from servers import ServerThread

THREADS = 6
ROUNDS = 4
START = "2026-12-01T08:00:00Z"


def _period(n: int) -> dict[str, Any]:
    from datetime import datetime

    at = datetime(2026, 12, 1, 8, 0) + timedelta(minutes=n)
    return {"start_date_time": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "dimensions": [{"type": "ENERGY", "volume": n}]}


def test_concurrent_patches_of_one_session_lose_no_period(make_app: Any) -> None:
    app = make_app()
    with app.app_context():
        add_party("tok-C", "SE", "SIM")
    url = f"{V}/sessions/SE/SIM/101"
    with ServerThread(app) as server:
        base = server.url
        first = session("session_example_1_simple_start.json", status="ACTIVE",
                        charging_periods=[])
        put = requests.put(base + url, data=json_dumps(first), timeout=30,
                           headers={**AUTH, "Content-Type": "application/json"})
        assert put.status_code == 201, put.text
        barrier = threading.Barrier(THREADS)
        answers: list[tuple[int, int]] = []

        def patch(worker: int) -> None:
            with requests.Session() as http:
                barrier.wait()
                for round_ in range(ROUNDS):
                    n = 1 + worker * ROUNDS + round_
                    body = {"charging_periods": [_period(n)], "kwh": n,
                            "last_updated": _period(n)["start_date_time"]}
                    answer = http.patch(base + url, json=body, headers=AUTH, timeout=60)
                    answers.append((answer.status_code, answer.json()["status_code"]))

        threads = [threading.Thread(target=patch, args=(w,)) for w in range(THREADS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        stored = requests.get(base + url, headers=AUTH, timeout=30).json()["data"]
    assert answers == [(200, 1000)] * (THREADS * ROUNDS)
    volumes = sorted(p["dimensions"][0]["volume"] for p in stored["charging_periods"])
    assert volumes == list(range(1, THREADS * ROUNDS + 1)), "charging periods were lost"
    with app.app_context():
        from extensions import db

        db.session.remove()
        db.engine.dispose()
