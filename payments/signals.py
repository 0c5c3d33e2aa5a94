"""What the money edge announces.

Gateway events, once per applied event, with sender="payments" and `event_id`. Their
receivers run inside the transaction that marks the event applied, and must not commit:
- hold_authorized, hold_failed, hold_canceled, hold_captured: `hold`
  (payments.gateway.Hold, the PaymentIntent as the event carried it);
- refund_confirmed: `hold_id` (the PaymentIntent), `gateway_charge_id`, `currency`,
  `captured_minor`, `refunded_minor` (in total so far, of what was captured),
  `fully_refunded`, `refunds` (payments.gateway.Refund, only when the event lists them);
- dispute_opened: `hold_id` (None when the dispute names no PaymentIntent),
  `gateway_charge_id`, `dispute_id`, `amount_minor`, `currency`, `reason`, `status`,
  `evidence_due_by` (aware UTC datetime or None);
- refund_updated (charge.refund.updated): `refund` (payments.gateway.Refund), `hold_id`,
  `failure_reason` (Stripe's, when the refund failed);
- dispute_closed (charge.dispute.closed): `hold_id`, `gateway_charge_id`, `dispute_id`,
  `amount_minor`, `currency`, `reason`, `status` (won, lost, warning_closed, ...).

And, after the commit that issued it (never inside a transaction: receivers must not use
the database session, only hand work to the queue):
- receipt_issued: `receipt_pk` — a receipt (not a credit note) was issued.
"""

from blinker import Namespace

_signals = Namespace()

hold_authorized = _signals.signal("hold-authorized")  # the card is authorised: money is held
hold_failed = _signals.signal("hold-failed")  # the payment attempt failed (e.g. declined)
hold_canceled = _signals.signal("hold-canceled")  # the hold was released
hold_captured = _signals.signal("hold-captured")  # money was captured
refund_confirmed = _signals.signal("refund-confirmed")  # the gateway says money went back
dispute_opened = _signals.signal("dispute-opened")  # the card holder disputes the payment
refund_updated = _signals.signal("refund-updated")  # a refund's status changed (e.g. failed)
dispute_closed = _signals.signal("dispute-closed")  # the dispute is decided: won or lost
receipt_issued = _signals.signal("receipt-issued")  # a new receipt is committed
