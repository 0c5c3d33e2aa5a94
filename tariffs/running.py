"""A session priced period by period: the running totals after the periods priced so far.

Whole-session pricing (tariffs.session) feeds every period to one `_Run` and finishes it;
the live cost (tariffs.live) keeps the run's state after a Session's closed periods and, on
the next update, feeds only the periods that came since. Both are the same code on the
same additions in the same order, so they come to the same answer by construction; step
sizes, limits and rounding happen once, when the run is finished.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Collection, Sequence
from decimal import Decimal
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from tariffs.choice import _Plan, choose, class_of, local_answers, plan_of
from tariffs.clock import _local_cuts
from tariffs.decimals import _HOUR, _ONE, _ZERO
from tariffs.model import (
    _BUCKETS,
    CHARGING,
    DIMENSIONS,
    PARKING,
    RESERVATION,
    _Compiled,
    _Component,
)
from tariffs.periods import _Period, _Piece, _spans
from tariffs.restrictions import _Context
from tariffs.steps import _Line

_GROUP_DIMENSIONS = {"ENERGY": ("ENERGY",), "TIME": ("TIME", "PARKING_TIME"),
                     "RESERVATION": ("TIME",)}
_TIMED = ("TIME", "PARKING_TIME")
# Local-time cuts are worked out for this much beyond a period at once, so a session's
# periods of one day share one look-up.
_CUTS_AHEAD = Decimal(2 * 86400)


class _Run:
    """The priced state of a session after the periods fed so far."""

    def __init__(self, tariffs: dict[int, _Compiled], zone: ZoneInfo, origin: Decimal,
                 charging_origin: Decimal, expired: bool, *, keep_lines: bool) -> None:
        self.tariffs = tariffs
        self.zone = zone
        self.origin = origin
        self.charging_origin = charging_origin
        self.expired = expired
        self.tariff_dims: Collection[str] = (plan_of(next(iter(tariffs.values()))).dimensions
                            if len(tariffs) == 1 else
                            {d for t in tariffs.values() for d in DIMENSIONS if t.by_dimension[d]})
        self.lines: list[_Line] | None = [] if keep_lines else None
        self.cumulative = _ZERO  # energy before the next piece, for min/max_kwh
        self.flat_done: set[str] = set()
        # Exact sums per bucket without step_size's extra (added when finished): direct
        # amounts (energy, flat) and time numerators (seconds x price per hour).
        # (Copies of one dict of zeros: dict.fromkeys is five times slower, five times a
        # session.)
        self.excl_direct = _NO_SUMS.copy()
        self.incl_direct = _NO_SUMS.copy()
        self.excl_time = _NO_SUMS.copy()
        self.incl_time = _NO_SUMS.copy()
        self.volume = _NO_SUMS.copy()
        self.billed: dict[str, Decimal] = {}  # when finished
        # step_size: per group, the last priced line's component and its bucket, and the
        # volume priced per (group, dimension).
        self.step_last: dict[str, tuple[int, int, str, str]] = {}  # tariff, element, dim, bucket
        self.step_volume: dict[tuple[str, str], Decimal] = {}
        # Per step_size group, the position in `lines` of its last line, and the extra
        # step_size adds to it (when finished).
        self.last_line: dict[str, int] = {}
        self.extras: dict[int, Decimal] = {}
        self.unknown: set[str] = set()
        self.unpriced: dict[str, Decimal] = {}
        self.no_tariff: set[int] = set()
        self.line_count = 0
        self.any_pieces = False
        self.energy = self.charging = self.parking = self.reservation = _ZERO
        self.period_notes: list[str] = []
        self.fed = 0
        self.last_start: Decimal | None = None
        self._cuts: dict[int, tuple[Decimal, Decimal, list[Decimal]]] = {}
        # Each local stretch's answers (tariffs.choice), by the cuts around it.
        self._answers: dict[tuple[int | Decimal | None, ...], tuple[bool, ...]] = {}

    # --- Feeding periods ------------------------------------------------------------------

    def feed(self, p: _Period) -> None:
        self.feed_all((p,))

    def feed_all(self, periods: Sequence[_Period]) -> None:
        """Each period fed in turn. The usual period, charging only and crossing no cut,
        is priced as one piece (_usual): what _spans, _cut and _match
        do for it (the same arithmetic in the same order), without making the piece, with
        what every period reads of its tariff looked up once (_View), as this is most of
        the engine's work. Any other period goes to _general."""
        # The consumed sums: no part of pricing reads them, so kept in locals meanwhile.
        energy_sum, charging_sum, parking_sum, reservation_sum = (
            self.energy, self.charging, self.parking, self.reservation)
        general, usual = self._general, self._usual
        tariff: _Compiled | None = None
        view: _View | None = None
        priced = False
        for p in periods:
            energy_sum += p.energy
            charging_sum += p.charging
            # Mostly the zero itself: adding it would give the same sum to the digit and
            # exponent (a sum of values with six decimal places, never -0), so it is not.
            if p.parking is not _ZERO:
                parking_sum += p.parking
            if p.reservation is not _ZERO:
                reservation_sum += p.reservation
            if p.reservation > 0 or p.parking > 0 or p.tariff is None:
                general(p)
                continue
            if p.tariff is not tariff:
                tariff = p.tariff
                view = self._view(tariff)
            assert view is not None
            if usual(p, view):
                priced = True
            else:
                general(p)
        if priced:
            self.any_pieces = True
        self.energy, self.charging, self.parking, self.reservation = (
            energy_sum, charging_sum, parking_sum, reservation_sum)
        if periods:
            self.fed += len(periods)
            self.last_start = periods[-1].start

    def _view(self, tariff: _Compiled) -> _View:
        plan = tariff.plan or plan_of(tariff)
        # A tariff whose choice reads no clock and no bound has one class of moments for
        # every charging piece (choice.class_of's key, made once).
        bounded = plan.local or plan.duration or plan.kwh or plan.power or plan.current
        return _View(
            tariff, plan, id(tariff), tariff.id, tariff.kwh_marks,
            # Where the charging session reaches each min/max_duration.
            [self.charging_origin + d for d in tariff.durations],
            None if bounded else (CHARGING, self.expired, None, 0, 0, 0, 0))

    def _usual(self, p: _Period, view: _View) -> bool:
        """Price a usual period as one charging piece (choice.class_of and _add, inline:
        the same arithmetic and sums), or False when it crosses a cut (the general way)."""
        tariff, plan, tariff_key, tariff_id, kwh_marks, duration_marks, one_class = view
        a, b, volume, energy = p.start, p.end, p.charging, p.energy
        if not (volume > 0 or energy > 0):
            volume = energy = _ZERO
        cumulative = self.cumulative
        # The piece's middle in time, when the choice reads it (the same arithmetic).
        at: Decimal | None = None
        answers = None  # the same tests as _cut's, without working out where cuts fall
        if plan.local:
            at = a + (b - a) * _HALF
            cached = self._cuts.get(tariff_key)  # _local_cuts, inline
            cuts = cached[2] if cached is not None and cached[0] <= a \
                and b <= cached[1] else self._local_cuts(tariff, a, b)
            i = bisect_right(cuts, a)
            if b > a and i < len(cuts) and cuts[i] < b:
                return False
            # No cut inside: the middle is in the stretch that holds the start.
            answers = self._local_answers(plan, tariff, cuts, i, at)
        if b > a:
            for mark in duration_marks:
                if a < mark < b:
                    return False
        if energy > 0 and kwh_marks:
            top = cumulative + energy
            for k in kwh_marks:
                if cumulative < k < top:
                    return False
        kwh: Decimal | None = None
        if one_class is not None:
            key = one_class
        else:
            key, at, kwh = self._bounded_class(p, plan, at, cumulative, energy, answers)
        seconds, kwh_used = volume - _ZERO, energy - _ZERO
        chosen = plan.memo.get(key) or _NOTHING_CHOSEN
        base, lines = self.charging_origin, self.lines
        if kwh_used > 0:
            known = chosen.get("ENERGY")
            component = known[0] if known is not None and not known[1] else choose(
                plan, tariff, "ENERGY", key, self._context(
                    p, CHARGING, tariff, a + (b - a) * _HALF if at is None else at,
                    cumulative + energy * _HALF if kwh is None else kwh, base))
            if component is None:
                self._unpriced("ENERGY", kwh_used)
            else:
                price = kwh_used * component.price
                self.excl_direct["ENERGY"] += price
                self.incl_direct["ENERGY"] += price * component.factor
                self.volume["ENERGY"] += kwh_used
                self.step_last["ENERGY"] = (tariff_key, component.element, "ENERGY", "ENERGY")
                step = self.step_volume
                step[_ENERGY_KEY] = step.get(_ENERGY_KEY, _ZERO) + kwh_used
                self.line_count += 1
                if lines is not None:
                    self._usual_line(lines, p, "ENERGY", component, tariff_id, kwh_used)
        if seconds > 0:
            known = chosen.get("TIME")
            component = known[0] if known is not None and not known[1] else choose(
                plan, tariff, "TIME", key, self._context(
                    p, CHARGING, tariff, a + (b - a) * _HALF if at is None else at,
                    cumulative + energy * _HALF if kwh is None else kwh, base))
            if component is None:
                self._unpriced("TIME", seconds)
            else:
                price = seconds * component.price
                self.excl_time["TIME"] += price
                self.incl_time["TIME"] += price * component.factor
                self.volume["TIME"] += seconds / _HOUR
                self.step_last["TIME"] = (tariff_key, component.element, "TIME", "TIME")
                step = self.step_volume
                step[_TIME_KEY] = step.get(_TIME_KEY, _ZERO) + seconds
                self.line_count += 1
                if lines is not None:
                    self._usual_line(lines, p, "TIME", component, tariff_id, seconds)
        if CHARGING not in self.flat_done:
            self._flat(p, CHARGING, a, cumulative + _ZERO, tariff, plan, CHARGING, base)
        self.cumulative = cumulative + energy
        return True

    def _bounded_class(self, p: _Period, plan: _Plan, at: Decimal | None,
                       cumulative: Decimal, energy: Decimal, answers: Any) -> tuple[
                           tuple[object, ...], Decimal | None, Decimal | None]:
        """choice.class_of's key for a charging piece of a tariff whose choice reads a
        bound, with the middle in time and energy it read."""
        kwh: Decimal | None = None
        at_kwh = 0
        if plan.kwh:
            kwh = cumulative + energy * _HALF
            at_kwh = bisect_right(plan.kwh, kwh)
        at_duration = 0
        if plan.duration:
            if at is None:
                at = p.start + (p.end - p.start) * _HALF
            duration = at - self.charging_origin
            if duration < _ZERO:
                duration = _ZERO
            at_duration = bisect_right(plan.duration, duration)
        power, current = p.power, p.current
        key = (CHARGING, self.expired, answers, at_duration, at_kwh,
               (-1 if power is None else bisect_right(plan.power, power)) if plan.power
               else 0,
               (-1 if current is None else bisect_right(plan.current, current))
               if plan.current else 0)
        return key, at, kwh

    def _unpriced(self, dimension: str, volume: Decimal) -> None:
        if dimension in self.tariff_dims:
            self.unpriced[dimension] = self.unpriced.get(dimension, _ZERO) + volume

    def _usual_line(self, lines: list[_Line], p: _Period, dimension: str,
                    component: _Component, tariff_id: str, volume: Decimal) -> None:
        self.last_line[dimension] = len(lines)
        lines.append((p.index, CHARGING, p.start, p.end, dimension, dimension, dimension,
                      component, tariff_id, volume))

    def _general(self, p: _Period) -> None:
        """Any period: its spans cut wherever a restriction could change, each piece
        matched."""
        for kind, a, b, volume, energy in _spans(p):
            for piece in self._cut(p, kind, a, b, volume, energy):
                self._match(piece)
            self.cumulative += energy

    def _local_cuts(self, tariff: _Compiled, a: Decimal, b: Decimal) -> list[Decimal]:
        known = self._cuts.get(id(tariff))
        if known is None or not (known[0] <= a and b <= known[1]):
            low, high = a - 1, b + 1 + _CUTS_AHEAD
            known = (low, high, sorted(_local_cuts(self.zone, tariff.times_of_day, low, high)))
            self._cuts[id(tariff)] = known
        return known[2]

    def _cut(self, p: _Period, kind: str, a: Decimal, b: Decimal, volume: Decimal,
             energy: Decimal) -> list[_Piece]:
        """One span cut wherever a restriction could change its answer."""
        tariff = p.tariff
        cumulative = self.cumulative
        fractions: set[Decimal] = set()
        # Most spans cross no cut: nothing is built for them beyond these comparisons.
        if tariff is not None and b > a:
            if tariff.has_local:
                cuts = self._local_cuts(tariff, p.start, p.end)
                low, high = bisect_right(cuts, a), bisect_left(cuts, b)
                if low < high:
                    fractions.update((x - a) / (b - a) for x in cuts[low:high])
            if tariff.durations:
                base = self.origin if kind == RESERVATION else self.charging_origin
                fractions.update((base + d - a) / (b - a) for d in tariff.durations
                                 if a < base + d < b)
        if tariff is not None and energy > 0 and tariff.kwh_marks:
            fractions.update((k - cumulative) / energy for k in tariff.kwh_marks
                             if cumulative < k < cumulative + energy)
        if not fractions:  # the usual piece: the whole span (the same arithmetic as below)
            return [_Piece(period=p, kind=kind, t0=a, t1=b, seconds=volume - _ZERO,
                           energy=energy - _ZERO, kwh_start=cumulative + _ZERO,
                           mid=a + (b - a) * _HALF, kwh_mid=cumulative + energy * _HALF)]
        bounds = [_ZERO, *sorted(f for f in fractions if _ZERO < f < _ONE), _ONE]
        pieces = []
        used_seconds = used_energy = _ZERO
        t_prev = a
        for i in range(len(bounds) - 1):
            fa, fb = bounds[i], bounds[i + 1]
            last = i == len(bounds) - 2
            t1 = b if last else a + (b - a) * fb
            secs = volume - used_seconds if last else volume * (fb - fa)
            kwh = energy - used_energy if last else energy * (fb - fa)
            fm = (fa + fb) / 2
            pieces.append(_Piece(
                period=p, kind=kind, t0=t_prev, t1=t1, seconds=secs, energy=kwh,
                kwh_start=cumulative + used_energy,
                mid=a + (b - a) * fm, kwh_mid=cumulative + energy * fm,
            ))
            used_seconds += secs
            used_energy += kwh
            t_prev = t1
        return pieces

    def _context(self, p: _Period, kind: str, tariff: _Compiled, at: Decimal, kwh: Decimal,
                 origin: Decimal) -> _Context:
        return _Context(local=None, duration=max(at - origin, _ZERO), kwh=kwh,
                        power=p.power, current=p.current, kind=kind, expired=self.expired,
                        unknown=self.unknown, at=at,
                        zone=self.zone if tariff.has_local else None)

    def _local_answers(self, plan: _Plan, tariff: _Compiled, cuts: list[Decimal], i: int,
                       at: Decimal) -> tuple[bool, ...]:
        """The local restrictions' answers in the stretch cuts[i - 1] <= at < cuts[i]."""
        # Keyed by the cuts around it; with no cut in the window, by the window itself.
        stretch = (id(tariff), cuts[i - 1] if i else None, cuts[i] if i < len(cuts) else None,
                   None if cuts else self._cuts[id(tariff)][0])
        answers = self._answers.get(stretch)
        if answers is None:
            answers = self._answers[stretch] = local_answers(plan, self.zone, at)
        return answers

    def _class(self, plan: _Plan, tariff: _Compiled, p: _Period, kind: str, at: Decimal,
               kwh: Decimal, origin: Decimal) -> tuple[object, ...]:
        """The class of the moment `at` (tariffs.choice): what the choice depends on."""
        answers = None
        if plan.local:
            cuts = self._local_cuts(tariff, p.start, p.end)
            answers = self._local_answers(plan, tariff, cuts, bisect_right(cuts, at), at)
        return class_of(plan, kind, self.expired, answers, max(at - origin, _ZERO),
                        kwh, p.power, p.current)

    def _chosen(self, plan: _Plan, tariff: _Compiled, dimension: str, key: tuple[object, ...],
                p: _Period, kind: str, at: Decimal, kwh: Decimal, origin: Decimal
                ) -> _Component | None:
        known = plan.memo.get(key, {}).get(dimension)
        if known is not None and not known[1]:  # the usual: chosen before, nothing noted
            return known[0]
        return choose(plan, tariff, dimension, key,
                      self._context(p, kind, tariff, at, kwh, origin))

    def _match(self, piece: _Piece) -> None:
        self.any_pieces = True
        p = piece.period
        tariff = p.tariff
        kind = piece.kind
        phase = RESERVATION if kind == RESERVATION else CHARGING
        if tariff is None:
            if piece.seconds > 0 or piece.energy > 0:
                self.no_tariff.add(p.index)
            self.flat_done.add(phase)
            return
        base = self.origin if kind == RESERVATION else self.charging_origin
        plan = tariff.plan or plan_of(tariff)
        at, kwh = piece.mid, piece.kwh_mid
        key = self._class(plan, tariff, p, kind, at, kwh, base)
        for dimension, volume, bucket, group in _wanted(piece):
            if volume <= 0:
                continue
            component = self._chosen(plan, tariff, dimension, key, p, kind, at, kwh, base)
            if component is None:
                if dimension in self.tariff_dims:
                    key_ = "RESERVATION_TIME" if kind == RESERVATION else dimension
                    self.unpriced[key_] = self.unpriced.get(key_, _ZERO) + volume
                continue
            self._add((p.index, kind, piece.t0, piece.t1, dimension, bucket, group,
                       component, tariff.id, volume), tariff)
        if phase not in self.flat_done:
            self._flat(p, kind, piece.t0, piece.kwh_start, tariff, plan, phase, base)

    def _flat(self, p: _Period, kind: str, t0: Decimal, kwh_start: Decimal,
              tariff: _Compiled, plan: _Plan, phase: str, base: Decimal) -> None:
        # FLAT is a fee per session (a start fee), so it is looked up once: at the start
        # of the charging session, and once more at the start of a reservation.
        self.flat_done.add(phase)
        start_key = self._class(plan, tariff, p, kind, t0, kwh_start, base)
        component = self._chosen(plan, tariff, "FLAT", start_key, p, kind, t0, kwh_start,
                                 base)
        if component is not None:
            bucket = "RESERVATION" if phase == RESERVATION else "FLAT"
            # A flat fee is charged at a moment: its line starts and ends at t0.
            self._add((p.index, kind, t0, t0, "FLAT", bucket, "FLAT", component,
                       tariff.id, _ONE), tariff)

    def add_amount(self, bucket: str, amount: Decimal, factor: Decimal, *, timed: bool) -> None:
        """A priced volume into the bucket's sums, excluding and including VAT (`factor`).
        Timed amounts (seconds at a price per hour) are summed apart and turned into money
        once, when the run is finished, so no rounding happens on the way."""
        if timed:
            self.excl_time[bucket] += amount
            self.incl_time[bucket] += amount * factor
        else:
            self.excl_direct[bucket] += amount
            self.incl_direct[bucket] += amount * factor

    def _add(self, line: _Line, tariff: _Compiled) -> None:
        _, _, _, _, dimension, bucket, group, comp, _, volume = line
        timed = dimension in _TIMED
        self.add_amount(bucket, volume * comp.price, comp.factor, timed=timed)
        if dimension != "FLAT" or bucket == "FLAT":  # reservation volume: hours
            # What is billed is this until step_size adds its extra (tariffs.session).
            self.volume[bucket] += volume / _HOUR if timed else volume
        if group in _GROUP_DIMENSIONS and volume > 0:
            self.step_last[group] = (id(tariff), comp.element, dimension, bucket)
            key = (group, dimension)
            self.step_volume[key] = self.step_volume.get(key, _ZERO) + volume
            if self.lines is not None:
                self.last_line[group] = len(self.lines)
        self.line_count += 1
        if self.lines is not None:
            self.lines.append(line)

    # --- The run's state, to carry it from one update of a Session to the next ----------

    def state(self) -> dict[str, Any]:
        """Everything the run knows, as JSON-like data (Decimals as exact strings)."""
        (tariff,) = self.tariffs.values()
        return {
            "origin": str(self.origin), "charging_origin": str(self.charging_origin),
            "expired": self.expired, "cumulative": str(self.cumulative),
            "flat_done": sorted(self.flat_done),
            "sums": {name: [str(v) for v in getattr(self, name).values()]
                     for name in _SUM_NAMES},
            "step_last": {g: [element, dim, bucket]
                          for g, (_, element, dim, bucket) in self.step_last.items()},
            "step_volume": [[g, d, str(v)] for (g, d), v in self.step_volume.items()],
            "unknown": sorted(self.unknown),
            "unpriced": [[k, str(v)] for k, v in self.unpriced.items()],
            "no_tariff": sorted(self.no_tariff), "line_count": self.line_count,
            "any_pieces": self.any_pieces,
            "consumed": [str(self.energy), str(self.charging), str(self.parking),
                         str(self.reservation)],
            "period_notes": list(self.period_notes), "fed": self.fed,
            "last_start": None if self.last_start is None else str(self.last_start),
            "tariff": tariff.id,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any], tariff: _Compiled, zone: ZoneInfo) -> _Run:
        run = cls({id(tariff): tariff}, zone, Decimal(state["origin"]),
                  Decimal(state["charging_origin"]), bool(state["expired"]), keep_lines=False)
        run.cumulative = Decimal(state["cumulative"])
        run.flat_done = set(state["flat_done"])
        for name in _SUM_NAMES:
            setattr(run, name, dict(zip(_BUCKETS, map(Decimal, state["sums"][name]),
                                        strict=True)))
        run.step_last = {g: (id(tariff), int(element), dim, bucket)
                         for g, (element, dim, bucket) in state["step_last"].items()}
        run.step_volume = {(g, d): Decimal(v) for g, d, v in state["step_volume"]}
        run.unknown = set(state["unknown"])
        run.unpriced = {k: Decimal(v) for k, v in state["unpriced"]}
        run.no_tariff = set(state["no_tariff"])
        run.line_count = int(state["line_count"])
        run.any_pieces = bool(state["any_pieces"])
        run.energy, run.charging, run.parking, run.reservation = map(Decimal,
                                                                      state["consumed"])
        run.period_notes = list(state["period_notes"])
        run.fed = int(state["fed"])
        run.last_start = None if state["last_start"] is None else Decimal(state["last_start"])
        return run


