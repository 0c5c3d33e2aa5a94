"""The tariff engine, restriction by restriction and edge by edge, with exact Decimals.

Sessions are in Europe/Stockholm unless a test says otherwise; amounts are SEK.
"""

from __future__ import annotations

import json
import os
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from flask import Flask

from tariffs import (
    Money2,
    Tariff,
    TariffError,
    convert_211,
    describe,
    hold_for,
    price_cdr,
    price_plan,
    price_session,
    round_money,
)
from tariffs.cli import register

STO = "Europe/Stockholm"
D = Decimal
SPEC = Path(os.environ.get("OCPI_SPEC_DIR", Path(__file__).resolve().parents[3] / "shared"
                           / "ocpi-spec"))


# --- Builders ---------------------------------------------------------------------------


def tariff(*elements: dict[str, Any], currency: str = "SEK", **extra: Any) -> dict[str, Any]:
    return {"country_code": "SE", "party_id": "SCA", "id": "T1", "currency": currency,
            "elements": list(elements), "last_updated": "2024-01-01T00:00:00Z", **extra}


def el(*components: dict[str, Any], **restrictions: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"price_components": list(components)}
    if restrictions:
        out["restrictions"] = restrictions
    return out


def pc(kind: str, price: str, vat: str | None = None, step: int = 1) -> dict[str, Any]:
    out: dict[str, Any] = {"type": kind, "price": D(price), "step_size": step}
    if vat is not None:
        out["vat"] = D(vat)
    return out


def energy(price: str, vat: str | None = None, step: int = 1) -> dict[str, Any]:
    return pc("ENERGY", price, vat, step)


def time_(price: str, vat: str | None = None, step: int = 1) -> dict[str, Any]:
    return pc("TIME", price, vat, step)


def parking(price: str, vat: str | None = None, step: int = 1) -> dict[str, Any]:
    return pc("PARKING_TIME", price, vat, step)


def flat(price: str, vat: str | None = None) -> dict[str, Any]:
    return pc("FLAT", price, vat, 0)


def local(text: str, zone: str = STO) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(zone))


def period(start: datetime, **dims: Any) -> dict[str, Any]:
    return {"start_date_time": start.isoformat(),
            "dimensions": [{"type": k, "volume": D(str(v))} for k, v in dims.items()]}


def money(excl: str, incl: str | None = None) -> Money2:
    return Money2(D(excl), D(incl if incl is not None else excl))


def priced(t: dict[str, Any], periods: list[dict[str, Any]], end: datetime,
           zone: str = STO, **kw: Any) -> Any:
    return price_session(t, periods, time_zone=zone, session_end=end, **kw)


# --- Element choice ---------------------------------------------------------------------


def test_a_later_element_supplies_a_dimension_the_first_match_lacks() -> None:
    # mod_tariffs: the first element *with a component for that dimension* whose
    # restrictions hold. 17:00-18:00, 10 kWh: ENERGY from element 0 (2.00), TIME from
    # element 1 (60/h): 10 x 2.00 + 1 h x 60 = 80.00. "First matching element wins" would
    # give 20.00.
    t = tariff(el(energy("2.00"), start_time="17:00", end_time="20:00"),
               el(energy("1.00"), time_("60")))
    start = local("2024-06-03 17:00")
    b = priced(t, [period(start, ENERGY=10)], start + timedelta(hours=1))
    assert b.total == money("80.00")
    assert b.energy.cost == money("20.00")
    assert b.time.cost == money("60.00")


def test_two_components_of_one_dimension_in_an_element_use_the_first() -> None:
    t = tariff(el(energy("1.00"), energy("9.00")))
    start = local("2024-06-03 10:00")
    b = priced(t, [period(start, ENERGY=2)], start + timedelta(hours=1))
    assert b.total == money("2.00")
    assert any("two ENERGY components" in n for n in b.notes)


# --- Restrictions: local time -----------------------------------------------------------


def test_time_window_splits_a_period_and_its_energy_in_proportion_to_time() -> None:
    # 16:00-18:00, 10 kWh in one period: 5 kWh before 17:00 at 1.00, 5 kWh after at 2.00.
    t = tariff(el(energy("2.00"), start_time="17:00", end_time="20:00"), el(energy("1.00")))
    start = local("2024-06-03 16:00")
    b = priced(t, [period(start, ENERGY=10)], start + timedelta(hours=2))
    assert b.total == money("15.00")
    assert [(ln.price, ln.volume) for ln in b.lines] == [(D("1.00"), D(5)), (D("2.00"), D(5))]


def test_time_window_crossing_midnight() -> None:
    # Night rate 22:00-06:00 (end < start wraps to the next day). 21:00-01:00, 8 kWh evenly:
    # 21-22 2 kWh x 3.00 = 6.00; 22-01 6 kWh x 1.00 = 6.00; total 12.00.
    t = tariff(el(energy("1.00"), start_time="22:00", end_time="06:00"), el(energy("3.00")))
    start = local("2024-06-03 21:00")
    b = priced(t, [period(start, ENERGY=8)], start + timedelta(hours=4))
    assert b.total == money("12.00")
    # And the morning end: 05:00-07:00, 4 kWh: 2 x 1.00 + 2 x 3.00 = 8.00.
    start = local("2024-06-04 05:00")
    b = priced(t, [period(start, ENERGY=4)], start + timedelta(hours=2))
    assert b.total == money("8.00")


def test_end_time_midnight_means_until_the_end_of_the_day() -> None:
    # 20:00-00:00 at 120/h, else 60/h. 23:00-01:00: 1 h x 120 + 1 h x 60 = 180.
    t = tariff(el(time_("120"), start_time="20:00", end_time="00:00"), el(time_("60")))
    start = local("2024-06-03 23:00")
    b = priced(t, [period(start, TIME=2)], start + timedelta(hours=2))
    assert b.total == money("180.00")


