"""Refunds by an operator, and what the gateway says about refunds and disputes.

A refund sends part or all of what was captured back to the card, with the operator's
reason, and issues a credit note in the receipt's number series. The rules of
charging/timeline.py hold here too:
- the charge changes only under its row lock, in a unit of work (locked_charge), and
  through fire()/note();
- no lock is held (no transaction is open) while the gateway works (network_step);
- every gateway call carries an idempotency key, here `charge-<public_id>-refund-<n>`, n
  being the refund's sequence number on the charge: retrying the same refund cannot refund
  twice, and a second refund of the same charge is still possible.

How a refund runs (`refund()`), as two units of work with the gateway's refund between:
1. Under the lock: the charge must be CAPTURED, or REFUNDED with money left (REFUNDED means
   "refunded in full or in part": the first refund moves CAPTURED -> REFUNDED, later ones
   are timeline notes); the amount must fit in captured minus refunded. The request is
   recorded as refund n in state "started", and committed.
2. No lock: the gateway refunds, with key `charge-<public_id>-refund-<n>`.
3. Under the lock again: the refund is marked "refunded", the charge's refunded_minor grows,
   the credit note is issued, the timeline records it (cause "operator", the operator and
   the reason), and all of it commits together.
A crash or a gateway outage between 1 and 3 leaves refund n "started"; running the same
refund again (same amount, same reason) finishes it with the same key, and a different
refund is refused until it is finished.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from charging.models import Charge
from charging.states import ChargeStatus as S
from charging.states import Event, can
from charging.timeline import Cause, fail, fire, note
from charging.unit_of_work import (
    leave_unchanged,
    lock_charge,
    locked_charge,
    network_step,
    unit_of_work,
)
from extensions import db
from ocpi.transport import now_utc
from payments.gateway import REFUND_CATEGORIES, PaymentError, Refund, RefundCategory
from payments.models import Receipt, RefundRecord
from payments.money import Money
from payments.receipts import issue_credit_note
from payments.setup import current_gateway

log = logging.getLogger(__name__)

REFUNDABLE_STATES = frozenset({S.CAPTURED, S.REFUNDED})


class RefundError(Exception):
    """A refund that cannot be done (now); `code` is stable, the message says what to do."""

    def __init__(self, code: str, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.retryable = retryable


@dataclass(frozen=True)
class RefundResult:
    charge_id: str  # the charge's public id
    sequence: int  # n: the refund's number on this charge
    amount_minor: int
    currency: str
    gateway_refund_id: str
    gateway_status: str  # the gateway's refund status: succeeded, or pending (on its way)
    refunded_minor: int  # refunded on the charge in total, this refund included
    captured_minor: int
    status: str  # the charge's status afterwards (REFUNDED)
    credit_note_number: str | None
    resumed: bool  # True when this finished a refund started earlier

    @property
    def remaining_minor(self) -> int:
        return self.captured_minor - self.refunded_minor


def reference_of(public_id: str) -> str:
    """The refunds' reference: the same words as the charge's receipt's reference."""
    return f"charge:{public_id}"


def refund(
    charge_public_id: str,
    amount_minor: int | None,
    reason: str,
    operator: str,
    *,
    category: RefundCategory = "requested_by_customer",
    refunded_before: int | None = None,
) -> RefundResult:
    """Refund `amount_minor` of a captured charge (None: all that is left).

    `refunded_before` is what the operator saw refunded when deciding (a form's
    confirmation): if more has been refunded since, the request is refused as made
    already, so a form sent twice refunds once (the same refund still unfinished is
    finished, with its key, not refused)."""
    reason = (reason or "").strip()
    operator = (operator or "").strip()
    if not reason:
        raise RefundError("reason_required", "a refund needs a reason (it is on the timeline "
                                             "and on the credit note)")
    if not operator:
        raise RefundError("operator_required", "a refund needs the operator who made it")
    if category not in REFUND_CATEGORIES:
        raise RefundError("invalid_category",
                          f"the category must be one of {', '.join(REFUND_CATEGORIES)}")
    if amount_minor is not None:
        if isinstance(amount_minor, bool) or not isinstance(amount_minor, int):
            raise TypeError(f"amount must be integer minor units, got {amount_minor!r}")
        if amount_minor <= 0:
            raise RefundError("invalid_amount", "the amount to refund must be more than zero")
    with unit_of_work():
        pk = db.session.scalar(select(Charge.pk).where(Charge.public_id == charge_public_id))
    if pk is None:
        raise RefundError("unknown_charge", f"there is no charge {charge_public_id!r}")
    row_pk, resumed = _start(pk, amount_minor, reason, operator, category, refunded_before)
    return _finish(pk, row_pk, resumed)


