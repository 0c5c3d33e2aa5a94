"""The Stripe gateway: holds as PaymentIntents with capture_method=manual, through the
official `stripe` library's StripeClient.

The driver confirms the PaymentIntent on our page with Stripe's Payment Element (card,
Apple Pay, Google Pay); the server only creates, reads, captures, cancels and refunds.
Webhook signatures are checked with the library's own verifier, never skipped.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import stripe

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

log = logging.getLogger(__name__)

# Ask Stripe to inline these so the card brand and last4 arrive in the same response.
# The charge carries what was actually authorized; the payment method is the fallback
# for a PaymentIntent that has no charge yet (e.g. waiting for 3-D Secure).
_EXPAND = ["latest_charge", "payment_method"]

# Stripe's largest page: the fewest requests for a month of a busy account's books.
LIST_PAGE_SIZE = 100

# What the driver may pay a hold with (the page's Elements are created with the same).
PAYMENT_METHOD_TYPES = ("card",)

# Seconds per HTTP attempt. The library's default (80 s) would hold a driver's page
# request far longer than any driver waits.
DEFAULT_TIMEOUT_SECONDS = 30


class WebhookSignatureError(ValueError):
    """A webhook request whose Stripe-Signature does not prove it came from Stripe."""

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        # One of: missing_secret, missing_header, malformed_header, not_utf8,
        # signature_mismatch, timestamp_outside_tolerance, not_an_event.
        self.reason = reason


class StripeGateway:
    kind = "stripe"

    def __init__(
        self,
        secret_key: str,
        publishable_key: str,
        api_base: str | None = None,
        max_network_retries: int = 2,
        *,
        timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
    ) -> None:
        if not secret_key:
            raise ValueError("StripeGateway needs a secret key (sk_live_... or sk_test_...)")
        if not publishable_key:
            raise ValueError("StripeGateway needs a publishable key (pk_live_... or pk_test_...)")
        self._publishable_key = publishable_key
        # base_addresses only overrides the "api" host; paths already start with /v1, so a
        # base of "http://127.0.0.1:12111/v1" would produce /v1/v1/... and is trimmed.
        api = (api_base or "").rstrip("/").removesuffix("/v1")
        self._client = stripe.StripeClient(
            secret_key,
            base_addresses={"api": api} if api else None,
            # The library retries connection errors, 409s, 5xx and responses marked
            # Stripe-Should-Retry, re-sending the same Idempotency-Key each time.
            max_network_retries=max_network_retries,
            http_client=stripe.RequestsClient(timeout=timeout_seconds),
        )

    # -- PaymentGateway ------------------------------------------------------------------

    def create_hold(
        self,
        amount_minor: int,
        currency: str,
        *,
        description: str,
        metadata: dict[str, str],
        idempotency_key: str,
    ) -> Hold:
        _require_minor_units(amount_minor)
        params: dict[str, Any] = {
            "amount": amount_minor,
            "currency": currency.lower(),
            "capture_method": "manual",
            # Only what fits a hold: cards, and the wallets (Apple Pay, Google Pay, Link's
            # cards) that pay with one. Methods the account may enable besides (Klarna,
            # bank debits) cannot be captured later for less, so they are never offered.
            # The driver's page asks Stripe.js for the same (paymentMethodTypes: ['card']).
            "payment_method_types": list(PAYMENT_METHOD_TYPES),
            "description": description,
            "metadata": dict(metadata),
        }
        return self._call(
            "create hold",
            lambda: self._client.v1.payment_intents.create(
                params,  # type: ignore[arg-type]
                {"idempotency_key": idempotency_key},
            ),
        )

    def retrieve(self, hold_id: str) -> Hold:
        return self._call(
            "retrieve hold",
            lambda: self._client.v1.payment_intents.retrieve(hold_id, {"expand": _EXPAND}),
        )

    def capture(self, hold_id: str, amount_minor: int, *, idempotency_key: str) -> Hold:
        """Capture `amount_minor`; Stripe releases the uncaptured rest of the authorization
        by itself, because a PaymentIntent is captured once (no final_capture=false)."""
        _require_minor_units(amount_minor)
        return self._call(
            "capture hold",
            lambda: self._client.v1.payment_intents.capture(
                hold_id,
                {"amount_to_capture": amount_minor, "expand": _EXPAND},
                {"idempotency_key": idempotency_key},
            ),
        )

    def cancel(self, hold_id: str, *, idempotency_key: str) -> Hold:
        return self._call(
            "cancel hold",
            lambda: self._client.v1.payment_intents.cancel(
                hold_id,
                {"cancellation_reason": "abandoned", "expand": _EXPAND},
                {"idempotency_key": idempotency_key},
            ),
        )

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
        """A Refund of the PaymentIntent's captured charge. Stripe's `reason` takes only its
        enum; the operator's own words go into the metadata (values up to 500 characters)."""
        _require_minor_units(amount_minor)
        if category not in REFUND_CATEGORIES:
            raise ValueError(f"refund category must be one of {REFUND_CATEGORIES}, "
                             f"got {category!r}")
        params: dict[str, Any] = {
            "payment_intent": hold_id,
            "amount": amount_minor,
            "reason": category,
            "metadata": {**(metadata or {}), "reason": reason[:500]},
        }
        refund = self._request(
            "refund",
            lambda: self._client.v1.refunds.create(
                params,  # type: ignore[arg-type]
                {"idempotency_key": idempotency_key},
            ),
        )
        return refund_from_stripe(refund.to_dict())

    def page_config(self) -> dict[str, Any]:
        # The page mounts the Payment and Express Checkout Elements before any
        # PaymentIntent exists (deferred intent): these must match what create_hold sends.
        return {"kind": self.kind, "publishable_key": self._publishable_key,
                "capture_method": "manual", "payment_method_types": list(PAYMENT_METHOD_TYPES)}

    # -- the provider's books -------------------------------------------------------------

    def balance_transactions(self, start: datetime, end: datetime) -> list[BalanceTransaction]:
        """All pages of GET /v1/balance_transactions for the range, each with its source
        inlined (expand data.source): a Charge or a Refund names its PaymentIntent there."""
        params: dict[str, Any] = {"created": _range(start, end), "limit": LIST_PAGE_SIZE,
                                  "expand": ["data.source"]}
        return [balance_transaction_from_stripe(t) for t in self._all(
            "list balance transactions",
            lambda: self._client.v1.balance_transactions.list(params))]  # type: ignore[arg-type]

    def payouts(self, start: datetime, end: datetime) -> list[Payout]:
        """GET /v1/payouts arriving in the range; for each automatic payout, the balance
        transactions it pays out (GET /v1/balance_transactions?payout=po_...), summed. A
        manual payout has no such list on Stripe: its paid-out net stays unknown."""
        params: dict[str, Any] = {"arrival_date": _range(start, end), "limit": LIST_PAGE_SIZE}
        found = []
        for obj in self._all("list payouts",
                             lambda: self._client.v1.payouts.list(params)):  # type: ignore[arg-type]
            net: int | None = None
            count = 0
            if obj.get("automatic"):
                by_payout: dict[str, Any] = {"payout": str(obj["id"]), "limit": LIST_PAGE_SIZE}
                paid = [t for t in self._all(
                    "list a payout's balance transactions",
                    lambda: self._client.v1.balance_transactions.list(
                        by_payout))  # type: ignore[arg-type]  # noqa: B023 (called at once)
                    # The payout's own (negative) transaction is in its list too.
                    if t.get("type") != "payout"]
                net, count = sum(_minor(t, "net") for t in paid), len(paid)
            found.append(payout_from_stripe(obj, net, count))
        return found

    def _all(self, what: str, first_page: Callable[[], Any]) -> list[dict[str, Any]]:
        """Every item of a list, following has_more (the library asks for each next page
        with starting_after); an error on any page fails the whole listing."""
        return self._request(
            what, lambda: [item.to_dict() for item in first_page().auto_paging_iter()])

    # -- webhooks ------------------------------------------------------------------------

    @staticmethod
    def verify_webhook(
        payload: bytes, sig_header: str | None, secret: str, tolerance: int = 300
    ) -> dict[str, Any]:
        return verify_webhook(payload, sig_header, secret, tolerance)

    # -- plumbing ------------------------------------------------------------------------

    def _call(self, what: str, request: Callable[[], stripe.PaymentIntent]) -> Hold:
        return hold_from_payment_intent(self._request(what, request).to_dict())

    def _request(self, what: str, request: Callable[[], Any]) -> Any:
        """Run one library call; Stripe's errors become PaymentError (logged once)."""
        try:
            return request()
        except stripe.StripeError as exc:
            error = payment_error_from_stripe(what, exc)
            log.warning(
                "Stripe %s failed (retryable=%s, code=%s, request=%s): %s",
                what,
                error.retryable,
                error.code,
                exc.request_id,
                exc.user_message,
            )
            raise error from exc


