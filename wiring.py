"""The one wiring place: every background task registered, every signal receiver connected.

create_app calls `tasks()` when the queue binds, and `connect()` and `answers(app)` once
the app is set up. Receivers: what the edges (OCPI, payments) announce, and which domain
function decides; answers: what an edge asks the domain and waits for (ocpi.answers);
tasks: the handles (jobs.Task) that call sites enqueue through.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable
from dataclasses import dataclass
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
from extensions import db, in_shared_transaction
from jobs import Task
from ocpi import answers as ocpi_answers
from ocpi import messages as ocpi_messages
from ocpi import signals as ocpi_signals
from ocpi import sync as ocpi_sync
from payments import demo as payments_demo
from payments import mail as payments_mail
from payments import signals as payment_signals

log = logging.getLogger(__name__)


class Kind(enum.Enum):
    """How a receiver runs; the value is what docs/architecture.md says of it."""

    # Errors propagate so the claim on the event rolls back and the event is applied again.
    HOLD = "with the Hold and event id, inside the payment event's unit of work"
    PAYMENT = "with the signal's arguments, inside the payment event's unit of work"
    # Receivers must not touch the database session, only hand work to the queue.
    AFTER_COMMIT = "after the commit, with the signal's arguments; enqueues work"
    # The OCPI object is already stored and answered for; the CPO is not asked again.
    OCPI = ("in its own unit of work once the OCPI object is stored (a pushed Session or "
            "CDR: in the request's one transaction; else after the commit); a failure is "
            "logged, undoes the domain's part only, and the sweeper re-drives the charge")


@dataclass(frozen=True)
class Receiver:
    signal: NamedSignal
    handler: Callable[..., Any]
    kind: Kind


# Every receiver, each once. Read top to bottom: what the edge announces, who decides.
RECEIVERS: tuple[Receiver, ...] = (
    Receiver(payment_signals.hold_authorized, on_hold_authorized, Kind.HOLD),
    Receiver(payment_signals.hold_failed, on_hold_failed, Kind.HOLD),
    Receiver(payment_signals.hold_canceled, on_hold_canceled, Kind.HOLD),
    Receiver(payment_signals.hold_captured, on_hold_captured, Kind.HOLD),
    Receiver(payment_signals.refund_confirmed, refunds.on_refund_confirmed, Kind.PAYMENT),
    Receiver(payment_signals.dispute_opened, refunds.on_dispute_opened, Kind.PAYMENT),
    Receiver(payment_signals.refund_updated, refunds.on_refund_updated, Kind.PAYMENT),
    Receiver(payment_signals.dispute_closed, refunds.on_dispute_closed, Kind.PAYMENT),
    Receiver(payment_signals.receipt_issued, payments_mail.on_receipt_issued, Kind.AFTER_COMMIT),
    Receiver(ocpi_signals.command_result_received, on_command_result, Kind.OCPI),
    Receiver(ocpi_signals.session_updated, on_session_updated, Kind.OCPI),
    Receiver(ocpi_signals.cdr_received, on_cdr_received, Kind.OCPI),
    Receiver(ocpi_signals.cdr_refused, on_cdr_refused, Kind.OCPI),
)


def _as_sent(handler: Callable[..., Any]) -> Callable[..., Any]:
    return handler


def _hold(handler: Callable[..., Any]) -> Callable[..., Any]:
    def receive(sender: str, **kw: Any) -> None:
        handler(kw["hold"], kw["event_id"])

    return receive


def _ocpi(handler: Callable[..., Any]) -> Callable[..., Any]:
    def receive(sender: str, **kw: Any) -> None:
        try:
            handler(**kw)
        except Exception:
            if not in_shared_transaction():
                db.session.rollback()
            # else the receiver rolls back and stores what it received again, alone
            log.exception("%s failed for %s", handler.__name__, kw)

    return receive


_WRAP: dict[Kind, Callable[[Callable[..., Any]], Callable[..., Any]]] = {
    Kind.HOLD: _hold,
    Kind.PAYMENT: _as_sent,
    Kind.AFTER_COMMIT: _as_sent,
    Kind.OCPI: _ocpi,
}


def tasks() -> list[Task[..., Any]]:
    """Every background and periodic task, each once."""
    return [
        *CHARGING_TASKS,
        ocpi_sync.pull_all,
        ocpi_sync.pull_party,
        ocpi_sync.pull_sessions,
        ocpi_sync.pull_cdrs,
        ocpi_messages.prune_messages,
        payments_mail.send_receipt_email,
        payments_demo.deliver_demo_event,
    ]


def connect() -> None:
    """Subscribe the domain to the edges' signals (idempotent)."""
    for receiver in RECEIVERS:
        if not _connected.get(receiver):
            _connected[receiver] = _WRAP[receiver.kind](receiver.handler)
            receiver.signal.connect(_connected[receiver], weak=False)


# The wrapped function per receiver, so a second connect() subscribes nothing new.
_connected: dict[Receiver, Callable[..., Any]] = {}


def answers(app: Flask) -> None:
    """Give the OCPI edge the domain's answers (ocpi.answers): what it asks and waits for,
    a Token's real-time authorisation. Before the /ocpi blueprint registers, which refuses
    an app without them."""
    ocpi_answers.init_app(app, authorize_token=on_token_authorization)