def _start(
    pk: int, amount_minor: int | None, reason: str, operator: str, category: str,
    refunded_before: int | None = None,
) -> tuple[int, bool]:
    """Step 1: check and record the request (committed), or find the one to resume."""
    with locked_charge(pk) as charge:
        if charge.state not in REFUNDABLE_STATES:
            raise RefundError(
                "not_refundable",
                f"charge {charge.public_id} is {charge.status}: only a CAPTURED charge, or "
                "one already partly REFUNDED, can be refunded",
            )
        captured = charge.captured_minor or 0
        remaining = captured - charge.refunded_minor
        requested = amount_minor if amount_minor is not None else remaining
        unfinished = db.session.scalars(
            select(RefundRecord)
            .where(RefundRecord.reference == reference_of(charge.public_id),
                   RefundRecord.state == "started")
            .order_by(RefundRecord.sequence)
        ).first()
        if unfinished is not None:
            if (unfinished.amount_minor, unfinished.reason) == (requested, reason):
                leave_unchanged()
                return unfinished.pk, True  # the same refund again: finish it
            raise RefundError(
                "refund_unfinished",
                f"refund #{unfinished.sequence} of {_fmt(unfinished.amount_minor, charge)} "
                f"({unfinished.reason!r}, by {unfinished.operator}) was started and is not "
                "finished: run it again with the same amount and reason to finish it "
                "(it cannot refund twice), then refund more if needed",
            )
        if refunded_before is not None and charge.refunded_minor != refunded_before:
            raise RefundError(
                "refunded_since",
                f"{_fmt(charge.refunded_minor, charge)} has been refunded since this refund "
                f"was confirmed ({_fmt(refunded_before, charge)} then): it was made already; "
                "look at the timeline before refunding more",
            )
        if remaining <= 0:
            raise RefundError(
                "fully_refunded",
                f"charge {charge.public_id} is already refunded in full "
                f"({_fmt(captured, charge)})",
            )
        if requested > remaining:
            raise RefundError(
                "amount_too_large",
                f"at most {_fmt(remaining, charge)} can be refunded: "
                f"{_fmt(captured, charge)} captured, {_fmt(charge.refunded_minor, charge)} "
                f"already refunded; asked for {_fmt(requested, charge)}",
            )
        if not charge.hold_id:
            raise RefundError("not_refundable", f"charge {charge.public_id} has no payment")
        sequence = 1 + int(db.session.scalar(
            select(func.count(RefundRecord.pk))
            .where(RefundRecord.reference == reference_of(charge.public_id))
        ))
        row = RefundRecord(
            reference=reference_of(charge.public_id),
            sequence=sequence,
            idempotency_key=f"charge-{charge.public_id}-refund-{sequence}",
            state="started",
            gateway=charge.gateway,
            hold_id=charge.hold_id,
            amount_minor=requested,
            currency=charge.currency,
            reason=reason,
            category=category,
            operator=operator,
        )
        db.session.add(row)
        db.session.flush()
        return row.pk, False