def test_only_start_time_or_only_end_time() -> None:
    t = tariff(el(time_("120"), start_time="18:00"), el(time_("60")))
    start = local("2024-06-03 17:30")
    # 17:30-18:00 x 60/h = 30; 18:00-19:00 x 120/h = 120.
    assert priced(t, [period(start, TIME="1.5")], start + timedelta(minutes=90)
                  ).total == money("150.00")
    t = tariff(el(time_("120"), end_time="08:00"), el(time_("60")))
    start = local("2024-06-03 07:30")
    # 07:30-08:00 x 120/h = 60; 08:00-08:30 x 60/h = 30.
    assert priced(t, [period(start, TIME=1)], start + timedelta(hours=1)
                  ).total == money("90.00")


def test_start_date_inclusive_end_date_exclusive() -> None:
    # Campaign 2024-06-10 up to (not incl.) 2024-06-12 at 0.50; else 2.00. Session
    # 2024-06-11 23:00 - 06-12 01:00, 4 kWh: 2 x 0.50 + 2 x 2.00 = 5.00.
    t = tariff(el(energy("0.50"), start_date="2024-06-10", end_date="2024-06-12"),
               el(energy("2.00")))
    start = local("2024-06-11 23:00")
    assert priced(t, [period(start, ENERGY=4)], start + timedelta(hours=2)
                  ).total == money("5.00")
    # 2024-06-09 23:00 - 06-10 01:00: 2 x 2.00 + 2 x 0.50 = 5.00, the other way round.
    start = local("2024-06-09 23:00")
    b = priced(t, [period(start, ENERGY=4)], start + timedelta(hours=2))
    assert [ln.price for ln in b.lines] == [D("2.00"), D("0.50")]


def test_day_of_week_is_the_local_day() -> None:
    # Weekend rate 1.00, else 2.00. Sunday 23:30 - Monday 00:30 in Stockholm (UTC+2): in UTC
    # both halves are still Sunday, locally the second half is Monday: 1 x 1.00 + 1 x 2.00.
    t = tariff(el(energy("1.00"), day_of_week=["SATURDAY", "SUNDAY"]), el(energy("2.00")))
    start = local("2024-06-09 23:30")
    assert start.weekday() == 6
    periods = [period(start, ENERGY=2)]
    assert priced(t, periods, start + timedelta(hours=1)).total == money("3.00")
    # Read in UTC (the wrong zone for this Location) the whole hour would be Sunday.
    assert priced(t, periods, start + timedelta(hours=1), zone="UTC").total == money("2.00")


# --- Restrictions: the session ----------------------------------------------------------


def test_max_kwh_counts_the_sessions_energy_so_far_across_periods() -> None:
    # First 10 kWh of a session at 3.00, the rest at 2.00. Two periods of 6 kWh:
    # 6 x 3.00 + (4 x 3.00 + 2 x 2.00) = 18 + 16 = 34.00.
    t = tariff(el(energy("3.00"), max_kwh=10), el(energy("2.00")))
    start = local("2024-06-03 10:00")
    periods = [period(start, ENERGY=6), period(start + timedelta(hours=1), ENERGY=6)]
    b = priced(t, periods, start + timedelta(hours=2))
    assert b.total == money("34.00")
    assert [(ln.price, ln.volume) for ln in b.lines] == [
        (D("3.00"), D(6)), (D("3.00"), D(4)), (D("2.00"), D(2))]


def test_min_kwh_makes_a_time_fee_start_once_the_energy_is_in() -> None:
    # A time fee of 60/h once 20 kWh are in. 1 h charging 30 kWh evenly: 20 kWh are in
    # after 40 min, so 20 min are billed: 20/60 x 60 = 20.00.
    t = tariff(el(time_("60"), min_kwh=20), el(energy("0")))
    start = local("2024-06-03 10:00")
    b = priced(t, [period(start, ENERGY=30)], start + timedelta(hours=1))
    assert b.total == money("20.00")
    assert b.time.volume == D("0.333333")


def test_current_restrictions_use_the_periods_current() -> None:
    # Below 32 A: 60/h; from 32 A: 120/h (min_current inclusive, max_current exclusive).
    t = tariff(el(time_("60"), max_current=32), el(time_("120"), min_current=32))
    start = local("2024-06-03 10:00")
    end = start + timedelta(hours=1)
    assert priced(t, [period(start, TIME=1, CURRENT=16)], end).total == money("60.00")
    assert priced(t, [period(start, TIME=1, CURRENT=32)], end).total == money("120.00")
    # Only min and max given: their midpoint (36 + 40) / 2 = 38 A.
    assert priced(t, [period(start, TIME=1, MIN_CURRENT=36, MAX_CURRENT=40)], end
                  ).total == money("120.00")
    # No current at all: neither element can be shown to hold; time is free, and said so.
    b = priced(t, [period(start, TIME=1)], end)
    assert b.total == money("0.00")
    assert any("current could not be checked" in n for n in b.notes)
    assert any(u.startswith("TIME: 1.000000 h") for u in b.unpriced)


def test_power_restrictions_use_power_given_or_derived() -> None:
    # Below 16 kW 1.00/kWh, 16 kW and above 2.00/kWh.
    t = tariff(el(energy("1.00"), max_power=16), el(energy("2.00"), min_power=16))
    start = local("2024-06-03 10:00")
    # 8 kWh in 30 min charging = 16 kW exactly -> the second element: 16.00.
    b = priced(t, [period(start, ENERGY=8)], start + timedelta(minutes=30))
    assert b.total == money("16.00")
    # POWER given wins over the derived average.
    b = priced(t, [period(start, ENERGY=8, POWER=11)], start + timedelta(minutes=30))
    assert b.total == money("8.00")
    # Average over charging time only, not over the parking that follows in the period:
    # 7 kWh over 0.5 h charging = 14 kW though the period lasts an hour.
    b = priced(t, [period(start, ENERGY=7, TIME="0.5", PARKING_TIME="0.5")],
               start + timedelta(hours=1))
    assert b.total == money("7.00")


