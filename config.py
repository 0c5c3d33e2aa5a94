"""Configuration: every setting read from the environment once, with embedded defaults.

The embedded default (no environment at all) is SQLite in ./instance, the task queue on
SQLite, the built-in CPO simulator and the demo payment gateway.
"""

from __future__ import annotations

import os
from datetime import timedelta
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
DEFAULT_PUBLIC_BASE_URL = "http://127.0.0.1:5000"
# Read before the class so defaults that differ in production (the simulator) can use it.
PRODUCTION = os.environ.get("SCANCHARGE_ENV", "development").strip().lower() == "production"


# The demo seller the embedded default shows on receipts and driver pages: production
# refuses every one of these (a real business must name itself and its support).
DEMO_SELLER = {
    "SELLER_NAME": "ScanCharge Demo AB",
    "SELLER_ORG_NUMBER": "559000-0000",
    "SELLER_VAT_NUMBER": "SE559000000001",
    "SELLER_ADDRESS": "Storgatan 1, 111 22 Stockholm",
    "SUPPORT_PHONE": "+46 8 000 00 00",
    "SUPPORT_EMAIL": "support@example.com",
}


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
    # Seconds a worker waits at most between polls of an idle SQLite queue. The embedded
    # worker is also woken by every enqueue of its own process, so this only bounds how
    # late it sees tasks another process enqueued (Redis workers block instead of polling).
    QUEUE_MAX_POLL_DELAY = float(os.environ.get("QUEUE_MAX_POLL_DELAY", "0.5"))
    QUEUE_WORKERS = _int("QUEUE_WORKERS", 4)

    # The address drivers' phones and CPOs reach ScanCharge at: QR codes and OCPI URLs use it.
    PUBLIC_BASE_URL = os.environ.get("PUBLIC_BASE_URL", DEFAULT_PUBLIC_BASE_URL)

    # ScanCharge's own OCPI identity, sent in credentials and routing headers.
    OCPI_COUNTRY_CODE = os.environ.get("OCPI_COUNTRY_CODE", "SE")
    OCPI_PARTY_ID = os.environ.get("OCPI_PARTY_ID", "SCN")
    OCPI_BUSINESS_NAME = os.environ.get("OCPI_BUSINESS_NAME", "ScanCharge")
    # The whole budget of one request to a peer (connect, TLS, headers and every read of
    # the body): per-read timeouts let a peer dripping bytes hold a worker indefinitely.
    OCPI_HTTP_TIMEOUT = float(os.environ.get("OCPI_HTTP_TIMEOUT", "10"))
    # Peers give ScanCharge the URLs it fetches, so loopback, private, link-local and other
    # non-public addresses are refused (ocpi/outgoing.py) unless listed here: comma-separated
    # `host`, `host:port`, `[v6]:port` or CIDR, e.g. "cpo.internal:8443,10.20.0.0/16" for
    # a CPO on a private network. Empty in production; python app.py adds its simulator.
    OCPI_ALLOWED_PRIVATE_TARGETS = os.environ.get("OCPI_ALLOWED_PRIVATE_TARGETS", "")
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
    # Production refuses sk_test_/pk_test_ keys unless this is set: for a staging
    # deployment that runs production settings against Stripe's test mode.
    ALLOW_STRIPE_TEST_KEYS_IN_PRODUCTION = _bool("ALLOW_STRIPE_TEST_KEYS_IN_PRODUCTION", False)

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
    # Work toward a CPO that can wait (pulls of Sessions and CDRs, UNLOCK_CONNECTOR) is
    # retried after a failure with exponential backoff and jitter, from OCPI_RETRY_BASE_DELAY
    # up to OCPI_RETRY_MAX_DELAY seconds, OCPI_RETRY_ATTEMPTS tries in all.
    OCPI_RETRY_BASE_DELAY = _int("OCPI_RETRY_BASE_DELAY", 30)
    OCPI_RETRY_MAX_DELAY = _int("OCPI_RETRY_MAX_DELAY", 1800)
    OCPI_RETRY_ATTEMPTS = _int("OCPI_RETRY_ATTEMPTS", 8)
    # A stop request stands until the session ends: STOP_SESSION is retried with exponential
    # backoff (from STOP_RETRY_BASE_DELAY up to STOP_RETRY_MAX_DELAY seconds, with jitter)
    # for STOP_RETRY_FOR seconds, then the charge is flagged STOP_UNCONFIRMED for a person.
    STOP_RETRY_BASE_DELAY = _int("STOP_RETRY_BASE_DELAY", 5)
    STOP_RETRY_MAX_DELAY = _int("STOP_RETRY_MAX_DELAY", 300)
    STOP_RETRY_FOR = _int("STOP_RETRY_FOR", 4 * 3600)
    # After the charger accepted the stop, how long the Session's COMPLETED may take before
    # the stop is sent again (the CPO may have lost the session).
    STOP_CONFIRM_SECONDS = _int("STOP_CONFIRM_SECONDS", 300)
    # A CHARGING or STOPPING charge with no Session update for this long is pulled from the
    # CPO (its Sessions and CDRs).
    SESSION_SILENCE_SECONDS = _int("SESSION_SILENCE_SECONDS", 900)
    # After a start with no answer (timeout, no result), the hold is kept this many seconds
    # more, so a Session that arrives late can still be charged.
    LATE_SESSION_GRACE = _int("LATE_SESSION_GRACE", 120)
    # A charge nobody paid for is given up after this many seconds.
    UNPAID_CHARGE_TTL = _int("UNPAID_CHARGE_TTL", 900)

    # The seller on receipts.
    SELLER_NAME = os.environ.get("SELLER_NAME", DEMO_SELLER["SELLER_NAME"])
    SELLER_ORG_NUMBER = os.environ.get("SELLER_ORG_NUMBER", DEMO_SELLER["SELLER_ORG_NUMBER"])
    SELLER_VAT_NUMBER = os.environ.get("SELLER_VAT_NUMBER", DEMO_SELLER["SELLER_VAT_NUMBER"])
    SELLER_ADDRESS = os.environ.get("SELLER_ADDRESS", DEMO_SELLER["SELLER_ADDRESS"])
    # Where a driver gets help: shown with the seller's name and organisation number on
    # every driver page (the footer) and in every error that sends the driver for help.
    # Empty: that way of contact is not shown (give at least one).
    SUPPORT_PHONE = os.environ.get("SUPPORT_PHONE", DEMO_SELLER["SUPPORT_PHONE"])
    SUPPORT_EMAIL = os.environ.get("SUPPORT_EMAIL", DEMO_SELLER["SUPPORT_EMAIL"])
    # The terms of sale and the privacy notice the driver pages link to. Empty: the short
    # pages ScanCharge ships (/terms, /privacy), filled in with the settings above.
    TERMS_URL = os.environ.get("TERMS_URL", "")
    PRIVACY_URL = os.environ.get("PRIVACY_URL", "")

    # The time zone the dashboard shows times in (an IANA name). Stored times stay UTC.
    OPERATOR_TIMEZONE = os.environ.get("OPERATOR_TIMEZONE", "Europe/Stockholm")

    # The SIE 4 export (dashboard/exports.py): the accounts, in the BAS chart of accounts,
    # a day's sales and refunds are booked on. The payment provider owes what it captured
    # until it pays out: a receivable (BAS 1580 "Fordringar för kontokort och presentkort"),
    # not the bank. Sales excl. VAT per VAT rate (BAS 3001-3004, "Försäljning inom
    # Sverige, 25/12/6 % moms, momsfri"); output VAT per rate (BAS 2611/2621/2631
    # "Utgående moms"). A refund reverses its sale on the same accounts.
    SIE_ACCOUNT_RECEIVABLE = os.environ.get("SIE_ACCOUNT_RECEIVABLE", "1580")
    SIE_ACCOUNT_SALES_25 = os.environ.get("SIE_ACCOUNT_SALES_25", "3001")
    SIE_ACCOUNT_SALES_12 = os.environ.get("SIE_ACCOUNT_SALES_12", "3002")
    SIE_ACCOUNT_SALES_6 = os.environ.get("SIE_ACCOUNT_SALES_6", "3003")
    SIE_ACCOUNT_SALES_0 = os.environ.get("SIE_ACCOUNT_SALES_0", "3004")
    SIE_ACCOUNT_VAT_25 = os.environ.get("SIE_ACCOUNT_VAT_25", "2611")
    SIE_ACCOUNT_VAT_12 = os.environ.get("SIE_ACCOUNT_VAT_12", "2621")
    SIE_ACCOUNT_VAT_6 = os.environ.get("SIE_ACCOUNT_VAT_6", "2631")
    # The voucher series the day's vouchers are written in (the importing program may
    # renumber them).
    SIE_VOUCHER_SERIES = os.environ.get("SIE_VOUCHER_SERIES", "A")
    # The first day of the fiscal year as MM-DD ("05-01" for a fiscal year from May): one
    # SIE export covers one fiscal year at most.
    SIE_FISCAL_YEAR_START = os.environ.get("SIE_FISCAL_YEAR_START", "01-01")

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
    # The message log is written by a background thread per process, in batches of up to
    # OCPI_MESSAGE_LOG_BATCH rows at most OCPI_MESSAGE_LOG_FLUSH_MS after the first waits;
    # a crash loses at most what waits (docs/performance.md). Off: each request writes its
    # own row in its own transaction, as the tests do.
    OCPI_MESSAGE_LOG_BACKGROUND = _bool("OCPI_MESSAGE_LOG_BACKGROUND", True)
    # The longest a row waits for its batch (milliseconds): the loss window on a crash.
    OCPI_MESSAGE_LOG_FLUSH_MS = _int("OCPI_MESSAGE_LOG_FLUSH_MS", 200)
    # The most rows one batch (one INSERT, one transaction) writes.
    OCPI_MESSAGE_LOG_BATCH = _int("OCPI_MESSAGE_LOG_BATCH", 200)

    # The built-in CPO simulator (embedded default only). Off by default in production,
    # which refuses it: its fake chargers would be offered to drivers as real ones.
    SIMULATOR_ENABLED = _bool("SIMULATOR_ENABLED", not PRODUCTION)
    SIMULATOR_PORT = _int("SIMULATOR_PORT", 0)  # 0: PORT + 1
    SIMULATOR_TIME_FACTOR = float(os.environ.get("SIMULATOR_TIME_FACTOR", "60"))

    # Operator dashboard: the first operator account, created if no operator exists.
    OPERATOR_EMAIL = os.environ.get("OPERATOR_EMAIL", "operator@example.com")
    OPERATOR_PASSWORD = os.environ.get("OPERATOR_PASSWORD", "")

    # Abuse limits (docs: README "Configuration"). Each is a `limits` string: "10/hour",
    # "5/15minutes", several joined by ";" ("3/minute;10/hour"); empty turns that limit off.
    # Counters are kept in RATE_LIMIT_STORAGE_URL: empty means the queue's Redis when
    # QUEUE_URL is redis:// (scaled out, so limits hold across processes), else this
    # process's memory (the embedded default is one process).
    RATE_LIMIT_STORAGE_URL = os.environ.get("RATE_LIMIT_STORAGE_URL", "")
    # POST /api/v1/charges from one client (every attempt: each may place a hold).
    RATE_LIMIT_CHARGES_PER_CLIENT = os.environ.get("RATE_LIMIT_CHARGES_PER_CLIENT", "10/hour")
    # New charges (holds placed) at one EVSE, from any client: a charger serves a few an hour.
    RATE_LIMIT_CHARGES_PER_EVSE = os.environ.get("RATE_LIMIT_CHARGES_PER_EVSE", "30/hour")
    # Demo confirmations of one PaymentIntent (card testing); Stripe guards its own.
    RATE_LIMIT_CONFIRM_PER_CHARGE = os.environ.get("RATE_LIMIT_CONFIRM_PER_CHARGE", "10/hour")
    # Charge and receipt look-ups by id or link (pages and API) from one client; the charge
    # page polls every 2 s, so this leaves room for a few phones behind one address.
    RATE_LIMIT_LOOKUPS_PER_CLIENT = os.environ.get("RATE_LIMIT_LOOKUPS_PER_CLIENT",
                                                   "120/minute")
    # Dashboard sign-in attempts from one client, and failed ones for one e-mail.
    RATE_LIMIT_LOGIN_PER_CLIENT = os.environ.get("RATE_LIMIT_LOGIN_PER_CLIENT", "30/hour")
    RATE_LIMIT_LOGIN_PER_EMAIL = os.environ.get("RATE_LIMIT_LOGIN_PER_EMAIL", "5/15minutes")
    # Failed sign-ins (password or code) for one e-mail, known or not, that lock it out.
    LOGIN_LOCKOUT_ATTEMPTS = _int("LOGIN_LOCKOUT_ATTEMPTS", 5)
    # How long a lockout lasts; failures older than this are forgiven.
    LOGIN_LOCKOUT_MINUTES = _int("LOGIN_LOCKOUT_MINUTES", 15)
    # Hours an operator invitation link stays usable (it works once).
    INVITATION_HOURS = _int("INVITATION_HOURS", 72)
    # The session cookie: never readable by scripts, sent with top-level navigations only
    # (Lax: a form on another site cannot post with it).
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    # Send the session cookie over HTTPS only. Unset (None), production.settle_defaults
    # makes it true in production and false elsewhere; production refuses an explicit false.
    SESSION_COOKIE_SECURE: bool | None = (
        _bool("SESSION_COOKIE_SECURE", PRODUCTION) if "SESSION_COOKIE_SECURE" in os.environ
        else None)
    # Hours a dashboard sign-in lasts, however busy (OPERATOR_SESSION_HOURS).
    PERMANENT_SESSION_LIFETIME = timedelta(hours=_int("OPERATOR_SESSION_HOURS", 12))
    # The demo gateway refuses a PaymentIntent after this many failed cards, as an acquirer
    # would (Stripe: card_decline_rate_limit_exceeded).
    DEMO_MAX_FAILED_CARDS = _int("DEMO_MAX_FAILED_CARDS", 3)
    # Reverse proxies in front of ScanCharge that set X-Forwarded-For/-Proto. 0: none, the
    # socket's address is the client (a forwarded header would be the client's own words).
    TRUSTED_PROXIES = _int("TRUSTED_PROXIES", 0)
    # Largest request body (bytes); larger ones are answered 413.
    MAX_CONTENT_LENGTH = _int("MAX_REQUEST_BYTES", 4 * 1024 * 1024)


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
    # Tests read the message log right after a request: each row written before it ends.
    OCPI_MESSAGE_LOG_BACKGROUND = False
    # The live-stack tests run the CPO simulator and stub peers on loopback; the tests of
    # the refusals themselves set this to "".
    OCPI_ALLOWED_PRIVATE_TARGETS = "127.0.0.1,localhost"
    # Loose enough for the suite's many charges from one test client; the rate limit tests
    # set tight values of their own.
    RATE_LIMIT_STORAGE_URL = "memory://"
    RATE_LIMIT_CHARGES_PER_CLIENT = "10000/hour"
    RATE_LIMIT_CHARGES_PER_EVSE = "10000/hour"
    RATE_LIMIT_CONFIRM_PER_CHARGE = "10000/hour"
    RATE_LIMIT_LOOKUPS_PER_CLIENT = "100000/minute"
    RATE_LIMIT_LOGIN_PER_CLIENT = "10000/hour"
    RATE_LIMIT_LOGIN_PER_EMAIL = "10000/hour"
