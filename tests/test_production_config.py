"""Production refuses what is only safe for the embedded default."""

from __future__ import annotations

from typing import Any

import pytest

from payments.setup import ConfigurationError


def test_demo_gateway_is_refused_in_production(make_app: Any) -> None:
    with pytest.raises(ConfigurationError, match="demo gateway"):
        make_app(ENV="production", SECRET_KEY="x" * 32, STRIPE_SECRET_KEY="")


def test_stripe_without_webhook_secret_is_refused_in_production(make_app: Any) -> None:
    with pytest.raises(ConfigurationError, match="STRIPE_WEBHOOK_SECRET"):
        make_app(ENV="production", SECRET_KEY="x" * 32, STRIPE_SECRET_KEY="sk_live_x",
                 STRIPE_PUBLISHABLE_KEY="pk_live_x", STRIPE_WEBHOOK_SECRET="")


def test_development_secret_key_is_refused_in_production(make_app: Any) -> None:
    from config import DEV_SECRET_KEY

    with pytest.raises(RuntimeError, match="SECRET_KEY"):
        make_app(ENV="production", SECRET_KEY=DEV_SECRET_KEY, STRIPE_SECRET_KEY="sk_live_x",
                 STRIPE_PUBLISHABLE_KEY="pk_live_x", STRIPE_WEBHOOK_SECRET="whsec_x")


def test_production_with_stripe_configured_starts(make_app: Any) -> None:
    app = make_app(ENV="production", SECRET_KEY="x" * 32, STRIPE_SECRET_KEY="sk_live_x",
                   STRIPE_PUBLISHABLE_KEY="pk_live_x", STRIPE_WEBHOOK_SECRET="whsec_x")
    assert app.extensions["payment_gateway"].kind == "stripe"


def test_no_demo_operator_password_in_production(make_app: Any) -> None:
    from app import ensure_operator
    from dashboard.models import Operator
    from extensions import db

    app = make_app(ENV="production", SECRET_KEY="x" * 32, STRIPE_SECRET_KEY="sk_live_x",
                   STRIPE_PUBLISHABLE_KEY="pk_live_x", STRIPE_WEBHOOK_SECRET="whsec_x",
                   OPERATOR_PASSWORD="")
    with app.app_context():
        assert ensure_operator(app) == ("operator@example.com", None)
        assert db.session.scalar(db.select(Operator)) is None


def test_the_webhook_refuses_everything_without_a_secret(make_app: Any) -> None:
    app = make_app(STRIPE_SECRET_KEY="sk_test_x", STRIPE_PUBLISHABLE_KEY="pk_test_x",
                   STRIPE_WEBHOOK_SECRET="")
    response = app.test_client().post("/payments/stripe/webhook", data=b"{}")
    assert response.status_code == 503
    assert "STRIPE_WEBHOOK_SECRET" in response.get_json()["error"]
