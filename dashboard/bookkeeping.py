"""The day's sales and refunds as vouchers for the bookkeeping (the SIE 4 export).

One voucher per day (in the operator's zone) with documents, as a till's daily report is
booked: the receivable from the payment provider debited with the day's receipts and
credited with its credit notes, each VAT rate's sales account and output VAT account
credited with the sales and debited with the refunds. Every row is a sum of the
documents' own net and VAT (never recomputed), and each document's net + VAT is its
total, so each voucher balances to the öre; sie.voucher() refuses one that does not.

The accounts are settings (config.py, SIE_ACCOUNT_*). The books are kept in one currency
(SEK) and VAT rates each need their accounts: a range with documents in another currency or
at a rate without accounts is refused, saying which, rather than booked wrong.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

from flask import current_app, g
from flask_babel import gettext

from dashboard import formatting, ledger, sie
from ocpi.transport import now_utc
from payments.money import from_minor

BOOK_CURRENCY = "SEK"  # SIE books are kept in kronor
SWEDISH_RATES = ("25", "12", "6", "0")
# Account and voucher names are the bookkeeping's own, in Swedish as the format is.
ACCOUNT_NAMES = {
    "receivable": "Fordran betalningsleverantör (kortbetalningar)",
    "sales": "Försäljning laddning {rate} % moms",
    "vat": "Utgående moms {rate} %",
}


class CannotBook(ValueError):
    pass


@dataclass
class Day:
    """One day's documents added up: per VAT rate (sales, refunds) as (net, VAT)."""

    day: date
    first_number: str = ""
    last_number: str = ""
    receipts: int = 0
    credit_notes: int = 0
    sales: dict[str, list[int]] = field(default_factory=dict)
    refunds: dict[str, list[int]] = field(default_factory=dict)

    def add(self, document: ledger.Document) -> None:
        self.first_number = self.first_number or document.display_number
        self.last_number = document.display_number
        sign = -1 if document.is_credit_note else 1
        into = self.refunds if document.is_credit_note else self.sales
        if document.is_credit_note:
            self.credit_notes += 1
        else:
            self.receipts += 1
        for line in document.vat_lines:
            rate = format(line.rate.normalize(), "f")
            totals = into.setdefault(rate, [0, 0])
            totals[0] += sign * line.net_minor
            totals[1] += sign * line.vat_minor


def fiscal_year(day: date, start: str) -> tuple[date, date]:
    """The fiscal year `day` is in, the year beginning on `start` (MM-DD)."""
    month, first = (int(part) for part in start.split("-"))
    begins = date(day.year, month, first)
    if begins > day:
        begins = date(day.year - 1, month, first)
    return begins, date(begins.year + 1, month, first) - timedelta(days=1)


@dataclass
class Book:
    first: date
    last: date
    accounts_by_role: dict[str, str]
    series: str
    year: tuple[date, date]

    @classmethod
    def from_config(cls, first: date, last: date) -> Book:
        cfg = current_app.config
        try:
            year = fiscal_year(first, cfg["SIE_FISCAL_YEAR_START"])
        except ValueError as exc:
            raise CannotBook(gettext("SIE_FISCAL_YEAR_START is not a month and day (MM-DD): "
                                     "%(value)s", value=cfg["SIE_FISCAL_YEAR_START"])) from exc
        if last > year[1]:
            raise CannotBook(gettext(
                "The range crosses the end of the fiscal year (%(end)s): export each fiscal "
                "year on its own.", end=year[1].isoformat()))
        roles = {"receivable": cfg["SIE_ACCOUNT_RECEIVABLE"]}
        for rate in SWEDISH_RATES:
            roles[f"sales {rate}"] = cfg[f"SIE_ACCOUNT_SALES_{rate}"]
            if rate != "0":
                roles[f"vat {rate}"] = cfg[f"SIE_ACCOUNT_VAT_{rate}"]
        return cls(first, last, {k: v for k, v in roles.items() if v},
                   cfg["SIE_VOUCHER_SERIES"], year)

    def company(self) -> sie.Company:
        cfg = current_app.config
        operator = g.get("operator")
        return sie.Company(
            name=cfg["SELLER_NAME"], org_number=cfg["SELLER_ORG_NUMBER"],
            fiscal_year=self.year, currency=BOOK_CURRENCY,
            generated=ledger.local_day(now_utc(), formatting.operator_zone()),
            generated_by=operator.email if operator is not None else "")

    def accounts(self) -> dict[str, str]:
        names = {}
        for role, number in self.accounts_by_role.items():
            kind, _, rate = role.partition(" ")
            names[number] = ACCOUNT_NAMES[kind].format(rate=rate)
        return names

    def days(self) -> list[Day]:
        zone = formatting.operator_zone()
        start, end = ledger.utc_bounds(self.first, self.last, zone)
        days: dict[date, Day] = {}
        others: set[str] = set()
        for document in ledger.stream_documents(start, end, oldest_first=True):
            if document.currency != BOOK_CURRENCY:
                others.add(document.currency)
                continue
            day = ledger.local_day(document.issued_at, zone)
            days.setdefault(day, Day(day)).add(document)
        if others:
            raise CannotBook(gettext(
                "Documents in %(currencies)s are in this range; the SIE file books %(book)s "
                "only. Book them by hand from the receipts CSV.",
                currencies=", ".join(sorted(others)), book=BOOK_CURRENCY))
        return [days[day] for day in sorted(days)]

    def _account(self, role: str) -> str:
        number = self.accounts_by_role.get(role)
        if not number:
            kind, _, rate = role.partition(" ")
            raise CannotBook(gettext(
                "There is no account for %(what)s at %(rate)s %% VAT; the SIE file books the "
                "Swedish rates (25, 12, 6 and 0 %%) on the SIE_ACCOUNT_* settings.",
                what=kind, rate=rate))
        return number

    def vouchers(self) -> list[sie.Voucher]:
        """Every day's voucher, built before the file is written (there is one a day, a
        year is a few hundred), so a range that cannot be booked is refused whole."""
        return [self._voucher(number, day) for number, day in enumerate(self.days(), 1)]

    def _voucher(self, number: int, day: Day) -> sie.Voucher:
        def kr(minor: int) -> Decimal:
            return from_minor(minor, BOOK_CURRENCY)

        rows: list[sie.Row] = []
        gross_sales = sum(net + vat for net, vat in day.sales.values())
        gross_refunds = sum(net + vat for net, vat in day.refunds.values())
        receivable = self._account("receivable")
        rows.append(sie.Row(receivable, kr(gross_sales), "Kortbetalningar"))
        rows.append(sie.Row(receivable, kr(-gross_refunds), "Återbetalningar till kort"))
        # Sales are credited (negative), refunds reverse them (debited, positive).
        for label, sign, totals in (("Försäljning", -1, day.sales),
                                    ("Återbetalning", 1, day.refunds)):
            for rate, (net, vat) in sorted(totals.items()):
                rows.append(sie.Row(self._account(f"sales {rate}"), kr(sign * net),
                                    f"{label} {rate} % moms"))
                if vat:
                    rows.append(sie.Row(self._account(f"vat {rate}"), kr(sign * vat),
                                        f"{label}, utgående moms {rate} %"))
        text = (f"Laddning {day.day.isoformat()}: {day.receipts} kvitton, "
                f"{day.credit_notes} kreditnotor, {day.first_number}-{day.last_number}")
        return sie.voucher(self.series, number, day.day, text, rows)


def balanced(vouchers: Iterable[sie.Voucher]) -> bool:
    return all(v.balance() == 0 for v in vouchers)
