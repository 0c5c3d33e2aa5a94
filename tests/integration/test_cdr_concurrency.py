"""CDRs POSTed at once for different charges, over real HTTP to a threaded server: each is
stored and ends its charge in the request's one transaction, none refused by the database
("database is locked" on SQLite, where a savepoint outside a transaction commits on its
RELEASE). On SQLite, and on PostgreSQL with TEST_DATABASE_URL."""

from __future__ import annotations

import threading
from typing import Any

import requests
from test_ingest_statements import AUTH, _cdr, charging_at_cpo

from charging.models import Charge
from charging.states import ChargeStatus as S
from extensions import db
from ocpi.transport import json_dumps
from servers import ServerThread

THREADS = 6
ROUNDS = 4


def test_concurrent_cdrs_each_end_their_charge(make_app: Any) -> None:
    app = make_app()
    with app.app_context():
        charging_at_cpo(range(THREADS * ROUNDS), hold_minor=10_000)
    answers: list[int] = []
    with ServerThread(app) as server:
        barrier = threading.Barrier(THREADS)

        def post(worker: int) -> None:
            with requests.Session() as http:
                barrier.wait()
                for round_ in range(ROUNDS):
                    body = json_dumps(_cdr(worker * ROUNDS + round_))
                    answer = http.post(f"{server.url}/ocpi/2.2.1/cdrs", data=body,
                                       headers=AUTH, timeout=60)
                    answers.append(answer.status_code)

        threads = [threading.Thread(target=post, args=(w,)) for w in range(THREADS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert answers == [201] * (THREADS * ROUNDS)
    with app.app_context():
        states = db.session.scalars(db.select(Charge.status)).all()
        assert states == [S.ENDED.value] * (THREADS * ROUNDS), "a CDR's charge did not end"
        db.session.remove()
        db.engine.dispose()
