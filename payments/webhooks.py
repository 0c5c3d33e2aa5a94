"""The gateway endpoints: Stripe's webhook, and the demo gateway's confirm step."""

from __future__ import annotations

import logging

from flask import Blueprint, Response, current_app, jsonify, request

from input_guard import BadInput, json_object, optional_string
from payments.events import MalformedEvent, apply_event, shape_problem, store_event
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
    # A signed event of the wrong shape is Stripe's (or a replayer's) bug and stays wrong:
    # 400, logged, kept when it has an id. A 5xx would be delivered again for days.
    try:
        row = store_event(event, "stripe")
    except MalformedEvent as exc:
        log.warning("webhook refused, not stored: %s", exc)
        return jsonify(error=f"malformed event, not stored: {exc}"), 400
    problem = shape_problem(event)
    if problem is not None:
        log.warning("webhook %s stored, not applied: %s", row.event_id, problem)
        return jsonify(error=f"malformed event, stored but not applied: {problem}"), 400
    try:
        applied = apply_event(row.pk)
    except MalformedEvent as exc:
        log.warning("webhook %s stored, cannot be applied: %s", row.event_id, exc)
        return jsonify(error=f"malformed event, stored but not applied: {exc}"), 400
    except Exception:
        log.exception("webhook %s stored but could not be applied", row.event_id)
        # A non-2xx makes Stripe deliver again; the stored event waits for it.
        return jsonify(error="stored, not yet applied"), 500
    return jsonify(received=True, applied=applied), 200


@bp.post("/demo/confirm")
def demo_confirm() -> tuple[Response, int]:
    """What Stripe.js does on the page, for the demo gateway: confirm with a test card."""
    gateway = current_gateway()
    if gateway.kind != "demo":
        return jsonify(error="the demo gateway is not in use"), 404
    body = json_object()
    intent = optional_string(body, "payment_intent", 64) or ""
    # Per PaymentIntent, before any work: one intent flooded with card numbers is card testing.
    rate_limits().hit("confirm_per_charge", intent)
    client_secret = optional_string(body, "client_secret", 128) or ""
    approve = body.get("approve", True)
    if not isinstance(approve, bool):
        raise BadInput(f"approve must be true or false, not {approve!r:.20}.")
    try:
        if body.get("action") == "authenticate":
            hold = gateway.authenticate(  # type: ignore[attr-defined]
                intent, client_secret, approve,
            )
        else:
            hold = gateway.confirm(  # type: ignore[attr-defined]
                intent, client_secret, optional_string(body, "card_number", 32) or "",
            )
    except PaymentError as exc:
        return jsonify(error=str(exc)), 400
    from payments.demo import refusal_code

    answer = {"status": hold.status.value, "decline_message": hold.decline_message}
    if code := refusal_code(hold):
        answer["code"] = code
    return jsonify(answer), 200


__all__ = ["apply_event", "bp", "store_event"]