def payment_error_from_stripe(what: str, exc: stripe.StripeError) -> PaymentError:
    """Map a stripe library error to PaymentError, deciding whether trying again may help.

    By the time an error reaches here the library has already spent its own retries on the
    kinds it retries, so `retryable` is advice for a later attempt (a queued job), which
    must reuse the same idempotency key.
    """
    detail = exc.user_message or "no message from Stripe"
    error_type = exc.error.type if exc.error is not None else None
    where = f" (Stripe request {exc.request_id})" if exc.request_id else ""

    if isinstance(exc, stripe.CardError):
        decline_code = exc.error.decline_code if exc.error is not None else None
        code = decline_code or exc.code or "card_error"
        return PaymentError(f"Card refused during {what}: {detail}{where}", code=code)
    if isinstance(exc, stripe.RateLimitError):
        return PaymentError(
            f"Stripe rate limit during {what}: {detail}{where}",
            retryable=True,
            code=exc.code or "rate_limit",
            category="rate_limit",
        )
    if isinstance(exc, stripe.APIConnectionError):
        return PaymentError(
            f"Could not reach Stripe during {what}: {detail}", retryable=True, code="connection",
            category="connection",
        )
    if isinstance(exc, stripe.IdempotencyError):
        # Same key, different parameters: a bug on our side, and retrying cannot fix it.
        return PaymentError(
            f"Idempotency key reused with different parameters during {what}: {detail}{where}",
            code=exc.code or error_type or "idempotency_error",
        )
    if isinstance(exc, stripe.AuthenticationError | stripe.PermissionError):
        return PaymentError(
            f"Stripe refused our API key during {what}: {detail}{where}",
            code=exc.code or error_type or "authentication_error",
            category="authentication",
        )
    if isinstance(exc, stripe.InvalidRequestError):
        param = f" [param {exc.param}]" if exc.param else ""
        return PaymentError(
            f"Stripe rejected {what}: {detail}{param}{where}",
            code=exc.code or error_type or "invalid_request_error",
        )
    status = exc.http_status
    # APIError covers 5xx and statuses with no dedicated class; 409 (a concurrent request
    # with the same key) clears up by itself, as do server errors and unreadable replies.
    retryable = isinstance(exc, stripe.APIError) and (
        status is None or status >= 500 or status == 409
    )
    return PaymentError(
        f"Stripe error during {what} (HTTP {status}): {detail}{where}",
        retryable=retryable,
        code=exc.code or error_type or "api_error",
    )


