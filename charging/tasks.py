"""The domain's background tasks: the handles, declared next to their functions."""

from __future__ import annotations

from typing import Any

from charging import service
from jobs import Task

TASKS: list[Task[..., Any]] = [
    service.start,
    service.command_deadline,
    service.release_hold,
    service.send_stop,
    service.expire_unpaid,
    service.settle,
    service.settle_without_cdr,
    service.record_capture_before,
    service.stop_unpaid_session,
    service.unlock_connector,
    service.sweep,
]
