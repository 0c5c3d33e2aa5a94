"""Gateway events: stored raw first, then applied exactly once.

Announced: the PaymentIntent events (hold_*), charge.refunded (refund_confirmed),
charge.refund.updated (refund_updated), charge.dispute.created (dispute_opened) and
charge.dispute.closed (dispute_closed); any other type is kept and acknowledged.

Applying claims the stored event with a conditional UPDATE (applied_at IS NULL), which
holds the row until commit: a concurrent delivery of the same event waits, then finds it
applied and does nothing. Signal receivers run inside that transaction and do not commit;
if one fails, the claim is rolled back with everything else and the event stays pending
for the next delivery or reconciliation.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from extensions import db
from ocpi.transport import now_utc
from payments import signals
from payments.gateway import Hold
from payments.models import PaymentEvent

log = logging.getLogger(__name__)


def store_event(event: dict[str, Any], gateway: str) -> PaymentEvent:
    """Keep the raw event (once per event id) before anything else happens to it."""
    existing = db.session.scalar(select(PaymentEvent).where(PaymentEvent.event_id == event["id"]))
    if existing is not None:
        return existing
    obj = (event.get("data") or {}).get("object") or {}
    row = PaymentEvent(
        event_id=event["id"],
        gateway=gateway,
        type=event.get("type", ""),
        object_id=obj.get("id"),
        payload=json.dumps(event),
    )
    db.session.add(row)
    try:
        db.session.commit()
    except IntegrityError:  # the same event stored by a concurrent delivery
        db.session.rollback()
        return db.session.scalar(select(PaymentEvent).where(PaymentEvent.event_id == event["id"]))
    return row


def apply_event(event_pk: int) -> bool:
    """Apply a stored event once; True if this call applied it."""
    claimed = db.session.execute(
        update(PaymentEvent)
        .where(PaymentEvent.pk == event_pk, PaymentEvent.applied_at.is_(None))
        .values(applied_at=now_utc(), error=None)
    ).rowcount
    if not claimed:
        db.session.rollback()
        return False
    row = db.session.get(PaymentEvent, event_pk)
    try:
        _announce(row.event_id, json.loads(row.payload))
        db.session.commit()
    except Exception as exc:
        db.session.rollback()
        db.session.execute(
            update(PaymentEvent).where(PaymentEvent.pk == event_pk).values(error=repr(exc)[:2000])
        )
        db.session.commit()
        raise
    return True


def _announce(event_id: str, event: dict[str, Any]) -> None:
    event_type = event.get("type", "")
    obj = (event.get("data") or {}).get("object") or {}
    kind = obj.get("object")
    if kind == "payment_intent":
        _announce_payment_intent(event_id, event_type, obj)
    elif kind == "charge" and event_type == "charge.refunded":
        _announce_refund(event_id, obj)
    elif kind == "refund" and event_type == "charge.refund.updated":
        _announce_refund_updated(event_id, obj)
    elif kind == "dispute" and event_type == "charge.dispute.created":
        _announce_dispute(event_id, obj)
    elif kind == "dispute" and event_type == "charge.dispute.closed":
        signals.dispute_closed.send(
            "payments",
            event_id=event_id,
            hold_id=obj.get("payment_intent"),
            gateway_charge_id=obj.get("charge"),
            dispute_id=obj.get("id"),
            amount_minor=_int(obj, "amount"),
            currency=str(obj.get("currency", "")).upper(),
            reason=obj.get("reason"),
            status=obj.get("status"),
        )
    else:
        log.info("payment event %s (%s) kept, nothing to apply", event_id, event_type)


def _announce_payment_intent(event_id: str, event_type: str, obj: dict[str, Any]) -> None:
    from payments.stripe_gateway import hold_from_payment_intent

    hold: Hold = hold_from_payment_intent(obj)
    if event_type == "payment_intent.amount_capturable_updated" and hold.amount_capturable_minor:
        signals.hold_authorized.send(
            "payments", hold=hold, event_id=event_id,
        )
    elif event_type == "payment_intent.payment_failed":
        signals.hold_failed.send("payments", hold=hold, event_id=event_id)
    elif event_type == "payment_intent.canceled":
        signals.hold_canceled.send("payments", hold=hold, event_id=event_id)
    elif event_type == "payment_intent.succeeded":
        signals.hold_captured.send("payments", hold=hold, event_id=event_id)
    else:
        log.info("payment event %s (%s) kept, nothing to apply", event_id, event_type)


def _announce_refund(event_id: str, charge: dict[str, Any]) -> None:
    """charge.refunded: the Charge after a refund (full or partial).

    Stripe's `amount_refunded` also counts the part of the authorization released when a
    smaller amount was captured (amount - amount_captured), so what went back of the money
    taken is amount_refunded minus that. Since API version 2022-11-15 the charge lists no
    refunds unless the endpoint expands them; they are passed on when present."""
    from payments.stripe_gateway import refund_from_stripe

    amount = _int(charge, "amount")
    captured = _int(charge, "amount_captured")
    refunded = max(0, _int(charge, "amount_refunded") - (amount - captured))
    listed = (charge.get("refunds") or {}).get("data") if isinstance(
        charge.get("refunds"), dict) else None
    signals.refund_confirmed.send(
        "payments",
        event_id=event_id,
        hold_id=charge.get("payment_intent"),
        gateway_charge_id=charge.get("id"),
        currency=str(charge.get("currency", "")).upper(),
        captured_minor=captured,
        refunded_minor=refunded,
        fully_refunded=captured > 0 and refunded >= captured,
        refunds=[refund_from_stripe(r) for r in listed or []],
    )


def _announce_refund_updated(event_id: str, obj: dict[str, Any]) -> None:
    """charge.refund.updated: the Refund object; a refund accepted as pending may end
    failed (e.g. the card was closed) or canceled, with Stripe's failure_reason."""
    from payments.stripe_gateway import refund_from_stripe

    signals.refund_updated.send(
        "payments",
        event_id=event_id,
        refund=refund_from_stripe(obj),
        hold_id=obj.get("payment_intent"),
        failure_reason=obj.get("failure_reason"),
    )


def _announce_dispute(event_id: str, dispute: dict[str, Any]) -> None:
    """charge.dispute.created: the card holder disputes the payment (a chargeback)."""
    due = (dispute.get("evidence_details") or {}).get("due_by")
    signals.dispute_opened.send(
        "payments",
        event_id=event_id,
        hold_id=dispute.get("payment_intent"),
        gateway_charge_id=dispute.get("charge"),
        dispute_id=dispute.get("id"),
        amount_minor=_int(dispute, "amount"),
        currency=str(dispute.get("currency", "")).upper(),
        reason=dispute.get("reason"),
        status=dispute.get("status"),
        evidence_due_by=datetime.fromtimestamp(due, UTC) if isinstance(due, int) else None,
    )


def _int(obj: dict[str, Any], key: str) -> int:
    value = obj.get(key) or 0
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{obj.get('object')} {obj.get('id')}: {key} is not an integer: "
                         f"{value!r}")
    return value