def _finish(pk: int, row_pk: int, resumed: bool) -> RefundResult:
    """Steps 2 and 3: the gateway (no lock), then the record, the credit note and the
    timeline (under the lock)."""
    with unit_of_work():
        row = db.session.get_one(RefundRecord, row_pk)
        public_id = row.reference.removeprefix("charge:")
        call: dict[str, Any] = {
            "reason": row.reason,
            "idempotency_key": row.idempotency_key,
            "category": row.category,
            "metadata": {"charge": public_id, "refund": str(row.sequence),
                         "operator": row.operator},
        }
        hold_id, amount = row.hold_id, row.amount_minor
    try:
        with network_step():  # no lock and no open transaction while the gateway works
            result = current_gateway().refund(hold_id, amount, **call)
    except PaymentError as exc:
        if exc.retryable:
            raise RefundError(
                "gateway_unavailable",
                f"the payment gateway did not answer ({exc}); nothing is recorded as "
                "refunded. Run the same refund again: it reuses the same idempotency key, "
                "so it cannot refund twice",
                retryable=True,
            ) from exc
        _fail(pk, row_pk, str(exc))
        raise RefundError("gateway_refused", f"the payment gateway refused the refund: {exc}") \
            from exc
    if result.status in {"failed", "canceled"}:
        _fail(pk, row_pk, f"the gateway reports refund {result.id} as {result.status}")
        raise RefundError("gateway_refused",
                          f"the payment gateway reports the refund {result.id} as {result.status}")

    with locked_charge(pk) as charge:
        row = db.session.scalars(
            select(RefundRecord).where(RefundRecord.pk == row_pk)
            .execution_options(populate_existing=True)
        ).one()
        if row.state == "refunded":  # a concurrent run of the same refund recorded it first
            return _result(charge, row, resumed=True)
        row.state = "refunded"
        row.gateway_refund_id = result.id
        row.gateway_status = result.status
        row.completed_at = now_utc()
        charge.refunded_minor += row.amount_minor
        receipt = db.session.get(Receipt, charge.receipt_pk) if charge.receipt_pk else None
        if receipt is not None:
            credit = issue_credit_note(
                receipt,
                reference=f"refund:{public_id}:{row.sequence}",
                amount_minor=row.amount_minor,
                reason=row.reason,
                refund_id=result.id,
            )
            row.credit_note_pk = credit.pk
            row.credit_note_number = credit.display_number
        text = (
            f"refund #{row.sequence}: {_fmt(row.amount_minor, charge)} back to the card "
            f"({_fmt(charge.refunded_minor, charge)} of {_fmt(charge.captured_minor or 0, charge)} "
            f"refunded in total), reason: {row.reason}; "
            + (f"credit note {row.credit_note_number}" if row.credit_note_number
               else "no receipt to credit")
            + f"; gateway refund {result.id}"
        )
        cause = Cause("operator", row.operator, text)
        if can(charge.state, Event.REFUNDED):
            fire(charge, Event.REFUNDED, cause)
        else:
            note(charge, cause)
        return _result(charge, row, resumed=resumed)


def _fail(pk: int, row_pk: int, error: str) -> None:
    with locked_charge(pk) as charge:
        row = db.session.scalars(
            select(RefundRecord).where(RefundRecord.pk == row_pk)
            .execution_options(populate_existing=True)
        ).one()
        if row.state == "started":
            row.state = "failed"
            row.error = error
            row.completed_at = now_utc()
            note(charge, Cause(
                "operator", row.operator,
                f"refund #{row.sequence} of {_fmt(row.amount_minor, charge)} failed, nothing "
                f"refunded: {error} (reason given: {row.reason})",
            ))


def _result(charge: Charge, row: RefundRecord, *, resumed: bool) -> RefundResult:
    return RefundResult(
        charge_id=charge.public_id,
        sequence=row.sequence,
        amount_minor=row.amount_minor,
        currency=row.currency,
        gateway_refund_id=row.gateway_refund_id or "",
        gateway_status=row.gateway_status or "",
        refunded_minor=charge.refunded_minor,
        captured_minor=charge.captured_minor or 0,
        status=charge.status,
        credit_note_number=row.credit_note_number,
        resumed=resumed,
    )


