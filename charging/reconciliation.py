"""Reconciliation with the payment provider: what ScanCharge captured and refunded, per day
in the operator's time zone, against the provider's books (its balance transactions and
payouts, from the gateway); every difference listed with its kind.

A read model: it changes nothing and opens no unit of work. It lives in the domain because
only the domain knows charges; payments/ hands over the provider's records as plain data.

How one capture is matched: by its PaymentIntent (the charge's hold_id, the provider
transaction's source's payment_intent); a refund by the provider's refund id. A pair is
counted on the day ScanCharge recorded it (the provider's own stamp is a moment earlier,
and at midnight that moment may fall on the day before), a provider transaction alone on
the day the provider dated it. The provider's books are read a day beyond each end of the
range for the same reason, so a pair that straddles the range's edge is still a pair.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select

from charging.models import Charge, ChargeEvent
from charging.states import ChargeStatus as S
from extensions import db
from payments.gateway import (
    PAYMENT_TYPES,
    REFUND_FAILURE_TYPES,
    REFUND_TYPES,
    BalanceTransaction,
    PaymentGateway,
    Payout,
)
from payments.models import RefundRecord

# What a difference is, as a stable code (pages and the CSV put it in words).
CAPTURE_NOT_AT_PROVIDER = "capture_not_at_provider"  # captured here, no provider transaction
PAYMENT_UNKNOWN_HERE = "payment_unknown_here"  # a provider payment no capture here matches
AMOUNT_DIFFERS = "amount_differs"
CURRENCY_DIFFERS = "currency_differs"
REFUND_NOT_AT_PROVIDER = "refund_not_at_provider"
REFUND_UNKNOWN_HERE = "refund_unknown_here"  # e.g. a refund made in the Stripe Dashboard
REFUND_AMOUNT_DIFFERS = "refund_amount_differs"
PAYOUT_DIFFERS = "payout_differs"  # a payout that is not the net of what it pays out
KINDS = (CAPTURE_NOT_AT_PROVIDER, PAYMENT_UNKNOWN_HERE, AMOUNT_DIFFERS, CURRENCY_DIFFERS,
         REFUND_NOT_AT_PROVIDER, REFUND_UNKNOWN_HERE, REFUND_AMOUNT_DIFFERS, PAYOUT_DIFFERS)

DayOf = Callable[[datetime], date]  # a moment's day in the operator's zone
RowFor = Callable[[date, str], "Day | None"]  # the day's row in a currency; None: outside

MAX_DAYS = 31  # a month per look: each look reads the provider's books afresh
EDGE = timedelta(days=1)


@dataclass(frozen=True)
class Difference:
    day: date
    kind: str
    currency: str
    ours_minor: int | None  # None: nothing on our side
    theirs_minor: int | None  # None: nothing on the provider's side
    charge_id: str | None = None  # the charge's public id, when one of ours is concerned
    hold_id: str | None = None
    transaction_id: str | None = None  # the provider's balance transaction (txn_...)
    refund_id: str | None = None  # the provider's refund (re_...)
    payout_id: str | None = None
    theirs_currency: str | None = None  # when the currencies differ

    @property
    def difference_minor(self) -> int:
        return (self.ours_minor or 0) - (self.theirs_minor or 0)


@dataclass
class Day:
    """One day in one currency: ours against theirs."""

    day: date
    currency: str | None  # None: a day with nothing on either side
    captured_minor: int = 0
    refunded_minor: int = 0
    provider_charged_minor: int = 0
    provider_refunded_minor: int = 0
    fees_minor: int = 0
    other_minor: int = 0  # adjustments, disputes, fees of the provider's own
    payouts_minor: int = 0
    paid_out_net_minor: int = 0  # what the day's payouts pay out, by their transactions
    differences: int = 0

    @property
    def ours_net_minor(self) -> int:
        return self.captured_minor - self.refunded_minor

    @property
    def theirs_net_minor(self) -> int:
        """The provider's payments less refunds, before its fees: comparable with ours."""
        return self.provider_charged_minor - self.provider_refunded_minor

    @property
    def difference_minor(self) -> int:
        return self.ours_net_minor - self.theirs_net_minor

    @property
    def matches(self) -> bool:
        return self.differences == 0


@dataclass
class Reconciliation:
    first_day: date
    last_day: date
    zone: str
    gateway: str
    days: list[Day] = field(default_factory=list)
    differences: list[Difference] = field(default_factory=list)
    payouts: list[Payout] = field(default_factory=list)
    # The provider's transactions that are neither a payment nor a refund nor a payout.
    other: list[BalanceTransaction] = field(default_factory=list)
    # Charges of the provider's transactions, by hold id: to link what only they have.
    charges_by_hold: dict[str, str] = field(default_factory=dict)

    @property
    def matches(self) -> bool:
        return not self.differences


@dataclass(frozen=True)
class _Ours:
    key: str  # hold id (a capture) or the provider's refund id (a refund)
    at: datetime
    amount_minor: int
    currency: str
    charge_id: str
    hold_id: str


