"""Reports: per day, week or month in the operator's time zone, sessions, kWh, revenue,
refunds, net and VAT per rate, per CPO and per site; bar charts of revenue and kWh (inline
SVG, dashboard/charts.py) with the same figures in a table beside them. The exports
(dashboard/exports.py) are offered here for the same range."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from flask import render_template, request
from flask_babel import gettext
from werkzeug.datastructures import MultiDict

import i18n
from dashboard import charts, formatting, ledger, summaries
from dashboard.blueprint import bp
from dashboard.permissions import requires
from ocpi.transport import now_utc

# The ranges a report shows when none is asked for, and the most periods one may have
# (a year of days): a chart of thousands of bars shows nothing.
DEFAULT_PERIODS = {"day": 31, "week": 12, "month": 12}
MAX_PERIODS = 400


def chosen_range(args: MultiDict[str, str], capped: bool = True) -> tuple[str, date, date]:
    """(period, first day, last day) asked for, in the operator's zone; an empty or broken
    field takes the default (the latest periods up to today). For a page (`capped`) a range
    too long is cut to its last MAX_PERIODS periods; an export has the whole range."""
    asked = args.get("period") or ""
    period = asked if asked in ledger.PERIODS else "day"
    today = ledger.local_day(now_utc(), formatting.operator_zone())
    last = ledger.parse_day(args.get("to")) or today
    first = ledger.parse_day(args.get("from"))
    if first is None:
        first = ledger.period_start(last, period)
        for _ in range(DEFAULT_PERIODS[period] - 1):
            first = ledger.period_start(first - timedelta(days=1), period)
    if first > last:
        first, last = last, first
    starts = ledger.periods_between(first, last, period) if capped else []
    if len(starts) > MAX_PERIODS:
        first = starts[-MAX_PERIODS]
    return period, first, last


def period_name(period: str) -> str:
    return {"day": gettext("day"), "week": gettext("week"), "month": gettext("month")}[period]


def kwh_text(value: Decimal) -> str:
    return f"{i18n.format_number(value, i18n.current_language(), 3, group=False)} kWh"


def _charts(report: summaries.Report) -> list[dict[str, Any]]:
    """For each currency: the revenue chart; one kWh chart over all."""
    money = formatting.money
    found = []
    for currency in report.currencies:
        rows = report.periods(currency)
        found.append({"id": f"revenue-{currency}", "svg": charts.bar_chart(
            f"chart-revenue-{currency}",
            gettext("Revenue (captured) per %(period)s, %(currency)s",
                    period=period_name(report.period), currency=currency),
            gettext("Bars: what was captured in each period. The table beside it has the "
                    "same figures."),
            (gettext("Period: %(period)s", period=period_name(report.period)),
             gettext("Revenue, %(currency)s", currency=currency)),
            [(report.label(start), Decimal(t.revenue), money(t.revenue, currency))
             for start, t in rows])})
    if report.currencies:
        found.append({"id": "kwh", "svg": charts.bar_chart(
            "chart-kwh", gettext("Energy charged per %(period)s, kWh",
                                 period=period_name(report.period)),
            gettext("Bars: the kWh of the charges captured in each period."),
            (gettext("Period: %(period)s", period=period_name(report.period)), "kWh"),
            [(report.label(s), report.kwh_in(s), kwh_text(report.kwh_in(s)))
             for s in report.starts])})
    return found


@bp.get("/reports")
@requires("reports")
def reports() -> str:
    period, first, last = chosen_range(request.args)
    report = summaries.for_range(period, first, last, formatting.operator_zone())
    return render_template(
        "dashboard/reports.html", report=report, period=period, first=first.isoformat(),
        last=last.isoformat(), charts=_charts(report), periods=ledger.PERIODS,
        period_name=period_name, rows=_rows(report, f"{first} – {last}"))


def _rows(report: summaries.Report, whole: str) -> dict[str, list[tuple[str, str, Any]]]:
    """The tables' rows: (name, currency, totals); periods with nothing in them left out."""
    return {
        "period": [(report.label(start), currency, t) for currency in report.currencies
                   for start, t in report.periods(currency) if t.sessions or t.refunds],
        "cpo": [(name, currency, t) for (name, currency), t in sorted(report.by_cpo.items())],
        "site": [(name, currency, t) for (name, currency), t in sorted(report.by_site.items())],
        "overall": [(whole, currency, report.overall[currency])
                    for currency in report.currencies],
    }
