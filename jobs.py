"""Background work on huey: embedded on SQLite by default, on Redis when scaled out.

Tasks are declared with @background_task("name") (alias @task), which returns a Task handle
call sites enqueue through (`settle.enqueue_after_commit(pk)`); TaskQueue.init_app registers
the wiring module's list of handles on the app's huey instance, each wrapped in an app
context, so the web process (which enqueues) and the worker process (which runs) agree on names.
"""

from __future__ import annotations

import functools
import logging
import random
import threading
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any, Generic, ParamSpec, TypeVar

from flask import Flask
from huey import Huey, MemoryHuey, RedisHuey, SqliteHuey, crontab
from huey.consumer import Consumer, Worker
from huey.signals import SIGNAL_ENQUEUED

from extensions import after_commit

log = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")


class Task(Generic[P, R]):
    """A handle on one background task: call it to run now, enqueue it to run in the worker.

    Call sites hold the handle, never its name, so a misspelt task is a NameError or an
    AttributeError at import time. The name is what huey stores in the queue: it stays as
    declared so that tasks already queued by an older release still find their function.
    """

    def __init__(self, fn: Callable[P, R], name: str, retries: int = 0,
                 retry_delay: int = 0) -> None:
        self.fn = fn
        self.name = name
        self.retries = retries
        self.retry_delay = retry_delay
        functools.update_wrapper(self, fn)

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        return self.fn(*args, **kwargs)

    def enqueue(self, *args: Any, delay: float | None = None) -> None:
        """Queue it now (outside a transaction, or when the caller commits first)."""
        from flask import current_app

        TaskQueue._for(current_app).enqueue(self.name, *args, delay=delay)

    def enqueue_after_commit(self, *args: Any, delay: float | None = None) -> None:
        """Queue it once the current transaction commits; dropped if it rolls back."""
        after_commit(lambda: self.enqueue(*args, delay=delay))

    def __repr__(self) -> str:
        return f"<Task {self.name}>"


class PeriodicTask(Task[P, R]):
    """A task the worker runs every app.config[setting] seconds."""

    def __init__(self, fn: Callable[P, R], name: str, setting: str) -> None:
        super().__init__(fn, name)
        self.setting = setting


_TASKS: dict[str, Task[..., Any]] = {}
_PERIODIC: dict[str, tuple[Callable[..., Any], str]] = {}


def _declare(handle: Task[P, R]) -> Task[P, R]:
    known = _TASKS.get(handle.name)
    if known is not None and known.fn is not handle.fn:
        raise ValueError(f"two tasks are named {handle.name!r}: {known.fn} and {handle.fn}")
    _TASKS[handle.name] = handle
    if isinstance(handle, PeriodicTask):
        _PERIODIC[handle.name] = (handle.fn, handle.setting)
    return handle


def background_task(
    name: str, *, retries: int = 0, retry_delay: int = 0
) -> Callable[[Callable[P, R]], Task[P, R]]:
    """Declare a function as a background task known by `name`; returns its handle.

    A task that raises is run again up to `retries` times, `retry_delay` seconds apart:
    for work that a passing failure (a gateway's rate limit, a lost connection) may stop
    and that is safe to repeat. Without retries the sweeper is the next attempt.
    """

    def register(fn: Callable[P, R]) -> Task[P, R]:
        return _declare(Task(fn, name, retries, retry_delay))

    return register


task = background_task


def periodic_task(name: str, setting: str) -> Callable[[Callable[P, R]], Task[P, R]]:
    """Declare a task run every app.config[setting] seconds by the worker; returns its handle."""

    def register(fn: Callable[P, R]) -> Task[P, R]:
        return _declare(PeriodicTask(fn, name, setting))

    return register


def declared_tasks() -> list[Task[..., Any]]:
    """Every handle declared so far (the wiring module checks its list against this)."""
    return list(_TASKS.values())


def backoff_delay(attempt: int, base: float, cap: float) -> float:
    """Seconds before try number attempt+1: exponential from `base`, capped at `cap`, with
    jitter (a half to the whole of it) so that many retries toward one failing peer spread
    out instead of arriving together."""
    return min(cap, base * 2 ** min(attempt, 30)) * random.uniform(0.5, 1.0)


def build_huey(url: str, name: str = "scancharge") -> Huey:
    if url == "memory":
        return MemoryHuey(name, immediate=False)
    if url.startswith("redis://"):
        return RedisHuey(name, url=url)
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        path.parent.mkdir(parents=True, exist_ok=True)
        return SqliteHuey(name, filename=str(path))
    raise ValueError(f"QUEUE_URL {url!r}: expected sqlite:///PATH, redis://HOST:PORT/DB or memory")


def _every(seconds: int) -> Callable[[Any], bool]:
    """A crontab firing about every `seconds` (huey's scheduler has minute resolution)."""
    minutes = max(1, round(seconds / 60))
    if minutes < 60:
        return crontab(minute=f"*/{minutes}")
    hours = max(1, round(minutes / 60))
    if hours < 24:
        return crontab(minute="0", hour=f"*/{hours}")
    return crontab(minute="0", hour="0", day=f"*/{max(1, round(hours / 24))}")


