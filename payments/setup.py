"""Choosing the gateway for an app, once, at start-up."""

from __future__ import annotations

from flask import Flask, current_app

from payments.gateway import PaymentGateway


class ConfigurationError(RuntimeError):
    pass


def init_payments(app: Flask) -> None:
    cfg = app.config
    production = cfg.get("ENV") == "production"
    if cfg.get("STRIPE_SECRET_KEY"):
        from payments.stripe_gateway import StripeGateway

        if production and not cfg.get("STRIPE_WEBHOOK_SECRET"):
            raise ConfigurationError(
                "STRIPE_WEBHOOK_SECRET is required in production: without it webhooks "
                "cannot be verified and no payment would ever be confirmed."
            )
        gateway: PaymentGateway = StripeGateway(
            cfg["STRIPE_SECRET_KEY"],
            cfg.get("STRIPE_PUBLISHABLE_KEY", ""),
            api_base=cfg.get("STRIPE_API_BASE") or None,
        )
    else:
        if production:
            raise ConfigurationError(
                "SCANCHARGE_ENV=production needs STRIPE_SECRET_KEY: the demo gateway takes "
                "no real money and is refused in production."
            )
        from payments.demo import DemoGateway

        gateway = DemoGateway()
    app.extensions["payment_gateway"] = gateway


def current_gateway() -> PaymentGateway:
    return current_app.extensions["payment_gateway"]