_HALF = Decimal("0.5")
_NO_SUMS = dict.fromkeys(_BUCKETS, _ZERO)
_ENERGY_KEY, _TIME_KEY = ("ENERGY", "ENERGY"), ("TIME", "TIME")


class _View(NamedTuple):
    """What pricing a usual period reads of its tariff, looked up once (_Run._view)."""

    tariff: _Compiled
    plan: _Plan
    key: int  # the tariff's id(), as step_size's last lines name it
    tariff_id: str
    kwh_marks: Sequence[Decimal]
    duration_marks: list[Decimal]
    one_class: tuple[object, ...] | None
_NOTHING_CHOSEN: dict[str, tuple[_Component | None, frozenset[str]]] = {}
_SUM_NAMES = ("excl_direct", "incl_direct", "excl_time", "incl_time", "volume")


def _wanted(piece: _Piece) -> tuple[tuple[str, Decimal, str, str], ...]:
    """What a piece is priced by: (dimension, volume, bucket, step_size group)."""
    if piece.kind == CHARGING:
        return (("ENERGY", piece.energy, "ENERGY", "ENERGY"),
                ("TIME", piece.seconds, "TIME", "TIME"))
    if piece.kind == PARKING:
        return (("PARKING_TIME", piece.seconds, "PARKING_TIME", "TIME"),)
    # A reservation only has FLAT and TIME (mod_tariffs: reservation).
    return (("TIME", piece.seconds, "RESERVATION", "RESERVATION"),)
