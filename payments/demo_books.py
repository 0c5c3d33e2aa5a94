"""The demo gateway's books: balance transactions and payouts in Stripe's shapes, made from
its own records (demo payment intents and demo refunds), so the reconciliation page works
with no Stripe account. Nothing here is stored: the same records give the same books.

How the demo keeps them, as a Stripe account on a daily automatic payout schedule would:
- a capture is a "charge" transaction dated when it was captured, less a made-up fee
  (DEMO_FEE_PERCENT of the amount plus DEMO_FEE_FIXED_MINOR; not Stripe's price list);
- a refund is a "refund" transaction of minus its amount, with no fee (Stripe keeps the
  fee of a refunded charge);
- each transaction becomes available DEMO_AVAILABLE_AFTER after its UTC day began; what
  becomes available on a day is paid out that day in one payout per currency (when it
  comes to more than nothing), arriving at the bank DEMO_ARRIVES_AFTER later.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy import select

from extensions import db, now_utc
from payments.gateway import BalanceTransaction, HoldStatus, Payout
from payments.models import DemoPaymentIntent, DemoRefund

DEMO_FEE_PERCENT = Decimal("1.5")
DEMO_FEE_FIXED_MINOR = 180
DEMO_AVAILABLE_AFTER = timedelta(days=2)
DEMO_ARRIVES_AFTER = timedelta(days=1)


def demo_fee(amount_minor: int) -> int:
    percent = (Decimal(amount_minor) * DEMO_FEE_PERCENT / 100).quantize(
        Decimal(1), rounding=ROUND_HALF_UP)
    return min(amount_minor, int(percent) + DEMO_FEE_FIXED_MINOR)


def _utc(when: datetime) -> datetime:
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def _available_on(created: datetime) -> datetime:
    return datetime.combine(_utc(created).date(), time(), UTC) + DEMO_AVAILABLE_AFTER


def _payments_and_refunds(start: datetime, end: datetime) -> list[BalanceTransaction]:
    intents = db.session.scalars(
        select(DemoPaymentIntent).where(
            DemoPaymentIntent.status == HoldStatus.SUCCEEDED.value,
            DemoPaymentIntent.captured_at >= start, DemoPaymentIntent.captured_at < end)
    ).all()
    found = []
    for intent in intents:
        captured_at = _utc(intent.captured_at or intent.created_at)
        fee = demo_fee(intent.amount_received_minor)
        suffix = intent.intent_id.removeprefix("pi_demo_")
        found.append(BalanceTransaction(
            id=f"txn_demo_ch_{suffix}", type="charge", reporting_category="charge",
            amount_minor=intent.amount_received_minor, fee_minor=fee,
            net_minor=intent.amount_received_minor - fee, currency=intent.currency,
            created=captured_at, available_on=_available_on(captured_at),
            source_id=f"ch_demo_{suffix}", hold_id=intent.intent_id, status="available",
            description=intent.description))
    refunds = db.session.scalars(
        select(DemoRefund).where(DemoRefund.created_at >= start, DemoRefund.created_at < end)
    ).all()
    for refund in refunds:
        created = _utc(refund.created_at)
        found.append(BalanceTransaction(
            id="txn_demo_" + refund.refund_id.removeprefix("re_demo_"), type="refund",
            reporting_category="refund", amount_minor=-refund.amount_minor, fee_minor=0,
            net_minor=-refund.amount_minor, currency=refund.currency, created=created,
            available_on=_available_on(created), source_id=refund.refund_id,
            hold_id=refund.intent_id, status="available",
            description=f"REFUND FOR PAYMENT {refund.intent_id}"))
    return found


def _daily_payouts(start: datetime, end: datetime) -> list[tuple[Payout, BalanceTransaction]]:
    """The payouts made in [start, end) (a payout is made the day its funds become
    available), each with its own balance transaction."""
    reach = DEMO_AVAILABLE_AFTER + timedelta(days=1)
    due: dict[tuple[datetime, str], int] = defaultdict(int)
    counts: dict[tuple[datetime, str], int] = defaultdict(int)
    for entry in _payments_and_refunds(start - reach, end):
        if start <= entry.available_on < end:
            due[entry.available_on, entry.currency] += entry.net_minor
            counts[entry.available_on, entry.currency] += 1
    now = now_utc()
    made = []
    for (day, currency), net in sorted(due.items()):
        if net <= 0 or day > now:
            continue
        arrival = day + DEMO_ARRIVES_AFTER
        payout_id = f"po_demo_{day:%Y%m%d}_{currency.lower()}"
        made.append((
            Payout(id=payout_id, amount_minor=net, currency=currency, arrival_date=arrival,
                   created=day, status="paid" if arrival <= now else "in_transit",
                   automatic=True, paid_out_net_minor=net,
                   paid_out_count=counts[day, currency]),
            BalanceTransaction(
                id=f"txn_demo_{payout_id}", type="payout", reporting_category="payout",
                amount_minor=-net, fee_minor=0, net_minor=-net, currency=currency,
                created=day, available_on=day, source_id=payout_id, status="available",
                description="STRIPE PAYOUT (demo)")))
    return made


def balance_transactions(start: datetime, end: datetime) -> list[BalanceTransaction]:
    start, end = _utc(start), _utc(end)
    found = _payments_and_refunds(start, end) + [
        entry for _, entry in _daily_payouts(start, end)]
    return sorted(found, key=lambda t: (t.created, t.id), reverse=True)


def payouts(start: datetime, end: datetime) -> list[Payout]:
    start, end = _utc(start), _utc(end)
    made = _daily_payouts(start - DEMO_ARRIVES_AFTER, end - DEMO_ARRIVES_AFTER)
    return sorted((payout for payout, _ in made), key=lambda p: p.arrival_date, reverse=True)
