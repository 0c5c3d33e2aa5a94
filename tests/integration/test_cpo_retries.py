"""Work toward a CPO that can wait is retried with exponential backoff and jitter, a
bounded number of times, and every try is in the message log: pulls of Sessions and CDRs,
and an operator's UNLOCK_CONNECTOR."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask

from charging import operator_actions
from charging.models import Charge, ChargeEvent
from charging.states import ChargeStatus as S
from extensions import db
from jobs import backoff_delay, queue
from ocpi import sync
from ocpi.models import OcpiMessage, Party, PartyGrant
from servers import ServerThread
from tests.stub_peers import answer


class FlakyCpo:
    """Answers HTTP 503 `failures` times, then an empty list (or ACCEPTED for commands)."""

    def __init__(self, failures: int) -> None:
        self.app = Flask("flaky-cpo")
        self.failures = failures
        self.calls = 0
        self.lock = threading.Lock()

        @self.app.route("/cpo/<path:rest>", methods=["GET", "POST"])
        def anything(rest: str) -> Any:
            with self.lock:
                self.calls += 1
                failing = self.calls <= self.failures
            if failing:
                return answer(status=503, code=3000)
            if rest.startswith("commands"):
                return answer({"result": "ACCEPTED", "timeout": 30})
            return answer([])


@pytest.fixture
def flaky(app: Any) -> Iterator[tuple[FlakyCpo, Party]]:
    cpo = FlakyCpo(failures=2)
    server = ServerThread(cpo.app).start()
    party = Party(name="Flaky", status="CONNECTED", country_code="SE", party_id="SIM",
                  version="2.2.1", outgoing_token="tok", endpoints=[
                      {"identifier": module, "role": role, "url": f"{server.url}/cpo/{module}"}
                      for module, role in (("cdrs", "SENDER"), ("sessions", "SENDER"),
                                           ("commands", "RECEIVER"))],
                  grants=[PartyGrant(role="CPO", country_code="SE", party_id="SIM")])
    db.session.add(party)
    db.session.commit()
    yield cpo, party
    server.stop()


def scheduled(app: Any) -> list[tuple[str, tuple]]:
    """Tasks enqueued for later (no worker runs in these tests: they wait in the queue)."""
    huey = queue.huey(app)
    return [(task.name, task.args) for task in [*huey.pending(), *huey.scheduled()]
            if task.eta is not None]


def test_backoff_is_exponential_capped_and_jittered() -> None:
    for attempt in range(10):
        ceiling = min(1800, 30 * 2 ** attempt)
        delays = [backoff_delay(attempt, 30, 1800) for _ in range(30)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert len(set(delays)) > 1


@pytest.mark.parametrize(("task", "module"), [("ocpi.pull_cdrs", "cdrs"),
                                              ("ocpi.pull_sessions", "sessions")])
def test_a_failed_pull_is_tried_again_later_and_each_try_is_logged(
    app: Any, flaky: tuple[FlakyCpo, Party], task: str, module: str
) -> None:
    cpo, party = flaky
    pull = sync.pull_cdrs if module == "cdrs" else sync.pull_sessions
    since = "2026-12-01T00:00:00Z"
    assert pull(party.pk, since) == 0
    assert scheduled(app) == [(task, (party.pk, since, 1))]
    # The queue runs the scheduled try; it fails once more, then the CPO answers.
    assert pull(party.pk, since, 1) == 0
    assert pull(party.pk, since, 2) == 0
    assert cpo.calls == 3
    tries = db.session.scalars(db.select(OcpiMessage).where(OcpiMessage.module == module)).all()
    assert [m.http_status for m in tries] == [503, 503, 200]


def test_a_pull_gives_up_after_its_attempts(app: Any, flaky: tuple[FlakyCpo, Party]) -> None:
    cpo, party = flaky
    cpo.failures = 100
    last = app.config["OCPI_RETRY_ATTEMPTS"] - 1
    assert sync.pull_cdrs(party.pk, "2026-12-01T00:00:00Z", last) == 0
    assert scheduled(app) == []


def test_an_unlock_the_cpo_could_not_take_is_sent_again(
    app: Any, flaky: tuple[FlakyCpo, Party]
) -> None:
    _cpo, party = flaky
    charge = Charge(party_pk=party.pk, cpo_country_code="SE", cpo_party_id="SIM",
                    location_id="L", evse_uid="E", evse_id="SE*SIM*E1", connector_id="1",
                    currency="SEK", hold_minor=100, gateway="demo", token_uid="TU",
                    authorization_reference="RU", status=S.CAPTURED.value)
    db.session.add(charge)
    db.session.commit()
    assert operator_actions.unlock_connector(charge.pk, "op@example.com") == "ERROR"
    assert scheduled(app) == [("charging.unlock_connector", (charge.pk, "op@example.com", 1))]
    assert operator_actions.unlock_connector(charge.pk, "op@example.com", 1) == "ERROR"
    assert operator_actions.unlock_connector(charge.pk, "op@example.com", 2) == "ACCEPTED"
    notes = [e.note for e in db.session.scalars(
        db.select(ChargeEvent).where(ChargeEvent.charge_pk == charge.pk))]
    assert sum("trying again in" in n for n in notes) == 2
    assert notes[-1].endswith(": ACCEPTED")
