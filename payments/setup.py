"""Choosing the gateway for an app, once, at start-up."""

from __future__ import annotations

from flask import Flask, current_app

from payments.gateway import PaymentGateway
from production import ConfigurationError


def init_payments(app: Flask) -> None:
    """Choose the gateway. What production refuses (the demo gateway, test keys, a missing
    webhook secret) is checked before this, by production.check_production()."""
    cfg = app.config
    if cfg.get("STRIPE_SECRET_KEY"):
        from payments.stripe_gateway import StripeGateway

        gateway: PaymentGateway = StripeGateway(
            cfg["STRIPE_SECRET_KEY"],
            cfg.get("STRIPE_PUBLISHABLE_KEY", ""),
            api_base=cfg.get("STRIPE_API_BASE") or None,
        )
    else:
        from payments.demo import DemoGateway

        gateway = DemoGateway()
    app.extensions["payment_gateway"] = gateway


def current_gateway() -> PaymentGateway:
    return current_app.extensions["payment_gateway"]


# ConfigurationError lives with the checks (production.py); importable here as before.
__all__ = ["ConfigurationError", "current_gateway", "init_payments"]