def test_min_duration_counts_from_the_session_start() -> None:
    # "0.50/min after 60 min": TIME 30/h from 3600 s. 90 min: 30 min billed = 15.00.
    t = tariff(el(time_("30"), min_duration=3600), el(energy("0")))
    start = local("2024-06-03 10:00")
    b = priced(t, [period(start, TIME="1.5")], start + timedelta(minutes=90))
    assert b.total == money("15.00")
    # When the session started 30 min before its first period, 60 min are past the mark.
    b = priced(t, [period(start, TIME="1.5")], start + timedelta(minutes=90),
               session_start=start - timedelta(minutes=30))
    assert b.total == money("30.00")


def test_max_duration_is_exclusive() -> None:
    # Free for the first 30 min, then 1.00/kWh; 1 h at constant power, 4 kWh -> 2 kWh billed.
    t = tariff(el(energy("0"), max_duration=1800), el(energy("1.00")))
    start = local("2024-06-03 10:00")
    b = priced(t, [period(start, ENERGY=4)], start + timedelta(hours=1))
    assert b.total == money("2.00")
    # A period starting exactly at 30 min is already past the free part.
    periods = [period(start, ENERGY=0, TIME="0.5"),
               period(start + timedelta(minutes=30), ENERGY=1)]
    assert priced(t, periods, start + timedelta(minutes=40)).total == money("1.00")


def test_reservation_elements_price_only_reservation_time() -> None:
    t = tariff(el(flat("10"), time_("60", step=60), reservation="RESERVATION"),
               el(flat("20"), reservation="RESERVATION_EXPIRES"),
               el(flat("5"), energy("2.00")))
    start = local("2024-06-03 10:00")
    used = [period(start, RESERVATION_TIME="0.25"),
            period(start + timedelta(minutes=15), ENERGY=10)]
    end = start + timedelta(hours=1)
    # Used: 10 (reservation fee) + 15 min x 60/h = 15 (reservation), 5 + 10 x 2.00 = 25.
    b = priced(t, used, end)
    assert b.reservation.cost == money("25.00")
    assert b.total == money("50.00")
    # Expired: RESERVATION_EXPIRES' fee (20), though listed after the RESERVATION element
    # (mod_tariffs: the expiry element prices an expired reservation), and the RESERVATION
    # time price for the time (15): 35.
    b = priced(t, [period(start, RESERVATION_TIME="0.25")], start + timedelta(minutes=15))
    assert b.total == money("35.00")
    # Told explicitly that it did not expire: the ordinary reservation fee.
    b = priced(t, [period(start, RESERVATION_TIME="0.25")], start + timedelta(minutes=15),
               reservation_expired=False)
    assert b.total == money("25.00")


# --- Daylight saving --------------------------------------------------------------------


def test_dst_spring_forward_time_is_real_elapsed_time() -> None:
    # Stockholm 2024-03-31: 02:00 CET becomes 03:00 CEST. 00:30 -> 04:30 on the wall is
    # 3 h of real time: 3 x 60 = 180, not 240.
    t = tariff(el(time_("60")))
    start = local("2024-03-31 00:30")
    end = local("2024-03-31 04:30")
    assert end.astimezone(UTC) - start.astimezone(UTC) == timedelta(hours=3)
    assert priced(t, [period(start, ENERGY=1)], end).total == money("180.00")
    # With a 03:00-06:00 rate of 120/h: 00:30-02:00 CET 1.5 h x 60 = 90; 03:00-04:30 CEST
    # 1.5 h x 120 = 180; total 270.
    t = tariff(el(time_("120"), start_time="03:00", end_time="06:00"), el(time_("60")))
    assert priced(t, [period(start, ENERGY=1)], end).total == money("270.00")


def test_dst_boundary_inside_the_skipped_hour_takes_effect_at_the_switch() -> None:
    # From 02:30 at 120/h; 02:30 does not exist on 2024-03-31. 01:00 -> 04:00 (2 h real):
    # 01:00-02:00 CET at 60 = 60; from the switch (03:00 CEST, past 02:30) at 120 = 120.
    t = tariff(el(time_("120"), start_time="02:30"), el(time_("60")))
    start = local("2024-03-31 01:00")
    b = priced(t, [period(start, ENERGY=1)], local("2024-03-31 04:00"))
    assert b.total == money("180.00")
    assert [(ln.start, ln.price) for ln in b.lines] == [
        (datetime(2024, 3, 31, 0, 0, tzinfo=UTC), D(60)),  # 01:00 CET
        (datetime(2024, 3, 31, 1, 0, tzinfo=UTC), D(120)),  # the switch, 03:00 CEST
    ]


def test_dst_fall_back_the_repeated_hour_is_priced_twice() -> None:
    # 2024-10-27: 03:00 CEST becomes 02:00 CET; 02:00-03:00 happens twice. 01:30 CEST
    # (23:30Z) -> 03:30 CET (02:30Z) is 3 h real. 02:00-03:00 at 120/h, else 60/h:
    # 01:30-02:00 (0.5 h x 60) + 02:00-03:00 CEST (1 h x 120) + 02:00-03:00 CET (1 h x 120)
    # + 03:00-03:30 (0.5 h x 60) = 30 + 120 + 120 + 30 = 300.
    t = tariff(el(time_("120"), start_time="02:00", end_time="03:00"), el(time_("60")))
    start = datetime(2024, 10, 26, 23, 30, tzinfo=UTC)
    end = datetime(2024, 10, 27, 2, 30, tzinfo=UTC)
    b = priced(t, [period(start, ENERGY=1)], end)
    assert b.total == money("300.00")
    assert [ln.price for ln in b.lines] == [D(60), D(120), D(120), D(60)]
    assert b.charging_hours == D("3.000000")


# --- step_size (mod_cdrs) ---------------------------------------------------------------


def test_energy_step_size_on_the_session_total() -> None:
    # mod_cdrs: 0.20/kWh before 17:00, 0.27 after, both per 500 Wh. 4.3 kWh before and 1.1
    # after = 5.4 -> 5.5 kWh; the extra 0.1 goes after 17:00 (not 1.1 -> 1.5):
    # 4.3 x 0.20 + 1.2 x 0.27 = 0.86 + 0.324 = 1.184 -> 1.18.
    t = tariff(el(energy("0.20", step=500), end_time="17:00"), el(energy("0.27", step=500)),
               currency="EUR")
    start = local("2024-06-03 16:00")
    periods = [period(start, ENERGY="4.3"), period(local("2024-06-03 17:00"), ENERGY="1.1")]
    b = priced(t, periods, local("2024-06-03 17:30"))
    assert b.energy.billed_volume == D("5.5")
    assert b.total == money("1.18")


