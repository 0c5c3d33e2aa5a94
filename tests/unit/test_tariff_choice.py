"""The element remembered per class of moments (tariffs.choice) is the one `_choose` picks
for that very moment, with the same unknown power or current noted, whatever moment of the
class met it first. The reference workload (test_tariff_reference) checks whole sessions;
this checks the choice itself on moments no session there reaches, such as a value exactly
on a bound."""

from __future__ import annotations

import functools
import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tariffs.choice import choose as remembered
from tariffs.choice import class_of, local_answers, plan_of
from tariffs.clock import _local_cuts, _secs
from tariffs.decimals import _CTX
from tariffs.model import CHARGING, PARKING, RESERVATION, _compile
from tariffs.restrictions import _choose, _Context
from tests.tariff_reference import TARIFFS

D = Decimal
KINDS = (CHARGING, PARKING, RESERVATION)


def _near(rng: random.Random, bounds: tuple[Decimal, ...]) -> Decimal:
    """A value on, just under or just over one of the bounds, or anywhere."""
    if bounds and rng.random() < 0.7:
        return rng.choice(bounds) + rng.choice([D(0), D("-0.001"), D("0.001")])
    return D(rng.randint(0, 200000)) / 1000


@pytest.mark.parametrize(("tariff", "zone_name"), TARIFFS, ids=[t["id"] for t, _ in TARIFFS])
def test_a_remembered_choice_is_the_engines_choice(tariff: dict[str, Any],
                                                   zone_name: str) -> None:
    from decimal import localcontext

    rng = random.Random(tariff["id"])
    zone = ZoneInfo(zone_name)
    with localcontext(_CTX):
        compiled = _compile(tariff)
        compiled.plan = None  # a fresh memo: the first moment of each class fills it
        plan = plan_of(compiled)
        for _ in range(3000):
            at = _secs(datetime(2024, 1, 1, tzinfo=UTC)
                       + timedelta(seconds=rng.randint(0, 366 * 86400)))
            if rng.random() < 0.3 and compiled.has_local:  # exactly on a local cut
                cuts = _local_cuts(zone, compiled.times_of_day, at - 86400, at + 86400)
                at = rng.choice(cuts) if cuts else at
            kind, expired = rng.choice(KINDS), rng.random() < 0.5
            duration, kwh = _near(rng, plan.duration), _near(rng, plan.kwh)
            power = None if rng.random() < 0.2 else _near(rng, plan.power)
            current = None if rng.random() < 0.2 else _near(rng, plan.current)
            answers = local_answers(plan, zone, at) if plan.local else None
            key = class_of(plan, kind, expired, answers, duration, kwh, power, current)
            moment = functools.partial(_Context, local=None, duration=duration, kwh=kwh,
                                       power=power, current=current, kind=kind,
                                       expired=expired, at=at, zone=zone)
            for dimension in ("ENERGY", "TIME", "PARKING_TIME", "FLAT"):
                want_noted: set[str] = set()
                want = _choose(compiled, dimension, moment(unknown=want_noted), {})
                got_noted: set[str] = set()
                got = remembered(plan, compiled, dimension, key, moment(unknown=got_noted))
                assert (got, got_noted) == (want, want_noted), (dimension, kind, at)
        assert plan.memo, "nothing was remembered"


@pytest.mark.parametrize(("tariff", "zone_name"),
                         [(t, z) for t, z in TARIFFS if t["id"] in ("complex", "day-night",
                                                                    "weekend")],
                         ids=["complex", "day-night", "weekend"])
def test_local_answers_hold_from_one_cut_to_the_next(tariff: dict[str, Any],
                                                     zone_name: str) -> None:
    """What tariffs.running keys the local answers by: a stretch between two cuts answers
    as any moment in it, from the cut itself to the last microsecond before the next."""
    from decimal import localcontext

    rng = random.Random(zone_name)
    zone = ZoneInfo(zone_name)
    with localcontext(_CTX):
        compiled = _compile(tariff)
        plan = plan_of(compiled)
        cuts = sorted(_local_cuts(zone, compiled.times_of_day,
                                  _secs(datetime(2024, 1, 1, tzinfo=UTC)),
                                  _secs(datetime(2025, 1, 1, tzinfo=UTC))))
        for i in rng.sample(range(len(cuts) - 1), 400):
            low, high = cuts[i], cuts[i + 1]
            inside = low + (high - low) * D(rng.randint(0, 999_999)) / 1_000_000
            expected = local_answers(plan, zone, low)
            for at in (inside, high - D("0.000001")):
                assert local_answers(plan, zone, at) == expected, (low, at)