def hold_from_payment_intent(obj: Mapping[str, Any]) -> Hold:
    """A PaymentIntent (API response or a webhook's event.data.object) as a Hold.

    latest_charge and payment_method are ids unless expanded; brand and last4 are filled
    only from an expanded object, so a webhook's copy leaves them empty.
    """
    status_text = obj.get("status")
    try:
        status = HoldStatus(str(status_text))
    except ValueError:
        raise PaymentError(
            f"PaymentIntent {obj.get('id')} has a status this gateway does not know: "
            f"{status_text!r}"
        ) from None

    brand, last4 = _card_brand_last4(obj)
    last_error = obj.get("last_payment_error")
    decline_message = last_error.get("message") if isinstance(last_error, Mapping) else None
    metadata = obj.get("metadata") or {}
    client_secret = obj.get("client_secret")
    reason = obj.get("cancellation_reason")
    return Hold(
        id=str(obj["id"]),
        status=status,
        amount_minor=_minor(obj, "amount"),
        currency=str(obj["currency"]).upper(),
        client_secret=str(client_secret) if client_secret else None,
        amount_capturable_minor=_minor(obj, "amount_capturable"),
        amount_received_minor=_minor(obj, "amount_received"),
        payment_method_brand=brand,
        payment_method_last4=last4,
        decline_message=decline_message,
        metadata={str(k): str(v) for k, v in metadata.items()},
        capture_before=_capture_before(obj),
        cancellation_reason=str(reason) if reason else None,
    )


