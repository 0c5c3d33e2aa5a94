"""The payment gateway interface: what the domain may ask of any gateway.

A hold is a card authorization placed before charging (Stripe: a PaymentIntent with
capture_method=manual). Every call that moves money takes an idempotency key derived from
the charge and the step, so a retry after a crash cannot move money twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal, Protocol


class HoldStatus(StrEnum):
    # Stripe's PaymentIntent statuses, which the demo gateway uses too.
    REQUIRES_PAYMENT_METHOD = "requires_payment_method"
    REQUIRES_CONFIRMATION = "requires_confirmation"
    REQUIRES_ACTION = "requires_action"
    PROCESSING = "processing"
    REQUIRES_CAPTURE = "requires_capture"
    CANCELED = "canceled"
    SUCCEEDED = "succeeded"


@dataclass(frozen=True)
class Hold:
    id: str  # the gateway's reference (Stripe: PaymentIntent id, "pi_...")
    status: HoldStatus
    amount_minor: int  # amount asked for
    currency: str  # ISO 4217, upper case
    client_secret: str | None = None  # handed to the driver's page to confirm the payment
    amount_capturable_minor: int = 0
    amount_received_minor: int = 0
    payment_method_brand: str | None = None
    payment_method_last4: str | None = None
    decline_message: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    # The authorisation's real end (Stripe: latest_charge.payment_method_details.card
    # .capture_before), known only when the gateway's answer carries the charge: a
    # webhook's PaymentIntent names the charge by id, so it is None there.
    capture_before: datetime | None = None
    # Why a canceled hold was canceled (Stripe's enum): "automatic" is a lapsed
    # authorisation; ScanCharge's own releases say "abandoned".
    cancellation_reason: str | None = None


# Stripe's reasons for a refund (its `reason` enum). ScanCharge's own reason, the operator's
# words, travels beside it in the refund's metadata.
RefundCategory = Literal["requested_by_customer", "duplicate", "fraudulent"]
REFUND_CATEGORIES: tuple[str, ...] = ("requested_by_customer", "duplicate", "fraudulent")


@dataclass(frozen=True)
class Refund:
    """Money sent back to the card (Stripe: a Refund, "re_...")."""

    id: str
    amount_minor: int
    currency: str  # ISO 4217, upper case
    # Stripe's refund statuses: pending, requires_action, succeeded, failed, canceled.
    status: str
    reason: str | None  # the gateway's category (RefundCategory), not the operator's words


# What a provider's balance transaction is about, as ScanCharge reads its `type`: a payment
# received (Stripe: "charge" for cards, "payment" for other methods), money sent back
# ("refund", "payment_refund") or a refund that failed and came back to the balance.
PAYMENT_TYPES = frozenset({"charge", "payment"})
REFUND_TYPES = frozenset({"refund", "payment_refund"})
REFUND_FAILURE_TYPES = frozenset({"refund_failure", "payment_failure_refund"})


@dataclass(frozen=True)
class BalanceTransaction:
    """One entry in the provider's books (Stripe: a BalanceTransaction, "txn_..."): money
    into or out of the account's balance, in integer minor units of `currency`, positive
    in, negative out; `net` is `amount` less the provider's `fee`."""

    id: str
    type: str  # the provider's own words: charge, payment, refund, payout, adjustment, ...
    reporting_category: str
    amount_minor: int
    fee_minor: int
    net_minor: int
    currency: str  # ISO 4217, upper case
    created: datetime
    available_on: datetime
    source_id: str | None  # what moved the money: ch_..., re_..., po_..., du_...
    # The PaymentIntent the source belongs to (a charge's or a refund's), when it has one:
    # the key the domain matches a hold by.
    hold_id: str | None = None
    status: str | None = None  # pending or available
    description: str | None = None


@dataclass(frozen=True)
class Payout:
    """Money sent from the provider's balance to the bank account (Stripe: "po_...")."""

    id: str
    amount_minor: int
    currency: str  # ISO 4217, upper case
    arrival_date: datetime
    created: datetime
    status: str  # paid, pending, in_transit, canceled or failed
    automatic: bool
    # What the balance transactions this payout pays out come to (their net, the payout's
    # own transaction left out); None when the provider cannot say (a manual payout).
    paid_out_net_minor: int | None
    paid_out_count: int = 0


class PaymentError(Exception):
    """The gateway refused or failed; `retryable` says whether trying again may help."""

    def __init__(self, message: str, *, retryable: bool = False, code: str | None = None,
                 category: str | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.code = code
        # What kind of trouble, for telling an operator what to do: "connection" (the
        # provider could not be reached), "authentication" (it refused the API key),
        # "rate_limit"; None for the rest (the message says).
        self.category = category


class PaymentGateway(Protocol):
    kind: str  # "stripe" or "demo"

    def create_hold(
        self,
        amount_minor: int,
        currency: str,
        *,
        description: str,
        metadata: dict[str, str],
        idempotency_key: str,
    ) -> Hold: ...

    def retrieve(self, hold_id: str) -> Hold:
        """The hold as the gateway has it now: its real status, capturable amount and
        capture_before. Asked before giving up on an unpaid charge and when the driver
        returns from a redirect, because the webhook saying so may be late or lost."""
        ...

    def capture(self, hold_id: str, amount_minor: int, *, idempotency_key: str) -> Hold:
        """Capture `amount_minor` (never more than capturable) and release the rest."""
        ...

    def cancel(self, hold_id: str, *, idempotency_key: str) -> Hold:
        """Release the whole hold."""
        ...

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
        """Send `amount_minor` of what was captured back to the card; `reason` is the
        operator's words (kept in the refund's metadata), `category` the gateway's enum.
        Never more than received minus already refunded: the gateway refuses that
        (PaymentError code "amount_too_large", or "charge_already_refunded")."""
        ...

    def page_config(self) -> dict[str, Any]:
        """What the driver's page needs to confirm a payment with this gateway."""
        ...

    def balance_transactions(self, start: datetime, end: datetime) -> list[BalanceTransaction]:
        """The provider's books: every balance transaction created in [start, end), all
        pages of them, newest first. Raises PaymentError when the provider cannot say."""
        ...

    def payouts(self, start: datetime, end: datetime) -> list[Payout]:
        """The payouts arriving at the bank in [start, end), each with the net of the
        balance transactions it pays out."""
        ...
