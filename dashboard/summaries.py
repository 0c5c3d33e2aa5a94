"""The books added up: per period (day, week or month in the operator's zone), per CPO and
per site, in each currency: sessions, kWh, revenue (what was captured, the receipts),
refunds (the credit notes), net, and VAT per rate. One streaming pass over the documents
of the range (dashboard.ledger), so its cost grows with the range, not with the whole table.

A document counts in the period it was issued in: a receipt when the charge was captured,
a credit note when the refund was made, as the books record them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from dashboard import ledger


@dataclass
class VatTotals:
    """One VAT rate's sales and refunds (refunds as positive amounts)."""

    sales_net: int = 0
    sales_vat: int = 0
    refunds_net: int = 0
    refunds_vat: int = 0

    @property
    def net(self) -> int:
        return self.sales_net - self.refunds_net

    @property
    def vat(self) -> int:
        return self.sales_vat - self.refunds_vat


@dataclass
class Totals:
    sessions: int = 0
    kwh: Decimal = Decimal(0)
    revenue: int = 0  # captured: the receipts' totals
    refunds: int = 0  # the credit notes' totals, as a positive amount
    vat: dict[Decimal, VatTotals] = field(default_factory=dict)

    @property
    def net(self) -> int:
        return self.revenue - self.refunds

    def add(self, document: ledger.Document) -> None:
        refund = document.is_credit_note
        if refund:
            self.refunds -= document.total_minor
        else:
            self.sessions += 1
            self.kwh += document.energy_kwh
            self.revenue += document.total_minor
        for line in document.vat_lines:
            rate = self.vat.setdefault(line.rate.normalize(), VatTotals())
            if refund:
                rate.refunds_net -= line.net_minor
                rate.refunds_vat -= line.vat_minor
            else:
                rate.sales_net += line.net_minor
                rate.sales_vat += line.vat_minor

    def rates(self) -> list[tuple[Decimal, VatTotals]]:
        return sorted(self.vat.items(), key=lambda item: -item[0])


@dataclass
class Report:
    period: str
    starts: list[date]
    # (period start, currency) -> totals; CPO and site: (name, currency) -> totals.
    by_period: dict[tuple[date, str], Totals] = field(default_factory=dict)
    by_cpo: dict[tuple[str, str], Totals] = field(default_factory=dict)
    by_site: dict[tuple[str, str], Totals] = field(default_factory=dict)
    overall: dict[str, Totals] = field(default_factory=dict)

    @property
    def currencies(self) -> list[str]:
        """The currencies with documents, the busiest first (the one the charts draw)."""
        return sorted(self.overall, key=lambda c: (-self.overall[c].sessions, c))

    def periods(self, currency: str) -> list[tuple[date, Totals]]:
        """Every period of the range, an empty one too (a chart shows the quiet days)."""
        return [(start, self.by_period.get((start, currency), Totals()))
                for start in self.starts]

    def kwh_in(self, start: date) -> Decimal:
        """The period's kWh, in every currency (energy has none)."""
        return sum((t.kwh for (s, _), t in self.by_period.items() if s == start), Decimal(0))

    def label(self, start: date) -> str:
        return ledger.period_label(start, self.period)


def build(documents: Iterable[ledger.Document], period: str, first: date, last: date,
          zone: ledger.ZoneInfo) -> Report:
    report = Report(period=period, starts=ledger.periods_between(first, last, period))
    for document in documents:
        start = ledger.period_start(ledger.local_day(document.issued_at, zone), period)
        currency = document.currency
        for totals in (
            report.by_period.setdefault((start, currency), Totals()),
            report.by_cpo.setdefault((document.cpo or "—", currency), Totals()),
            report.by_site.setdefault((document.site or "—", currency), Totals()),
            report.overall.setdefault(currency, Totals()),
        ):
            totals.add(document)
    return report


def for_range(period: str, first: date, last: date, zone: ledger.ZoneInfo) -> Report:
    start, end = ledger.utc_bounds(first, last, zone)
    return build(ledger.stream_documents(start, end, oldest_first=True), period, first, last,
                 zone)