def test_time_step_size_on_the_session_total() -> None:
    # mod_cdrs: 5/h before 17:00, 7/h after, both per 10 min. 6 min + 22 min = 28 -> 30 min;
    # 24 min after 17:00 billed: 6/60 x 5 + 24/60 x 7 = 0.50 + 2.80 = 3.30.
    t = tariff(el(time_("5", step=600), end_time="17:00"), el(time_("7", step=600)),
               currency="EUR")
    start = local("2024-06-03 16:54")
    b = priced(t, [period(start, ENERGY=1)], local("2024-06-03 17:22"))
    assert b.total == money("3.30")
    assert b.time.billed_volume == D("0.500000")


def test_parking_step_size_when_charging_is_followed_by_parking() -> None:
    # mod_cdrs: charging 1.00/h, parking 2.00/h, both per 10 min. 21 min charging, 16 min
    # parking -> parking 20 min, charging not rounded: 21/60 x 1 + 20/60 x 2 = 0.35 +
    # 0.6666.. = 1.0166.. -> 1.02.
    t = tariff(el(time_("1.00", step=600), parking("2.00", step=600)), currency="EUR")
    start = local("2024-06-03 10:00")
    periods = [period(start, TIME=D(21) / 60),
               period(start + timedelta(minutes=21), PARKING_TIME=D(16) / 60)]
    b = priced(t, periods, start + timedelta(minutes=37))
    assert b.time.billed_volume == D("0.350000")
    assert b.parking_time.billed_volume == D("0.333333")
    assert b.total == money("1.02")
    # mod_cdrs, 5 min steps: 21 min charging then 7 min connected: 21 and 10 min.
    t = tariff(el(time_("1.00", step=300), parking("2.00", step=300)), currency="EUR")
    periods = [period(start, TIME=D(21) / 60),
               period(start + timedelta(minutes=21), PARKING_TIME=D(7) / 60)]
    b = priced(t, periods, start + timedelta(minutes=28))
    assert (b.time.billed_volume, b.parking_time.billed_volume) == (D("0.350000"),
                                                                     D("0.166667"))


def test_step_size_zero_is_no_rounding_and_flat_ignores_step_size() -> None:
    t = tariff(el(flat("5"), energy("1.00", step=0)))
    start = local("2024-06-03 10:00")
    b = priced(t, [period(start, ENERGY="1.2345")], start + timedelta(hours=1))
    assert b.energy.billed_volume == D("1.2345")
    assert b.total == money("6.23")  # 5 + 1.2345 -> 6.2345 -> 6.23
    assert any("step_size 0" in n for n in b.notes)


# --- min_price / max_price --------------------------------------------------------------


def test_a_price_limit_without_incl_vat_takes_the_tariffs_vat() -> None:
    # min 10.00 excl., no incl. given, 25 % VAT: 2 kWh x 2.00 = 4.00 / 5.00 -> 10.00 / 12.50.
    t = tariff(el(energy("2.00", "25")), min_price={"excl_vat": D(10)})
    start = local("2024-06-03 10:00")
    b = priced(t, [period(start, ENERGY=2)], start + timedelta(hours=1))
    assert (b.total, b.min_price_applied) == (money("10.00", "12.50"), True)
    # A session with nothing consumed: the same.
    b = priced(t, [period(start, ENERGY=0, TIME="0")], start)
    assert b.total == money("10.00", "12.50")
    # Components at 12.5 % and 25 %, max 10.00 excl.: the lowest rate sets the incl. cap,
    # 10 x 1.125 = 11.25. Session: fee 2 (2.25) + 20 kWh x 1.00 (25.00) = 22 / 27.25.
    t = tariff(el(flat("2", "12.5"), energy("1.00", "25")), max_price={"excl_vat": D(10)})
    b = priced(t, [period(start, ENERGY=20)], start + timedelta(hours=1))
    assert (b.total, b.max_price_applied) == (money("10.00", "11.25"), True)


def test_max_price_applies_to_excl_and_incl_separately() -> None:
    # Fee 10 (no VAT) + 10 kWh x 1.00 at 25 %: 20.00 excl., 22.50 incl. Max 20 / 22: the
    # incl. VAT cap bites, the excl. one is just reached.
    t = tariff(el(flat("10"), energy("1.00", "25")),
               max_price={"excl_vat": D(20), "incl_vat": D(22)})
    start = local("2024-06-03 10:00")
    b = priced(t, [period(start, ENERGY=10)], start + timedelta(hours=1))
    assert b.total == money("20.00", "22.00")
    assert b.max_price_applied


def test_max_price_wins_over_a_larger_min_price() -> None:
    t = tariff(el(energy("1.00")), min_price={"excl_vat": D(50), "incl_vat": D(50)},
               max_price={"excl_vat": D(30), "incl_vat": D(30)})
    start = local("2024-06-03 10:00")
    b = priced(t, [period(start, ENERGY=1)], start + timedelta(hours=1))
    assert b.total == money("30.00")
    assert b.min_price_applied and b.max_price_applied
    assert any("min_price is above its max_price" in n for n in b.notes)


# --- No match, empty and zero-length periods --------------------------------------------


def test_no_matching_element_costs_nothing_and_says_so() -> None:
    t = tariff(el(energy("1.00"), start_time="00:00", end_time="06:00"))
    start = local("2024-06-03 12:00")
    b = priced(t, [period(start, ENERGY=10)], start + timedelta(hours=1))
    assert b.total == money("0.00")
    assert b.unpriced == ("ENERGY: 10 kWh matched no tariff element and costs nothing",
                          "no tariff element matched this session")


