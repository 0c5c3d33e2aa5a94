"""A demo gateway event exists only as its queue task's payload until it is stored: a task
that fails on a cut database connection is tried again, or a paid charge would never start
(found by the chaos run, tests/chaos: a pg_terminate_backend while the event was delivered
left the charge CREATED until it expired)."""

from __future__ import annotations

import json
import time
from typing import Any

from sqlalchemy.exc import OperationalError

import payments.demo
from extensions import db
from jobs import EmbeddedWorker, queue
from payments.models import PaymentEvent


def test_a_demo_event_whose_delivery_fails_once_is_delivered_again(
    make_app: Any, monkeypatch: Any
) -> None:
    app = make_app(QUEUE_URL="memory", QUEUE_MAX_POLL_DELAY=0.05)
    real_store = payments.demo.store_event
    calls: list[str] = []

    def flaky_store(event: dict[str, Any], gateway: str) -> Any:
        calls.append(event["id"])
        if len(calls) == 1:
            raise OperationalError("SELECT 1", {}, Exception("terminating connection due to "
                                                           "administrator command"))
        return real_store(event, gateway)

    monkeypatch.setattr(payments.demo, "store_event", flaky_store)
    event = {"id": "evt_demo_retry", "object": "event", "type": "payment_intent.canceled",
             "created": int(time.time()), "livemode": False,
             "data": {"object": {"id": "pi_demo_nobody", "object": "payment_intent"}}}
    worker = EmbeddedWorker(app, workers=1).start()
    try:
        with app.app_context():
            queue.enqueue("payments.deliver_demo_event", json.dumps(event))
        deadline = time.monotonic() + 15
        stored = None
        while time.monotonic() < deadline and stored is None:
            time.sleep(0.1)
            with app.app_context():
                stored = db.session.scalar(
                    db.select(PaymentEvent).where(PaymentEvent.event_id == "evt_demo_retry"))
                db.session.remove()
    finally:
        worker.stop()
    assert stored is not None, f"the event was lost after {len(calls)} attempt(s)"
    assert calls == ["evt_demo_retry", "evt_demo_retry"]
