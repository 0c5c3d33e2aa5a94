"""What SCANCHARGE_ENV=production refuses to start with: the one owner of those checks.

create_app() calls check_production() before anything binds, so gunicorn, `flask ...` and
`python app.py` all refuse the same settings. Every problem is collected and reported at
once, each naming the setting and how to fix it, so an operator fixes the environment in
one pass instead of one restart per mistake.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from config import DEFAULT_PUBLIC_BASE_URL, DEMO_SELLER, DEV_SECRET_KEY
from passwords import DEMO_OPERATOR_PASSWORD, password_problems

SECRET_KEY_MIN_LENGTH = 32
# Fewer distinct characters than this is a typed pattern, not a generated secret
# (secrets.token_urlsafe(32) has about 30).
SECRET_KEY_MIN_DISTINCT = 10
GENERATE_SECRET = "python3 -c 'import secrets; print(secrets.token_urlsafe(48))'"
WEBHOOK_SECRET = re.compile(r"whsec_\S+")
LIVE_SECRET_PREFIXES = ("sk_live_", "rk_live_")
TEST_SECRET_PREFIXES = ("sk_test_", "rk_test_")


class ConfigurationError(RuntimeError):
    """Settings the app refuses to start with; `problems` lists each one."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        lines = "\n".join(f"  - {problem}" for problem in problems)
        super().__init__(
            f"SCANCHARGE_ENV=production refuses to start, {len(problems)} "
            f"problem{'s' if len(problems) != 1 else ''}:\n{lines}"
        )


def is_production(config: Mapping[str, Any]) -> bool:
    return str(config.get("ENV", "")).strip().lower() == "production"


def settle_defaults(config: dict[str, Any]) -> None:
    """The settings whose default depends on the environment named in the settings given
    (ENV), not only on SCANCHARGE_ENV: unset, the session cookie is Secure in production
    however production was named. An explicit false stays, and check_production refuses it."""
    if config.get("SESSION_COOKIE_SECURE") is None:
        config["SESSION_COOKIE_SECURE"] = is_production(config)


def check_production(config: Mapping[str, Any]) -> None:
    """Raise ConfigurationError listing every unsafe setting; nothing in development."""
    if not is_production(config):
        return
    problems = production_problems(config)
    if problems:
        raise ConfigurationError(problems)


def production_problems(config: Mapping[str, Any]) -> list[str]:
    """Every reason these settings are unsafe for production (empty when they are fine)."""
    return [
        *_secret_key(str(config.get("SECRET_KEY") or "")),
        *_stripe(config),
        *_public_base_url(str(config.get("PUBLIC_BASE_URL") or "")),
        *_simulator(config),
        *_seller(config),
        *_session_cookie(config),
        *_operator_password(str(config.get("OPERATOR_PASSWORD") or ""),
                            str(config.get("OPERATOR_EMAIL") or "")),
    ]


def _seller(config: Mapping[str, Any]) -> list[str]:
    """The receipts' seller and the drivers' support contact must be the operator's own:
    a driver who pays must know who sold and whom to call (the footer on every page)."""
    problems = [f"{name} is the demo value {demo!r}: set it to your business's own "
                f"(it is printed on every receipt and driver page)"
                for name, demo in DEMO_SELLER.items()
                if str(config.get(name) or "").strip() == demo]
    for name in ("SELLER_NAME", "SELLER_ORG_NUMBER", "SELLER_ADDRESS"):
        if not str(config.get(name) or "").strip():
            problems.append(f"{name} is empty: a receipt must name the seller; set it")
    if not any(str(config.get(name) or "").strip() for name in ("SUPPORT_PHONE",
                                                                   "SUPPORT_EMAIL")):
        problems.append("SUPPORT_PHONE and SUPPORT_EMAIL are both empty: drivers would have "
                        "no one to ask for help; set at least one")
    return problems


def _secret_key(key: str) -> list[str]:
    fix = f"set SECRET_KEY to a long random value, e.g. the output of {GENERATE_SECRET}"
    stripped = key.strip()
    if not stripped or stripped == DEV_SECRET_KEY:
        # Compared stripped: the development key with a space added is still public.
        return [f"SECRET_KEY is missing or the public development key, so anyone could "
                f"sign operator sessions: {fix}"]
    if len(stripped) < SECRET_KEY_MIN_LENGTH:
        return [f"SECRET_KEY is {len(stripped)} characters; at least "
                f"{SECRET_KEY_MIN_LENGTH} are needed: {fix}"]
    if len(set(stripped)) < SECRET_KEY_MIN_DISTINCT or _is_repetition(stripped):
        return [f"SECRET_KEY is a repeated pattern, not a random value (too few distinct "
                f"characters): {fix}"]
    return []


def _is_repetition(text: str) -> bool:
    """'abcabcabc…': the text is a shorter unit repeated."""
    return text in (text + text)[1:-1]


