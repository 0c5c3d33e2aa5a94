"""Rate limits: how often one client, one charger, one payment or one operator e-mail may ask.

Counters live where every process sees them: Redis when ScanCharge is scaled out (one web
process must not grant what another already granted), process memory on the embedded
default (one process). The `limits` library (the engine under Flask-Limiter) keeps them, with
a moving window; the checks are called from the views, because their keys come from the
request body (the EVSE, the PaymentIntent, the e-mail) and some count only an outcome (a
hold placed, a failed sign-in) that only the view knows.

Clients are never stored as addresses: `client_key()` is a keyed hash of the address, so
neither Redis nor the charges table holds an IP that could be read back.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import TypeVar

from flask import Flask, current_app, request
from limits import RateLimitItem, parse_many
from limits.storage import Storage, storage_from_string
from limits.strategies import MovingWindowRateLimiter
from werkzeug.exceptions import TooManyRequests
from werkzeug.middleware.proxy_fix import ProxyFix

log = logging.getLogger(__name__)

# Each limit: its setting in config.py, and what it counts (for the docs and the logs).
RULES: dict[str, str] = {
    "charges_per_client": "RATE_LIMIT_CHARGES_PER_CLIENT",
    "charges_per_evse": "RATE_LIMIT_CHARGES_PER_EVSE",
    "confirm_per_charge": "RATE_LIMIT_CONFIRM_PER_CHARGE",
    "lookups_per_client": "RATE_LIMIT_LOOKUPS_PER_CLIENT",
    "login_per_client": "RATE_LIMIT_LOGIN_PER_CLIENT",
    "login_per_email": "RATE_LIMIT_LOGIN_PER_EMAIL",
}
KEY_PREFIX = "scancharge-limits"


class RateLimited(TooManyRequests):
    """HTTP 429: `rule` was reached; one more request is admitted in `retry_after` seconds."""

    def __init__(self, rule: str, retry_after: int) -> None:
        super().__init__(f"rate limit {rule} reached")
        self.rule = rule
        self.retry_after = retry_after


T = TypeVar("T")


@dataclass
class RateLimits:
    """One app's limits: its storage and the parsed rules (an empty setting: no limit)."""

    storage: Storage
    rules: dict[str, list[RateLimitItem]]

    def __post_init__(self) -> None:
        self.limiter = MovingWindowRateLimiter(self.storage)

    def hit(self, rule: str, key: str) -> None:
        """Count one request against `rule` for `key`; RateLimited if it is one too many."""
        for item in self.rules.get(rule, []):
            if not self._guarded(partial(self.limiter.hit, item, rule, key), True):
                raise RateLimited(rule, self.retry_after(item, rule, key))

    def check(self, rule: str, key: str) -> None:
        """RateLimited if `key` already used up `rule`, counting nothing (see `count`)."""
        for item in self.rules.get(rule, []):
            if not self._guarded(partial(self.limiter.test, item, rule, key), True):
                raise RateLimited(rule, self.retry_after(item, rule, key))

    def count(self, rule: str, key: str) -> None:
        """Count an outcome (a hold placed, a failed sign-in) after the fact, never refusing."""
        for item in self.rules.get(rule, []):
            self._guarded(partial(self.limiter.hit, item, rule, key), True)

    def retry_after(self, item: RateLimitItem, rule: str, key: str) -> int:
        reset_at: float = self._guarded(
            lambda: float(self.limiter.get_window_stats(item, rule, key).reset_time),
            time.time() + item.get_expiry(),
        )
        return max(1, math.ceil(reset_at - time.time()))

    def _guarded(self, call: Callable[[], T], fallback: T) -> T:
        # Storage down (Redis restarting): let drivers charge rather than lock everyone out;
        # the queue, on the same Redis, is the louder alarm.
        try:
            return call()
        except Exception:
            log.exception("rate limit storage unavailable: request admitted")
            return fallback


def storage_url(config: dict) -> str:
    """RATE_LIMIT_STORAGE_URL, else the queue's Redis when scaled out, else memory."""
    explicit = config.get("RATE_LIMIT_STORAGE_URL") or ""
    if explicit:
        return explicit
    queue_url = config.get("QUEUE_URL") or ""
    if queue_url.startswith(("redis://", "rediss://", "unix://")):
        return queue_url
    return "memory://"


def init_rate_limits(app: Flask) -> None:
    url = storage_url(app.config)
    options = {"key_prefix": KEY_PREFIX} if not url.startswith("memory") else {}
    rules = {rule: parse_many(app.config[setting]) if app.config.get(setting) else []
             for rule, setting in RULES.items()}
    storage = storage_from_string(url, **options)
    assert isinstance(storage, Storage)  # a synchronous URL, never an async one
    app.extensions["rate_limits"] = RateLimits(storage, rules)
    proxies = int(app.config.get("TRUSTED_PROXIES") or 0)
    if proxies > 0:
        # Only when configured: behind no proxy, X-Forwarded-For is whatever the client
        # wrote, and trusting it would let anyone choose their own client key.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies)  # type: ignore[method-assign]


def rate_limits() -> RateLimits:
    return current_app.extensions["rate_limits"]


def keyed_hash(kind: str, value: str) -> str:
    """HMAC-SHA256 of `value` under SECRET_KEY (64 hex digits); `kind` keeps uses apart."""
    secret = str(current_app.config["SECRET_KEY"]).encode()
    return hmac.new(secret, f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()


def client_key() -> str:
    """The requesting client, as stored on its charges and counted by the limits."""
    return keyed_hash("client", request.remote_addr or "unknown")


def count_lookup() -> None:
    """A look-up by charge id or receipt link: counted per client, so links are not guessed
    (they are unguessable) nor polled without end by one client."""
    rate_limits().hit("lookups_per_client", client_key())
