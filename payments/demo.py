"""The demo gateway: Stripe's PaymentIntent lifecycle without Stripe and without money.

It serves the embedded default when no STRIPE_SECRET_KEY is set, is labelled on every page
it touches, and is refused when the app runs in production. Test cards, as Stripe's:
  4242 4242 4242 4242  succeeds (Visa)       5555 5555 5555 4444  succeeds (Mastercard)
  4000 0000 0000 0002  is declined           4000 0025 0000 3155  requires authentication
Like Stripe, it reports what happened through events (delivered after the change commits,
as a webhook would be), so the rest of ScanCharge cannot tell the two apart. Refunds are
rows in demo_refunds: never more than received minus already refunded, one per idempotency
key, each followed by a `charge.refunded` event carrying the charge as Stripe shows it.
"""

from __future__ import annotations

import json
import secrets
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update

from extensions import db, now_utc, rows_changed
from jobs import background_task
from payments import demo_books
from payments.events import apply_event, store_event
from payments.gateway import (
    REFUND_CATEGORIES,
    BalanceTransaction,
    Hold,
    HoldStatus,
    PaymentError,
    Payout,
    Refund,
    RefundCategory,
)
from payments.models import DemoPaymentIntent, DemoRefund

TEST_CARDS: dict[str, tuple[str, str]] = {
    "4242424242424242": ("succeed", "visa"),
    "5555555555554444": ("succeed", "mastercard"),
    "4000000000000002": ("decline", "visa"),
    "4000002500003155": ("authenticate", "visa"),
}
DECLINE_MESSAGE = "Your card was declined."
# After DEMO_MAX_FAILED_CARDS declines an intent refuses every card without asking an issuer,
# as an acquirer does against card testing; Stripe reports it as this error code and text.
TOO_MANY_DECLINES_CODE = "card_decline_rate_limit_exceeded"
TOO_MANY_DECLINES_MESSAGE = (
    "This card has been declined too many times. You can try to charge this card again "
    "after 24 hours."
)