def test_zero_length_periods_change_nothing() -> None:
    t = tariff(el(flat("5"), energy("2.00"), time_("60", step=900)))
    start = local("2024-06-03 10:00")
    end = start + timedelta(minutes=50)
    plain = priced(t, [period(start, ENERGY=10)], end)
    padded = priced(t, [period(start, ENERGY=0, TIME=0), period(start, ENERGY=10),
                        period(end, ENERGY=0, TIME=0)], end)
    # 5 + 10 x 2.00 + 50 -> 60 min x 60/h = 85.
    assert plain.total == padded.total == money("85.00")
    # A zero-length period that carries energy is still priced.
    b = priced(t, [period(start, ENERGY=3), period(start, ENERGY=7)], end)
    assert b.energy.cost == money("20.00")


def test_no_periods_yet_still_shows_the_start_fee() -> None:
    t = tariff(el(flat("5"), energy("2.00")))
    start = local("2024-06-03 10:00")
    b = price_session(t, [], time_zone=STO, session_start=start, session_end=start)
    assert b.total == money("5.00")


def test_periods_out_of_order_are_sorted() -> None:
    t = tariff(el(energy("2.00"), start_time="17:00"), el(energy("1.00")))
    a, b_ = local("2024-06-03 16:00"), local("2024-06-03 17:00")
    b = priced(t, [period(b_, ENERGY=1), period(a, ENERGY=1)], local("2024-06-03 18:00"))
    assert b.total == money("3.00")
    assert any("out of order" in n for n in b.notes)


def test_period_without_time_dimension_and_zero_energy_is_parking() -> None:
    t = tariff(el(energy("1.00"), time_("60"), parking("120")))
    start = local("2024-06-03 10:00")
    periods = [period(start, ENERGY=5), period(start + timedelta(hours=1), ENERGY=0)]
    b = priced(t, periods, start + timedelta(hours=2))
    assert (b.time.cost, b.parking_time.cost) == (money("60.00"), money("120.00"))


# --- Rounding ---------------------------------------------------------------------------


def test_round_money_is_half_up_to_the_minor_unit() -> None:
    assert round_money(D("0.125"), "EUR") == D("0.13")
    assert round_money(D("0.124999"), "EUR") == D("0.12")
    assert round_money(D("12.5"), "JPY") == D("13")
    # Noise below 1e-20 from dividing by 3600 does not turn a half into a rounding down.
    assert round_money(D("0.12499999999999999999999999"), "EUR") == D("0.13")
    # 45 s at 10/h = 0.125 exactly, reached via 45/3600.
    t = tariff(el(time_("10")), currency="EUR")
    start = local("2024-06-03 10:00")
    b = priced(t, [period(start, ENERGY=1)], start + timedelta(seconds=45))
    assert b.total == money("0.13")


# --- Plans ------------------------------------------------------------------------------


def test_price_plan_charges_then_parks() -> None:
    # 4.50/kWh, parking 60/h after 2 h. 22 kWh at 11 kW takes 2 h; a 3 h plan parks 1 h.
    t = tariff(el(energy("3.60", "25"), parking("48", "25")))
    b = price_plan(t, start=local("2024-06-03 10:00"), energy_kwh=D(22),
                   duration=timedelta(hours=3), power_kw=D(11), time_zone=STO)
    # 22 x 4.50 = 99; 1 h x 60 = 60 (incl.); 79.20 + 48 = 127.20 excl.
    assert b.total == money("127.20", "159.00")
    assert (b.charging_hours, b.parking_hours) == (D("2.000000"), D("1.000000"))


def test_price_plan_estimates_current_from_power() -> None:
    t = tariff(el(time_("60"), max_current=32), el(time_("120"), min_current=32))
    start = local("2024-06-03 10:00")
    # 3.7 kW -> 16.1 A; 11 kW -> 47.8 A (power / 230 V summed over phases).
    slow = price_plan(t, start=start, energy_kwh=D("3.7"), duration=timedelta(hours=1),
                      power_kw=D("3.7"), time_zone=STO)
    fast = price_plan(t, start=start, energy_kwh=D(11), duration=timedelta(hours=1),
                      power_kw=D(11), time_zone=STO)
    assert (slow.total, fast.total) == (money("60.00"), money("120.00"))
    assert any("current estimated" in n for n in fast.notes)


def test_price_plan_refuses_floats() -> None:
    with pytest.raises(TypeError):
        price_plan(tariff(el(energy("1"))), start=local("2024-06-03 10:00"),
                   energy_kwh=30.0, duration=timedelta(hours=1),  # type: ignore[arg-type]
                   power_kw=D(11), time_zone=STO)


# --- OCPI 2.1.1 -------------------------------------------------------------------------


def tariff_211() -> dict[str, Any]:
    return {
        "id": "7", "currency": "SEK", "last_updated": "2016-01-01T00:00:00Z",
        "tariff_alt_text": [{"language": "sv", "text": "Billigare på natten"}],
        "elements": [
            {"price_components": [{"type": "FLAT", "price": "3.00", "step_size": 1}]},
            {"price_components": [{"type": "ENERGY", "price": 1.5, "step_size": 1}],
             "restrictions": {"start_time": "22:00", "end_time": "06:00"}},
            {"price_components": [{"type": "ENERGY", "price": 3, "step_size": 1},
                                  {"type": "PARKING_TIME", "price": 30, "step_size": 300}]},
        ],
    }


