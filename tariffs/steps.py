"""A priced line of a session (step_size is applied when the session is finished:
tariffs.session)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from tariffs.decimals import _ZERO
from tariffs.model import _Component


@dataclass(slots=True)
class _Line:
    # The piece priced, as a line shows it (not the piece itself: the usual period is
    # priced without making one, tariffs.running._Run._whole).
    period_index: int
    kind: str
    t0: Decimal
    t1: Decimal
    dimension: str
    bucket: str
    group: str
    component: _Component
    tariff_id: str
    volume: Decimal  # kWh, seconds, or 1 for FLAT
    extra: Decimal = _ZERO