def refund_from_stripe(obj: Mapping[str, Any]) -> Refund:
    """A Refund object (API response, or an element of a charge's expanded `refunds`)."""
    status = obj.get("status")
    if not isinstance(status, str):
        raise PaymentError(f"Refund {obj.get('id')} has no status: {status!r}")
    return Refund(
        id=str(obj["id"]),
        amount_minor=_minor(obj, "amount"),
        currency=str(obj["currency"]).upper(),
        status=status,
        reason=obj.get("reason"),
    )


def balance_transaction_from_stripe(obj: Mapping[str, Any]) -> BalanceTransaction:
    """A BalanceTransaction, its source an id or (expanded) the object itself."""
    source = obj.get("source")
    source_id = source.get("id") if isinstance(source, Mapping) else source
    hold_id = source.get("payment_intent") if isinstance(source, Mapping) else None
    if isinstance(hold_id, Mapping):  # expanded twice over: the PaymentIntent itself
        hold_id = hold_id.get("id")
    return BalanceTransaction(
        id=str(obj["id"]),
        type=str(obj.get("type") or ""),
        reporting_category=str(obj.get("reporting_category") or ""),
        amount_minor=_minor(obj, "amount"),
        fee_minor=_minor(obj, "fee"),
        net_minor=_minor(obj, "net"),
        currency=str(obj["currency"]).upper(),
        created=_when(obj, "created"),
        available_on=_when(obj, "available_on"),
        source_id=str(source_id) if source_id else None,
        hold_id=str(hold_id) if hold_id else None,
        status=obj.get("status"),
        description=obj.get("description"),
    )


def payout_from_stripe(obj: Mapping[str, Any], paid_out_net_minor: int | None,
                       paid_out_count: int = 0) -> Payout:
    return Payout(
        id=str(obj["id"]),
        amount_minor=_minor(obj, "amount"),
        currency=str(obj["currency"]).upper(),
        arrival_date=_when(obj, "arrival_date"),
        created=_when(obj, "created"),
        status=str(obj.get("status") or ""),
        automatic=bool(obj.get("automatic")),
        paid_out_net_minor=paid_out_net_minor,
        paid_out_count=paid_out_count,
    )


def verify_webhook(
    payload: bytes, sig_header: str | None, secret: str, tolerance: int = 300
) -> dict[str, Any]:
    """Check a webhook's Stripe-Signature header and return the event as parsed JSON.

    The payload must be the raw request body, byte for byte: the signature covers the
    exact bytes Stripe sent, so re-serialized JSON would not verify.
    """
    if tolerance <= 0:
        # The library reads 0 as "do not check the age", which would accept replays forever.
        raise ValueError("tolerance must be a positive number of seconds")
    if not secret or not secret.strip():
        raise WebhookSignatureError(
            "No webhook signing secret configured (whsec_...); cannot verify the event",
            reason="missing_secret",
        )
    if not sig_header:
        raise WebhookSignatureError("Missing Stripe-Signature header", reason="missing_header")
    if not _header_well_formed(sig_header):
        raise WebhookSignatureError(
            "Malformed Stripe-Signature header: expected 't=<unix time>,v1=<hex HMAC>'",
            reason="malformed_header",
        )
    try:
        text = bytes(payload).decode("utf-8")
    except UnicodeDecodeError:
        raise WebhookSignatureError(
            "Webhook payload is not UTF-8, so it cannot be what Stripe signed", reason="not_utf8"
        ) from None

    try:
        stripe.WebhookSignature.verify_header(text, sig_header, secret, tolerance)
    except stripe.SignatureVerificationError as exc:
        message = exc.user_message or ""
        # The library checks the HMAC first and the age second, so an old but correctly
        # signed event is the only way to get its tolerance message.
        if "tolerance" in message:
            raise WebhookSignatureError(
                f"Stripe-Signature timestamp is older than {tolerance} s (replay?): {message}",
                reason="timestamp_outside_tolerance",
            ) from None
        raise WebhookSignatureError(
            f"Stripe-Signature does not match the payload and secret: {message}",
            reason="signature_mismatch",
        ) from None

    try:
        event = json.loads(text)
    except json.JSONDecodeError:
        event = None
    if not isinstance(event, dict) or event.get("object") != "event":
        raise WebhookSignatureError(
            "Signed webhook payload is not a Stripe event object", reason="not_an_event"
        )
    return event


