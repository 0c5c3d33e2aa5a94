"""What the simulator and hub tests share: a recording stub eMSP base, the OCPI answer it
gives, a WSGI switch that lets one server outlive a test, and small waiting helpers (none
sleeps for a fixed time: each waits for the event it names)."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from flask import Flask, Response, request
from werkzeug.datastructures import Headers


def b64(token: str) -> str:
    return base64.b64encode(token.encode()).decode()


def wait_until(predicate: Callable[[], Any], timeout: float = 3.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.01)
    raise AssertionError("condition not met in time")


def wait_until_idle(simulator: Any, timeout: float = 3.0) -> None:
    """Join every background thread the simulator has started (command results, charging
    sessions): once they have ended it has nothing left to send, so what a stub has
    received is final and "nothing else was sent" can be asserted without a sleep."""
    deadline = time.monotonic() + timeout
    with simulator._lock:
        threads = list(simulator._threads)
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
        if thread.is_alive():
            raise AssertionError(f"simulator thread {thread.name} still running")


def answer(data: Any = None, status: int = 200, code: int | None = None,
           headers: dict[str, str] | None = None) -> Response:
    """An OCPI envelope: 1000 below HTTP 400, 2000 from there, unless `code` says."""
    body: dict[str, Any] = {"status_code": code or (1000 if status < 400 else 2000),
                            "timestamp": "2026-01-01T00:00:00Z"}
    if data is not None:
        body["data"] = data
    return Response(json.dumps(body, default=str), status=status, headers=headers,
                    mimetype="application/json")


@dataclass
class Received:
    method: str
    path: str
    headers: Headers  # case-insensitive, as HTTP header names are
    body: Any


class RecordingStub:
    """A stub eMSP that records every request before its routes answer; subclasses build
    the routes and decide which Authorization headers they accept."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.received: list[Received] = []
        self.base_url = ""

    @property
    def versions_url(self) -> str:
        return f"{self.base_url}/emsp/versions"

    def got(self, method: str | None = None, prefix: str = "") -> list[Received]:
        with self.lock:
            return [r for r in self.received
                    if (method is None or r.method == method) and r.path.startswith(prefix)]

    def clear_received(self) -> None:
        with self.lock:
            self.received.clear()

    def authorized(self, header: str | None) -> bool:
        raise NotImplementedError

    def recording_app(self, name: str) -> Flask:
        app = Flask(name)

        @app.before_request
        def record() -> Response | None:
            raw = request.get_data()
            with self.lock:
                self.received.append(Received(
                    request.method, request.path, Headers(request.headers),
                    json.loads(raw, parse_float=Decimal) if raw else None))
            if not self.authorized(request.headers.get("Authorization")):
                return answer(status=401, code=2000)
            return None

        return app


class Switch:
    """WSGI app forwarding to the current test's app, so servers outlive one test."""

    def __init__(self) -> None:
        self.target: Any = None

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        return self.target(environ, start_response)
