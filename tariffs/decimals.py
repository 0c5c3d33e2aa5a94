"""The engine's exact decimal arithmetic: a 50-digit context, its constants and quantising."""

from __future__ import annotations

import functools
from collections.abc import Callable
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Context, Decimal, localcontext
from typing import Any, TypeVar

# 50 significant digits: dividing by 3600 and splitting periods proportionally are the only
# inexact steps, and their last-digit noise sits far below _GUARD.
_CTX = Context(prec=50, rounding=ROUND_HALF_EVEN)
# _CTX but rounding half up: the one money rounding (tariffs.results._round_in_engine).
_CTX_HALF_UP = Context(prec=50, rounding=ROUND_HALF_UP)
_GUARD = Decimal("1e-20")
_STEP_GUARD = Decimal("1e-9")
_MICRO = Decimal("0.000001")
_LINE_Q = Decimal("0.0001")
_HOURS_Q = Decimal("0.000001")
_ZERO = Decimal(0)
_ONE = Decimal(1)
_HOUR = Decimal(3600)
_THOUSAND = Decimal(1000)
_F = TypeVar("_F", bound=Callable[..., Any])


def _exact(fn: _F) -> _F:
    """Run a public entry point under the engine's 50-digit decimal context, whatever
    context the caller has (the default one has 28 digits)."""
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with localcontext(_CTX):
            return fn(*args, **kwargs)
    return wrapper  # type: ignore[return-value]


def _q(value: Decimal, quantum: Decimal) -> Decimal:
    # value.quantize(quantum, rounding=ROUND_HALF_EVEN, context=_CTX), _CTX's own
    # rounding: the context's method takes its two arguments without keyword parsing.
    return _CTX.quantize(value, quantum)
