"""The gateway endpoints: Stripe's webhook, and the demo gateway's confirm step."""

from __future__ import annotations

import logging

from flask import Blueprint, Response, current_app, jsonify, request

from payments.events import apply_event, store_event
from payments.gateway import PaymentError
from payments.setup import current_gateway
from ratelimits import rate_limits

log = logging.getLogger(__name__)

bp = Blueprint("payments", __name__, url_prefix="/payments")


@bp.post("/stripe/webhook")
def stripe_webhook() -> tuple[Response, int]:
    from payments.stripe_gateway import WebhookSignatureError, verify_webhook

    secret = current_app.config.get("STRIPE_WEBHOOK_SECRET")
    if not secret:
        # Never accept an unsigned event: configure the secret to receive webhooks at all.
        return jsonify(error="STRIPE_WEBHOOK_SECRET is not configured"), 503
    try:
        event = verify_webhook(request.get_data(), request.headers.get("Stripe-Signature"), secret)
    except WebhookSignatureError as exc:
        return jsonify(error=f"signature verification failed: {exc}"), 400
    row = store_event(event, "stripe")
    try:
        applied = apply_event(row.pk)
    except Exception:
        log.exception("webhook %s stored but could not be applied", event.get("id"))
        # A non-2xx makes Stripe deliver again; the stored event waits for it.
        return jsonify(error="stored, not yet applied"), 500
    return jsonify(received=True, applied=applied), 200


@bp.post("/demo/confirm")
def demo_confirm() -> tuple[Response, int]:
    """What Stripe.js does on the page, for the demo gateway: confirm with a test card."""
    gateway = current_gateway()
    if gateway.kind != "demo":
        return jsonify(error="the demo gateway is not in use"), 404
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        body = {}
    # Per PaymentIntent, before any work: one intent flooded with card numbers is card testing.
    rate_limits().hit("confirm_per_charge", str(body.get("payment_intent", ""))[:64])
    try:
        if body.get("action") == "authenticate":
            hold = gateway.authenticate(  # type: ignore[attr-defined]
                str(body.get("payment_intent", "")), str(body.get("client_secret", "")),
                bool(body.get("approve", True)),
            )
        else:
            hold = gateway.confirm(  # type: ignore[attr-defined]
                str(body.get("payment_intent", "")), str(body.get("client_secret", "")),
                str(body.get("card_number", "")),
            )
    except PaymentError as exc:
        return jsonify(error=str(exc)), 400
    from payments.demo import refusal_code

    answer = {"status": hold.status.value, "decline_message": hold.decline_message}
    if code := refusal_code(hold):
        answer["code"] = code
    return jsonify(answer), 200


__all__ = ["apply_event", "bp", "store_event"]
