"""Production refuses what is only safe for the embedded default: one case per refusal,
each message naming the setting, and a configuration that starts."""

from __future__ import annotations

import secrets
from typing import Any

import pytest

from config import DEMO_SELLER, DEV_SECRET_KEY
from payments.setup import ConfigurationError
from production import production_problems

GOOD: dict[str, Any] = {
    "ENV": "production",
    "SECRET_KEY": "Qm7v2Xr9KpL4wT8zN1cF6hJ3sD5gB0aY",  # 32 characters, 32 distinct
    "STRIPE_SECRET_KEY": "sk_live_51Habc",
    "STRIPE_PUBLISHABLE_KEY": "pk_live_51Habc",
    "STRIPE_WEBHOOK_SECRET": "whsec_1234abcd",
    "STRIPE_API_BASE": "",
    "PUBLIC_BASE_URL": "https://pay.example.com",
    "SIMULATOR_ENABLED": False,
    "OPERATOR_EMAIL": "ops@example.com",
    "OPERATOR_PASSWORD": "",
    "ALLOW_STRIPE_TEST_KEYS_IN_PRODUCTION": False,
    "SELLER_NAME": "Laddbolaget i Norr AB",
    "SELLER_ORG_NUMBER": "556677-8899",
    "SELLER_VAT_NUMBER": "SE556677889901",
    "SELLER_ADDRESS": "Kyrkogatan 2, 903 26 Umeå",
    "SUPPORT_PHONE": "+46 90 12 34 56",
    "SUPPORT_EMAIL": "",
}


def refused(make_app: Any, **overrides: Any) -> str:
    with pytest.raises(ConfigurationError) as caught:
        make_app(**{**GOOD, **overrides})
    return str(caught.value)


def test_a_safe_production_configuration_starts(make_app: Any) -> None:
    app = make_app(**GOOD)
    assert app.extensions["payment_gateway"].kind == "stripe"
    assert production_problems(GOOD) == []


def test_a_generated_secret_key_passes() -> None:
    assert production_problems({**GOOD, "SECRET_KEY": secrets.token_urlsafe(32)}) == []
    assert production_problems({**GOOD, "SECRET_KEY": secrets.token_hex(16)}) == []


def test_development_settings_are_not_checked(make_app: Any) -> None:
    make_app(ENV="development", SECRET_KEY="x", STRIPE_API_BASE="http://127.0.0.1:1")


def test_demo_gateway_is_refused_in_production(make_app: Any) -> None:
    message = refused(make_app, STRIPE_SECRET_KEY="")
    assert "STRIPE_SECRET_KEY" in message and "demo gateway" in message


def test_stripe_without_webhook_secret_is_refused_in_production(make_app: Any) -> None:
    assert "STRIPE_WEBHOOK_SECRET" in refused(make_app, STRIPE_WEBHOOK_SECRET="")


@pytest.mark.parametrize("secret", [" ", "whsec_", "whsec_ ", "whsec_ab cd", "abc"])
def test_a_webhook_secret_that_cannot_verify_is_refused(make_app: Any, secret: str) -> None:
    message = refused(make_app, STRIPE_WEBHOOK_SECRET=secret)
    assert "STRIPE_WEBHOOK_SECRET" in message and "whsec_" in message


@pytest.mark.parametrize("key", [DEV_SECRET_KEY, DEV_SECRET_KEY + " ", f" {DEV_SECRET_KEY}\n",
                                 ""])
def test_development_secret_key_is_refused_in_production(make_app: Any, key: str) -> None:
    message = refused(make_app, SECRET_KEY=key)
    assert "SECRET_KEY" in message and "secrets.token_urlsafe" in message


def test_a_short_secret_key_is_refused(make_app: Any) -> None:
    message = refused(make_app, SECRET_KEY="x")
    assert "SECRET_KEY is 1 characters; at least 32" in message


@pytest.mark.parametrize("key", ["x" * 32, "ab" * 20, "0123456789abcdef" * 2])
def test_a_low_entropy_secret_key_is_refused(make_app: Any, key: str) -> None:
    assert "SECRET_KEY is a repeated pattern" in refused(make_app, SECRET_KEY=key)


