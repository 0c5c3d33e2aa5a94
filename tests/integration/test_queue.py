"""The task queue as deployed: huey on SQLite (embedded default) and on Redis (scale-out),
with real consumers running the tasks the domain declares."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from jobs import EmbeddedWorker, background_task
from tests import workers

# Moved by the xdist worker's number, so parallel workers never share a database.
REDIS_URL = workers.redis_url(os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15"))
_seen: list[tuple[str, Any]] = []
_lock = threading.Lock()


@background_task("tests.record")
def record(value: Any) -> None:
    from flask import current_app

    with _lock:
        _seen.append((current_app.config["QUEUE_URL"], value))


def _wait(predicate: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("task did not run in time")


def _run_roundtrip(make_app: Any, queue_url: str) -> None:
    app = make_app(QUEUE_URL=queue_url, QUEUE_MAX_POLL_DELAY=0.05)
    worker = EmbeddedWorker(app, workers=2).start()
    try:
        with app.app_context():
            from jobs import queue

            queue.enqueue("tests.record", "now")
            queue.enqueue("tests.record", "later", delay=1)
        _wait(lambda: {v for url, v in _seen if url == queue_url} == {"now", "later"})
    finally:
        worker.stop()


def test_sqlite_queue_runs_tasks_now_and_later(make_app: Any, tmp_path: Path) -> None:
    _run_roundtrip(make_app, f"sqlite:///{tmp_path / 'queue.db'}")


def test_redis_queue_runs_tasks_now_and_later(make_app: Any) -> None:
    redis = pytest.importorskip("redis")
    try:
        client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1)
        client.ping()
    except Exception as exc:
        pytest.skip(f"Redis is not reachable at {REDIS_URL}: {exc}")
    client.flushdb()
    _run_roundtrip(make_app, REDIS_URL)


def test_an_idle_embedded_worker_runs_a_new_task_without_waiting_out_its_poll(
        make_app: Any, tmp_path: Path) -> None:
    # Every worker's poll is 30 s: found asleep, only the enqueue's wake-up can run the
    # tasks inside the 5 s the test waits (a task scheduled for later wakes it the same way,
    # when the scheduler enqueues it).
    url = f"sqlite:///{tmp_path / 'idle.db'}"
    app = make_app(QUEUE_URL=url, QUEUE_MAX_POLL_DELAY=30)
    worker = EmbeddedWorker(app, workers=2, initial_delay=30).start()
    try:
        time.sleep(0.3)  # let both workers find the queue empty and go to sleep
        with app.app_context():
            from jobs import queue

            queue.enqueue("tests.record", "woken")
            queue.enqueue("tests.record", "woken later", delay=1)
        _wait(lambda: {v for u, v in _seen if u == url} == {"woken", "woken later"}, timeout=5)
    finally:
        started = time.monotonic()
        worker.stop()
    assert time.monotonic() - started < 5, "stop() waited out a worker's poll"


def test_unknown_queue_url_is_a_clear_error() -> None:
    from jobs import build_huey

    with pytest.raises(ValueError, match="QUEUE_URL"):
        build_huey("amqp://localhost")


@pytest.mark.parametrize(
    ("seconds", "fires_at"),
    [
        (60, ["00:00", "00:01", "00:02"]),
        (300, ["00:00", "00:05", "00:10"]),
        (3600, ["00:00", "01:00", "02:00"]),
        (6 * 3600, ["00:00", "06:00", "12:00"]),
    ],
)
def test_periodic_intervals_become_the_right_crontab(seconds: int, fires_at: list[str]) -> None:
    import datetime as dt

    from jobs import _every

    check = _every(seconds)
    day = dt.datetime(2026, 11, 21)
    fired = [f"{m // 60:02d}:{m % 60:02d}" for m in range(24 * 60)
             if check(day + dt.timedelta(minutes=m))]
    assert fired[:3] == fires_at
