"""A sync point for tests on a live stack: wait until its queue has run every task queued
so far, without sleeping (LiveStack.wait_queue_drained in tests/conftest.py).

Its own module so that the task is declared once even where conftest is imported twice
(as `conftest` by pytest and as `tests.conftest` by a test)."""

from __future__ import annotations

import threading
from typing import Any

from jobs import background_task

_MEETINGS: dict[int, threading.Barrier] = {}
_LOCK = threading.Lock()


def _meeting(workers: int) -> threading.Barrier:
    with _LOCK:
        return _MEETINGS.setdefault(workers, threading.Barrier(workers + 1))


@background_task("tests.queue_workers_meet")
def _queue_workers_meet(workers: int) -> None:
    _meeting(workers).wait(timeout=30)


def wait_drained(app: Any, workers: int, timeout: float = 30.0) -> None:
    """Until every task queued in `app` before this call has finished: one task per queue
    worker, each waiting for all the others (and for this thread), so that at one moment
    every worker is in one of them, past whatever the FIFO queue held before."""
    with app.app_context():
        for _ in range(workers):
            _queue_workers_meet.enqueue(workers)
    meeting = _meeting(workers)
    try:
        meeting.wait(timeout)
    except threading.BrokenBarrierError:
        meeting.reset()
        raise AssertionError(f"the queue did not drain in {timeout}s") from None
