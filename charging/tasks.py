"""The domain's background tasks: the handles, declared next to their functions."""

from __future__ import annotations

from typing import Any

from charging.charge_link import mail_charge_link
from charging.operator_actions import unlock_connector
from charging.payment_events import expire_unpaid, record_capture_before
from charging.releases import release_hold
from charging.settlement import settle, settle_without_cdr
from charging.starting import command_deadline, start
from charging.stopping import send_stop, stop_unpaid_session
from charging.sweeper import sweep
from jobs import Task

TASKS: list[Task[..., Any]] = [
    start,
    command_deadline,
    release_hold,
    send_stop,
    expire_unpaid,
    settle,
    settle_without_cdr,
    record_capture_before,
    stop_unpaid_session,
    unlock_connector,
    sweep,
    mail_charge_link,
]