def test_convert_211_prices_with_the_same_engine() -> None:
    converted = convert_211(tariff_211(), country_code="SE", party_id="ABC")
    assert isinstance(converted, Tariff)
    assert (converted.country_code, converted.party_id) == ("SE", "ABC")
    assert converted.elements[1].price_components[0].price == D("1.5")
    start = local("2024-06-03 21:00")
    # 21-23, 4 kWh evenly: 2 x 3.00 + 2 x 1.50 = 9.00, start fee 3.00 -> 12.00. Read per
    # dimension: element 0 (FLAT, no restrictions) does not shadow ENERGY.
    b = priced(converted.to_json(), [period(start, ENERGY=4)], start + timedelta(hours=2))
    assert b.total == money("12.00")
    # 2.1.1 has no VAT; given here it is set on every component.
    with_vat = convert_211(tariff_211(), vat=D(25))
    assert (with_vat.country_code, with_vat.party_id) == ("ZZ", "ZZZ")
    b = priced(with_vat.to_json(), [period(start, ENERGY=4)], start + timedelta(hours=2))
    assert b.total == money("12.00", "15.00")
    # Its JSON is the 2.2.1 Tariff as the edge stores it: DateTimes in UTC with Z, exact
    # numbers, no nulls.
    assert with_vat.to_json() == {
        "country_code": "ZZ", "party_id": "ZZZ", "id": "7", "currency": "SEK",
        "tariff_alt_text": [{"language": "sv", "text": "Billigare på natten"}],
        "elements": [
            {"price_components": [{"type": "FLAT", "price": D("3.00"), "vat": D(25),
                                   "step_size": 1}]},
            {"price_components": [{"type": "ENERGY", "price": D("1.5"), "vat": D(25),
                                   "step_size": 1}],
             "restrictions": {"start_time": "22:00", "end_time": "06:00"}},
            {"price_components": [{"type": "ENERGY", "price": D(3), "vat": D(25),
                                   "step_size": 1},
                                  {"type": "PARKING_TIME", "price": D(30), "vat": D(25),
                                   "step_size": 300}]},
        ],
        "last_updated": "2016-01-01T00:00:00Z",
    }


def test_convert_211_requires_its_required_fields() -> None:
    broken = tariff_211()
    del broken["last_updated"]
    with pytest.raises(TariffError, match="last_updated is required"):
        convert_211(broken)


def test_convert_211_the_specs_complex_example() -> None:
    md = SPEC / "2.1.1" / "mod_tariffs.md"
    if not md.exists():
        pytest.skip("OCPI 2.1.1 text not found")
    text = md.read_text()
    section = text[text.index("##### Complex Tariff example"):]
    block = re.search(r"```json\n(.*?)```", section, re.S)
    assert block is not None
    data = json.loads(block.group(1), parse_float=Decimal)
    t = convert_211(data).to_json()
    # A Monday 10:00, 2 h at 11 kW average (element 1: max_power 32 -> 1.00/h, per 15 min),
    # then 42 min parking on a weekday 09-18 (5.00/h per 5 min -> 45 min):
    # 2.50 + 2 x 1.00 + 45/60 x 5.00 = 2.50 + 2.00 + 3.75 = 8.25 (no VAT in 2.1.1).
    start = local("2024-06-03 10:00", "Europe/Berlin")
    periods = [period(start, ENERGY=22, TIME=2),
               period(start + timedelta(hours=2), PARKING_TIME="0.7")]
    b = priced(t, periods, start + timedelta(hours=2, minutes=42), zone="Europe/Berlin")
    assert b.total == money("8.25")


# --- describe ---------------------------------------------------------------------------

SWEDISH = tariff(
    el(energy("4.40", "25"), start_time="17:00", end_time="20:00"),
    el(energy("3.60", "25")),
    el(time_("24", "25"), min_duration=3600),
    el(flat("4", "25")),
    tariff_alt_text=[{"language": "sv", "text": "Parkering ingår."},
                     {"language": "en", "text": "Parking included."}],
)


def test_describe_in_swedish_and_english() -> None:
    at = local("2024-06-03 12:00")
    sv = describe(SWEDISH, language="sv", at=at, time_zone=STO, power_kw=D(11))
    assert sv.summary == "4,50 kr/kWh · 0,50 kr/min efter 60 min · 5 kr start"
    assert sv.changes == ("från 17:00: 5,50 kr/kWh", "från 20:00: 4,50 kr/kWh")
    assert sv.alt_text == "Parkering ingår."
    # 30 kWh at 11 kW: 2 h 43.6 min; 30 x 4.50 = 135 + 5 start + 103.6 min x 0.50 =
    # 51.82 -> 191.82 -> about 192.
    assert sv.example == "ungefär 192 kr för 30 kWh"
    assert sv.structured
    en = describe(SWEDISH, language="en", at=at, time_zone=STO, power_kw=D(11))
    assert en.summary == "SEK 4.50/kWh · SEK 0.50/min after 60 min · SEK 5 start fee"
    assert en.changes == ("from 17:00: SEK 5.50/kWh", "from 20:00: SEK 4.50/kWh")
    assert en.example == "about SEK 192 for 30 kWh"
    # In the evening window, only what is still to come today.
    late = describe(SWEDISH, language="en", at=local("2024-06-03 18:00"), time_zone=STO,
                    power_kw=D(11))
    assert late.summary.startswith("SEK 5.50/kWh")
    assert late.changes == ("from 20:00: SEK 4.50/kWh",)


def test_describe_example_total_energy_only() -> None:
    t = tariff(el(energy("3.60", "25")))
    text = describe(t, language="sv", at=local("2024-06-03 12:00"), time_zone=STO,
                    power_kw=D(50))
    assert (text.summary, text.example) == ("4,50 kr/kWh", "ungefär 135 kr för 30 kWh")


def test_describe_power_tiers_and_limits() -> None:
    t = tariff(el(energy("2.00", "25"), max_power=22), el(energy("4.00", "25")),
               min_price={"excl_vat": D(8), "incl_vat": D(10)})
    at = local("2024-06-03 12:00")
    # At a 50 kW connector both tiers can happen; at 11 kW the cap of 22 kW always holds.
    fast = describe(t, language="en", at=at, time_zone=STO, power_kw=D(50))
    assert fast.summary == "SEK 2.50/kWh below 22 kW · otherwise SEK 5/kWh"
    assert fast.limits == ("minimum SEK 10 per session",)
    slow = describe(t, language="sv", at=at, time_zone=STO, power_kw=D(11))
    assert slow.summary == "2,50 kr/kWh"
    assert slow.limits == ("minst 10 kr per laddning",)


def test_describe_first_minutes_free() -> None:
    t = tariff(el(time_("0"), max_duration=1800), el(time_("30", "0")), el(energy("2.00")))
    text = describe(t, language="en", at=local("2024-06-03 12:00"), time_zone=STO,
                    power_kw=D(11))
    assert text.summary == "SEK 2/kWh · free first 30 min · SEK 0.50/min after 30 min"


