"""The demo gateway: Stripe's PaymentIntent lifecycle without Stripe and without money.

It serves the embedded default when no STRIPE_SECRET_KEY is set, is labelled on every page
it touches, and is refused when the app runs in production. Test cards, as Stripe's:
  4242 4242 4242 4242  succeeds (Visa)       5555 5555 5555 4444  succeeds (Mastercard)
  4000 0000 0000 0002  is declined           4000 0025 0000 3155  requires authentication
Like Stripe, it reports what happened through events (delivered after the change commits,
as a webhook would be), so the rest of ScanCharge cannot tell the two apart.
"""

from __future__ import annotations

import json
import secrets
import time
from typing import Any

from sqlalchemy import select

from extensions import after_commit, db, queue
from jobs import background_task
from payments.events import apply_event, store_event
from payments.gateway import Hold, HoldStatus, PaymentError
from payments.models import DemoPaymentIntent

TEST_CARDS: dict[str, tuple[str, str]] = {
    "4242424242424242": ("succeed", "visa"),
    "5555555555554444": ("succeed", "mastercard"),
    "4000000000000002": ("decline", "visa"),
    "4000002500003155": ("authenticate", "visa"),
}
DECLINE_MESSAGE = "Your card was declined."


class DemoGateway:
    kind = "demo"

    def page_config(self) -> dict[str, str]:
        return {"kind": "demo"}

    def create_hold(
        self,
        amount_minor: int,
        currency: str,
        *,
        description: str,
        metadata: dict[str, str],
        idempotency_key: str,
        receipt_email: str | None = None,
    ) -> Hold:
        existing = db.session.scalar(
            select(DemoPaymentIntent).where(DemoPaymentIntent.idempotency_key == idempotency_key)
        )
        if existing is not None:
            return _hold(existing)
        intent_id = "pi_demo_" + secrets.token_hex(12)
        intent = DemoPaymentIntent(
            intent_id=intent_id,
            client_secret=f"{intent_id}_secret_{secrets.token_hex(12)}",
            idempotency_key=idempotency_key,
            amount_minor=amount_minor,
            currency=currency.upper(),
            description=description,
            metadata_=dict(metadata),
            applied_keys=[],
        )
        db.session.add(intent)
        db.session.flush()
        return _hold(intent)

    def retrieve(self, hold_id: str) -> Hold:
        return _hold(self._intent(hold_id))

    def capture(self, hold_id: str, amount_minor: int, *, idempotency_key: str) -> Hold:
        intent = self._intent(hold_id)
        if idempotency_key in intent.applied_keys:
            return _hold(intent)
        if intent.status != HoldStatus.REQUIRES_CAPTURE:
            raise PaymentError(f"This PaymentIntent could not be captured: it is {intent.status}.")
        if not 0 < amount_minor <= intent.amount_capturable_minor:
            raise PaymentError(
                f"amount_to_capture {amount_minor} exceeds amount_capturable "
                f"{intent.amount_capturable_minor}"
            )
        intent.status = HoldStatus.SUCCEEDED.value
        intent.amount_received_minor = amount_minor
        intent.amount_capturable_minor = 0
        intent.applied_keys = [*intent.applied_keys, idempotency_key]
        _emit(intent, "payment_intent.succeeded")
        return _hold(intent)

    def cancel(self, hold_id: str, *, idempotency_key: str) -> Hold:
        intent = self._intent(hold_id)
        if idempotency_key in intent.applied_keys or intent.status == HoldStatus.CANCELED:
            return _hold(intent)
        if intent.status in {HoldStatus.SUCCEEDED, HoldStatus.PROCESSING}:
            raise PaymentError(f"This PaymentIntent could not be canceled: it is {intent.status}.")
        intent.status = HoldStatus.CANCELED.value
        intent.amount_capturable_minor = 0
        intent.applied_keys = [*intent.applied_keys, idempotency_key]
        _emit(intent, "payment_intent.canceled")
        return _hold(intent)

    # --- what the driver's page does (Stripe.js's confirmPayment, here) ---

    def confirm(self, hold_id: str, client_secret: str, card_number: str) -> Hold:
        intent = self._intent(hold_id)
        if not secrets.compare_digest(intent.client_secret, client_secret):
            raise PaymentError("The payment could not be confirmed: unknown client secret.")
        if intent.status not in {HoldStatus.REQUIRES_PAYMENT_METHOD,
                                 HoldStatus.REQUIRES_CONFIRMATION}:
            return _hold(intent)
        number = "".join(ch for ch in card_number if ch.isdigit())
        outcome, brand = TEST_CARDS.get(number, ("decline", "unknown"))
        intent.card_brand = brand
        intent.card_last4 = number[-4:] if len(number) >= 4 else None
        if outcome == "succeed":
            self._authorize(intent)
        elif outcome == "authenticate":
            intent.status = HoldStatus.REQUIRES_ACTION.value
            intent.decline_message = None
        else:
            intent.status = HoldStatus.REQUIRES_PAYMENT_METHOD.value
            intent.decline_message = (
                DECLINE_MESSAGE if number in TEST_CARDS
                else "Demo mode: use one of the test cards shown on the page."
            )
            _emit(intent, "payment_intent.payment_failed")
        db.session.commit()
        return _hold(intent)

    def authenticate(self, hold_id: str, client_secret: str, approve: bool) -> Hold:
        """The 3-D Secure challenge, answered."""
        intent = self._intent(hold_id)
        if not secrets.compare_digest(intent.client_secret, client_secret):
            raise PaymentError("The payment could not be confirmed: unknown client secret.")
        if intent.status == HoldStatus.REQUIRES_ACTION:
            if approve:
                self._authorize(intent)
            else:
                intent.status = HoldStatus.REQUIRES_PAYMENT_METHOD.value
                intent.decline_message = "Authentication failed."
                _emit(intent, "payment_intent.payment_failed")
            db.session.commit()
        return _hold(intent)

    def _authorize(self, intent: DemoPaymentIntent) -> None:
        intent.status = HoldStatus.REQUIRES_CAPTURE.value
        intent.amount_capturable_minor = intent.amount_minor
        intent.decline_message = None
        _emit(intent, "payment_intent.amount_capturable_updated")

    def _intent(self, hold_id: str) -> DemoPaymentIntent:
        intent = db.session.scalar(
            select(DemoPaymentIntent).where(DemoPaymentIntent.intent_id == hold_id)
        )
        if intent is None:
            raise PaymentError(f"No such payment_intent: {hold_id!r}")
        return intent


