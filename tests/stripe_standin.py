"""An HTTP-level stand-in for the parts of Stripe's API that ScanCharge uses.

The real `stripe` library talks to it over a socket (serve `.app` with servers.ServerThread
and pass its URL as api_base), so requests are form-encoded exactly as the library sends
them and answers are parsed exactly as the library parses Stripe's. Shapes follow Stripe's
API reference: PaymentIntent, Charge, PaymentMethod, Refund, Dispute, Event, the error
object, idempotent requests (v1) and webhook signatures; and the account's books: a
BalanceTransaction for every capture, refund, failed refund and payout, listed (GET
/v1/balance_transactions) and the Payouts (GET /v1/payouts), as Stripe lists: newest first,
`has_more` and `starting_after` pages, `created` (and `arrival_date`) ranges.

Not Stripe: anything under /_standin/, the Python helpers (confirm, complete_action,
fail_next, charge_of, open_dispute, transaction_of, alter_transaction, drop_transaction,
book, pay_out) and state inspection (payment_intents, charges, refunds,
balance_transactions, payouts, requests).
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import re
import secrets
import string
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

import stripe
from flask import Flask, Response, request

_ALNUM = string.ascii_letters + string.digits

# Stripe's minimum charge amounts in minor units, for currencies ScanCharge may meet.
_MINIMUM_AMOUNT = {"sek": 300, "nok": 300, "dkk": 250, "eur": 50, "usd": 50, "gbp": 30}

_CANCELABLE = (
    "requires_payment_method",
    "requires_capture",
    "requires_confirmation",
    "requires_action",
    "processing",
)
_CANCELLATION_REASONS = ("duplicate", "fraudulent", "requested_by_customer", "abandoned")
_REFUND_REASONS = ("duplicate", "fraudulent", "requested_by_customer")

# The stand-in's processing fee on a payment: 1.5 % plus 1.80 in the currency's minor
# units (in the region of Stripe's European card pricing; not its price list).
STANDIN_FEE_PERCENT_TENTHS = 15
STANDIN_FEE_FIXED = 180
# A transaction's funds become available this many days after its UTC day began.
STANDIN_AVAILABLE_AFTER_DAYS = 2
_REPORTING_CATEGORY = {"charge": "charge", "payment": "charge", "refund": "refund",
                       "payment_refund": "refund", "refund_failure": "refund_failure",
                       "payment_failure_refund": "refund_failure", "payout": "payout",
                       "adjustment": "other_adjustment", "stripe_fee": "fee"}


@dataclass(frozen=True)
class StandinCard:
    brand: str
    last4: str
    # "authorized", "declined" or "requires_action" (3-D Secure)
    outcome: str
    code: str | None = None
    decline_code: str | None = None
    message: str | None = None
    funding: str = "credit"


# Stripe's documented test card numbers.
TEST_CARDS: dict[str, StandinCard] = {
    "4242424242424242": StandinCard("visa", "4242", "authorized"),
    "5555555555554444": StandinCard("mastercard", "4444", "authorized"),
    "4000000000000002": StandinCard(
        "visa", "0002", "declined", "card_declined", "generic_decline", "Your card was declined."
    ),
    "4000000000009995": StandinCard(
        "visa",
        "9995",
        "declined",
        "card_declined",
        "insufficient_funds",
        "Your card has insufficient funds.",
    ),
    "4000002500003155": StandinCard("visa", "3155", "requires_action"),
}


@dataclass
class RecordedRequest:
    """One request as the stand-in received it, and what it answered."""

    method: str
    path: str
    headers: dict[str, str]
    params: dict[str, Any]  # form or query string, decoded into nested dicts and lists
    raw: str  # the encoded form body or query string as sent
    status: int = 0
    replayed: bool = False

    @property
    def idempotency_key(self) -> str | None:
        return self.headers.get("Idempotency-Key")


@dataclass
class _Failure:
    status: int
    code: str | None
    should_retry: bool | None


@dataclass
class _Saved:
    method: str
    path: str
    params: dict[str, Any]
    status: int
    body: dict[str, Any]
    request_id: str


class _ApiError(Exception):
    """An answer in Stripe's error shape; raised inside handlers."""

    def __init__(
        self,
        status: int,
        type_: str,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
        decline_code: str | None = None,
        extra: Mapping[str, Any] | None = None,
        saved: bool = False,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body: dict[str, Any] = {"type": type_, "message": message}
        if code:
            self.body["code"] = code
            self.body["doc_url"] = f"https://stripe.com/docs/error-codes/{code.replace('_', '-')}"
        if param:
            self.body["param"] = param
        if decline_code:
            self.body["decline_code"] = decline_code
        self.body.update(extra or {})
        # Stripe saves an idempotent result only once the endpoint began executing; a
        # request that failed validation may be retried with the same key.
        self.saved = saved
        self.headers = dict(headers or {})


def _invalid(message: str, *, param: str | None = None, code: str | None = None) -> _ApiError:
    return _ApiError(400, "invalid_request_error", message, param=param, code=code)


def _unknown_parameter(name: str) -> _ApiError:
    return _invalid(f"Received unknown parameter: {name}", param=name, code="parameter_unknown")


def new_id(prefix: str, length: int = 24) -> str:
    return prefix + "".join(secrets.choice(_ALNUM) for _ in range(length))


class StripeStandin:
    """State and Flask app of the stand-in: one instance per test, or reset() between."""

    def __init__(self) -> None:
        # The server is threaded; one lock keeps each request's view of state whole.
        self._lock = threading.RLock()
        self.reset()
        self.app = self._build_app()

    def reset(self) -> None:
        """Forget everything, so one served stand-in can be shared by many tests (stopping
        a ServerThread costs half a second of shutdown polling)."""
        with self._lock:
            self.payment_intents: dict[str, dict[str, Any]] = {}
            self.charges: dict[str, dict[str, Any]] = {}
            self.payment_methods: dict[str, dict[str, Any]] = {}
            self.refunds: dict[str, dict[str, Any]] = {}
            # The books: insertion order breaks ties of `created` (newest first).
            self.balance_transactions: dict[str, dict[str, Any]] = {}
            self.payouts: dict[str, dict[str, Any]] = {}
            self._paid_out: dict[str, str] = {}  # txn id -> the automatic payout paying it
            self.requests: list[RecordedRequest] = []
            self._saved: dict[tuple[str, str], _Saved] = {}
            self._failures: list[_Failure] = []

    # -- test controls -------------------------------------------------------------------

    def fail_next(
        self,
        status: int,
        count: int = 1,
        *,
        code: str | None = None,
        should_retry: bool | None = None,
    ) -> None:
        """Answer the next `count` API requests with `status` before they reach an endpoint
        (so nothing is saved against their idempotency key, as with Stripe's limiters).

        429 defaults to code "rate_limit" without Stripe-Should-Retry, which the library
        does not retry; code="lock_timeout" adds Stripe-Should-Retry: true, as Stripe does,
        and the library retries it. `should_retry` sets or suppresses the header for any
        status.
        """
        if code is None and status == 429:
            code = "rate_limit"
        if should_retry is None and code == "lock_timeout":
            should_retry = True
        with self._lock:
            self._failures.extend(_Failure(status, code, should_retry) for _ in range(count))

    def confirm(self, intent_id: str, card_number: str) -> dict[str, Any]:
        """What Stripe.js does when the driver confirms on the page with a test card.

        Returns the PaymentIntent, or for a decline the error body Stripe answers with
        (HTTP 402, with the PaymentIntent inside).
        """
        with self._lock:
            try:
                return self._confirm(intent_id, card_number)
            except _ApiError as exc:
                return {"error": exc.body}

    def complete_action(self, intent_id: str, *, succeed: bool = True) -> dict[str, Any]:
        """The driver finishing (or failing) 3-D Secure for a requires_action intent."""
        with self._lock:
            pi = self._intent(intent_id)
            if pi["status"] != "requires_action":
                raise ValueError(f"{intent_id} is {pi['status']}, not requires_action")
            method = self.payment_methods[pi["payment_method"]]
            card = StandinCard(method["card"]["brand"], method["card"]["last4"], "authorized")
            if succeed:
                self._authorize(pi, method, card)
            else:
                self._decline(
                    pi,
                    method,
                    card,
                    code="authentication_required",
                    decline_code=None,
                    message="We are unable to authenticate your payment method. Please "
                    "choose a different payment method and try again.",
                )
            return copy.deepcopy(pi)

    def charge_of(self, intent_id: str) -> dict[str, Any]:
        """The PaymentIntent's latest Charge as Stripe shows it (e.g. a charge.refunded
        event's object: since API version 2022-11-15 without the `refunds` list)."""
        with self._lock:
            pi = self._intent(intent_id)
            if not pi["latest_charge"]:
                raise ValueError(f"{intent_id} has no charge")
            return copy.deepcopy(self.charges[pi["latest_charge"]])

    def open_dispute(
        self, intent_id: str, reason: str = "fraudulent", amount: int | None = None
    ) -> dict[str, Any]:
        """The card holder disputes the payment: a Dispute object, as charge.dispute.created
        carries it; the charge is marked disputed."""
        with self._lock:
            charge = self.charges[self._intent(intent_id)["latest_charge"]]
            charge["disputed"] = True
            due = int(time.time()) + 14 * 86400
            return {
                "id": new_id("du_1"),
                "object": "dispute",
                "amount": charge["amount_captured"] if amount is None else amount,
                "balance_transactions": [],
                "charge": charge["id"],
                "created": int(time.time()),
                "currency": charge["currency"],
                "evidence": {"customer_email_address": charge["receipt_email"],
                             "product_description": None, "uncategorized_text": None},
                "evidence_details": {"due_by": due, "has_evidence": False, "past_due": False,
                                     "submission_count": 0},
                "is_charge_refundable": False,
                "livemode": False,
                "metadata": {},
                "payment_intent": intent_id,
                "reason": reason,
                "status": "needs_response",
            }

    def lapse(self, intent_id: str) -> dict[str, Any]:
        """The authorisation runs out uncaptured (capture_before passed): Stripe cancels the
        PaymentIntent itself, with cancellation_reason "automatic", and announces it with
        payment_intent.canceled. Returns the PaymentIntent as that event carries it."""
        with self._lock:
            pi = self._intent(intent_id)
            if pi["status"] != "requires_capture":
                raise ValueError(f"{intent_id} is {pi['status']}, not requires_capture")
            charge = self.charges[pi["latest_charge"]]
            charge.update(refunded=True, amount_refunded=charge["amount"])
            pi.update(status="canceled", canceled_at=int(time.time()),
                      cancellation_reason="automatic", amount_capturable=0)
            return copy.deepcopy(pi)

    def fail_refund(
        self, refund_id: str, failure_reason: str = "expired_or_canceled_card",
        status: str = "failed",
    ) -> dict[str, Any]:
        """A refund that later fails (or is canceled): the funds come back to the balance,
        the charge no longer counts them refunded. Returns the Refund as
        charge.refund.updated carries it."""
        with self._lock:
            refund = self.refunds[refund_id]
            charge = self.charges[refund["charge"]]
            charge["amount_refunded"] -= refund["amount"]
            charge["refunded"] = False
            refund.update(status=status, failure_reason=failure_reason,
                          failure_balance_transaction=new_id("txn_3"))
            self.book("refund_failure", refund["amount"], refund["currency"],
                      source=refund_id, txn_id=refund["failure_balance_transaction"],
                      description=f"REFUND FAILURE FOR CHARGE ({refund['charge']})")
            return copy.deepcopy(refund)

    @staticmethod
    def close_dispute(dispute: Mapping[str, Any], status: str) -> dict[str, Any]:
        """The dispute decided: "won" or "lost" (charge.dispute.closed's object)."""
        closed = copy.deepcopy(dict(dispute))
        closed.update(status=status, is_charge_refundable=False)
        closed["evidence_details"] = {**closed["evidence_details"], "has_evidence": True,
                                      "submission_count": 1}
        return closed

    # -- the books ------------------------------------------------------------------------

    def book(
        self,
        type_: str,
        amount: int,
        currency: str,
        *,
        source: str | None = None,
        fee: int = 0,
        txn_id: str | None = None,
        created: int | None = None,
        description: str | None = None,
    ) -> dict[str, Any]:
        """Enter a BalanceTransaction in the books (what Stripe does for every movement of
        the balance; a test may enter one of its own, e.g. an "adjustment")."""
        with self._lock:
            when = int(time.time()) if created is None else int(created)
            txn: dict[str, Any] = {
                "id": txn_id or new_id("txn_3"),
                "object": "balance_transaction",
                "amount": amount,
                "available_on": _available_on(when),
                "balance_type": "payments",
                "created": when,
                "currency": currency.lower(),
                "description": description,
                "exchange_rate": None,
                "fee": fee,
                "fee_details": [{"amount": fee, "application": None,
                                 "currency": currency.lower(),
                                 "description": "Stripe processing fees",
                                 "type": "stripe_fee"}] if fee else [],
                "net": amount - fee,
                "reporting_category": _REPORTING_CATEGORY.get(type_, "other_adjustment"),
                "source": source,
                "status": "available" if _available_on(when) <= time.time() else "pending",
                "type": type_,
            }
            self.balance_transactions[txn["id"]] = txn
            return copy.deepcopy(txn)

    def transaction_of(self, source_or_intent: str) -> dict[str, Any]:
        """The BalanceTransaction of a charge, refund or payout id, or of a PaymentIntent's
        captured charge."""
        with self._lock:
            source = source_or_intent
            if source in self.payment_intents:
                source = self.payment_intents[source]["latest_charge"]
            for txn in self.balance_transactions.values():
                if txn["source"] == source:
                    return txn
            raise ValueError(f"no balance transaction for {source_or_intent}")

    def alter_transaction(self, txn_id: str, **fields: Any) -> dict[str, Any]:
        """Change a transaction in the books (to make a deliberate difference, or to date
        it on another day): net follows amount and fee, available_on follows created."""
        with self._lock:
            txn = self.balance_transactions[txn_id]
            txn.update(fields)
            txn["net"] = txn["amount"] - txn["fee"]
            if "created" in fields and "available_on" not in fields:
                txn["available_on"] = _available_on(txn["created"])
            return copy.deepcopy(txn)

    def drop_transaction(self, txn_id: str) -> None:
        """Take a transaction out of the books (a capture Stripe has no record of)."""
        with self._lock:
            del self.balance_transactions[txn_id]

    def pay_out(
        self, arrival_date: int, *, created: int | None = None, automatic: bool = True,
        amount: int | None = None, currency: str = "sek",
    ) -> dict[str, Any]:
        """A payout of every available transaction in `currency` not paid out yet (an
        automatic payout records which; a manual one does not), with its own transaction.
        `amount` overrides what it pays (a payout that is not the net of its transactions)."""
        with self._lock:
            when = int(time.time()) if created is None else int(created)
            due = [t for t in self.balance_transactions.values()
                   if t["currency"] == currency and t["id"] not in self._paid_out
                   and t["type"] != "payout" and t["available_on"] <= when]
            total = sum(t["net"] for t in due) if amount is None else amount
            payout_id = new_id("po_1")
            txn = self.book("payout", -total, currency, source=payout_id, created=when,
                            description="STRIPE PAYOUT")
            payout = {
                "id": payout_id, "object": "payout", "amount": total,
                "application_fee": None, "application_fee_amount": None,
                "arrival_date": int(arrival_date), "automatic": automatic,
                "balance_transaction": txn["id"], "created": when, "currency": currency,
                "description": "STRIPE PAYOUT", "destination": "ba_1StandinBankAccount",
                "failure_balance_transaction": None, "failure_code": None,
                "failure_message": None, "livemode": False, "metadata": {},
                "method": "standard", "original_payout": None,
                "reconciliation_status": "completed" if automatic else "not_applicable",
                "reversed_by": None, "source_type": "card", "statement_descriptor": None,
                "status": "paid" if arrival_date <= time.time() else "in_transit",
                "type": "bank_account",
            }
            self.payouts[payout_id] = payout
            self._paid_out[txn["id"]] = payout_id
            for paid in due:
                self._paid_out[paid["id"]] = payout_id
            return copy.deepcopy(payout)

    def _book_payment(self, charge: dict[str, Any], amount: int) -> None:
        fee = min(amount, (amount * STANDIN_FEE_PERCENT_TENTHS + 500) // 1000 + STANDIN_FEE_FIXED)
        self.book("charge", amount, charge["currency"], source=charge["id"], fee=fee,
                  txn_id=charge["balance_transaction"], description=charge["description"])

    def requests_to(self, method: str, path: str) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self.requests if r.method == method and r.path == path]

    @property
    def last_request(self) -> RecordedRequest:
        with self._lock:
            return self.requests[-1]

    @staticmethod
    def sign_webhook(payload: bytes, secret: str, timestamp: int | None = None) -> str:
        return sign_webhook(payload, secret, timestamp)

    @staticmethod
    def event_payload(type_: str, obj: Mapping[str, Any], **kwargs: Any) -> bytes:
        return event_payload(type_, obj, **kwargs)

    # -- the app -------------------------------------------------------------------------

    def _build_app(self) -> Flask:
        app = Flask("stripe_standin")

        def route(rule: str, methods: list[str], handler: Callable[..., Any]) -> None:
            def view(**kwargs: str) -> Response:
                return self._handle(handler, kwargs)

            app.add_url_rule(rule, handler.__name__, view, methods=methods)

        route("/v1/payment_intents", ["POST"], self._create)
        route("/v1/payment_intents/<intent>", ["GET"], self._retrieve)
        route("/v1/payment_intents/<intent>/capture", ["POST"], self._capture)
        route("/v1/payment_intents/<intent>/cancel", ["POST"], self._cancel)
        route("/v1/refunds", ["POST"], self._create_refund)
        route("/v1/balance_transactions", ["GET"], self._list_balance_transactions)
        route("/v1/payouts", ["GET"], self._list_payouts)

        @app.post("/_standin/confirm/<intent>")
        def standin_confirm(intent: str) -> Response:
            card = request.values.get("card") or (request.get_json(silent=True) or {}).get("card")
            with self._lock:
                try:
                    return _json(200, self._confirm(intent, str(card or "")))
                except _ApiError as exc:
                    return _json(exc.status, {"error": exc.body})

        @app.errorhandler(404)
        def not_found(_exc: Exception) -> Response:
            return _json(
                404,
                {
                    "error": {
                        "type": "invalid_request_error",
                        "message": f"Unrecognized request URL ({request.method}: {request.path}).",
                    }
                },
            )

        return app

    def _handle(self, handler: Callable[..., dict[str, Any]], kwargs: dict[str, str]) -> Response:
        raw = (
            request.get_data(as_text=True)
            if request.method == "POST"
            else request.query_string.decode()
        )
        recorded = RecordedRequest(
            method=request.method,
            path=request.path,
            headers=dict(request.headers.items()),
            params={},
            raw=raw,
        )
        request_id = new_id("req_", 14)
        with self._lock:
            self.requests.append(recorded)
        try:
            status, body, headers = self._dispatch(recorded, handler, kwargs, request_id)
        except _ApiError as exc:
            status, body, headers = exc.status, {"error": exc.body}, exc.headers
        recorded.status = status
        recorded.replayed = headers.get("Idempotent-Replayed") == "true"
        headers = {"Request-Id": request_id, "Stripe-Version": stripe.api_version, **headers}
        return _json(status, body, headers)

    def _dispatch(
        self,
        recorded: RecordedRequest,
        handler: Callable[..., dict[str, Any]],
        kwargs: dict[str, str],
        request_id: str,
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        recorded.params = decode_form(recorded.raw)
        with self._lock:
            failure = self._failures.pop(0) if self._failures else None
        if failure is not None:
            raise _injected(failure)
        api_key = _api_key(recorded.headers.get("Authorization", ""))

        key = recorded.headers.get("Idempotency-Key") if recorded.method == "POST" else None
        if key is None:
            with self._lock:
                return 200, handler(recorded.params, **kwargs), {}
        if len(key) > 255:
            raise _invalid("Idempotency keys can be at most 255 characters long.")

        # Keys are scoped to the API key. Holding the lock for the whole request means two
        # requests with one key never overlap, so Stripe's 409 for that case cannot arise.
        slot = (api_key, key)
        with self._lock:
            saved = self._saved.get(slot)
            if saved is not None:
                return self._replay(saved, recorded, key)
            try:
                status, body = 200, handler(recorded.params, **kwargs)
            except _ApiError as exc:
                if not exc.saved:
                    raise
                status, body = exc.status, {"error": exc.body}
            self._saved[slot] = _Saved(
                recorded.method, recorded.path, recorded.params, status, body, request_id
            )
            return status, copy.deepcopy(body), {}

    def _replay(
        self, saved: _Saved, recorded: RecordedRequest, key: str
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        if (saved.method, saved.path) != (recorded.method, recorded.path):
            raise _ApiError(
                400,
                "idempotency_error",
                "Keys for idempotent requests can only be used for the same endpoint they "
                f"were first used for ('{saved.method} {saved.path}' vs "
                f"'{recorded.method} {recorded.path}'). Try using a key other than '{key}' "
                "if you meant to execute a different request.",
            )
        if saved.params != recorded.params:
            raise _ApiError(
                400,
                "idempotency_error",
                "Keys for idempotent requests can only be used with the same parameters they "
                f"were first used with. Try using a key other than '{key}' if you meant to "
                "execute a different request.",
            )
        headers = {"Idempotent-Replayed": "true", "Original-Request": saved.request_id}
        return saved.status, copy.deepcopy(saved.body), headers

    # -- endpoints -----------------------------------------------------------------------

    def _create(self, params: dict[str, Any]) -> dict[str, Any]:
        _only(
            params,
            {
                "amount",
                "currency",
                "capture_method",
                "automatic_payment_methods",
                "payment_method_types",
                "description",
                "metadata",
                "receipt_email",
                "expand",
            },
        )
        self._check_expand(params.get("expand"))
        amount = _integer(params, "amount", required=True)
        currency = params.get("currency")
        if not currency:
            raise _invalid(
                "Missing required param: currency.", param="currency", code="parameter_missing"
            )
        if not isinstance(currency, str) or not re.fullmatch(r"[A-Za-z]{3}", currency):
            raise _invalid(
                f"Invalid currency: {currency}.", param="currency", code="parameter_invalid_string"
            )
        currency = currency.lower()
        minimum = _MINIMUM_AMOUNT.get(currency, 50)
        if amount < minimum:
            raise _invalid(
                f"Amount must be at least {minimum} {currency} minor units.",
                param="amount",
                code="amount_too_small",
            )
        if amount > 99_999_999:
            raise _invalid(
                "Amount must be no more than 99999999.", param="amount", code="amount_too_large"
            )
        capture_method = params.get("capture_method", "automatic")
        if capture_method not in ("automatic", "automatic_async", "manual"):
            raise _invalid(
                "Invalid capture_method: must be one of automatic, automatic_async, or manual",
                param="capture_method",
            )
        automatic = params.get("automatic_payment_methods")
        types = params.get("payment_method_types")
        if automatic is not None and types is not None:
            raise _invalid(
                "You may only specify one of these parameters: "
                "automatic_payment_methods, payment_method_types."
            )
        automatic_pm: dict[str, Any] | None = None
        if automatic is not None:
            if not isinstance(automatic, dict):
                raise _invalid("Invalid object", param="automatic_payment_methods")
            _only(automatic, {"enabled", "allow_redirects"}, prefix="automatic_payment_methods")
            automatic_pm = {"enabled": _boolean(automatic, "enabled", "automatic_payment_methods")}
            if "allow_redirects" in automatic:
                automatic_pm["allow_redirects"] = automatic["allow_redirects"]
        if types is None:
            types = ["card", "link"] if automatic_pm and automatic_pm["enabled"] else ["card"]
        metadata = _metadata(params.get("metadata", {}))
        receipt_email = params.get("receipt_email") or None
        if receipt_email is not None and not re.fullmatch(
            r"[^@\s]+@[^@\s]+\.[^@\s]+", receipt_email
        ):
            raise _invalid(
                f"Invalid email address: {receipt_email}",
                param="receipt_email",
                code="email_invalid",
            )

        intent_id = new_id("pi_3")
        pi: dict[str, Any] = {
            "id": intent_id,
            "object": "payment_intent",
            "amount": amount,
            "amount_capturable": 0,
            "amount_details": {"tip": {}},
            "amount_received": 0,
            "application": None,
            "application_fee_amount": None,
            "automatic_payment_methods": automatic_pm,
            "canceled_at": None,
            "cancellation_reason": None,
            "capture_method": capture_method,
            "client_secret": f"{intent_id}_secret_{new_id('', 25)}",
            "confirmation_method": "automatic",
            "created": int(time.time()),
            "currency": currency,
            "customer": None,
            "description": params.get("description") or None,
            "last_payment_error": None,
            "latest_charge": None,
            "livemode": False,
            "metadata": metadata,
            "next_action": None,
            "on_behalf_of": None,
            "payment_method": None,
            "payment_method_configuration_details": None,
            "payment_method_options": {
                "card": {
                    "installments": None,
                    "mandate_options": None,
                    "network": None,
                    "request_three_d_secure": "automatic",
                },
            },
            "payment_method_types": list(types),
            "processing": None,
            "receipt_email": receipt_email,
            "review": None,
            "setup_future_usage": None,
            "shipping": None,
            "source": None,
            "statement_descriptor": None,
            "statement_descriptor_suffix": None,
            "status": "requires_payment_method",
            "transfer_data": None,
            "transfer_group": None,
        }
        self.payment_intents[intent_id] = pi
        return self._render(pi, params.get("expand"))

    def _retrieve(self, params: dict[str, Any], intent: str) -> dict[str, Any]:
        _only(params, {"expand", "client_secret"})
        return self._render(self._intent(intent), params.get("expand"))

    def _capture(self, params: dict[str, Any], intent: str) -> dict[str, Any]:
        _only(params, {"amount_to_capture", "expand", "metadata"})
        pi = self._intent(intent)
        expand = params.get("expand")
        self._check_expand(expand)
        if pi["status"] != "requires_capture":
            raise _unexpected_state(pi, "captured", ("requires_capture",))
        capturable = pi["amount_capturable"]
        amount = (
            _integer(params, "amount_to_capture") if "amount_to_capture" in params else capturable
        )
        if amount > capturable:
            raise _ApiError(
                400,
                "invalid_request_error",
                f"The amount_to_capture ({amount}) must be less than or equal to the "
                f"PaymentIntent's amount_capturable ({capturable}).",
                param="amount_to_capture",
                code="amount_too_large",
                saved=True,
            )
        if amount < 1:
            raise _invalid(
                "This value must be greater than or equal to 1.",
                param="amount_to_capture",
                code="parameter_invalid_integer",
            )
        pi["metadata"].update(_metadata(params.get("metadata", {})))
        charge = self.charges[pi["latest_charge"]]
        charge.update(
            captured=True,
            amount_captured=amount,
            # Stripe releases the uncaptured rest, and shows it refunded on the charge.
            amount_refunded=charge["amount"] - amount,
            balance_transaction=new_id("txn_3"),
        )
        self._book_payment(charge, amount)
        pi.update(status="succeeded", amount_received=amount, amount_capturable=0)
        return self._render(pi, expand)

    def _cancel(self, params: dict[str, Any], intent: str) -> dict[str, Any]:
        _only(params, {"cancellation_reason", "expand"})
        pi = self._intent(intent)
        expand = params.get("expand")
        self._check_expand(expand)
        reason = params.get("cancellation_reason")
        if reason is not None and reason not in _CANCELLATION_REASONS:
            raise _invalid(
                "Invalid cancellation_reason: must be one of " + ", ".join(_CANCELLATION_REASONS),
                param="cancellation_reason",
            )
        if pi["status"] not in _CANCELABLE:
            raise _unexpected_state(pi, "canceled", _CANCELABLE)
        if pi["status"] == "requires_capture":
            charge = self.charges[pi["latest_charge"]]
            charge.update(refunded=True, amount_refunded=charge["amount"])
        pi.update(
            status="canceled",
            canceled_at=int(time.time()),
            cancellation_reason=reason,
            amount_capturable=0,
            next_action=None,
        )
        return self._render(pi, expand)

    def _create_refund(self, params: dict[str, Any]) -> dict[str, Any]:
        _only(params, {"amount", "charge", "payment_intent", "reason", "metadata", "expand"})
        if params.get("expand"):
            raise _invalid(f"This property cannot be expanded ({_as_list(params['expand'])[0]}).")
        if ("charge" in params) == ("payment_intent" in params):
            raise _invalid(
                "You must pass exactly one of charge or payment_intent."
                if "charge" in params
                else "One of the following params should be provided for this request: "
                "payment_intent or charge."
            )
        if "payment_intent" in params:
            pi = self._intent(params["payment_intent"])
            charge = self.charges.get(pi["latest_charge"]) if pi["latest_charge"] else None
            if charge is None or not charge["captured"]:
                raise _ApiError(
                    400, "invalid_request_error",
                    f"This PaymentIntent ({pi['id']}) does not have a successful charge to "
                    "refund.", code="charge_not_refundable", saved=True,
                )
        else:
            charge = self.charges.get(params["charge"])
            if charge is None:
                raise _ApiError(404, "invalid_request_error",
                                f"No such charge: '{params['charge']}'", param="charge",
                                code="resource_missing")
        reason = params.get("reason")
        if reason is not None and reason not in _REFUND_REASONS:
            raise _invalid("Invalid reason: must be one of " + ", ".join(_REFUND_REASONS),
                           param="reason")
        metadata = _metadata(params.get("metadata", {}))
        # Refundable: what was captured and not yet given back. amount_refunded also holds
        # the uncaptured rest released at capture, so it is counted against `amount`.
        refundable = charge["amount"] - charge["amount_refunded"]
        if refundable <= 0:
            raise _ApiError(400, "invalid_request_error",
                            f"Charge {charge['id']} has already been refunded.",
                            code="charge_already_refunded", saved=True)
        amount = _integer(params, "amount") if "amount" in params else refundable
        if amount < 1:
            raise _invalid("Invalid positive integer", param="amount",
                           code="parameter_invalid_integer")
        if amount > refundable:
            raise _ApiError(
                400, "invalid_request_error",
                f"Refund amount ({_major(amount, charge['currency'])}) is greater than "
                f"unrefunded amount on charge ({_major(refundable, charge['currency'])})",
                param="amount", code="amount_too_large", saved=True,
            )
        refund = {
            "id": new_id("re_3"),
            "object": "refund",
            "amount": amount,
            "balance_transaction": new_id("txn_3"),
            "charge": charge["id"],
            "created": int(time.time()),
            "currency": charge["currency"],
            "destination_details": {
                "card": {"reference": None, "reference_status": "pending",
                         "reference_type": "acquirer_reference_number", "type": "refund"},
                "type": "card",
            },
            "metadata": metadata,
            "payment_intent": charge["payment_intent"],
            "reason": reason,
            "receipt_number": None,
            "source_transfer_reversal": None,
            "status": "succeeded",
            "transfer_reversal": None,
        }
        self.refunds[refund["id"]] = refund
        self.book("refund", -amount, charge["currency"], source=refund["id"],
                  txn_id=refund["balance_transaction"],
                  description=f"REFUND FOR CHARGE ({charge['description']})")
        charge["amount_refunded"] += amount
        charge["refunded"] = charge["amount_refunded"] >= charge["amount"]
        return copy.deepcopy(refund)

    def _list_balance_transactions(self, params: dict[str, Any]) -> dict[str, Any]:
        _only(params, {"created", "currency", "ending_before", "expand", "limit", "payout",
                       "source", "starting_after", "type"})
        expand = _as_list(params.get("expand"))
        for path in expand:
            if path != "data.source":
                raise _invalid(f"This property cannot be expanded ({path}).")
        rows = list(self.balance_transactions.values())
        if "payout" in params:
            payout = self.payouts.get(params["payout"])
            if payout is None:
                raise _ApiError(404, "invalid_request_error",
                                f"No such payout: '{params['payout']}'", param="payout",
                                code="resource_missing")
            if not payout["automatic"]:
                raise _invalid("Balance transaction history can only be filtered on "
                               "automatic transfers, not manual.", param="payout")
            rows = [t for t in rows if self._paid_out.get(t["id"]) == payout["id"]]
        for name in ("currency", "source", "type"):
            if name in params:
                rows = [t for t in rows if t[name] == params[name]]
        rows = [t for t in rows if _in_range(t["created"], params.get("created"), "created")]
        page = _page(rows, params, "/v1/balance_transactions")
        if "data.source" in expand:
            page["data"] = [self._with_source(t) for t in page["data"]]
        return page

    def _with_source(self, txn: dict[str, Any]) -> dict[str, Any]:
        source = txn["source"]
        for objects in (self.charges, self.refunds, self.payouts):
            if source in objects:
                return {**txn, "source": copy.deepcopy(objects[source])}
        return txn

    def _list_payouts(self, params: dict[str, Any]) -> dict[str, Any]:
        _only(params, {"arrival_date", "created", "destination", "ending_before", "expand",
                       "limit", "starting_after", "status"})
        if params.get("expand"):
            raise _invalid(f"This property cannot be expanded ({_as_list(params['expand'])[0]}).")
        rows = [p for p in self.payouts.values()
                if _in_range(p["created"], params.get("created"), "created")
                and _in_range(p["arrival_date"], params.get("arrival_date"), "arrival_date")
                and params.get("status", p["status"]) == p["status"]]
        return _page(rows, params, "/v1/payouts")

    # -- confirmation (Stripe.js's side) ------------------------------------------------

    def _confirm(self, intent_id: str, card_number: str) -> dict[str, Any]:
        pi = self._intent(intent_id)
        if pi["status"] not in ("requires_payment_method", "requires_confirmation"):
            raise _unexpected_state(
                pi, "confirmed", ("requires_payment_method", "requires_confirmation")
            )
        card = TEST_CARDS.get(card_number.replace(" ", ""))
        if card is None:
            raise _ApiError(
                402,
                "card_error",
                "Your card number is incorrect.",
                code="incorrect_number",
                param="number",
            )
        method = self._payment_method(card)
        if card.outcome == "requires_action":
            pi.update(
                status="requires_action",
                payment_method=method["id"],
                last_payment_error=None,
                next_action={
                    "type": "use_stripe_sdk",
                    "use_stripe_sdk": {
                        "type": "three_d_secure_redirect",
                        "stripe_js": f"https://hooks.stripe.com/3d_secure_2/hosted?"
                        f"merchant=acct_standin&payment_intent={intent_id}",
                        "source": new_id("src_1"),
                    },
                },
            )
            return self._render(pi, None)
        if card.outcome == "declined":
            self._decline(
                pi,
                method,
                card,
                code=card.code,
                decline_code=card.decline_code,
                message=card.message,
            )
            error = copy.deepcopy(pi["last_payment_error"])
            error["payment_intent"] = self._render(pi, None)
            raise _ApiError(
                402,
                "card_error",
                error.pop("message"),
                code=error.pop("code"),
                decline_code=error.pop("decline_code", None),
                extra={k: v for k, v in error.items() if k not in ("type", "doc_url")},
            )
        self._authorize(pi, method, card)
        return self._render(pi, None)

    def _authorize(self, pi: dict[str, Any], method: dict[str, Any], card: StandinCard) -> None:
        manual = pi["capture_method"] == "manual"
        charge = self._charge(pi, method, card, status="succeeded", captured=not manual)
        pi.update(
            payment_method=method["id"],
            latest_charge=charge["id"],
            last_payment_error=None,
            next_action=None,
        )
        if manual:
            pi.update(status="requires_capture", amount_capturable=pi["amount"])
        else:
            pi.update(status="succeeded", amount_received=pi["amount"])

    def _decline(
        self,
        pi: dict[str, Any],
        method: dict[str, Any],
        card: StandinCard,
        *,
        code: str | None,
        decline_code: str | None,
        message: str | None,
    ) -> None:
        charge = self._charge(
            pi, method, card, status="failed", captured=False, failure=(code, message, decline_code)
        )
        error: dict[str, Any] = {
            "type": "card_error",
            "charge": charge["id"],
            "code": code,
            "decline_code": decline_code,
            "doc_url": f"https://stripe.com/docs/error-codes/{(code or '').replace('_', '-')}",
            "message": message,
            "payment_method": copy.deepcopy(method),
        }
        # Stripe detaches the failed method so the page can collect another one.
        pi.update(
            status="requires_payment_method",
            payment_method=None,
            latest_charge=charge["id"],
            last_payment_error=error,
            next_action=None,
        )

    def _payment_method(self, card: StandinCard) -> dict[str, Any]:
        method = {
            "id": new_id("pm_1"),
            "object": "payment_method",
            "allow_redisplay": "unspecified",
            "billing_details": {"address": None, "email": None, "name": None, "phone": None},
            "card": {
                "brand": card.brand,
                "checks": {
                    "address_line1_check": None,
                    "address_postal_code_check": None,
                    "cvc_check": "pass",
                },
                "country": "US",
                "display_brand": card.brand,
                "exp_month": 12,
                "exp_year": time.gmtime().tm_year + 3,
                "fingerprint": hashlib.sha256(card.last4.encode()).hexdigest()[:16],
                "funding": card.funding,
                "generated_from": None,
                "last4": card.last4,
                "networks": {"available": [card.brand], "preferred": None},
                "three_d_secure_usage": {"supported": True},
                "wallet": None,
            },
            "created": int(time.time()),
            "customer": None,
            "livemode": False,
            "metadata": {},
            "type": "card",
        }
        self.payment_methods[method["id"]] = method
        return method

    def _charge(
        self,
        pi: dict[str, Any],
        method: dict[str, Any],
        card: StandinCard,
        *,
        status: str,
        captured: bool,
        failure: tuple[str | None, str | None, str | None] | None = None,
    ) -> dict[str, Any]:
        failure_code, failure_message, decline_code = failure or (None, None, None)
        succeeded = status == "succeeded"
        outcome = {
            "network_status": "approved_by_network" if succeeded else "declined_by_network",
            "reason": None if succeeded else decline_code,
            "risk_level": "normal",
            "risk_score": 32,
            "seller_message": "Payment complete."
            if succeeded
            else "The bank did not return any further details with this decline.",
            "type": "authorized" if succeeded else "issuer_declined",
        }
        card_details = {
            k: method["card"][k]
            for k in (
                "brand",
                "checks",
                "country",
                "exp_month",
                "exp_year",
                "fingerprint",
                "funding",
                "last4",
                "wallet",
            )
        }
        card_details.update(
            amount_authorized=pi["amount"] if succeeded else None,
            capture_before=int(time.time()) + 7 * 86400 if succeeded and not captured else None,
            network=card.brand,
            three_d_secure=None,
        )
        charge = {
            "id": new_id("ch_3"),
            "object": "charge",
            "amount": pi["amount"],
            "amount_captured": pi["amount"] if captured else 0,
            "amount_refunded": 0,
            "balance_transaction": new_id("txn_3") if captured else None,
            "billing_details": method["billing_details"],
            "captured": captured,
            "created": int(time.time()),
            "currency": pi["currency"],
            "description": pi["description"],
            "disputed": False,
            "failure_code": failure_code,
            "failure_message": failure_message,
            "livemode": False,
            "metadata": dict(pi["metadata"]),
            "outcome": outcome,
            "paid": succeeded,
            "payment_intent": pi["id"],
            "payment_method": method["id"],
            "payment_method_details": {"card": card_details, "type": "card"},
            "receipt_email": pi["receipt_email"],
            "refunded": False,
            "status": status,
        }
        self.charges[charge["id"]] = charge
        if captured:
            self._book_payment(charge, charge["amount"])
        return charge

    # -- helpers -------------------------------------------------------------------------

    def _intent(self, intent_id: str) -> dict[str, Any]:
        pi = self.payment_intents.get(intent_id)
        if pi is None:
            raise _ApiError(
                404,
                "invalid_request_error",
                f"No such payment_intent: '{intent_id}'",
                param="intent",
                code="resource_missing",
            )
        return pi

    def _check_expand(self, expand: Any) -> None:
        for path in _as_list(expand):
            if path not in ("latest_charge", "payment_method"):
                raise _invalid(f"This property cannot be expanded ({path}).")

    def _render(self, pi: dict[str, Any], expand: Any) -> dict[str, Any]:
        self._check_expand(expand)
        out = copy.deepcopy(pi)
        paths = _as_list(expand)
        if "latest_charge" in paths and out["latest_charge"]:
            out["latest_charge"] = copy.deepcopy(self.charges[out["latest_charge"]])
        if "payment_method" in paths and out["payment_method"]:
            out["payment_method"] = copy.deepcopy(self.payment_methods[out["payment_method"]])
        return out


# -- webhooks ------------------------------------------------------------------------------


def sign_webhook(payload: bytes, secret: str, timestamp: int | None = None) -> str:
    """The Stripe-Signature header Stripe would send: HMAC-SHA256 of "{t}.{payload}" keyed
    with the whole endpoint secret (whsec_ prefix included). Written independently of the
    library so the tests check its verifier against Stripe's scheme, not against itself."""
    t = int(time.time()) if timestamp is None else int(timestamp)
    mac = hmac.new(secret.encode("utf-8"), f"{t}.".encode() + payload, hashlib.sha256)
    return f"t={t},v1={mac.hexdigest()}"


def event_payload(
    type_: str,
    obj: Mapping[str, Any],
    *,
    idempotency_key: str | None = None,
    previous_attributes: Mapping[str, Any] | None = None,
) -> bytes:
    """A webhook body as Stripe sends it: an Event with the object's snapshot."""
    data: dict[str, Any] = {"object": dict(obj)}
    if previous_attributes is not None:
        data["previous_attributes"] = dict(previous_attributes)
    event = {
        "id": new_id("evt_3"),
        "object": "event",
        "api_version": stripe.api_version,
        "created": int(time.time()),
        "data": data,
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": new_id("req_", 14), "idempotency_key": idempotency_key},
        "type": type_,
    }
    return json.dumps(event, indent=2).encode("utf-8")


# -- form decoding and validation -----------------------------------------------------------

_KEY = re.compile(r"([^\[\]]+)((?:\[[^\[\]]*\])*)")


def decode_form(encoded: str) -> dict[str, Any]:
    """Stripe's form encoding to nested data: metadata[k]=v -> {"metadata": {"k": v}},
    expand[0]=a or expand[]=a -> {"expand": ["a"]}."""
    root: dict[str, Any] = {}
    for key, value in parse_qsl(encoded, keep_blank_values=True):
        match = _KEY.fullmatch(key)
        if match is None:
            raise _invalid(f"Invalid parameter name: {key}")
        parts = [match.group(1), *re.findall(r"\[([^\[\]]*)\]", match.group(2))]
        node = root
        for depth, part in enumerate(parts):
            if part == "":
                part = str(len(node))  # "[]" appends
            if depth == len(parts) - 1:
                node[part] = value
            else:
                child = node.setdefault(part, {})
                if not isinstance(child, dict):
                    raise _invalid(f"Invalid parameter: {key}")
                node = child
    return _listify(root, top=True)


def _listify(node: dict[str, Any], *, top: bool = False) -> Any:
    for key, value in node.items():
        # metadata keys are the caller's own and may well be digits.
        if isinstance(value, dict) and not (top and key == "metadata"):
            node[key] = _listify(value)
    if not top and node and all(k.isdigit() for k in node):
        return [node[k] for k in sorted(node, key=int)]
    return node


def _only(params: Mapping[str, Any], allowed: set[str], prefix: str | None = None) -> None:
    for name in params:
        if name not in allowed:
            raise _unknown_parameter(f"{prefix}[{name}]" if prefix else name)


def _integer(params: Mapping[str, Any], name: str, *, required: bool = False) -> int:
    value = params.get(name)
    if value is None and required:
        raise _invalid(f"Missing required param: {name}.", param=name, code="parameter_missing")
    if not isinstance(value, str) or not re.fullmatch(r"-?\d+", value):
        raise _invalid(f"Invalid integer: {value}", param=name, code="parameter_invalid_integer")
    number = int(value)
    if number < 0:
        raise _invalid(
            "This value must be greater than or equal to 1.",
            param=name,
            code="parameter_invalid_integer",
        )
    return number


def _boolean(params: Mapping[str, Any], name: str, prefix: str) -> bool:
    value = params.get(name)
    if value not in ("true", "false"):
        raise _invalid(f"Invalid boolean: {value}", param=f"{prefix}[{name}]")
    return value == "true"


def _metadata(value: Any) -> dict[str, str]:
    if value == "":
        return {}
    if not isinstance(value, dict):
        raise _invalid("Invalid object", param="metadata")
    if len(value) > 50:
        raise _invalid("Metadata can have at most 50 keys.", param="metadata")
    for key, item in value.items():
        if len(key) > 40:
            raise _invalid(
                f"Metadata keys must be at most 40 characters ({key}).", param=f"metadata[{key}]"
            )
        if not isinstance(item, str) or len(item) > 500:
            raise _invalid(
                f"Metadata values must be strings of at most 500 characters ({key}).",
                param=f"metadata[{key}]",
            )
    return dict(value)


def _major(amount: int, currency: str) -> str:
    """How Stripe's refund errors print an amount: "SEK 45.00"."""
    return f"{currency.upper()} {amount // 100}.{amount % 100:02d}"


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def _available_on(created: int) -> int:
    day = created - created % 86400
    return day + STANDIN_AVAILABLE_AFTER_DAYS * 86400


def _in_range(value: int, bounds: Any, name: str) -> bool:
    """Stripe's range filter: an exact Unix time, or any of gt, gte, lt, lte."""
    if bounds is None:
        return True
    if isinstance(bounds, str):
        return value == _integer({name: bounds}, name)
    if not isinstance(bounds, dict):
        raise _invalid("Invalid object", param=name)
    _only(bounds, {"gt", "gte", "lt", "lte"}, prefix=name)
    checks = {"gt": lambda b: value > b, "gte": lambda b: value >= b,
              "lt": lambda b: value < b, "lte": lambda b: value <= b}
    return all(checks[op](_integer(bounds, op)) for op in bounds)


def _page(rows: list[dict[str, Any]], params: Mapping[str, Any], url: str) -> dict[str, Any]:
    """One page of a list as Stripe gives it: newest first (insertion order breaks ties),
    `limit` items (1 to 100, 10 unless asked), after `starting_after` or before
    `ending_before`, and whether there are more."""
    limit = _integer(params, "limit") if "limit" in params else 10
    if not 1 <= limit <= 100:
        raise _invalid("This value must be less than or equal to 100.", param="limit",
                       code="parameter_invalid_integer")
    ordered = [row for _, row in sorted(enumerate(rows), key=lambda p: (p[1]["created"], p[0]),
                                        reverse=True)]
    ids = [row["id"] for row in ordered]
    for cursor in ("starting_after", "ending_before"):
        if cursor in params and params[cursor] not in ids:
            raise _ApiError(404, "invalid_request_error",
                            f"No such object: '{params[cursor]}'", param=cursor,
                            code="resource_missing")
    if "starting_after" in params:
        rest = ordered[ids.index(params["starting_after"]) + 1:]
        data, has_more = rest[:limit], len(rest) > limit
    elif "ending_before" in params:
        before = ordered[:ids.index(params["ending_before"])]
        data, has_more = before[-limit:], len(before) > limit
    else:
        data, has_more = ordered[:limit], len(ordered) > limit
    return {"object": "list", "data": copy.deepcopy(data), "has_more": has_more, "url": url}


def _unexpected_state(pi: Mapping[str, Any], verb: str, allowed: tuple[str, ...]) -> _ApiError:
    return _ApiError(
        400,
        "invalid_request_error",
        f"This PaymentIntent could not be {verb} because it has a status of {pi['status']}. "
        f"Only a PaymentIntent with one of the following statuses may be {verb}: "
        f"{', '.join(allowed)}.",
        code="payment_intent_unexpected_state",
        extra={"payment_intent": copy.deepcopy(dict(pi))},
        saved=True,
    )


def _api_key(authorization: str) -> str:
    scheme, _, key = authorization.partition(" ")
    if scheme != "Bearer" or not key:
        raise _ApiError(
            401,
            "invalid_request_error",
            "You did not provide an API key. You need to provide your API key in the "
            "Authorization header, using Bearer auth "
            "(e.g. 'Authorization: Bearer YOUR_SECRET_KEY').",
        )
    if not key.startswith(("sk_test_", "rk_test_")):
        raise _ApiError(
            401,
            "invalid_request_error",
            f"Invalid API Key provided: {key[:8]}********",
            code="api_key_invalid" if not key.startswith(("sk_live_", "rk_live_")) else None,
        )
    return key


def _injected(failure: _Failure) -> _ApiError:
    headers = {}
    if failure.should_retry is not None:
        headers["Stripe-Should-Retry"] = "true" if failure.should_retry else "false"
    if failure.status == 429:
        message = (
            "This object cannot be accessed right now because another API request or Stripe "
            "process is currently accessing it. If you see this error intermittently, retry "
            "the request."
            if failure.code == "lock_timeout"
            else "Request rate limit exceeded. Learn more about rate limits here "
            "https://stripe.com/docs/rate-limits."
        )
        return _ApiError(429, "invalid_request_error", message, code=failure.code, headers=headers)
    if failure.status >= 500:
        return _ApiError(
            failure.status,
            "api_error",
            "An unknown error occurred",
            code=failure.code,
            headers=headers,
        )
    return _ApiError(
        failure.status,
        "invalid_request_error",
        f"Injected failure ({failure.status})",
        code=failure.code,
        headers=headers,
    )


def _json(
    status: int, body: Mapping[str, Any], headers: Mapping[str, str] | None = None
) -> Response:
    return Response(
        json.dumps(body, indent=2),
        status=status,
        headers=dict(headers or {}),
        content_type="application/json",
    )


def create_stripe_standin() -> StripeStandin:
    return StripeStandin()


__all__ = [
    "TEST_CARDS",
    "RecordedRequest",
    "StripeStandin",
    "create_stripe_standin",
    "decode_form",
    "event_payload",
    "sign_webhook",
]