def test_describe_falls_back_when_it_cannot_be_said_in_a_line() -> None:
    tiers = [el(energy(str(p), "25"), min_current=a) for p, a in ((1, 6), (2, 10), (3, 16),
                                                                     (4, 20))]
    t = tariff(*tiers, el(energy("5", "25")),
               tariff_alt_text=[{"language": "en", "text": "Cheaper when charging slowly."}])
    at = local("2024-06-03 12:00")
    en = describe(t, language="en", at=at, time_zone=STO, power_kw=D(22))
    assert (en.structured, en.summary) == (False, "Cheaper when charging slowly.")
    sv = describe(t, language="sv", at=at, time_zone=STO, power_kw=D(22))
    assert sv.alt_text is None  # no Swedish text; the English one stands in the summary
    assert sv.summary == "Cheaper when charging slowly."
    bare = dict(t)
    del bare["tariff_alt_text"]
    neutral = describe(bare, language="sv", at=at, time_zone=STO, power_kw=D(22))
    assert neutral.summary.startswith("Priset beror på")


def test_describe_free_charging() -> None:
    t = tariff(el(flat("0")))
    text = describe(t, language="sv", at=local("2024-06-03 12:00"), time_zone=STO,
                    power_kw=D(11))
    assert (text.summary, text.example) == ("Gratis laddning", "ungefär 0 kr för 30 kWh")


# --- The hold ---------------------------------------------------------------------------


def test_hold_uses_preauthorize_amount_when_the_tariff_has_one() -> None:
    t = tariff(el(energy("3.60", "25")), preauthorize_amount=D("500"))
    hold = hold_for(t, power_kw=D(11), max_session=timedelta(hours=4), cap_minor=None,
                    currency="SEK")
    assert hold == 50000
    assert hold_for(t, power_kw=D(11), max_session=timedelta(hours=4), cap_minor=30000,
                    currency="SEK") == 30000


def test_hold_prices_a_plausible_maximum_session() -> None:
    t = tariff(el(energy("3.60", "25")), el(flat("4", "25")))
    at = local("2024-06-03 12:00")
    # 11 kW x 2 h = 22 kWh x 4.50 = 99 + 5 start = 104 kr.
    hold = hold_for(t, power_kw=D(11), max_session=timedelta(hours=2), cap_minor=None,
                    currency="SEK", at=at, time_zone=STO)
    assert hold == 10400
    # The driver's cap wins.
    assert hold_for(t, power_kw=D(11), max_session=timedelta(hours=2), cap_minor=5000,
                    currency="sek", at=at, time_zone=STO) == 5000


def test_hold_is_never_below_the_minimum_price() -> None:
    t = tariff(el(energy("3.60", "25")), min_price={"excl_vat": D(120)})
    hold = hold_for(t, power_kw=D("3.7"), max_session=timedelta(hours=1), cap_minor=None,
                    currency="SEK", at=local("2024-06-03 12:00"), time_zone=STO)
    assert hold == 15000  # 120 excl. x 1.25 VAT


def test_hold_refuses_another_currency() -> None:
    with pytest.raises(TariffError, match="EUR"):
        hold_for(tariff(el(energy("1"))), power_kw=D(11), max_session=timedelta(hours=1),
                 cap_minor=None, currency="EUR")


# --- Bad input --------------------------------------------------------------------------


@pytest.mark.parametrize(("restrictions", "message"), [
    ({"start_time": "7:00"}, "start_time '7:00' is not a time of day"),
    ({"end_date": "2024-13-01"}, "end_date '2024-13-01' is not a date"),
    ({"day_of_week": ["MONDAYS"]}, "day_of_week 'MONDAYS' is not a DayOfWeek"),
    ({"reservation": "YES"}, "reservation 'YES' is not"),
])
def test_malformed_restrictions_are_errors(restrictions: dict[str, Any], message: str) -> None:
    t = tariff(el(energy("1.00"), **restrictions))
    start = local("2024-06-03 10:00")
    with pytest.raises(TariffError, match=message):
        priced(t, [period(start, ENERGY=1)], start + timedelta(hours=1))


def test_unknown_time_zone_is_an_error() -> None:
    start = local("2024-06-03 10:00")
    with pytest.raises(TariffError, match="unknown time zone"):
        priced(tariff(el(energy("1"))), [period(start, ENERGY=1)], start, zone="Mars/Olympus")


# --- CDRs and the CLI -------------------------------------------------------------------


def cdr(tariffs: list[dict[str, Any]] | None, periods: list[dict[str, Any]], start: datetime,
        end: datetime, country: str = "SWE", total: str = "0") -> dict[str, Any]:
    token = {"country_code": "SE", "party_id": "SCA", "uid": "u1", "type": "AD_HOC_USER",
             "contract_id": "c1"}
    location = {"id": "L1", "address": "Gatan 1", "city": "Stockholm", "country": country,
                "coordinates": {"latitude": "59.3", "longitude": "18.0"}, "evse_uid": "E1",
                "evse_id": "SE*SCA*E1", "connector_id": "1",
                "connector_standard": "IEC_62196_T2", "connector_format": "SOCKET",
                "connector_power_type": "AC_3_PHASE"}
    out: dict[str, Any] = {
        "country_code": "SE", "party_id": "SCA", "id": "CDR1",
        "start_date_time": start.astimezone(UTC).isoformat(),
        "end_date_time": end.astimezone(UTC).isoformat(), "cdr_token": token,
        "auth_method": "COMMAND", "cdr_location": location, "currency": "SEK",
        "charging_periods": periods, "total_cost": {"excl_vat": D(total)},
        "total_energy": D(0), "total_time": D(0), "last_updated": "2024-06-03T12:00:00Z"}
    if tariffs is not None:
        out["tariffs"] = tariffs
    return out


