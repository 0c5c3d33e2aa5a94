"""Periods in the operator's zone (dashboard/ledger.py): days that begin at local midnight
across both clock changes, ISO weeks, months, and every period of a range."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from dashboard import ledger

STOCKHOLM = ZoneInfo("Europe/Stockholm")


def test_days_of_23_and_25_hours_begin_at_local_midnight() -> None:
    spring = ledger.midnight_utc(date(2026, 3, 30), STOCKHOLM) - \
        ledger.midnight_utc(date(2026, 3, 29), STOCKHOLM)
    autumn = ledger.midnight_utc(date(2026, 10, 26), STOCKHOLM) - \
        ledger.midnight_utc(date(2026, 10, 25), STOCKHOLM)
    assert (spring, autumn) == (timedelta(hours=23), timedelta(hours=25))
    assert ledger.midnight_utc(date(2026, 3, 30), STOCKHOLM) == datetime(2026, 3, 29, 22,
                                                                        tzinfo=UTC)


def test_a_moment_is_on_its_local_day() -> None:
    assert ledger.local_day(datetime(2026, 3, 29, 22, 30, tzinfo=UTC), STOCKHOLM) == \
        date(2026, 3, 30)
    assert ledger.local_day(datetime(2026, 10, 25, 22, 59, tzinfo=UTC), STOCKHOLM) == \
        date(2026, 10, 25)
    assert ledger.local_day(datetime(2026, 10, 25, 23, 0, tzinfo=UTC), STOCKHOLM) == \
        date(2026, 10, 26)


def test_weeks_are_iso_weeks_and_months_calendar_months() -> None:
    sunday, monday = date(2026, 3, 29), date(2026, 3, 30)
    assert ledger.period_label(ledger.period_start(sunday, "week"), "week") == "2026-W13"
    assert ledger.period_label(ledger.period_start(monday, "week"), "week") == "2026-W14"
    # ISO week 53 of 2026 runs into January 2027.
    assert ledger.period_label(ledger.period_start(date(2027, 1, 2), "week"), "week") == \
        "2026-W53"
    assert ledger.next_period(date(2026, 12, 1), "month") == date(2027, 1, 1)
    assert ledger.next_period(date(2026, 1, 1), "month") == date(2026, 2, 1)


def test_every_period_of_a_range_the_partial_ones_too() -> None:
    assert ledger.periods_between(date(2026, 1, 31), date(2026, 3, 1), "month") == [
        date(2026, 1, 1), date(2026, 2, 1), date(2026, 3, 1)]
    assert len(ledger.periods_between(date(2026, 1, 1), date(2026, 12, 31), "day")) == 365
    assert ledger.utc_bounds(None, None, STOCKHOLM) == (None, None)
    assert ledger.parse_day("2026-02-30") is None and ledger.parse_day("") is None
