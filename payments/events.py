"""Gateway events: stored raw first, then applied exactly once.

Applying claims the stored event with a conditional UPDATE (applied_at IS NULL), which
holds the row until commit: a concurrent delivery of the same event waits, then finds it
applied and does nothing. Signal receivers run inside that transaction and do not commit;
if one fails, the claim is rolled back with everything else and the event stays pending
for the next delivery or reconciliation.
"""

from __future__ import annotations

import json
import logging
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
    from payments.stripe_gateway import hold_from_payment_intent

    event_type = event.get("type", "")
    obj = (event.get("data") or {}).get("object") or {}
    if obj.get("object") != "payment_intent":
        log.info("payment event %s (%s) kept, nothing to apply", event_id, event_type)
        return
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
