"""The live cost of a session that is still going: priced on from where the last update
left it, not from its first period again.

A period is final once a later one has started (it lasts until the next one starts); only
the last can still grow. So the state carried from one update to the next is the run after
every period but the last (tariffs.running: totals, step-size volumes, the energy so far,
the start fee taken, the notes), as JSON-like data the caller stores beside the session.
The next update feeds the periods from there on and finishes a copy: step sizes, limits
and rounding are applied to the whole session's totals each time, exactly as a full price.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from tariffs.clock import _secs, _zone
from tariffs.decimals import _exact
from tariffs.model import TariffLike, _compile, _Compiled
from tariffs.periods import ChargingPeriod, _Period, _periods
from tariffs.pricing import _validity_note
from tariffs.results import PriceBreakdown
from tariffs.running import _Run
from tariffs.session import _finish, _origins

_VERSION = 1


@dataclass(frozen=True)
class LiveCost:
    """A session's cost so far (`breakdown`, without per-period lines) and the state to
    price its next update from (None when it cannot be carried: the periods came out of
    order, or there are none yet)."""

    breakdown: PriceBreakdown
    state: dict[str, Any] | None


@_exact
def price_live(
    tariff: TariffLike,
    periods: Sequence[ChargingPeriod | Mapping[str, Any]],
    *,
    time_zone: str,
    session_start: datetime | None = None,
    session_end: datetime,
    state: dict[str, Any] | None = None,
) -> LiveCost | None:
    """Price a session that is still going, on from `state`.

    Without a state, `periods` are all of the session's; with one, they are the periods
    from the `fed(state)`-th on (the last one priced before, which may have grown, and every
    new one). The answer equals price_session on all the periods, but for its lines.
    None: the state does not fit (another version of the tariff, another zone or start, a
    period before the ones already priced, a reservation that turned out not to expire);
    price again with every period and no state.
    """
    compiled = _compile(tariff)
    zone = _zone(time_zone)
    start = _secs(session_start) if session_start is not None else None
    source = compiled.source
    key = [source.country_code, source.party_id, compiled.id,
           source.last_updated.isoformat(), time_zone, None if start is None else str(start)]
    run: _Run | None = None
    if state is not None:
        run = _restore(state, key, compiled, zone)
        if run is None or not periods:
            return None
    done = run.fed if run is not None else 0
    notes: list[str] = []
    marks: list[int] = []
    normalized = _periods(periods, session_end, session_start, lambda _cp, _i: compiled,
                          notes, done, marks, tariff=compiled)
    # Sorted (out of order) means priced as price_session would and nothing carried.
    ordered = bool(periods) and all(p.index == done + i for i, p in enumerate(normalized))
    if run is None or state is None:
        return _first(compiled, zone, normalized, notes, marks, key, start, ordered)
    if not ordered or (run.last_start is not None and normalized[0].start < run.last_start):
        return None
    _, charging_origin, expired = _carried_origins(
        run.origin, _summary(normalized, state["summary"]))
    if (charging_origin, expired) != (run.charging_origin, run.expired):
        return None  # priced so far with origins that no longer hold
    return _onward(run, compiled, normalized, notes, marks, key,
                   _summary(normalized[:-1], state["summary"]), Decimal(state["first_start"]))


def _restore(state: dict[str, Any], key: list[Any], compiled: _Compiled, zone: Any
             ) -> _Run | None:
    """The run a state describes, if it was made for this tariff version, zone and start
    (and is whole: a damaged one is priced again, not trusted)."""
    if not isinstance(state, dict) or state.get("v") != _VERSION or state.get("key") != key:
        return None
    try:
        Decimal(state["first_start"])
        _carried_origins(Decimal(0), state["summary"])
        return _Run.from_state(state["run"], compiled, zone)
    except (KeyError, TypeError, ValueError, ArithmeticError):
        return None


def fed(state: dict[str, Any]) -> int:
    """How many of the session's periods `state` has priced (the next update's periods
    are read from this index on)."""
    return int(state["run"]["fed"])


def _first(compiled: _Compiled, zone: Any, normalized: list[_Period], notes: list[str],
           marks: list[int], key: list[Any], start: Decimal | None, ordered: bool
           ) -> LiveCost:
    origin, charging_origin, expired = _origins(normalized, start, None)
    run = _Run({id(compiled): compiled}, zone, origin, charging_origin, expired,
               keep_lines=False)
    if not ordered:  # priced as price_session would, sorted; nothing to carry
        run.feed_all(normalized)
        _validity_note(compiled, start if start is not None else normalized[0].start, notes)
        return LiveCost(_finish(run, compiled.currency, compiled, notes), None)
    summary = _summary(normalized[:-1], None)
    first_start = start if start is not None else normalized[0].start
    return _onward(run, compiled, normalized, notes, marks, key, summary, first_start)


def _onward(run: _Run, compiled: _Compiled, normalized: list[_Period], notes: list[str],
            marks: list[int], key: list[Any], summary: dict[str, Any], first_start: Decimal
            ) -> LiveCost:
    """Feed the closed periods, keep the state, then feed the open one and finish."""
    closed_notes = marks[-2] if len(marks) > 1 else 0
    run.feed_all(normalized[:-1])
    run.period_notes.extend(notes[:closed_notes])
    state = {"v": _VERSION, "key": key, "run": run.state(), "summary": summary,
             "first_start": str(first_start)}
    run.feed(normalized[-1])
    session_notes = [*run.period_notes, *notes[closed_notes:]]
    _validity_note(compiled, first_start, session_notes)
    return LiveCost(_finish(run, compiled.currency, compiled, session_notes), state)


def _summary(periods: list[_Period], before: dict[str, Any] | None) -> dict[str, Any]:
    """What decides the origins and whether a reservation expired, over the periods so
    far: reservation seen, the first charging period's start, any charging at all."""
    out: dict[str, Any] = dict(before) if before else {
        "reservation": False, "first_charging": None, "activity": False}
    for p in periods:
        out["reservation"] = out["reservation"] or p.reservation > 0
        if out["first_charging"] is None and (p.reservation == 0 or p.charging > 0
                                              or p.parking > 0):
            out["first_charging"] = str(p.start)
        out["activity"] = out["activity"] or p.charging > 0 or p.parking > 0 or p.energy > 0
    return out


def _carried_origins(origin: Decimal, summary: dict[str, Any]
                     ) -> tuple[Decimal, Decimal, bool]:
    """tariffs.session._origins, from the summary instead of every period."""
    first = summary["first_charging"]
    charging_origin = Decimal(first) if summary["reservation"] and first is not None \
        else origin
    return origin, charging_origin, summary["reservation"] and not summary["activity"]
