"""Wiring: what the edges announce, and which domain function decides."""

from __future__ import annotations

import logging
from typing import Any

from charging import service
from extensions import db
from ocpi import signals as ocpi_signals
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


def connect() -> None:
    """Subscribe the domain to the edges' signals (idempotent)."""
    for signal, receiver in _RECEIVERS:
        signal.connect(receiver, weak=False)