class DemoGateway:
    kind = "demo"

    def page_config(self) -> dict[str, Any]:
        return {"kind": "demo"}

    def create_hold(
        self,
        amount_minor: int,
        currency: str,
        *,
        description: str,
        metadata: dict[str, str],
        idempotency_key: str,
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
        # Under the intent's row lock, re-read: concurrent captures queue here, so the
        # applied-key check and the status check below see every earlier capture, as on
        # Stripe (a replayed key answers as before; a second capture is refused).
        intent = self._locked(hold_id)
        if idempotency_key in intent.applied_keys:
            return _hold(intent)
        if intent.status != HoldStatus.REQUIRES_CAPTURE:
            raise PaymentError(
                f"This PaymentIntent could not be captured: it is {intent.status}.",
                code="payment_intent_unexpected_state",
            )
        if not 0 < amount_minor <= intent.amount_capturable_minor:
            raise PaymentError(
                f"amount_to_capture {amount_minor} exceeds amount_capturable "
                f"{intent.amount_capturable_minor}"
            )
        intent.status = HoldStatus.SUCCEEDED.value
        intent.amount_received_minor = amount_minor
        intent.amount_capturable_minor = 0
        intent.captured_at = now_utc()
        intent.applied_keys = [*intent.applied_keys, idempotency_key]
        _emit(intent, "payment_intent.succeeded")
        return _hold(intent)

    def cancel(self, hold_id: str, *, idempotency_key: str) -> Hold:
        intent = self._locked(hold_id)  # as capture: a cancel racing a capture loses cleanly
        if idempotency_key in intent.applied_keys or intent.status == HoldStatus.CANCELED:
            return _hold(intent)
        if intent.status in {HoldStatus.SUCCEEDED, HoldStatus.PROCESSING}:
            raise PaymentError(
                f"This PaymentIntent could not be canceled: it is {intent.status}.",
                code="payment_intent_unexpected_state",
            )
        intent.status = HoldStatus.CANCELED.value
        intent.amount_capturable_minor = 0
        intent.applied_keys = [*intent.applied_keys, idempotency_key]
        _emit(intent, "payment_intent.canceled", cancellation_reason="abandoned")
        return _hold(intent)

    def lapse(self, hold_id: str) -> Hold:
        """The card's authorisation runs out uncaptured (after capture_before): what the
        card network does on its own, announced like Stripe's payment_intent.canceled with
        cancellation_reason "automatic". Demo and tests only; commits."""
        intent = self._locked(hold_id)
        if intent.status == HoldStatus.REQUIRES_CAPTURE:
            intent.status = HoldStatus.CANCELED.value
            intent.amount_capturable_minor = 0
            _emit(intent, "payment_intent.canceled", cancellation_reason="automatic")
        db.session.commit()
        return _hold(intent)

    def _locked(self, hold_id: str) -> DemoPaymentIntent:
        """The intent under its row lock (held until the caller's transaction ends), read
        afresh: a no-op UPDATE locks the row on PostgreSQL and takes SQLite's write lock."""
        locked = rows_changed(
            update(DemoPaymentIntent)
            .where(DemoPaymentIntent.intent_id == hold_id)
            .values(status=DemoPaymentIntent.status)
        )
        if not locked:
            raise PaymentError(f"No such payment_intent: {hold_id!r}", code="resource_missing")
        return db.session.scalars(
            select(DemoPaymentIntent).where(DemoPaymentIntent.intent_id == hold_id)
            .execution_options(populate_existing=True)
        ).one()

    def refund(
        self,
        hold_id: str,
        amount_minor: int,
        *,
        reason: str,
        idempotency_key: str,
        category: RefundCategory = "requested_by_customer",
        metadata: dict[str, str] | None = None,
    ) -> Refund:
        if isinstance(amount_minor, bool) or not isinstance(amount_minor, int):
            raise TypeError(f"amount must be integer minor units, got {amount_minor!r}")
        if category not in REFUND_CATEGORIES:
            raise ValueError(f"refund category must be one of {REFUND_CATEGORIES}")
        # The intent's row lock (held until the caller commits) makes concurrent refunds of
        # one payment queue, so the amount check below sees every earlier refund.
        db.session.execute(
            update(DemoPaymentIntent)
            .where(DemoPaymentIntent.intent_id == hold_id)
            .values(status=DemoPaymentIntent.status)
        )
        intent = self._intent(hold_id)
        db.session.refresh(intent)
        existing = db.session.scalar(
            select(DemoRefund).where(DemoRefund.idempotency_key == idempotency_key)
        )
        if existing is not None:
            if (existing.intent_id, existing.amount_minor) != (hold_id, amount_minor):
                raise PaymentError(
                    "Keys for idempotent requests can only be used with the same parameters "
                    "they were first used with.", code="idempotency_error",
                )
            return _refund(existing)
        if amount_minor <= 0:
            raise PaymentError("Refund amount must be at least 1.",
                               code="parameter_invalid_integer")
        if intent.status != HoldStatus.SUCCEEDED:
            raise PaymentError(
                f"PaymentIntent {hold_id} has no captured charge to refund (it is "
                f"{intent.status}).", code="charge_not_refundable",
            )
        refundable = intent.amount_received_minor - _refunded(hold_id)
        if refundable <= 0:
            raise PaymentError(f"Charge for {hold_id} has already been refunded.",
                               code="charge_already_refunded")
        if amount_minor > refundable:
            raise PaymentError(
                f"Refund amount ({amount_minor}) is greater than unrefunded amount on "
                f"charge ({refundable})", code="amount_too_large",
            )
        row = DemoRefund(
            refund_id="re_demo_" + secrets.token_hex(12),
            intent_id=hold_id,
            idempotency_key=idempotency_key,
            amount_minor=amount_minor,
            currency=intent.currency,
            reason=category,
            metadata_={**(metadata or {}), "reason": reason[:500]},
        )
        db.session.add(row)
        db.session.flush()
        _emit_charge(intent, "charge.refunded")
        return _refund(row)

    # --- the books, from the demo's own records (payments/demo_books.py) ---

    def balance_transactions(self, start: datetime, end: datetime) -> list[BalanceTransaction]:
        return demo_books.balance_transactions(start, end)

    def payouts(self, start: datetime, end: datetime) -> list[Payout]:
        return demo_books.payouts(start, end)

    # --- what the driver's page does (Stripe.js's confirmPayment, here) ---

    def confirm(self, hold_id: str, client_secret: str, card_number: str) -> Hold:
        intent = self._intent(hold_id)
        # As bytes: compare_digest raises TypeError for a str with non-ASCII characters.
        if not secrets.compare_digest(intent.client_secret.encode(), client_secret.encode()):
            raise PaymentError("The payment could not be confirmed: unknown client secret.")
        if intent.status not in {HoldStatus.REQUIRES_PAYMENT_METHOD,
                                 HoldStatus.REQUIRES_CONFIRMATION}:
            return _hold(intent)
        if intent.failed_cards >= _max_failed_cards():
            # Even a good card now: the attempts so far look like card testing.
            intent.decline_message = TOO_MANY_DECLINES_MESSAGE
            _emit(intent, "payment_intent.payment_failed")
            db.session.commit()
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
            intent.failed_cards += 1
            _emit(intent, "payment_intent.payment_failed")
        db.session.commit()
        return _hold(intent)

    def authenticate(self, hold_id: str, client_secret: str, approve: bool) -> Hold:
        """The 3-D Secure challenge, answered."""
        intent = self._intent(hold_id)
        # As bytes: compare_digest raises TypeError for a str with non-ASCII characters.
        if not secrets.compare_digest(intent.client_secret.encode(), client_secret.encode()):
            raise PaymentError("The payment could not be confirmed: unknown client secret.")
        if intent.status == HoldStatus.REQUIRES_ACTION:
            if approve:
                self._authorize(intent)
            else:
                intent.status = HoldStatus.REQUIRES_PAYMENT_METHOD.value
                intent.decline_message = "Authentication failed."
                intent.failed_cards += 1
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


def _max_failed_cards() -> int:
    from flask import current_app

    return int(current_app.config.get("DEMO_MAX_FAILED_CARDS", 3))


def refusal_code(hold: Hold) -> str | None:
    """Stripe's error code when the intent refused the card unasked (too many declines)."""
    return TOO_MANY_DECLINES_CODE if hold.decline_message == TOO_MANY_DECLINES_MESSAGE else None


def _refunded(intent_id: str) -> int:
    return int(db.session.scalar(
        select(func.coalesce(func.sum(DemoRefund.amount_minor), 0))
        .where(DemoRefund.intent_id == intent_id)
    ))


def _refund(row: DemoRefund) -> Refund:
    return Refund(id=row.refund_id, amount_minor=row.amount_minor, currency=row.currency,
                  status="succeeded", reason=row.reason)


def charge_json(intent: DemoPaymentIntent) -> dict[str, Any]:
    """The intent's charge in Stripe's Charge shape, as a charge.* event carries it.

    As on Stripe, `amount_refunded` counts the uncaptured rest of the authorization (released
    at capture) as well as the refunds, and the refunds themselves are not listed."""
    captured = intent.amount_received_minor if intent.status == HoldStatus.SUCCEEDED else 0
    released = intent.amount_minor - captured if intent.status in {
        HoldStatus.SUCCEEDED, HoldStatus.CANCELED} else 0
    refunded = released + _refunded(intent.intent_id)
    return {
        "id": "ch_demo_" + intent.intent_id[8:],
        "object": "charge",
        "amount": intent.amount_minor,
        "amount_captured": captured,
        "amount_refunded": refunded,
        "captured": captured > 0,
        "currency": intent.currency.lower(),
        "disputed": False,
        "livemode": False,
        "metadata": dict(intent.metadata_ or {}),
        "paid": intent.card_last4 is not None,
        "payment_intent": intent.intent_id,
        "payment_method_details": {
            "type": "card",
            "card": {"brand": intent.card_brand, "last4": intent.card_last4},
        },
        "refunded": refunded >= intent.amount_minor,
        "status": "succeeded",
    }


# The demo's capture window, as Stripe's for customer-initiated card payments.
DEMO_CAPTURE_WINDOW = timedelta(days=7)


def payment_intent_json(
    intent: DemoPaymentIntent, cancellation_reason: str | None = None
) -> dict[str, Any]:
    """The intent in Stripe's PaymentIntent shape, as an event carries it (with the charge
    expanded, so capture_before travels with an authorised hold)."""
    charge = None
    if intent.card_last4:
        capture_before = None
        if intent.status == HoldStatus.REQUIRES_CAPTURE:
            created = intent.created_at
            if created.tzinfo is None:
                created = created.replace(tzinfo=UTC)
            capture_before = int((created + DEMO_CAPTURE_WINDOW).timestamp())
        charge = {
            "id": "ch_demo_" + intent.intent_id[8:],
            "object": "charge",
            "payment_method_details": {
                "type": "card",
                "card": {"brand": intent.card_brand, "last4": intent.card_last4,
                         "capture_before": capture_before},
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
        "cancellation_reason": cancellation_reason if intent.status == HoldStatus.CANCELED
        else None,
        "metadata": dict(intent.metadata_ or {}),
        "description": intent.description,
        "client_secret": intent.client_secret,
        "latest_charge": charge,
        "last_payment_error": (
            {"message": intent.decline_message, "type": "card_error",
             **({"code": TOO_MANY_DECLINES_CODE}
                if intent.decline_message == TOO_MANY_DECLINES_MESSAGE else {})}
            if intent.decline_message else None
        ),
        "livemode": False,
    }


def _hold(intent: DemoPaymentIntent) -> Hold:
    from payments.stripe_gateway import hold_from_payment_intent

    return hold_from_payment_intent(payment_intent_json(intent))


def _emit(
    intent: DemoPaymentIntent, event_type: str, *, cancellation_reason: str | None = None
) -> None:
    _deliver(event_type, payment_intent_json(intent, cancellation_reason))


def _emit_charge(intent: DemoPaymentIntent, event_type: str) -> None:
    _deliver(event_type, charge_json(intent))


def _deliver(event_type: str, obj: dict[str, Any]) -> None:
    event = {
        "id": "evt_demo_" + secrets.token_hex(12),
        "object": "event",
        "type": event_type,
        "created": int(time.time()),
        "livemode": False,
        "data": {"object": obj},
    }
    payload = json.dumps(event)
    # Delivered once the change is durable, like Stripe's webhook after its own commit.
    deliver_demo_event.enqueue_after_commit(payload)


# Until stored, the event exists only as this task's payload: a failure (a database
# connection cut, a restart of PostgreSQL) must not lose a driver's payment, so the task is
# tried again, as Stripe resends a webhook. Storing and applying are both once-only.
@background_task("payments.deliver_demo_event", retries=5, retry_delay=2)
def deliver_demo_event(payload: str) -> None:
    row = store_event(json.loads(payload), "demo")
    apply_event(row.pk)