# -- helpers -------------------------------------------------------------------------------


def _require_minor_units(amount_minor: int) -> None:
    # bool is an int subclass and a float would be truncated silently by the form encoder.
    if isinstance(amount_minor, bool) or not isinstance(amount_minor, int):
        raise TypeError(f"amount must be integer minor units, got {amount_minor!r}")
    if amount_minor <= 0:
        raise ValueError(f"amount must be positive, got {amount_minor}")


def _range(start: datetime, end: datetime) -> dict[str, int]:
    """Stripe's range filter, in Unix seconds: from start (included) to end (not)."""
    return {"gte": int(start.timestamp()), "lt": int(end.timestamp())}


def _when(obj: Mapping[str, Any], key: str) -> datetime:
    value = obj.get(key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise PaymentError(f"{obj.get('object', 'object')} {obj.get('id')} has no Unix time "
                           f"in {key}: {value!r}")
    return datetime.fromtimestamp(value, UTC)


def _minor(obj: Mapping[str, Any], key: str) -> int:
    value = obj.get(key) or 0
    if isinstance(value, bool) or not isinstance(value, int):
        raise PaymentError(f"{obj.get('object', 'object')} {obj.get('id')} has a non-integer "
                           f"{key}: {value!r}")
    return value


def _card_brand_last4(obj: Mapping[str, Any]) -> tuple[str | None, str | None]:
    charge = obj.get("latest_charge")
    if isinstance(charge, Mapping):
        details = charge.get("payment_method_details") or {}
        card = details.get("card") if isinstance(details, Mapping) else None
        if isinstance(card, Mapping) and card.get("last4"):
            return card.get("brand"), card.get("last4")
    method = obj.get("payment_method")
    if isinstance(method, Mapping):
        card = method.get("card")
        if isinstance(card, Mapping) and card.get("last4"):
            return card.get("brand"), card.get("last4")
    return None, None


def _capture_before(obj: Mapping[str, Any]) -> datetime | None:
    """The card's capture window from an expanded latest_charge (a Unix time), else None.

    Stripe's window is 7 days for most customer-initiated card payments and shorter for
    some schemes and merchant categories, so a fixed number of hours may be too late."""
    charge = obj.get("latest_charge")
    if not isinstance(charge, Mapping):
        return None
    details = charge.get("payment_method_details") or {}
    card = details.get("card") if isinstance(details, Mapping) else None
    value = card.get("capture_before") if isinstance(card, Mapping) else None
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return datetime.fromtimestamp(value, UTC)


def _header_well_formed(header: str) -> bool:
    """t=<int> and at least one v1=<hex>; the library would only say "unable to extract"."""
    timestamp: str | None = None
    signatures: list[str] = []
    for item in header.split(","):
        key, sep, value = item.partition("=")
        if not sep:
            return False
        if key == "t":
            timestamp = value
        elif key == "v1":
            signatures.append(value)
    if timestamp is None or not timestamp.isdigit():
        return False
    return bool(signatures) and all(
        sig and all(c in "0123456789abcdef" for c in sig.lower()) for sig in signatures
    )