def refunds_of(public_id: str) -> list[RefundRecord]:
    return list(db.session.scalars(
        select(RefundRecord).where(RefundRecord.reference == reference_of(public_id))
        .order_by(RefundRecord.sequence)
    ))


def _fmt(amount_minor: int, charge: Charge) -> str:
    return Money(amount_minor, charge.currency).format("en")


# --- What the gateway announces -----------------------------------------------------------
# Receivers (wired in wiring.py) run inside the payment event's unit of work
# (payments.events.apply_event): they lock the charge and never end the transaction.


def _charge_pk(hold_id: str | None) -> int | None:
    if not hold_id:
        return None
    return db.session.scalar(select(Charge.pk).where(Charge.hold_id == hold_id))


def on_refund_confirmed(
    sender: str,
    *,
    event_id: str,
    hold_id: str | None,
    currency: str,
    captured_minor: int,
    refunded_minor: int,
    **_: Any,
) -> None:
    """charge.refunded: note what the gateway says was refunded in total. More than
    ScanCharge recorded (a refund made in the Stripe Dashboard, with no credit note) is
    flagged REFUND_UNRECORDED for the operator."""
    pk = _charge_pk(hold_id)
    if pk is None:
        log.warning("refund event %s: payment %s belongs to no charge", event_id, hold_id)
        return
    if refunded_minor <= 0:
        return  # only the uncaptured rest of the hold went back: nothing to say
    charge = lock_charge(pk)
    unfinished = int(db.session.scalar(
        select(func.coalesce(func.sum(RefundRecord.amount_minor), 0))
        .where(RefundRecord.reference == reference_of(charge.public_id),
               RefundRecord.state == "started")
    ))

    def fmt(amount: int) -> str:
        return Money(amount, currency or charge.currency).format("en")

    text = (f"gateway confirms {fmt(refunded_minor)} refunded in total of "
            f"{fmt(captured_minor)} captured")
    if refunded_minor > charge.refunded_minor + unfinished:
        fail(charge, "REFUND_UNRECORDED",
             f"the gateway has refunded {fmt(refunded_minor)}, ScanCharge recorded "
             f"{fmt(charge.refunded_minor)}: a refund made outside ScanCharge has no credit note")
        text += f"; ScanCharge recorded {fmt(charge.refunded_minor)}: flagged"
    note(charge, Cause("payment", event_id, text))


def on_dispute_opened(
    sender: str,
    *,
    event_id: str,
    hold_id: str | None,
    dispute_id: str | None,
    amount_minor: int,
    currency: str,
    reason: str | None,
    status: str | None,
    evidence_due_by: datetime | None,
    gateway_charge_id: str | None = None,
    **_: Any,
) -> None:
    """charge.dispute.created: the card holder disputes the payment. The charge is flagged
    DISPUTED: the operator answers with evidence in the Stripe Dashboard before the due date.
    """
    pk = _charge_pk(hold_id)
    if pk is None:
        log.warning("dispute %s (event %s, charge %s, payment %s) matches no charge: kept, "
                    "see the Stripe Dashboard", dispute_id, event_id, gateway_charge_id, hold_id)
        return
    charge = lock_charge(pk)
    amount = Money(amount_minor, currency or charge.currency).format("en")
    due = f", evidence due by {evidence_due_by:%Y-%m-%d %H:%M} UTC" if evidence_due_by else ""
    fail(charge, "DISPUTED", f"dispute {dispute_id}: {reason}, {amount}, {status}{due}")
    note(charge, Cause(
        "payment", event_id,
        f"the card holder disputes {amount} ({reason}; dispute {dispute_id}, {status}): "
        f"flagged DISPUTED, answer in the Stripe Dashboard{due}",
    ))


