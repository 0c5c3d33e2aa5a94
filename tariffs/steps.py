"""A priced line of a session (step_size is applied when the session is finished:
tariffs.session)."""

from __future__ import annotations

from decimal import Decimal

from tariffs.model import _Component

# The piece priced, as a line shows it (not the piece itself: the usual period is priced
# without making one, tariffs.running._Run.feed_all): period index, kind, start, end,
# dimension, bucket, step_size group, component, tariff id, volume (kWh, seconds, or 1 for
# FLAT). A plain tuple: one is made for every priced dimension of every period, and a
# class's __init__ is a Python call each time. The extra volume step_size adds to a
# group's last line is kept apart (_Run.extras, by the line's position).
_Line = tuple[int, str, Decimal, Decimal, str, str, str, _Component, str, Decimal]
