"""What the money edge announces. Receivers get sender=the app-independent string
"payments" and keyword arguments; each is sent once per applied gateway event."""

from blinker import Namespace

_signals = Namespace()

# hold_id, amount_capturable_minor, currency, payment_method_brand, payment_method_last4, event_id
hold_authorized = _signals.signal("hold-authorized")
# hold_id, message, event_id
hold_failed = _signals.signal("hold-failed")
# hold_id, event_id
hold_canceled = _signals.signal("hold-canceled")
# hold_id, amount_received_minor, currency, event_id
hold_captured = _signals.signal("hold-captured")
