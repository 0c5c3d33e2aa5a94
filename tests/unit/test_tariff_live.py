"""The live cost priced on from the last update (tariffs.price_live) is the full price of
every period so far (price_session), whatever the updates that brought the periods: a
property over the 330 reference sessions (tests/tariff_reference.py) split at random
into updates, the carried state passed through JSON between them as it is stored."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tariffs import price_live, price_session
from tariffs.live import fed
from tests.fuzz_profiles import examples
from tests.tariff_reference import Case, cases

CASES = cases()
SETTINGS = settings(max_examples=examples(600), deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


def _end(case: Case, count: int, late: int) -> datetime:
    """The Session's last_updated when it had `count` periods: after the last's start."""
    if count < len(case.periods):
        last = datetime.fromisoformat(case.periods[count - 1]["start_date_time"])
        following = datetime.fromisoformat(case.periods[count]["start_date_time"])
        return min(last + timedelta(seconds=late), following)
    return case.session_end + timedelta(seconds=late)


def _updates(case: Case, counts: list[int], lates: list[int]) -> None:
    state: dict[str, Any] | None = None
    for count, late in zip(counts, lates, strict=True):
        end = _end(case, count, late)
        start = fed(state) if state is not None else 0
        live = price_live(case.tariff, case.periods[start:count], time_zone=case.time_zone,
                          session_start=case.session_start, session_end=end, state=state)
        if live is None:
            # Refused only when a reservation turns out not to have expired (charging came
            # after it): what was priced as expired is priced again, from the start.
            assert case.tariff["id"] == "reservation", (case.name, counts, count)
            live = price_live(case.tariff, case.periods[:count], time_zone=case.time_zone,
                              session_start=case.session_start, session_end=end)
            assert live is not None
        full = price_session(case.tariff, case.periods[:count], time_zone=case.time_zone,
                             session_start=case.session_start, session_end=end)
        assert live.breakdown == replace(full, lines=()), (case.name, counts, count)
        state = json.loads(json.dumps(live.state)) if live.state is not None else None


@st.composite
def splits(draw: st.DrawFn) -> tuple[Case, list[int], list[int]]:
    case = draw(st.sampled_from([c for c in CASES if c.periods]))
    n = len(case.periods)
    cuts = draw(st.lists(st.integers(1, n), max_size=6, unique=True))
    counts = sorted({*cuts, n})
    lates = draw(st.lists(st.integers(0, 3600), min_size=len(counts), max_size=len(counts)))
    return case, counts, lates


@SETTINGS
@given(splits())
def test_the_live_cost_priced_on_equals_the_whole_session_priced_again(
        split: tuple[Case, list[int], list[int]]) -> None:
    _updates(*split)


def test_reference_sessions_one_period_per_update() -> None:
    # The live cost's usual life: each update brings one more period (every third
    # reference session, which covers each tariff ten times).
    for case in CASES[::3]:
        if case.periods:
            _updates(case, list(range(1, len(case.periods) + 1)), [60] * len(case.periods))


def test_a_state_from_another_tariff_version_is_refused() -> None:
    case = next(c for c in CASES if len(c.periods) > 3)
    first = price_live(case.tariff, case.periods[:2], time_zone=case.time_zone,
                       session_start=case.session_start, session_end=case.session_end)
    assert first is not None and first.state is not None
    changed = {**case.tariff, "last_updated": "2024-02-01T00:00:00Z"}
    assert price_live(changed, case.periods[fed(first.state):], time_zone=case.time_zone,
                      session_start=case.session_start, session_end=case.session_end,
                      state=first.state) is None
    assert price_live(case.tariff, case.periods[fed(first.state):], time_zone="UTC",
                      session_start=case.session_start, session_end=case.session_end,
                      state=first.state) is None


def test_a_period_before_the_ones_already_priced_is_refused() -> None:
    case = next(c for c in CASES if len(c.periods) > 3)
    first = price_live(case.tariff, case.periods[:3], time_zone=case.time_zone,
                       session_start=case.session_start, session_end=case.session_end)
    assert first is not None and first.state is not None
    earlier = {**case.periods[2], "start_date_time": case.periods[0]["start_date_time"]}
    assert price_live(case.tariff, [earlier, case.periods[3]], time_zone=case.time_zone,
                      session_start=case.session_start, session_end=case.session_end,
                      state=first.state) is None


def test_a_damaged_state_is_refused_not_trusted() -> None:
    case = next(c for c in CASES if len(c.periods) > 3)
    first = price_live(case.tariff, case.periods[:3], time_zone=case.time_zone,
                       session_start=case.session_start, session_end=case.session_end)
    assert first is not None and first.state is not None
    damaged = json.loads(json.dumps(first.state))
    damaged["run"]["cumulative"] = "not a number"
    missing = json.loads(json.dumps(first.state))
    del missing["summary"]
    for state in (damaged, missing, {"v": 1}):
        assert price_live(case.tariff, case.periods[2:], time_zone=case.time_zone,
                          session_start=case.session_start, session_end=case.session_end,
                          state=state) is None
