"""The one wiring place: every background task registered, every signal receiver connected.

create_app calls `tasks()` when the queue binds and `connect()` once the app is set up.
Receivers: what the edges (OCPI, payments) announce, and which domain function decides;
tasks: the handles (jobs.Task) that call sites enqueue through.
"""

from __future__ import annotations

import logging
from typing import Any

from charging import refunds, service
from charging.tasks import TASKS as CHARGING_TASKS
from extensions import db
from jobs import Task
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


def _ask(handler):
    # Answers the edge waits for: the return value is the answer.
    def receive(sender: str, **kw: Any) -> Any:
        return handler(**kw)

    return receive


_RECEIVERS = [
    (ocpi_signals.token_authorization_requested, _ask(service.on_token_authorization)),
    (payment_signals.hold_authorized, _payment(service.on_hold_authorized)),
    (payment_signals.hold_failed, _payment(service.on_hold_failed)),
    (payment_signals.hold_canceled, _payment(service.on_hold_canceled)),
    (payment_signals.hold_captured, _payment(service.on_hold_captured)),
    (ocpi_signals.command_result_received, _ocpi(service.on_command_result)),
    (ocpi_signals.session_updated, _ocpi(service.on_session_updated)),
    (ocpi_signals.cdr_received, _ocpi(service.on_cdr_received)),
    (ocpi_signals.cdr_refused, _ocpi(service.on_cdr_refused)),
]


_RECEIVERS += refunds._RECEIVERS
_RECEIVERS += [(payment_signals.receipt_issued, payments_mail._on_receipt_issued)]


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