def _stripe(config: Mapping[str, Any]) -> list[str]:
    problems: list[str] = []
    secret = str(config.get("STRIPE_SECRET_KEY") or "").strip()
    publishable = str(config.get("STRIPE_PUBLISHABLE_KEY") or "").strip()
    allow_test = bool(config.get("ALLOW_STRIPE_TEST_KEYS_IN_PRODUCTION"))
    wanted = "sk_live_… (or a restricted rk_live_…)" + (" or sk_test_…" if allow_test else "")
    if not secret:
        problems.append("STRIPE_SECRET_KEY is empty, so the demo gateway would serve; it takes "
                        f"no real money and is refused in production: set STRIPE_SECRET_KEY "
                        f"to your {wanted} key")
        secret_mode = None
    elif secret.startswith(LIVE_SECRET_PREFIXES):
        secret_mode = "live"
    elif secret.startswith(TEST_SECRET_PREFIXES):
        secret_mode = "test"
        if not allow_test:
            problems.append("STRIPE_SECRET_KEY is a test-mode key (sk_test_/rk_test_): no "
                            "real payment would be taken. Set your live key, or, for a staging "
                            "deployment only, ALLOW_STRIPE_TEST_KEYS_IN_PRODUCTION=true")
    else:
        secret_mode = None
        problems.append(f"STRIPE_SECRET_KEY is not a Stripe secret key: set it to your "
                        f"{wanted} key")

    if publishable.startswith("pk_live_"):
        publishable_mode = "live"
    elif publishable.startswith("pk_test_"):
        publishable_mode = "test"
        if not allow_test:
            problems.append("STRIPE_PUBLISHABLE_KEY is a test-mode key (pk_test_): set your "
                            "pk_live_… key, or, for staging only, "
                            "ALLOW_STRIPE_TEST_KEYS_IN_PRODUCTION=true")
    else:
        publishable_mode = None
        problems.append("STRIPE_PUBLISHABLE_KEY is missing or not a publishable key: the "
                        "charger page cannot take a payment without it; set it to your "
                        "pk_live_… key")
    if secret_mode and publishable_mode and secret_mode != publishable_mode:
        problems.append(f"STRIPE_SECRET_KEY is a {secret_mode}-mode key but "
                        f"STRIPE_PUBLISHABLE_KEY a {publishable_mode}-mode one: Stripe.js "
                        "could not confirm the holds; use the pair from one mode")

    if str(config.get("STRIPE_API_BASE") or "").strip():
        problems.append("STRIPE_API_BASE is set, so card data and keys would go to another "
                        "address than Stripe's: unset STRIPE_API_BASE (it is for stripe-mock "
                        "in development)")

    webhook_secret = str(config.get("STRIPE_WEBHOOK_SECRET") or "")
    if not WEBHOOK_SECRET.fullmatch(webhook_secret):
        problems.append("STRIPE_WEBHOOK_SECRET is missing or not a signing secret (whsec_ "
                        "followed by the secret, no spaces): without it no webhook verifies "
                        "and no payment is ever confirmed. Copy it from the webhook endpoint "
                        "in the Stripe dashboard")
    return problems


def _public_base_url(url: str) -> list[str]:
    fix = ("set PUBLIC_BASE_URL to the https:// address phones and CPOs reach, "
           "e.g. https://pay.example.com")
    stripped = url.strip()
    if not stripped or stripped.rstrip("/") == DEFAULT_PUBLIC_BASE_URL:
        return [f"PUBLIC_BASE_URL is the development default, so QR codes and OCPI URLs "
                f"would point at this machine's loopback: {fix}"]
    try:
        parts = urlsplit(stripped)
        host = parts.hostname or ""
    except ValueError:
        return [f"PUBLIC_BASE_URL {url!r} is not a URL: {fix}"]
    if parts.scheme != "https":
        return [f"PUBLIC_BASE_URL {url!r} is not https: drivers' card pages and CPO tokens "
                f"would travel in clear text: {fix}"]
    if not host or _is_loopback(host):
        return [f"PUBLIC_BASE_URL {url!r} names no public host: {fix}"]
    return []


def _is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_loopback or address.is_unspecified


def _session_cookie(config: Mapping[str, Any]) -> list[str]:
    # Only an explicit false is refused: unset, production's default is a Secure cookie
    # (config.py, app.create_app), and a plain mapping checked here may leave it out.
    if config.get("SESSION_COOKIE_SECURE") is False:
        return ["SESSION_COOKIE_SECURE is off: the dashboard's session cookie would be sent "
                "over plain HTTP too, for anyone on the network to take; unset it (production "
                "makes it Secure) and serve ScanCharge over HTTPS"]
    return []


def _simulator(config: Mapping[str, Any]) -> list[str]:
    if config.get("SIMULATOR_ENABLED"):
        return ["SIMULATOR_ENABLED is true: the built-in CPO simulator would be connected "
                "as a real CPO with fake chargers; set SIMULATOR_ENABLED=false"]
    return []


def _operator_password(password: str, email: str) -> list[str]:
    if not password:
        return []  # no first login is created; `flask operator` sets one
    if password.strip() == DEMO_OPERATOR_PASSWORD:
        return ["OPERATOR_PASSWORD is the demo password printed by every `python app.py`: "
                "set your own, or unset it and use `flask --app app operator --email …`"]
    return [f"OPERATOR_PASSWORD is refused: {problem}"
            for problem in password_problems(password, email)]
