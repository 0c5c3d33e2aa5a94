"""Wire models as JSON documents, and the small conversions both dialects share.

Documents keep Decimal numbers; cpo_simulator.jsonio writes them exactly.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from cpo_simulator.jsonio import plain
from cpo_simulator.pricing import Amount
from ocpi.modules.common import DisplayText, OcpiModel, Price

HOURS = Decimal("0.000001")  # 2.2.1 TIME volumes in hours, to the 3.6 ms


def hours(seconds: int, quantum: Decimal = HOURS) -> Decimal:
    return (Decimal(seconds) / Decimal(3600)).quantize(quantum, rounding=ROUND_HALF_UP)


def document(model: OcpiModel) -> dict[str, Any]:
    """A wire model as a JSON document that keeps its Decimals (see jsonio)."""
    return plain(model.model_dump(mode="python", exclude_none=True))


def display_texts(message: str | None) -> list[DisplayText] | None:
    return [DisplayText(language="en", text=message)] if message else None


def price_or_none(amount: Amount | None) -> Price | None:
    return amount.to_price() if amount is not None else None


def pick_version(versions: Any, version: str) -> str | None:
    """The URL of `version` in a peer's version list, if it offers it."""
    if not isinstance(versions, list):
        return None
    for item in versions:
        if isinstance(item, dict) and str(item.get("version")) == version:
            url = item.get("url")
            return str(url) if url else None
    return None

