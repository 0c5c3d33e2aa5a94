"""A priced line of a session, and step_size applied once to the session's totals
(mod_cdrs)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal

from tariffs.decimals import _STEP_GUARD, _THOUSAND, _ZERO
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


def _apply_step_sizes(lines: list[_Line], notes: list[str]) -> None:
    """mod_cdrs step_size: once per session on the total of ENERGY, once on TIME and
    PARKING_TIME combined, with the step_size of the last relevant component, the extra
    billed at that component. Reservation time is its own group (it is a separate phase
    that the spec's reservation examples round on its own)."""
    for group in ("ENERGY", "TIME", "RESERVATION"):
        relevant = [ln for ln in lines if ln.group == group and ln.volume > 0]
        if not relevant:
            continue
        last = relevant[-1]
        step = last.component.step_size
        if step <= 0:
            notes.append(f"{last.dimension} step_size {step} taken as no rounding")
            continue
        # Only the last piece's dimension is rounded: when charging is followed by
        # parking, charging time is not rounded (mod_cdrs' 21 + 16 minutes example).
        total = sum((ln.volume for ln in relevant if ln.dimension == last.dimension), _ZERO)
        units = total * _THOUSAND if group == "ENERGY" else total
        # The guard absorbs proportional-split noise so 1000.000...01 Wh is 1000 Wh.
        steps = (units.quantize(_STEP_GUARD) / step).to_integral_value(ROUND_CEILING)
        rounded = steps * step
        if group == "ENERGY":
            rounded = rounded / _THOUSAND
        last.extra = rounded - total
