"""The money edge: payment gateways (Stripe, and a demo gateway for the embedded default),
the Stripe webhook endpoint, and receipts.

Nothing here knows about charges. Gateways move money when asked; webhook events are
stored, applied once, and announced through the blinker signals in payments.signals.
"""