class TaskQueue:
    """Flask extension owning the huey instance of one app."""

    def init_app(self, app: Flask, handles: list[Task[..., Any]] | None = None) -> None:
        """Register `handles` (the wiring module's list), then any other declared task (one
        a test declares for itself); a handle listed twice is an error."""
        huey = build_huey(app.config["QUEUE_URL"])
        tasks: dict[str, Any] = {}
        listed = list(handles or [])
        if len({h.name for h in listed}) != len(listed):
            raise ValueError(f"a task is listed twice: {sorted(h.name for h in listed)}")
        listed += [h for h in declared_tasks() if h.name not in {x.name for x in listed}]
        for handle in listed:
            if isinstance(handle, PeriodicTask):
                huey.periodic_task(_every(app.config[handle.setting]), name=handle.name)(
                    _in_app_context(app, handle.fn))
                tasks[handle.name] = None
            else:
                tasks[handle.name] = huey.task(
                    name=handle.name, retries=handle.retries, retry_delay=handle.retry_delay
                )(_in_app_context(app, handle.fn))
        app.extensions["queue"] = _AppQueue(huey, {k: v for k, v in tasks.items() if v})

    @staticmethod
    def _for(app: Flask) -> _AppQueue:
        return app.extensions["queue"]

    def enqueue(self, name: str, *args: Any, delay: float | None = None) -> None:
        from flask import current_app

        self._for(current_app).enqueue(name, *args, delay=delay)

    def huey(self, app: Flask) -> Huey:
        return self._for(app).huey


class _AppQueue:
    def __init__(self, huey: Huey, tasks: dict[str, Any]) -> None:
        self.huey = huey
        self.tasks = tasks

    def enqueue(self, name: str, *args: Any, delay: float | None = None) -> None:
        task = self.tasks[name]
        if delay:
            task.schedule(args=args, delay=timedelta(seconds=delay).total_seconds())
        else:
            task(*args)


def _in_app_context(app: Flask, fn: Callable[..., Any]) -> Callable[..., Any]:
    def run(*args: Any, **kwargs: Any) -> Any:
        with app.app_context():
            try:
                return fn(*args, **kwargs)
            except Exception:
                log.exception("task %s%r failed", fn.__name__, args)
                raise

    run.__name__ = fn.__name__
    run.__qualname__ = fn.__qualname__
    return run


class _WakeableWorker(Worker):
    """A huey worker whose idle sleep ends as soon as this process enqueues a task.

    Huey's workers poll a non-blocking queue (SQLite) with a delay that backs off to
    `max_delay`; without this, a task enqueued after an idle spell waits out that delay on
    the critical path (payment authorised -> START_SESSION). `wake` is set by the huey's
    ENQUEUED signal, which fires in the process that enqueues: the embedded worker shares
    that process with the web app, so every enqueue wakes a sleeping worker at once.
    """

    wake: threading.Event
    # Set by huey's Worker.__init__; declared for the type checker (huey has no hints).
    delay: float
    default_delay: float
    max_delay: float
    backoff: float

    def sleep(self) -> None:
        delay = min(self.delay, self.max_delay)
        if self.wake.wait(delay):
            # Left set once stopping, so every worker sees it and leaves its loop at once.
            if not self.stop_flag.is_set():
                self.wake.clear()
            self.delay = self.default_delay
        else:
            self.delay = delay * self.backoff


class _QuietConsumer(Consumer):
    # Signal handlers belong to the host process (the web server or pytest), not to us.
    def _set_signal_handlers(self) -> None:
        pass


class EmbeddedWorker:
    """Queue workers as threads inside the current process (embedded default and tests),
    woken by every enqueue of this process rather than only by their poll."""

    def __init__(self, app: Flask, workers: int | None = None,
                 initial_delay: float = 0.05) -> None:
        huey = TaskQueue._for(app).huey
        self.wake = threading.Event()
        # Huey builds its workers in Consumer.__init__ from the class attribute: a class
        # per embedded worker carries this worker's own wake event.
        worker_class = type("_AppWorker", (_WakeableWorker,), {"wake": self.wake})
        consumer_class = type("_AppConsumer", (_QuietConsumer,), {"worker_class": worker_class})
        self.consumer = consumer_class(
            huey,
            workers=workers or app.config["QUEUE_WORKERS"],
            worker_type="thread",
            periodic=True,
            initial_delay=initial_delay,
            max_delay=max(initial_delay, app.config["QUEUE_MAX_POLL_DELAY"]),
            scheduler_interval=1,
            check_worker_health=False,
        )
        huey.signal(SIGNAL_ENQUEUED)(self._on_enqueued)
        self._lock = threading.Lock()

    def _on_enqueued(self, signal: str, task: Any, *args: Any) -> None:
        self.wake.set()

    def start(self) -> EmbeddedWorker:
        self.consumer.start()
        return self

    def stop(self) -> None:
        with self._lock:
            self.consumer.stop_flag.set()
            self.wake.set()
            self.consumer.stop(graceful=True)
            self.consumer.huey.disconnect_signal(self._on_enqueued, SIGNAL_ENQUEUED)


def run_worker(app: Flask, periodic: bool = True) -> None:
    """Run a standalone worker process in the foreground (scale-out).

    With several worker processes, run the periodic tasks (sweep, pulls) in one of them
    only (`periodic=False` for the others): each scheduler would enqueue them again.
    """
    consumer = TaskQueue._for(app).huey.create_consumer(
        workers=app.config["QUEUE_WORKERS"],
        worker_type="thread",
        periodic=periodic,
        max_delay=app.config["QUEUE_MAX_POLL_DELAY"],
    )
    consumer.run()


# The app's queue, bound in create_app (queue.init_app) with every task of wiring.tasks().
queue = TaskQueue()
