"""What the money edge announces, once per applied gateway event.

Sent with sender="payments" and keyword arguments `hold` (payments.gateway.Hold, the
PaymentIntent as the event carried it) and `event_id`. Receivers run inside the
transaction that marks the event applied, and must not commit.
"""

from blinker import Namespace

_signals = Namespace()

hold_authorized = _signals.signal("hold-authorized")  # the card is authorised: money is held
hold_failed = _signals.signal("hold-failed")  # the payment attempt failed (e.g. declined)
hold_canceled = _signals.signal("hold-canceled")  # the hold was released
hold_captured = _signals.signal("hold-captured")  # money was captured
