"""A priced line of a session (step_size is applied when the session is finished:
tariffs.session)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from tariffs.decimals import _ZERO
from tariffs.model import _Component
from tariffs.periods import _Piece


@dataclass(slots=True)
class _Line:
    piece: _Piece
    dimension: str
    bucket: str
    group: str
    component: _Component
    tariff_id: str
    volume: Decimal  # kWh, seconds, or 1 for FLAT
    extra: Decimal = _ZERO
