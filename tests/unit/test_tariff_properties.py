"""Properties of the tariff engine over generated tariffs and sessions (hypothesis).

- A bigger session never costs less: more energy in a period, or another period appended.
  This holds for tariffs whose restrictions do not depend on the quantity that grows and
  whose step_size is 1. It does not hold in general, because of the spec itself: more energy
  in the same time is more power, which can select a cheaper power tier; and mod_cdrs rounds
  only the dimension of the last time-based component, so parking appended after charging
  can drop the rounding of the charging time (test_appending_parking_can_lower_the_cost).
- Splitting a period in two (at a moment where the power stays the same) leaves the total
  unchanged, whatever the restrictions and step sizes.
- The total excl. VAT is never above the total incl. VAT.

Sessions are in Europe/Stockholm across the whole of 2024, so DST switches are included.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from tariffs import price_session

STO = "Europe/Stockholm"
D = Decimal
# TARIFF_PROPERTY_EXAMPLES=5000 for a deeper search than the quick default.
SETTINGS = settings(max_examples=int(os.environ.get("TARIFF_PROPERTY_EXAMPLES", "150")),
                    deadline=None, suppress_health_check=[HealthCheck.too_slow])

DIMS = ("ENERGY", "TIME", "PARKING_TIME", "FLAT")
DAYS = ["MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY", "SUNDAY"]

prices = st.integers(min_value=0, max_value=1000).map(lambda n: D(n) / 100)
vats = st.sampled_from([None, D(0), D(6), D("12.5"), D(25)])
clock = st.builds(lambda h, m: f"{h:02d}:{m:02d}", st.integers(0, 23), st.sampled_from([0, 30]))


@st.composite
def restrictions(draw: st.DrawFn, *, session_bound: bool) -> dict[str, Any]:
    """Clock restrictions always; kWh, power and current ones when session_bound."""
    out: dict[str, Any] = {}
    if draw(st.booleans()):
        out["start_time"] = draw(clock)
    if draw(st.booleans()):
        out["end_time"] = draw(clock)
    if draw(st.booleans()):
        out["day_of_week"] = draw(st.lists(st.sampled_from(DAYS), min_size=1, unique=True))
    if draw(st.booleans()):
        out["min_duration"] = draw(st.integers(0, 4 * 3600))
    if draw(st.booleans()):
        out["max_duration"] = draw(st.integers(60, 6 * 3600))
    if draw(st.booleans()):
        month = draw(st.integers(1, 12))
        out["start_date" if draw(st.booleans()) else "end_date"] = f"2024-{month:02d}-15"
    if session_bound:
        if draw(st.booleans()):
            out["min_kwh"] = D(draw(st.integers(0, 40)))
        if draw(st.booleans()):
            out["max_kwh"] = D(draw(st.integers(1, 60)))
        if draw(st.booleans()):
            out["min_power"] = D(draw(st.integers(0, 50)))
        if draw(st.booleans()):
            out["max_power"] = D(draw(st.integers(1, 100)))
        if draw(st.booleans()):
            out["max_current"] = D(draw(st.integers(1, 100)))
    return out


@st.composite
def tariffs(draw: st.DrawFn, *, session_bound: bool = True, steps: bool = True
            ) -> dict[str, Any]:
    elements = []
    for _ in range(draw(st.integers(1, 5))):
        kinds = draw(st.lists(st.sampled_from(DIMS), min_size=1, max_size=4, unique=True))
        components = []
        for kind in kinds:
            step = 1
            if steps and kind != "FLAT":
                step = draw(st.sampled_from([1, 60, 300, 900] if kind != "ENERGY"
                                            else [1, 100, 500]))
            component: dict[str, Any] = {"type": kind, "price": draw(prices), "step_size": step}
            vat = draw(vats)
            if vat is not None:
                component["vat"] = vat
            components.append(component)
        element: dict[str, Any] = {"price_components": components}
        if draw(st.booleans()):
            element["restrictions"] = draw(restrictions(session_bound=session_bound))
        elements.append(element)
    out: dict[str, Any] = {"country_code": "SE", "party_id": "SCA", "id": "P",
                           "currency": "SEK", "elements": elements,
                           "last_updated": "2024-01-01T00:00:00Z"}
    for key in ("min_price", "max_price"):
        if draw(st.integers(0, 3)) == 0:
            excl = draw(prices) * 10
            incl = excl + draw(prices) if draw(st.booleans()) else None
            out[key] = {"excl_vat": excl} | ({"incl_vat": incl} if incl is not None else {})
    return out


# A session: (seconds, watt-hours) per period; 0 Wh is a parking period.
segments = st.lists(
    st.tuples(st.integers(0, 3 * 3600),
              st.one_of(st.just(0), st.integers(1, 50_000))),
    min_size=1, max_size=4)
starts = st.datetimes(min_value=datetime(2024, 1, 1), max_value=datetime(2024, 12, 31)
                      ).map(lambda d: d.replace(microsecond=0, tzinfo=UTC))


def build(start: datetime, segs: list[tuple[int, int]]) -> tuple[list[dict[str, Any]], datetime]:
    periods = []
    at = start
    for seconds, wh in segs:
        periods.append({"start_date_time": at.isoformat(),
                        "dimensions": [{"type": "ENERGY", "volume": D(wh) / 1000}]})
        at += timedelta(seconds=seconds)
    return periods, at


def total(tariff: dict[str, Any], start: datetime, segs: list[tuple[int, int]]) -> Any:
    periods, end = build(start, segs)
    return price_session(tariff, periods, time_zone=STO, session_end=end).total


@SETTINGS
@given(tariffs(session_bound=False, steps=False), starts, segments, st.data())
def test_more_energy_never_costs_less(tariff: dict[str, Any], start: datetime,
                                      segs: list[tuple[int, int]], data: st.DataObject) -> None:
    # Energy added to a charging period (0 Wh would make it parking: another kind of time).
    charging = [i for i, (_, wh) in enumerate(segs) if wh > 0]
    assume(charging)
    index = data.draw(st.sampled_from(charging))
    extra = data.draw(st.integers(1, 20_000))
    seconds, wh = segs[index]
    grown = [*segs[:index], (seconds, wh + extra), *segs[index + 1:]]
    before, after = total(tariff, start, segs), total(tariff, start, grown)
    assert after.excl_vat >= before.excl_vat
    assert after.incl_vat >= before.incl_vat


@SETTINGS
@given(tariffs(session_bound=False, steps=False), starts, segments,
       st.tuples(st.integers(1, 3 * 3600), st.one_of(st.just(0), st.integers(1, 50_000))))
def test_more_time_never_costs_less(tariff: dict[str, Any], start: datetime,
                                    segs: list[tuple[int, int]], more: tuple[int, int]) -> None:
    before, after = total(tariff, start, segs), total(tariff, start, [*segs, more])
    assert after.excl_vat >= before.excl_vat
    assert after.incl_vat >= before.incl_vat


@SETTINGS
@given(tariffs(), starts, segments, st.data())
def test_splitting_a_period_leaves_the_total_unchanged(
        tariff: dict[str, Any], start: datetime, segs: list[tuple[int, int]],
        data: st.DataObject) -> None:
    # Whole minutes at a whole number of Wh per minute, so both halves keep the same power.
    index = data.draw(st.integers(0, len(segs) - 1))
    minutes = data.draw(st.integers(2, 240))
    per_minute = data.draw(st.one_of(st.just(0), st.integers(1, 1000)))
    cut = data.draw(st.integers(1, minutes - 1))
    whole = [*segs[:index], (minutes * 60, minutes * per_minute), *segs[index + 1:]]
    split = [*segs[:index], (cut * 60, cut * per_minute),
             ((minutes - cut) * 60, (minutes - cut) * per_minute), *segs[index + 1:]]
    assert total(tariff, start, whole) == total(tariff, start, split)


@SETTINGS
@given(tariffs(), starts, segments)
def test_excl_vat_never_above_incl_vat(tariff: dict[str, Any], start: datetime,
                                       segs: list[tuple[int, int]]) -> None:
    periods, end = build(start, segs)
    b = price_session(tariff, periods, time_zone=STO, session_end=end)
    assert b.total.excl_vat <= b.total.incl_vat
    for dim in b.dimensions.values():
        assert dim.cost.excl_vat <= dim.cost.incl_vat


def test_appending_parking_can_lower_the_cost() -> None:
    # The spec's step_size rule, not an engine bug: charging 31 min per 30 min at 1.20/h is
    # billed 60 min (1.20); once 1 min of free parking follows, parking is the last
    # time-based component, the charging time is not rounded: 31/60 x 1.20 = 0.62.
    tariff = {"country_code": "SE", "party_id": "SCA", "id": "S", "currency": "EUR",
              "last_updated": "2024-01-01T00:00:00Z",
              "elements": [{"price_components": [
                  {"type": "TIME", "price": D("1.20"), "step_size": 1800},
                  {"type": "PARKING_TIME", "price": D(0), "step_size": 1}]}]}
    start = datetime(2024, 6, 3, 10, 0, tzinfo=UTC)
    assert total(tariff, start, [(31 * 60, 5000)]).excl_vat == D("1.20")
    assert total(tariff, start, [(31 * 60, 5000), (60, 0)]).excl_vat == D("0.62")
