"""Which element prices a piece, worked out once per class of moments that answer alike.

Choosing an element (tariffs.restrictions._choose) reads the piece's context: its kind, the
local clock, the session's duration and energy so far, the period's power and current. Every
restriction compares one of those with fixed bounds, so two moments whose values fall on the
same side of every bound get the same element, and the same restrictions are reached on the
way (which is what notes an unknown power or current). That class of a moment is cheap to
tell:

- the local clock: the instants between two consecutive local cuts (tariffs.clock: every time
  of day the tariff names, local midnight, a DST switch) all have the same answers to every
  time-of-day, date and weekday restriction; the answers are worked out once per such stretch
  in a run (one local time made, instead of one per piece);
- duration, energy, power, current: the position of the value among the tariff's bounds for
  it (`bisect_right`: how many bounds are <= the value, which is all `low <= v < high` reads).

So a tariff's choices are kept per (dimension, class) on the compiled tariff, and a piece
costs a few bisects and one dict look-up instead of a context and a walk through the
restrictions. The first piece of a class is still chosen by `_choose` itself, on its real
context, so the answer is the engine's by construction.
"""

from __future__ import annotations

from bisect import bisect_right
from decimal import Decimal
from zoneinfo import ZoneInfo

from tariffs.clock import _dt
from tariffs.model import DIMENSIONS, _Compiled, _Component, _Restrictions
from tariffs.restrictions import _choose, _Context, _local_holds

# The classes are few (kinds x stretches' answers x bound positions); this only stops a
# pathological tariff from growing the memo without end.
_MEMO_LIMIT = 4096

_Key = tuple[object, ...]


class _Plan:
    """A compiled tariff's bounds, sorted, and the choices made so far per class."""

    __slots__ = ("current", "dimensions", "duration", "kwh", "local", "memo", "power")

    def __init__(self, tariff: _Compiled) -> None:
        # The dimensions the tariff prices at all (what a run of it calls unpriced).
        self.dimensions = frozenset(d for d in DIMENSIONS if tariff.by_dimension[d])
        restrictions = [el.restrictions for el in tariff.elements if el.restrictions is not None]
        self.local: tuple[_Restrictions, ...] = tuple(r for r in restrictions if r.local)
        self.duration = _bounds(restrictions, "min_duration", "max_duration")
        self.kwh = _bounds(restrictions, "min_kwh", "max_kwh")
        self.power = _bounds(restrictions, "min_power", "max_power")
        self.current = _bounds(restrictions, "min_current", "max_current")
        # Per class, per dimension: the component and what choosing it noted.
        self.memo: dict[_Key, dict[str, tuple[_Component | None, frozenset[str]]]] = {}


def _bounds(restrictions: list[_Restrictions], low: str, high: str) -> tuple[Decimal, ...]:
    values = {v for r in restrictions for v in (getattr(r, low), getattr(r, high))
              if v is not None}
    return tuple(sorted(values))


def plan_of(tariff: _Compiled) -> _Plan:
    plan = tariff.plan
    if plan is None:
        plan = tariff.plan = _Plan(tariff)
    return plan


def local_answers(plan: _Plan, zone: ZoneInfo, at: Decimal) -> tuple[bool, ...]:
    """Each local restriction's answer at `at` (and so for its whole stretch)."""
    local = _dt(at).astimezone(zone)
    return tuple(_local_holds(r, local) for r in plan.local)


def class_of(plan: _Plan, kind: str, expired: bool, local: tuple[bool, ...] | None,
             duration: Decimal, kwh: Decimal, power: Decimal | None,
             current: Decimal | None) -> _Key:
    """The class of a moment: what every restriction of the tariff answers depends on."""
    return (kind, expired, local,
            bisect_right(plan.duration, duration) if plan.duration else 0,
            bisect_right(plan.kwh, kwh) if plan.kwh else 0,
            (-1 if power is None else bisect_right(plan.power, power)) if plan.power else 0,
            (-1 if current is None else bisect_right(plan.current, current))
            if plan.current else 0)


def choose(plan: _Plan, tariff: _Compiled, dimension: str, key: _Key, c: _Context
           ) -> _Component | None:
    """The component for `dimension` in class `key`; `c` is the piece's own context, read
    only the first time the class is met. Unknown powers and currents are noted in
    c.unknown as `_choose` would have noted them."""
    chosen = plan.memo.get(key)
    if chosen is None:
        if len(plan.memo) >= _MEMO_LIMIT:
            plan.memo.clear()
        chosen = plan.memo[key] = {}
    known = chosen.get(dimension)
    if known is None:
        noted: set[str] = set()
        real = c.unknown
        c.unknown = noted
        try:
            component = _choose(tariff, dimension, c, {})
        finally:
            c.unknown = real
        known = chosen[dimension] = (component, frozenset(noted))
    component, noted_then = known
    if noted_then:
        c.unknown.update(noted_then)
    return component
