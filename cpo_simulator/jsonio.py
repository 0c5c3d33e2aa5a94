"""JSON in and out with Decimal numbers kept exact.

The simulator prices in Decimal, so money must reach the wire as the Decimal's own digits,
never through a float. Bodies read back keep numbers as Decimal for the same reason.
"""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from enum import Enum
from typing import Any

from ocpi.transport import format_datetime, json_dumps


def plain(value: Any) -> Any:
    """A document of dicts, lists, str, bool, int and Decimal: DateTimes become OCPI text,
    enums their value, and None members of objects are dropped (OCPI omits absent fields)."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items() if v is not None}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, datetime):
        return format_datetime(value)
    if isinstance(value, Enum):
        return value.value
    return value


# JSON text with every Decimal written as exactly its digits (4.00 stays 4.00): the same
# writer ScanCharge uses, since the simulator shares ocpi.transport by design.
dumps = json_dumps


def loads(text: str | bytes) -> Any:
    """Parse JSON keeping non-integer numbers as Decimal."""
    return json.loads(text, parse_float=Decimal)
