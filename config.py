"""Configuration: every setting read from the environment once, with embedded defaults.

The embedded default (no environment at all) is SQLite in ./instance, the task queue on
SQLite, the built-in CPO simulator and the demo payment gateway.
"""

from __future__ import annotations

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent
INSTANCE_DIR = Path(os.environ.get("SCANCHARGE_INSTANCE_DIR", BASE_DIR / "instance"))


def _bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value else default


DEV_SECRET_KEY = "dev-only-not-secret"


class Config:
    """Settings shared by every environment; each reads its environment variable."""

    ENV = os.environ.get("SCANCHARGE_ENV", "development")  # development | production
    SECRET_KEY = os.environ.get("SECRET_KEY", DEV_SECRET_KEY)
    SQLALCHEMY_DATABASE_URI = os.environ.get(
        "DATABASE_URL", f"sqlite:///{INSTANCE_DIR / 'scancharge.db'}"
    )
    # Task queue: "sqlite:///path" (embedded default), "redis://host:port/db" (scale-out),
    # or "memory" (tests that do not need background work).
    QUEUE_URL = os.environ.get("QUEUE_URL", f"sqlite:///{INSTANCE_DIR / 'queue.db'}")
    # Seconds a worker waits at most between polls of an idle queue.
    QUEUE_MAX_POLL_DELAY = float(os.environ.get("QUEUE_MAX_POLL_DELAY", "0.5"))
    QUEUE_WORKERS = _int("QUEUE_WORKERS", 4)

    # The address drivers' phones and CPOs reach ScanCharge at: QR codes and OCPI URLs use it.
    PUBLIC_BASE_URL = os.environ.get("PUBLIC_BASE_URL", "http://127.0.0.1:5000")

    # ScanCharge's own OCPI identity, sent in credentials and routing headers.
    OCPI_COUNTRY_CODE = os.environ.get("OCPI_COUNTRY_CODE", "SE")
    OCPI_PARTY_ID = os.environ.get("OCPI_PARTY_ID", "SCN")
    OCPI_BUSINESS_NAME = os.environ.get("OCPI_BUSINESS_NAME", "ScanCharge")
    OCPI_HTTP_TIMEOUT = float(os.environ.get("OCPI_HTTP_TIMEOUT", "10"))
    # Used when a CPO answers a command without a usable timeout.
    OCPI_DEFAULT_COMMAND_TIMEOUT = _int("OCPI_DEFAULT_COMMAND_TIMEOUT", 60)
    # OCPI 2.1.1 prices and costs exclude VAT and carry no rate: this one is added.
    OCPI_211_VAT_PERCENT = os.environ.get("OCPI_211_VAT_PERCENT", "25")

    # Payments. Without STRIPE_SECRET_KEY the demo gateway serves (never in production).
    STRIPE_SECRET_KEY = os.environ.get("STRIPE_SECRET_KEY", "")
    STRIPE_PUBLISHABLE_KEY = os.environ.get("STRIPE_PUBLISHABLE_KEY", "")
    STRIPE_WEBHOOK_SECRET = os.environ.get("STRIPE_WEBHOOK_SECRET", "")
    STRIPE_API_BASE = os.environ.get("STRIPE_API_BASE", "")  # e.g. http://127.0.0.1:12111
    STRIPE_JS_URL = os.environ.get("STRIPE_JS_URL", "https://js.stripe.com/v3/")

    # The hold placed before charging, in minor units of the tariff's currency: the price of
    # a plausible longest session under the tariff (HOLD_MAX_SESSION_MINUTES at the
    # connector's power), never above HOLD_CAP_MINOR; DEFAULT_HOLD_MINOR when no tariff.
    DEFAULT_HOLD_MINOR = _int("DEFAULT_HOLD_MINOR", 30000)
    HOLD_MAX_SESSION_MINUTES = _int("HOLD_MAX_SESSION_MINUTES", 60)
    HOLD_CAP_MINOR = _int("HOLD_CAP_MINOR", 50000)
    # A CDR not pushed this long after the session ended is pulled from the CPO.
    CDR_WAIT_SECONDS = _int("CDR_WAIT_SECONDS", 900)
    # Card authorisations lapse (7 days for most cards at Stripe): with no CDR by this many
    # hours after the hold, the last Session cost is captured (or the hold released).
    HOLD_CAPTURE_DEADLINE_HOURS = _int("HOLD_CAPTURE_DEADLINE_HOURS", 144)
    # When the gateway tells the authorisation's real end (Stripe's capture_before: 7 days
    # for most cards, less for some schemes), the no-CDR capture runs this many hours
    # before it, so a slow sweep or a retried capture still lands inside the window.
    CAPTURE_SAFETY_MARGIN_HOURS = _int("CAPTURE_SAFETY_MARGIN_HOURS", 12)
    # Charging is stopped when its cost reaches this share of the hold.
    STOP_AT_PERCENT_OF_HOLD = _int("STOP_AT_PERCENT_OF_HOLD", 95)
    # After a start with no answer (timeout, no result), the hold is kept this many seconds
    # more, so a Session that arrives late can still be charged.
    LATE_SESSION_GRACE = _int("LATE_SESSION_GRACE", 120)
    # A charge nobody paid for is given up after this many seconds.
    UNPAID_CHARGE_TTL = _int("UNPAID_CHARGE_TTL", 900)

    # The seller on receipts.
    SELLER_NAME = os.environ.get("SELLER_NAME", "ScanCharge Demo AB")
    SELLER_ORG_NUMBER = os.environ.get("SELLER_ORG_NUMBER", "559000-0000")
    SELLER_VAT_NUMBER = os.environ.get("SELLER_VAT_NUMBER", "SE559000000001")
    SELLER_ADDRESS = os.environ.get("SELLER_ADDRESS", "Storgatan 1, 111 22 Stockholm")

    # Receipt e-mail (to drivers who gave an address). No SMTP_HOST: no e-mail is sent.
    SMTP_HOST = os.environ.get("SMTP_HOST", "")
    SMTP_PORT = _int("SMTP_PORT", 587)
    SMTP_USERNAME = os.environ.get("SMTP_USERNAME", "")  # empty: no SMTP AUTH
    SMTP_PASSWORD = os.environ.get("SMTP_PASSWORD", "")
    SMTP_STARTTLS = _bool("SMTP_STARTTLS", True)  # upgrade the connection before AUTH
    MAIL_FROM = os.environ.get("MAIL_FROM", "ScanCharge <no-reply@localhost>")

    # How often Locations and Tariffs are pulled from every connected CPO (seconds).
    OCPI_PULL_INTERVAL = _int("OCPI_PULL_INTERVAL", 3600)
    # How often the sweeper re-drives charges whose next step is overdue (seconds).
    SWEEP_INTERVAL = _int("SWEEP_INTERVAL", 60)
    # How long a step may be late before the sweeper re-drives it (seconds).
    SWEEP_GRACE_SECONDS = _int("SWEEP_GRACE_SECONDS", 60)
    # The OCPI message log keeps messages this many days (0: forever)...
    OCPI_MESSAGE_RETENTION_DAYS = _int("OCPI_MESSAGE_RETENTION_DAYS", 90)
    # ...and removes older ones this often (seconds).
    OCPI_MESSAGE_PRUNE_INTERVAL = _int("OCPI_MESSAGE_PRUNE_INTERVAL", 86400)

    # The built-in CPO simulator (embedded default only).
    SIMULATOR_ENABLED = _bool("SIMULATOR_ENABLED", True)
    SIMULATOR_PORT = _int("SIMULATOR_PORT", 0)  # 0: PORT + 1
    SIMULATOR_TIME_FACTOR = float(os.environ.get("SIMULATOR_TIME_FACTOR", "60"))

    # Operator dashboard: the first operator account, created if no operator exists.
    OPERATOR_EMAIL = os.environ.get("OPERATOR_EMAIL", "operator@example.com")
    OPERATOR_PASSWORD = os.environ.get("OPERATOR_PASSWORD", "")

    # Check each pooled connection before use (a cheap round trip): a connection the
    # database or a proxy cut (restart, failover, idle timeout) is replaced instead of
    # failing the request that drew it. SQLite's own settings are in extensions.py.
    SQLALCHEMY_ENGINE_OPTIONS: dict = {"pool_pre_ping": True}
    TESTING = False


class TestConfig(Config):
    TESTING = True
    SECRET_KEY = "test"
    SQLALCHEMY_DATABASE_URI = os.environ.get("TEST_DATABASE_URL", "sqlite://")
    QUEUE_URL = "memory"
    STRIPE_SECRET_KEY = ""
    SMTP_HOST = ""  # tests that e-mail start their own SMTP server
    SIMULATOR_ENABLED = False
    PUBLIC_BASE_URL = "http://127.0.0.1:5000"