@pytest.mark.parametrize("setting,value", [("STRIPE_SECRET_KEY", "sk_test_51Habc"),
                                           ("STRIPE_SECRET_KEY", "rk_test_51Habc"),
                                           ("STRIPE_PUBLISHABLE_KEY", "pk_test_51Habc")])
def test_test_mode_stripe_keys_are_refused(make_app: Any, setting: str, value: str) -> None:
    message = refused(make_app, **{setting: value})
    assert setting in message and "ALLOW_STRIPE_TEST_KEYS_IN_PRODUCTION" in message


def test_test_mode_keys_start_with_the_staging_opt_in(make_app: Any) -> None:
    app = make_app(**{**GOOD, "STRIPE_SECRET_KEY": "sk_test_51Habc",
                      "STRIPE_PUBLISHABLE_KEY": "pk_test_51Habc",
                      "ALLOW_STRIPE_TEST_KEYS_IN_PRODUCTION": True})
    assert app.extensions["payment_gateway"].kind == "stripe"


def test_a_restricted_live_key_is_accepted() -> None:
    assert production_problems({**GOOD, "STRIPE_SECRET_KEY": "rk_live_51Habc"}) == []


def test_keys_of_two_modes_are_refused_even_with_the_opt_in(make_app: Any) -> None:
    message = refused(make_app, STRIPE_PUBLISHABLE_KEY="pk_test_51Habc",
                      ALLOW_STRIPE_TEST_KEYS_IN_PRODUCTION=True)
    assert "live-mode key but STRIPE_PUBLISHABLE_KEY a test-mode one" in message


@pytest.mark.parametrize("setting,value", [("STRIPE_SECRET_KEY", "pk_live_51Habc"),
                                           ("STRIPE_PUBLISHABLE_KEY", ""),
                                           ("STRIPE_PUBLISHABLE_KEY", "sk_live_51Habc")])
def test_a_key_of_the_wrong_kind_is_refused(make_app: Any, setting: str, value: str) -> None:
    assert setting in refused(make_app, **{setting: value})


def test_a_stripe_api_base_override_is_refused(make_app: Any) -> None:
    message = refused(make_app, STRIPE_API_BASE="http://127.0.0.1:12111")
    assert "STRIPE_API_BASE" in message and "unset" in message


@pytest.mark.parametrize("url", ["http://pay.example.com", "http://127.0.0.1:5000",
                                 "http://127.0.0.1:5000/", "https://127.0.0.1",
                                 "https://localhost:8443", "https://[::1]/", "https://0.0.0.0",
                                 "", "pay.example.com", "https://"])
def test_an_unsafe_public_base_url_is_refused(make_app: Any, url: str) -> None:
    message = refused(make_app, PUBLIC_BASE_URL=url)
    assert "PUBLIC_BASE_URL" in message and "https://" in message


def test_the_simulator_is_refused(make_app: Any) -> None:
    assert "SIMULATOR_ENABLED=false" in refused(make_app, SIMULATOR_ENABLED=True)


def test_an_explicitly_insecure_session_cookie_is_refused(
    make_app: Any, monkeypatch: Any
) -> None:
    assert "SESSION_COOKIE_SECURE is off" in refused(make_app, SESSION_COOKIE_SECURE=False)
    # As an operator sets it: SESSION_COOKIE_SECURE=0 in the environment.
    import importlib

    import config

    monkeypatch.setenv("SESSION_COOKIE_SECURE", "0")
    try:
        setting = importlib.reload(config).Config.SESSION_COOKIE_SECURE
        assert setting is False
        assert any("SESSION_COOKIE_SECURE is off" in problem for problem in
                   production_problems({**GOOD, "SESSION_COOKIE_SECURE": setting}))
    finally:
        monkeypatch.undo()
        importlib.reload(config)


def test_production_makes_the_session_cookie_secure_unless_told(make_app: Any) -> None:
    # Production named in the settings (not SCANCHARGE_ENV): the cookie is Secure all the same.
    assert make_app(**GOOD).config["SESSION_COOKIE_SECURE"] is True
    assert make_app(**GOOD, SESSION_COOKIE_SECURE=True).config["SESSION_COOKIE_SECURE"] is True
    assert make_app(ENV="development").config["SESSION_COOKIE_SECURE"] is False