def payment_intent_json(intent: DemoPaymentIntent) -> dict[str, Any]:
    """The intent in Stripe's PaymentIntent shape, as an event carries it."""
    charge = None
    if intent.card_last4:
        charge = {
            "id": "ch_demo_" + intent.intent_id[8:],
            "object": "charge",
            "payment_method_details": {
                "type": "card",
                "card": {"brand": intent.card_brand, "last4": intent.card_last4},
            },
        }
    return {
        "id": intent.intent_id,
        "object": "payment_intent",
        "amount": intent.amount_minor,
        "amount_capturable": intent.amount_capturable_minor,
        "amount_received": intent.amount_received_minor,
        "capture_method": "manual",
        "currency": intent.currency.lower(),
        "status": intent.status,
        "metadata": dict(intent.metadata_ or {}),
        "description": intent.description,
        "client_secret": intent.client_secret,
        "latest_charge": charge,
        "last_payment_error": (
            {"message": intent.decline_message, "type": "card_error"}
            if intent.decline_message else None
        ),
        "livemode": False,
    }


def _hold(intent: DemoPaymentIntent) -> Hold:
    from payments.stripe_gateway import hold_from_payment_intent

    return hold_from_payment_intent(payment_intent_json(intent))


def _emit(intent: DemoPaymentIntent, event_type: str) -> None:
    event = {
        "id": "evt_demo_" + secrets.token_hex(12),
        "object": "event",
        "type": event_type,
        "created": int(time.time()),
        "livemode": False,
        "data": {"object": payment_intent_json(intent)},
    }
    payload = json.dumps(event)
    # Delivered once the change is durable, like Stripe's webhook after its own commit.
    after_commit(lambda: queue.enqueue("payments.deliver_demo_event", payload))


@background_task("payments.deliver_demo_event")
def deliver_demo_event(payload: str) -> None:
    row = store_event(json.loads(payload), "demo")
    apply_event(row.pk)
