"""The one wiring place: every background task registered, every signal receiver connected.

create_app calls `tasks()` when the queue binds, and `connect()` and `answers(app)` once
the app is set up. Receivers: what the edges (OCPI, payments) announce, and which domain
function decides; answers: what an edge asks the domain and waits for (ocpi.answers);
tasks: the handles (jobs.Task) that call sites enqueue through.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from blinker import NamedSignal
from flask import Flask

from charging import refunds
from charging.cdrs import on_cdr_received, on_cdr_refused
from charging.command_results import on_command_result
from charging.payment_events import (
    on_hold_authorized,
    on_hold_canceled,
    on_hold_captured,
    on_hold_failed,
)
from charging.sessions import on_session_updated
from charging.tasks import TASKS as CHARGING_TASKS
from charging.tokens import on_token_authorization
from extensions import db
from jobs import Task
from ocpi import answers as ocpi_answers
from ocpi import messages as ocpi_messages
from ocpi import signals as ocpi_signals
from ocpi import sync as ocpi_sync
from payments import demo as payments_demo
from payments import mail as payments_mail
from payments import signals as payment_signals

log = logging.getLogger(__name__)


def _payment(handler):
    # Payment receivers run inside the event's transaction: errors propagate so the claim
    # on the event rolls back and the event is applied again later.
    def receive(sender: str, **kw: Any) -> None:
        handler(kw["hold"], kw["event_id"])

    return receive


def _ocpi(handler):
    # The OCPI object is already stored and answered for; a failure here is logged and the
    # sweeper re-drives the charge, so the CPO is not asked to send it again.
    def receive(sender: str, **kw: Any) -> None:
        try:
            handler(**kw)
        except Exception:
            db.session.rollback()
            log.exception("%s failed for %s", handler.__name__, kw)

    return receive


# Every receiver, each once: (signal, receiver). Payment receivers run inside the payment
# event's unit of work; OCPI receivers each run their own (charging/unit_of_work.py).
_RECEIVERS: list[tuple[NamedSignal, Callable[..., Any]]] = [
    (payment_signals.hold_authorized, _payment(on_hold_authorized)),
    (payment_signals.hold_failed, _payment(on_hold_failed)),
    (payment_signals.hold_canceled, _payment(on_hold_canceled)),
    (payment_signals.hold_captured, _payment(on_hold_captured)),
    (payment_signals.refund_confirmed, refunds.on_refund_confirmed),
    (payment_signals.dispute_opened, refunds.on_dispute_opened),
    (payment_signals.refund_updated, refunds.on_refund_updated),
    (payment_signals.dispute_closed, refunds.on_dispute_closed),
    (payment_signals.receipt_issued, payments_mail.on_receipt_issued),
    (ocpi_signals.command_result_received, _ocpi(on_command_result)),
    (ocpi_signals.session_updated, _ocpi(on_session_updated)),
    (ocpi_signals.cdr_received, _ocpi(on_cdr_received)),
    (ocpi_signals.cdr_refused, _ocpi(on_cdr_refused)),
]


def tasks() -> list[Task[..., Any]]:
    """Every background and periodic task, each once."""
    return [
        *CHARGING_TASKS,
        ocpi_sync.pull_all,
        ocpi_sync.pull_sessions,
        ocpi_sync.pull_cdrs,
        ocpi_messages.prune_messages,
        payments_mail.send_receipt_email,
        payments_demo.deliver_demo_event,
    ]


def connect() -> None:
    """Subscribe the domain to the edges' signals (idempotent)."""
    for signal, receiver in _RECEIVERS:
        signal.connect(receiver, weak=False)


def answers(app: Flask) -> None:
    """Give the OCPI edge the domain's answers; before the /ocpi blueprint registers,
    which refuses an app without them."""
    ocpi_answers.init_app(app, authorize_token=on_token_authorization)
