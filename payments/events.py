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
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from extensions import db, now_utc, rows_changed
from payments import signals
from payments.gateway import Hold, PaymentError
from payments.models import PaymentEvent

log = logging.getLogger(__name__)


class MalformedEvent(ValueError):
    """An event that can never be applied as it is (a permanent problem, not a passing one):
    the webhook answers 400 rather than 5xx, which would make Stripe send it again and
    again for days."""


# Column sizes of payment_events: longer values are malformed, never truncated silently.
MAX_EVENT_ID = 255
MAX_TYPE = 64
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _text_field(value: Any, limit: int) -> str | None:
    """value when it is a storable id-like string (PostgreSQL refuses NUL); else None."""
    if isinstance(value, str) and 0 < len(value) <= limit and not _CONTROL.search(value):
        return value
    return None


def _object(event: dict[str, Any]) -> dict[str, Any]:
    """event.data.object, or {} for any other shape."""
    data = event.get("data")
    obj = data.get("object") if isinstance(data, dict) else None
    return obj if isinstance(obj, dict) else {}


def shape_problem(event: dict[str, Any]) -> str | None:
    """What makes this event impossible to apply, or None when its shape is Stripe's."""
    if _text_field(event.get("id"), MAX_EVENT_ID) is None:
        return f"the event has no usable id (a string of 1 to {MAX_EVENT_ID} characters)"
    if _text_field(event.get("type"), MAX_TYPE) is None:
        return f"the event's type is not a string of 1 to {MAX_TYPE} characters"
    data = event.get("data")
    if not isinstance(data, dict):
        return "the event's data is not an object"
    if not isinstance(data.get("object"), dict):
        return "the event's data.object is missing or not an object"
    if _has_nul(event):
        # Stripe never sends one, and PostgreSQL could not compare or store it.
        return "the event contains a NUL character in a string"
    return None


def _has_nul(value: Any) -> bool:
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return False


def store_event(event: dict[str, Any], gateway: str) -> PaymentEvent:
    """Keep the raw event (once per event id) before anything else happens to it.

    An event of the wrong shape is kept too, when it has an id to keep it under, already
    marked applied with the problem in `error`: nobody re-drives it, and the operator can
    read what arrived. Without a usable id it cannot be kept once: MalformedEvent.
    """
    event_id = _text_field(event.get("id"), MAX_EVENT_ID)
    if event_id is None:
        raise MalformedEvent(shape_problem(event) or "the event has no usable id")
    existing = db.session.scalar(select(PaymentEvent).where(PaymentEvent.event_id == event_id))
    if existing is not None:
        return existing
    problem = shape_problem(event)
    row = PaymentEvent(
        event_id=event_id,
        gateway=gateway,
        type=_text_field(event.get("type"), MAX_TYPE) or "",
        object_id=_text_field(_object(event).get("id"), 255),
        payload=json.dumps(event),
        applied_at=now_utc() if problem else None,
        error=f"malformed: {problem}" if problem else None,
    )
    db.session.add(row)
    try:
        db.session.commit()
    except IntegrityError:  # the same event stored by a concurrent delivery
        db.session.rollback()
        return db.session.execute(
            select(PaymentEvent).where(PaymentEvent.event_id == event_id)
        ).scalar_one()
    return row


def apply_event(event_pk: int) -> bool:
    """Apply a stored event once; True if this call applied it."""
    claimed = rows_changed(
        update(PaymentEvent)
        .where(PaymentEvent.pk == event_pk, PaymentEvent.applied_at.is_(None))
        .values(applied_at=now_utc(), error=None)
    )
    if not claimed:
        db.session.rollback()
        return False
    row = db.session.get_one(PaymentEvent, event_pk)
    try:
        _announce(row.event_id, json.loads(row.payload))
        db.session.commit()
    except MalformedEvent as exc:
        # Permanent: no receiver ran (the event is parsed before any signal is sent), so
        # it stays claimed, with the reason, and nothing re-drives it.
        db.session.rollback()
        db.session.execute(
            update(PaymentEvent).where(PaymentEvent.pk == event_pk)
            .values(applied_at=now_utc(), error=f"malformed: {exc}"[:2000])
        )
        db.session.commit()
        raise
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
    obj = _object(event)
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

    with _parsing(event_id):
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

    with _parsing(event_id):
        amount = _int(charge, "amount")
        captured = _int(charge, "amount_captured")
        refunded = max(0, _int(charge, "amount_refunded") - (amount - captured))
        listed = (charge.get("refunds") or {}).get("data") if isinstance(
            charge.get("refunds"), dict) else None
        refunds = [refund_from_stripe(r) for r in listed or []]
        hold_id, charge_id = _id(charge, "payment_intent"), _id(charge, "id")
    signals.refund_confirmed.send(
        "payments",
        event_id=event_id,
        hold_id=hold_id,
        gateway_charge_id=charge_id,
        currency=str(charge.get("currency", "")).upper(),
        captured_minor=captured,
        refunded_minor=refunded,
        fully_refunded=captured > 0 and refunded >= captured,
        refunds=refunds,
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
    with _parsing(event_id):
        details = dispute.get("evidence_details")
        due = details.get("due_by") if isinstance(details, dict) else None
        amount = _int(dispute, "amount")
        hold_id, charge_id = _id(dispute, "payment_intent"), _id(dispute, "charge")
        dispute_id = _id(dispute, "id")
    signals.dispute_opened.send(
        "payments",
        event_id=event_id,
        hold_id=hold_id,
        gateway_charge_id=charge_id,
        dispute_id=dispute_id,
        amount_minor=amount,
        currency=str(dispute.get("currency", "")).upper(),
        reason=dispute.get("reason"),
        status=dispute.get("status"),
        evidence_due_by=datetime.fromtimestamp(due, UTC) if isinstance(due, int) else None,
    )


@contextmanager
def _parsing(event_id: str) -> Iterator[None]:
    """Reading the event's object: a failure here is the event's shape, never a passing
    problem, and happens before any receiver has done anything."""
    try:
        yield
    except (PaymentError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise MalformedEvent(f"event {event_id}: {exc.__class__.__name__}: {exc}") from exc


def _id(obj: dict[str, Any], key: str) -> str | None:
    """An id the receivers look rows up by: a string (or absent), never another type."""
    value = obj.get(key)
    if value is not None and not isinstance(value, str):
        raise ValueError(f"{obj.get('object')} {key} is not a string id: {value!r:.40}")
    return value


def _int(obj: dict[str, Any], key: str) -> int:
    value = obj.get(key) or 0
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{obj.get('object')} {obj.get('id')}: {key} is not an integer: "
                         f"{value!r}")
    return value