@dataclass
class _Theirs:
    key: str
    created: datetime
    amount_minor: int = 0  # positive: what was paid, or what was refunded
    fee_minor: int = 0
    currency: str = ""
    hold_id: str | None = None
    transaction_ids: list[str] = field(default_factory=list)


def utc_range(first_day: date, last_day: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """From the first day's local midnight to the local midnight after the last, in UTC."""
    start = datetime.combine(first_day, time(), zone).astimezone(UTC)
    end = datetime.combine(last_day + timedelta(days=1), time(), zone).astimezone(UTC)
    return start, end


def reconcile(gateway: PaymentGateway, first_day: date, last_day: date,
              zone: ZoneInfo) -> Reconciliation:
    """Our captures and refunds against the gateway's books from first_day to last_day
    (both included, local days). Raises PaymentError when the provider cannot say."""
    if last_day < first_day:
        raise ValueError("the last day comes before the first")
    if (last_day - first_day).days >= MAX_DAYS:
        raise ValueError(f"at most {MAX_DAYS} days at a time")
    start, end = utc_range(first_day, last_day, zone)
    books = gateway.balance_transactions(start - EDGE, end + EDGE)
    # A payout's arrival is a calendar date (its UTC midnight), not a moment in our zone:
    # west of UTC the first day's local midnight comes after it, and its payout was lost.
    payouts = gateway.payouts(datetime.combine(first_day, time(), UTC),
                              datetime.combine(last_day + timedelta(days=1), time(), UTC))
    result = Reconciliation(first_day, last_day, str(zone), gateway.kind)
    days: dict[tuple[date, str], Day] = {}

    def day_of(when: datetime) -> date:
        return when.astimezone(zone).date()

    def row(when: date, currency: str) -> Day | None:
        if not first_day <= when <= last_day:
            return None
        return days.setdefault((when, currency), Day(when, currency))

    payments, refunds, other = _sorted_books(books)
    ours_captures = _our_captures(gateway.kind, start - EDGE, end + EDGE)
    ours_refunds = _our_refunds(gateway.kind, start - EDGE, end + EDGE)
    holds = {t.hold_id for t in [*payments.values(), *refunds.values()] if t.hold_id}
    holds |= {t.hold_id for t in other if t.hold_id}
    result.charges_by_hold = _charges_by_hold(holds)
    _compare(ours_captures, payments, result, day_of, row, refund=False)
    _compare(ours_refunds, refunds, result, day_of, row, refund=True)
    for entry in other:
        if (line := row(day_of(entry.created), entry.currency)) is not None:
            line.other_minor += entry.amount_minor
            line.fees_minor += entry.fee_minor
            result.other.append(entry)
    for payout in payouts:
        _add_payout(payout, result, row)
    result.days = _every_day(first_day, last_day, days)
    result.differences.sort(key=lambda d: (d.day, KINDS.index(d.kind), d.charge_id or ""))
    return result


def _sorted_books(books: Iterable[BalanceTransaction]) -> tuple[
        dict[str, _Theirs], dict[str, _Theirs], list[BalanceTransaction]]:
    """The provider's payments by PaymentIntent, its refunds by refund id (a failed
    refund's transaction nets its refund out), and the rest (payouts left out: they are
    compared as payouts)."""
    payments: dict[str, _Theirs] = {}
    refunds: dict[str, _Theirs] = {}
    other = []
    for entry in sorted(books, key=lambda t: (t.created, t.id)):
        if entry.type in PAYMENT_TYPES:
            key, into, amount = entry.hold_id or entry.id, payments, entry.amount_minor
        elif entry.type in REFUND_TYPES | REFUND_FAILURE_TYPES:
            key, into, amount = entry.source_id or entry.id, refunds, -entry.amount_minor
        elif entry.type == "payout":
            continue
        else:
            other.append(entry)
            continue
        theirs = into.setdefault(key, _Theirs(key, entry.created, currency=entry.currency,
                                              hold_id=entry.hold_id))
        theirs.amount_minor += amount
        theirs.fee_minor += entry.fee_minor
        theirs.transaction_ids.append(entry.id)
    # A refund that failed gave everything back: nothing was refunded.
    return payments, {k: v for k, v in refunds.items() if v.amount_minor}, other


def _compare(ours: dict[str, _Ours], theirs: dict[str, _Theirs], result: Reconciliation,
             day_of: DayOf, row: RowFor, *, refund: bool) -> None:
    for key in sorted(ours.keys() | theirs.keys()):
        mine, their = ours.get(key), theirs.get(key)
        hold_id: str | None
        if mine is not None:
            when, currency, hold_id = day_of(mine.at), mine.currency, mine.hold_id
        elif their is not None:
            when, currency, hold_id = day_of(their.created), their.currency, their.hold_id
        else:
            continue
        line = row(when, currency)
        if line is None:
            continue
        if mine is not None:
            if refund:
                line.refunded_minor += mine.amount_minor
            else:
                line.captured_minor += mine.amount_minor
        if their is not None and their.currency == currency:
            if refund:
                line.provider_refunded_minor += their.amount_minor
            else:
                line.provider_charged_minor += their.amount_minor
            line.fees_minor += their.fee_minor
        kind = _kind(mine, their, refund=refund)
        if kind is None:
            continue
        line.differences += 1
        result.differences.append(Difference(
            day=when, kind=kind, currency=currency,
            ours_minor=mine.amount_minor if mine is not None else None,
            theirs_minor=their.amount_minor if their is not None else None,
            charge_id=mine.charge_id if mine is not None
            else result.charges_by_hold.get(hold_id or ""),
            hold_id=hold_id,
            transaction_id=", ".join(their.transaction_ids) if their is not None else None,
            refund_id=key if refund else None,
            theirs_currency=their.currency if their is not None else None,
        ))


def _kind(mine: _Ours | None, their: _Theirs | None, *, refund: bool) -> str | None:
    if their is None:
        return REFUND_NOT_AT_PROVIDER if refund else CAPTURE_NOT_AT_PROVIDER
    if mine is None:
        return REFUND_UNKNOWN_HERE if refund else PAYMENT_UNKNOWN_HERE
    if mine.currency != their.currency:
        return CURRENCY_DIFFERS
    if mine.amount_minor != their.amount_minor:
        return REFUND_AMOUNT_DIFFERS if refund else AMOUNT_DIFFERS
    return None


def _add_payout(payout: Payout, result: Reconciliation, row: RowFor) -> None:
    """A payout counts on the day it arrives at the bank (its arrival date is a calendar
    date, given as that day's UTC midnight)."""
    line = row(payout.arrival_date.astimezone(UTC).date(), payout.currency)
    if line is None:
        return
    result.payouts.append(payout)
    line.payouts_minor += payout.amount_minor
    line.paid_out_net_minor += payout.paid_out_net_minor or 0
    if payout.paid_out_net_minor is not None and payout.paid_out_net_minor != \
            payout.amount_minor:
        line.differences += 1
        result.differences.append(Difference(
            day=line.day, kind=PAYOUT_DIFFERS, currency=payout.currency,
            ours_minor=payout.paid_out_net_minor, theirs_minor=payout.amount_minor,
            payout_id=payout.id))


def _every_day(first_day: date, last_day: date, days: dict[tuple[date, str], Day]) -> list[Day]:
    """A row for each day and currency, and a row for a day with nothing on either side."""
    rows = []
    when = first_day
    while when <= last_day:
        found = sorted((d for (on, _), d in days.items() if on == when),
                       key=lambda d: d.currency or "")
        rows.extend(found or [Day(when, None)])
        when += timedelta(days=1)
    return rows


# --- our side ------------------------------------------------------------------------------


def _our_captures(gateway: str, start: datetime, end: datetime) -> dict[str, _Ours]:
    """Charges captured in [start, end) through this gateway, by hold id, dated by the
    transition to CAPTURED on their timeline (exactly one per charge)."""
    rows = db.session.execute(
        select(Charge.public_id, Charge.hold_id, Charge.captured_minor, Charge.currency,
               ChargeEvent.at)
        .join(ChargeEvent, ChargeEvent.charge_pk == Charge.pk)
        .where(ChargeEvent.to_status == S.CAPTURED.value,
               ChargeEvent.from_status != S.CAPTURED.value,
               ChargeEvent.at >= start, ChargeEvent.at < end,
               Charge.gateway == gateway, Charge.captured_minor.is_not(None),
               Charge.hold_id.is_not(None))
    ).tuples()
    return {hold_id: _Ours(hold_id, at, captured, currency, public_id, hold_id)
            for public_id, hold_id, captured, currency, at in rows
            if hold_id is not None and captured is not None}


def _our_refunds(gateway: str, start: datetime, end: datetime) -> dict[str, _Ours]:
    """Refunds the gateway confirmed in [start, end), by the gateway's refund id. One
    started and not finished is left out: nobody knows yet whether it was made."""
    rows = db.session.scalars(
        select(RefundRecord).where(
            RefundRecord.gateway == gateway, RefundRecord.state == "refunded",
            RefundRecord.gateway_refund_id.is_not(None),
            RefundRecord.completed_at >= start, RefundRecord.completed_at < end)
    ).all()
    return {r.gateway_refund_id: _Ours(r.gateway_refund_id, r.completed_at or r.created_at,
                                       r.amount_minor, r.currency,
                                       r.reference.removeprefix("charge:"), r.hold_id)
            for r in rows if r.gateway_refund_id}


def _charges_by_hold(holds: set[str]) -> dict[str, str]:
    if not holds:
        return {}
    rows = db.session.execute(
        select(Charge.hold_id, Charge.public_id).where(Charge.hold_id.in_(sorted(holds)))
    ).tuples()
    return {hold_id: public_id for hold_id, public_id in rows if hold_id}