def test_price_cdr_chooses_the_tariff_per_period() -> None:
    day = {**tariff(el(energy("2.00"))), "id": "DAY"}
    fast = {**tariff(el(energy("5.00"))), "id": "FAST"}
    start = local("2024-06-03 10:00")
    periods = [{**period(start, ENERGY=1), "tariff_id": "day"},
               {**period(start + timedelta(hours=1), ENERGY=1), "tariff_id": "FAST"}]
    b = price_cdr(cdr([day, fast], periods, start, start + timedelta(hours=2)),
                  time_zone=STO)
    assert b.total == money("7.00")  # tariff_id is a CiString: "day" finds "DAY"
    # A period without tariff_id, among several tariffs, has none (mod_cdrs).
    periods[1] = period(start + timedelta(hours=1), ENERGY=1)
    b = price_cdr(cdr([day, fast], periods, start, start + timedelta(hours=2)),
                  time_zone=STO)
    assert b.total == money("2.00")
    assert "period 1: no tariff applies to it; not priced" in b.unpriced


def run_cli(*args: str) -> Any:
    app = Flask("tariff-cli-test")
    register(app)
    return app.test_cli_runner().invoke(args=["tariffs", "price", *args])


def write(path: Path, data: Any) -> Path:
    from ocpi.transport import json_dumps
    path.write_text(json_dumps(data))
    return path


def test_cli_prices_a_cdr_with_its_own_tariffs(tmp_path: Path) -> None:
    start = local("2024-06-03 10:00")
    t = tariff(el(flat("4", "25"), energy("3.60", "25")))
    path = write(tmp_path / "cdr.json", cdr([t], [period(start, ENERGY=10)], start,
                                            start + timedelta(hours=1), total="40.00"))
    result = run_cli("--cdr", str(path))
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout, parse_float=Decimal)
    # 4 + 10 x 3.60 = 40.00 excl.; x 1.25 = 50.00 incl.
    assert out["total_cost"] == {"excl_vat": D("40.00"), "incl_vat": D("50.00")}
    assert out["total_energy_cost"] == {"excl_vat": D("36.00"), "incl_vat": D("45.00")}
    assert out["total_fixed_cost"] == {"excl_vat": D("4.00"), "incl_vat": D("5.00")}
    assert out["difference"] == {"excl_vat": D("0.00")}
    assert out["time_zone"] == STO
    assert "from cdr_location.country SWE" in result.stderr


def test_cli_with_a_tariff_file_and_tz(tmp_path: Path) -> None:
    start = local("2024-06-03 16:00")
    t = tariff(el(energy("2.00"), start_time="17:00"), el(energy("1.00")))
    c = write(tmp_path / "cdr.json", cdr(None, [period(start, ENERGY=2)], start,
                                         start + timedelta(hours=2), country="USA"))
    tp = write(tmp_path / "tariff.json", t)
    result = run_cli("--tariff", str(tp), "--cdr", str(c), "--tz", STO)
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout, parse_float=Decimal)
    assert out["total_cost"]["excl_vat"] == D("3.00")  # 1 kWh x 1.00 + 1 kWh x 2.00
    assert [p["price"] for p in out["periods"]] == [D("1.00"), D("2.00")]
    # Without --tz a US CDR cannot tell its zone: UTC, with a warning.
    result = run_cli("--tariff", str(tp), "--cdr", str(c))
    assert result.exit_code == 0
    assert "warning: the CDR does not tell its time zone" in result.stderr
    assert json.loads(result.stdout)["time_zone"] == "UTC"


def test_cli_reads_a_211_tariff(tmp_path: Path) -> None:
    start = local("2024-06-03 12:00")
    c = write(tmp_path / "cdr.json", cdr(None, [period(start, ENERGY=2)], start,
                                         start + timedelta(hours=1)))
    tp = write(tmp_path / "tariff.json", tariff_211())
    result = run_cli("--tariff", str(tp), "--cdr", str(c))
    assert result.exit_code == 0, result.output
    assert "read as an OCPI 2.1.1 tariff" in result.stderr
    assert json.loads(result.stdout, parse_float=Decimal)["total_cost"]["excl_vat"] == D(
        "9.00")  # 3.00 start + 2 x 3.00


@pytest.mark.parametrize(("which", "content", "message"), [
    ("cdr", "{not json", "not valid JSON: Expecting property name"),
    ("cdr", "[1, 2]", "expected one CDR JSON object, found list"),
    ("cdr", '{"id": "x"}', "not a valid OCPI 2.2.1 CDR: "),
    ("tariff", '{"country_code": "SE", "party_id": "X", "id": "1"}',
     "not a valid OCPI 2.2.1 Tariff: "),
    ("tariff", None, "start_time '25:00' is not a time of day"),
])
def test_cli_bad_files_exit_2_naming_the_file(tmp_path: Path, which: str,
                                              content: str | None, message: str) -> None:
    start = local("2024-06-03 12:00")
    good_cdr = cdr(None, [period(start, ENERGY=2)], start, start + timedelta(hours=1))
    c = write(tmp_path / "cdr.json", good_cdr)
    tp = write(tmp_path / "tariff.json", tariff(el(energy("1"), start_time="25:00")))
    target = c if which == "cdr" else tp
    if content is not None:
        target.write_text(content)
    result = run_cli("--tariff", str(tp), "--cdr", str(c))
    assert result.exit_code == 2
    assert f"Error: {target}: " in result.stderr
    assert message in result.stderr


def test_cli_other_errors_exit_2(tmp_path: Path) -> None:
    start = local("2024-06-03 12:00")
    c = write(tmp_path / "cdr.json", cdr(None, [period(start, ENERGY=2)], start,
                                         start + timedelta(hours=1)))
    result = run_cli("--cdr", str(c))
    assert result.exit_code == 2
    assert "the CDR carries no tariffs; give one with --tariff" in result.stderr
    tp = write(tmp_path / "tariff.json", tariff(el(energy("1"))))
    result = run_cli("--cdr", str(c), "--tariff", str(tp), "--tz", "Nowhere/City")
    assert result.exit_code == 2
    assert "--tz: unknown time zone 'Nowhere/City'" in result.stderr
    result = run_cli("--cdr", str(tmp_path / "missing.json"))
    assert result.exit_code == 2
    assert "does not exist" in result.stderr