def on_refund_updated(
    sender: str,
    *,
    event_id: str,
    refund: Refund,
    hold_id: str | None,
    failure_reason: str | None = None,
    **_: Any,
) -> None:
    """charge.refund.updated: a refund Stripe accepted (often as pending) changed status.
    Failed or canceled means the money did not go back to the card: the refund is marked
    failed with Stripe's failure_reason and the charge flagged REFUND_FAILED. The credit
    note already issued stays (a numbered document is never withdrawn), and so does
    refunded_minor, so no second credit note can exceed the receipt: the operator pays the
    driver back another way and records it."""
    row = db.session.scalar(
        select(RefundRecord).where(RefundRecord.gateway_refund_id == refund.id)
    )
    pk = _charge_pk(hold_id) if row is None else db.session.scalar(
        select(Charge.pk).where(Charge.public_id == row.reference.removeprefix("charge:")))
    if pk is None:
        log.warning("refund event %s: refund %s of payment %s belongs to no charge",
                    event_id, refund.id, hold_id)
        return
    charge = lock_charge(pk)
    if row is not None:
        row = db.session.scalars(select(RefundRecord).where(RefundRecord.pk == row.pk)
                                 .execution_options(populate_existing=True)).one()
    if refund.status not in {"failed", "canceled"}:
        if row is not None and row.state != "failed":
            row.gateway_status = refund.status
        return
    if row is not None and row.state == "failed":
        return  # told already
    amount = Money(refund.amount_minor, refund.currency or charge.currency).format("en")
    why = failure_reason or "no reason given"
    label = f"refund #{row.sequence}" if row is not None else f"refund {refund.id}"
    if row is not None:
        row.state = "failed"
        row.gateway_status = refund.status
        row.error = f"the gateway reports the refund {refund.status}: {why}"
        row.completed_at = row.completed_at or now_utc()
    credit = (f"; credit note {row.credit_note_number} stands for money that did not reach "
              "the card" if row is not None and row.credit_note_number else "")
    fail(charge, "REFUND_FAILED", f"{label} of {amount} {refund.status}: {why}")
    note(charge, Cause(
        "payment", event_id,
        f"{label} of {amount} {refund.status} at the gateway ({why}): nothing went back to "
        f"the card{credit}; flagged REFUND_FAILED, pay the driver back another way",
    ))


def on_dispute_closed(
    sender: str,
    *,
    event_id: str,
    hold_id: str | None,
    dispute_id: str | None,
    amount_minor: int,
    currency: str,
    status: str | None,
    reason: str | None = None,
    gateway_charge_id: str | None = None,
    **_: Any,
) -> None:
    """charge.dispute.closed: the dispute is decided. Won: the money stays, the DISPUTED
    flag is lifted; lost: the bank gave the amount back to the card holder, flagged
    DISPUTE_LOST. Either way the timeline says so."""
    pk = _charge_pk(hold_id)
    if pk is None:
        log.warning("closed dispute %s (event %s, charge %s, payment %s) matches no charge",
                    dispute_id, event_id, gateway_charge_id, hold_id)
        return
    charge = lock_charge(pk)
    amount = Money(amount_minor, currency or charge.currency).format("en")
    if status == "lost":
        fail(charge, "DISPUTE_LOST",
             f"dispute {dispute_id} lost ({reason}): {amount} went back to the card holder")
        text = f"dispute {dispute_id} lost ({reason}): {amount} returned to the card holder; " \
               "flagged DISPUTE_LOST"
    elif status == "won":
        if charge.failure_code == "DISPUTED":
            charge.failure_code = charge.failure_detail = None
        text = f"dispute {dispute_id} won ({reason}): the {amount} stay paid"
    else:
        text = f"dispute {dispute_id} closed as {status} ({reason}), {amount}"
    note(charge, Cause("payment", event_id, text))


def receipt_recipient(receipt: Receipt) -> str | None:
    """The address a receipt is e-mailed to: the one the driver gave for the charge.
    (payments.mail asks; it knows receipts, not charges.)"""
    return db.session.scalar(select(Charge.email).where(Charge.receipt_pk == receipt.pk))