def test_the_simulator_is_off_by_default_in_production(monkeypatch: Any) -> None:
    import importlib

    import config

    monkeypatch.setenv("SCANCHARGE_ENV", "production")
    monkeypatch.delenv("SIMULATOR_ENABLED", raising=False)
    try:
        assert importlib.reload(config).Config.SIMULATOR_ENABLED is False
    finally:
        monkeypatch.undo()
        importlib.reload(config)


@pytest.mark.parametrize("password", ["scancharge-demo", " scancharge-demo "])
def test_the_demo_operator_password_is_refused(make_app: Any, password: str) -> None:
    message = refused(make_app, OPERATOR_PASSWORD=password)
    assert "OPERATOR_PASSWORD is the demo password" in message


@pytest.mark.parametrize("password,reason", [("1", "at least 12"),
                                             ("password1234", "most common"),
                                             ("ops-is-my-password", "e-mail's name")])
def test_a_weak_operator_password_is_refused(make_app: Any, password: str, reason: str) -> None:
    message = refused(make_app, OPERATOR_PASSWORD=password)
    assert "OPERATOR_PASSWORD" in message and reason in message


def test_a_strong_operator_password_starts_and_creates_the_login(make_app: Any) -> None:
    from app import ensure_operator

    app = make_app(**{**GOOD, "OPERATOR_PASSWORD": "violet-tram-Oslo-1987"})
    with app.app_context():
        assert ensure_operator(app) == ("ops@example.com", "violet-tram-Oslo-1987")


def test_every_problem_is_reported_at_once(make_app: Any) -> None:
    message = refused(make_app, SECRET_KEY="x", STRIPE_SECRET_KEY="sk_test_1",
                      STRIPE_PUBLISHABLE_KEY="pk_test_1", STRIPE_WEBHOOK_SECRET=" ",
                      STRIPE_API_BASE="http://mock", PUBLIC_BASE_URL="http://x.example",
                      SIMULATOR_ENABLED=True, OPERATOR_PASSWORD="scancharge-demo")
    for setting in ("SECRET_KEY", "STRIPE_SECRET_KEY", "STRIPE_PUBLISHABLE_KEY",
                    "STRIPE_WEBHOOK_SECRET", "STRIPE_API_BASE", "PUBLIC_BASE_URL",
                    "SIMULATOR_ENABLED", "OPERATOR_PASSWORD"):
        assert f"- {setting}" in message, setting
    assert "8 problems" in message


def test_no_demo_operator_password_in_production(make_app: Any) -> None:
    from app import ensure_operator
    from dashboard.models import Operator
    from extensions import db

    app = make_app(**GOOD)
    with app.app_context():
        assert ensure_operator(app) == ("ops@example.com", None)
        assert db.session.scalar(db.select(Operator)) is None


def test_the_webhook_refuses_everything_without_a_secret(make_app: Any) -> None:
    app = make_app(STRIPE_SECRET_KEY="sk_test_x", STRIPE_PUBLISHABLE_KEY="pk_test_x",
                   STRIPE_WEBHOOK_SECRET="")
    response = app.test_client().post("/payments/stripe/webhook", data=b"{}")
    assert response.status_code == 503
    assert "STRIPE_WEBHOOK_SECRET" in response.get_json()["error"]


def test_python_app_py_prints_the_problems_without_a_traceback(
    monkeypatch: Any, capsys: Any
) -> None:
    import app as app_module

    def refuse(port: int, host: str) -> None:
        raise ConfigurationError(["SECRET_KEY is the development key: set it"])

    monkeypatch.setattr(app_module, "run_embedded", refuse)
    assert app_module.main(["--port", "5999"]) == 2
    err = capsys.readouterr().err
    assert "refuses to start, 1 problem:\n  - SECRET_KEY" in err and "Traceback" not in err


@pytest.mark.parametrize("name", sorted(DEMO_SELLER))
def test_the_demo_seller_and_support_are_refused(make_app: Any, name: str) -> None:
    message = refused(make_app, **{name: DEMO_SELLER[name]})
    assert name in message and "demo value" in message


def test_a_receipt_must_name_its_seller_and_drivers_someone_to_ask(make_app: Any) -> None:
    message = refused(make_app, SELLER_NAME="", SUPPORT_PHONE=" ", SUPPORT_EMAIL="")
    assert "SELLER_NAME is empty" in message
    assert "SUPPORT_PHONE and SUPPORT_EMAIL are both empty" in message
