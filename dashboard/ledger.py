"""The books as the accountant's pages read them: the numbered series of receipts and credit
notes, each document with the charge, CPO and site it is about, periods (day, week, month)
in the operator's time zone, VAT per rate, and the series' gap check.

Everything here streams rows (yield_per) or asks the database for the answer (the gap
check is one window query), so a year of 100,000 documents is read once, never loaded whole.
Amounts stay integer minor units with their currency; nothing here formats for a person.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Select, func, select
from sqlalchemy.orm import aliased

from charging.models import Charge
from extensions import db
from ocpi.models import OcpiLocation, Party
from payments.models import Receipt, ReceiptSequence

PERIODS = ("day", "week", "month")
STREAM_BATCH = 1000


# --- Periods in the operator's zone -------------------------------------------------------


def period_start(day: date, period: str) -> date:
    """The first day of the period `day` is in: itself, its ISO week's Monday, its month's 1st."""
    if period == "week":
        return day - timedelta(days=day.weekday())
    if period == "month":
        return day.replace(day=1)
    return day


def next_period(start: date, period: str) -> date:
    if period == "week":
        return start + timedelta(days=7)
    if period == "month":
        return (start.replace(day=28) + timedelta(days=4)).replace(day=1)
    return start + timedelta(days=1)


def period_label(start: date, period: str) -> str:
    """'2026-11-21', '2026-W47' (ISO week), '2026-11': what a spreadsheet sorts right."""
    if period == "week":
        year, week, _ = start.isocalendar()
        return f"{year}-W{week:02d}"
    if period == "month":
        return start.strftime("%Y-%m")
    return start.isoformat()


def periods_between(first: date, last: date, period: str) -> list[date]:
    """The starts of every period from the one holding `first` to the one holding `last`."""
    starts, current = [], period_start(first, period)
    while current <= last:
        starts.append(current)
        current = next_period(current, period)
    return starts


def midnight_utc(day: date, zone: ZoneInfo) -> datetime:
    """The moment `day` begins in `zone`, in UTC: a day of 23 or 25 hours across a clock
    change ends where the next one begins, so no document falls between two days."""
    return datetime(day.year, day.month, day.day, tzinfo=zone).astimezone(UTC)


def local_day(when: datetime, zone: ZoneInfo) -> date:
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(zone).date()


# --- The documents ------------------------------------------------------------------------


@dataclass(frozen=True)
class VatLine:
    """One VAT rate's share of a document: gross = net + VAT, signed as the document."""

    rate: Decimal
    net_minor: int
    vat_minor: int

    @property
    def gross_minor(self) -> int:
        return self.net_minor + self.vat_minor


@dataclass(frozen=True)
class Document:
    """A receipt or a credit note with what the books need of its charge."""

    pk: int
    series: str
    number: int
    issued_at: datetime
    currency: str
    total_minor: int
    net_minor: int
    vat_minor: int
    vat_rate: Decimal
    credits_number: str | None  # a credit note: the receipt it credits
    reason: str
    payment_reference: str
    vat_lines: tuple[VatLine, ...]
    energy_kwh: Decimal
    charge_pk: int | None
    # For the dashboard's link to the charge's page only: the public id is the driver's
    # credential, so no export writes it (dashboard/exports.py).
    charge_public_id: str | None
    cpo: str
    site: str

    @property
    def is_credit_note(self) -> bool:
        return self.credits_number is not None

    @property
    def display_number(self) -> str:
        return f"{self.series}-{self.number:06d}"


def vat_lines(total: int, net: int, vat: int, rate: Decimal,
              details: dict[str, Any] | None) -> tuple[VatLine, ...]:
    """The document's VAT per rate as issued: a receipt's rows from its details when they
    add up to its total (a receipt of several rates), else its one rate. A credit note is
    issued at one rate (its receipt's main one) and is booked as it was issued."""
    rows = (details or {}).get("vat_rates") or []
    try:
        lines = tuple(VatLine(Decimal(str(row["rate"])), int(row["net_minor"]),
                              int(row["vat_minor"])) for row in rows)
    except (KeyError, TypeError, ValueError, InvalidOperation):
        lines = ()
    if lines and sum(x.gross_minor for x in lines) == total:
        return lines
    return (VatLine(Decimal(rate), net, vat),)


def documents_query(start: datetime | None = None, end: datetime | None = None,
                    kind: str | None = None) -> Select[Any]:
    """Documents issued in [start, end), with their charge (a credit note's through the
    receipt it credits), newest first."""
    original = aliased(Receipt)
    query = (
        select(Receipt, original.series, original.number, Charge.pk, Charge.party_pk,
               Charge.cpo_country_code, Charge.cpo_party_id, Charge.location_id,
               Charge.energy_kwh, Charge.public_id)
        .outerjoin(original, original.pk == Receipt.credits_pk)
        .outerjoin(Charge, Charge.receipt_pk == func.coalesce(Receipt.credits_pk, Receipt.pk))
    )
    if start is not None:
        query = query.where(Receipt.issued_at >= start)
    if end is not None:
        query = query.where(Receipt.issued_at < end)
    if kind == "receipt":
        query = query.where(Receipt.credits_pk.is_(None))
    elif kind == "credit_note":
        query = query.where(Receipt.credits_pk.is_not(None))
    return query.order_by(Receipt.issued_at.desc(), Receipt.pk.desc())


class Names:
    """CPO and site names, read once per listing (there are few, documents are many)."""

    def __init__(self) -> None:
        self.parties = {p.pk: p.name for p in db.session.scalars(select(Party))}
        self.sites: dict[tuple[str, str, str], str] = {}
        for row in db.session.scalars(select(OcpiLocation)):
            data = row.data
            self.sites[(row.country_code, row.party_id, row.location_id)] = str(
                data.get("name") or data.get("address") or row.location_id)

    def cpo(self, party_pk: int | None, country: str | None, party_id: str | None) -> str:
        if party_pk is None:
            return ""
        name = self.parties.get(party_pk, "")
        return f"{name} ({country}*{party_id})" if country and party_id else name

    def site(self, country: str | None, party_id: str | None, location_id: str | None) -> str:
        if not location_id:
            return ""
        return self.sites.get((country or "", party_id or "", location_id), location_id)


def document_from_row(row: Any, names: Names) -> Document:
    receipt: Receipt = row[0]
    details = receipt.details or {}
    kwh = Decimal(0)
    if receipt.credits_pk is None:
        try:
            kwh = Decimal(str(details.get("energy_kwh") or row[8] or 0))
        except InvalidOperation:
            kwh = Decimal(row[8] or 0)
    return Document(
        pk=receipt.pk, series=receipt.series, number=receipt.number,
        issued_at=receipt.issued_at, currency=receipt.currency,
        total_minor=receipt.total_minor, net_minor=receipt.net_minor,
        vat_minor=receipt.vat_minor, vat_rate=Decimal(receipt.vat_rate),
        credits_number=f"{row[1]}-{row[2]:06d}" if receipt.credits_pk is not None and row[1]
        else (str(details.get("credits") or "?") if receipt.credits_pk is not None else None),
        reason=str(details.get("reason") or "") if receipt.credits_pk is not None else "",
        payment_reference=receipt.payment_reference or "",
        vat_lines=vat_lines(receipt.total_minor, receipt.net_minor, receipt.vat_minor,
                            Decimal(receipt.vat_rate), details),
        energy_kwh=kwh, charge_pk=row[3], charge_public_id=row[9],
        cpo=names.cpo(row[4], row[5], row[6]), site=names.site(row[5], row[6], row[7]),
    )


def stream_documents(start: datetime | None = None, end: datetime | None = None,
                     kind: str | None = None, oldest_first: bool = False) -> Iterator[Document]:
    """Every document of [start, end), a batch at a time (for reports and exports)."""
    names = Names()
    query = documents_query(start, end, kind)
    if oldest_first:
        query = query.order_by(None).order_by(Receipt.issued_at, Receipt.pk)
    for row in db.session.execute(query.execution_options(yield_per=STREAM_BATCH)):
        yield document_from_row(row, names)


# --- The gap check ------------------------------------------------------------------------


@dataclass(frozen=True)
class Gap:
    series: str
    first: int  # the first missing number
    last: int  # the last missing number

    @property
    def count(self) -> int:
        return self.last - self.first + 1


@dataclass(frozen=True)
class Duplicate:
    series: str
    number: int
    times: int


@dataclass(frozen=True)
class SeriesCheck:
    series: str
    documents: int
    highest: int
    next_number: int | None  # what the series' counter will give next
    gaps: list[Gap]
    duplicates: list[Duplicate]

    @property
    def missing(self) -> int:
        return sum(gap.count for gap in self.gaps)

    @property
    def counter_behind(self) -> bool:
        """The next number issued would be one already used."""
        return self.next_number is not None and self.next_number <= self.highest

    @property
    def unbroken(self) -> bool:
        return not self.gaps and not self.duplicates and not self.counter_behind


def gap_check(limit: int = 1000) -> list[SeriesCheck]:
    """Every series: its missing numbers as ranges (before the first document, between two,
    and numbers the counter gave out after the last) and every number used twice.

    The database does the reading: one window query (each number beside the one before it)
    finds the gaps, one GROUP BY the duplicates; only the anomalies (at most `limit` of each
    kind per check) come back, so it costs the same at 100,000 documents as at ten.
    """
    numbered = select(
        Receipt.series.label("series"), Receipt.number.label("number"),
        func.lag(Receipt.number).over(partition_by=Receipt.series,
                                      order_by=Receipt.number).label("previous"),
    ).subquery()
    previous = func.coalesce(numbered.c.previous, 0)
    gap_rows = db.session.execute(
        select(numbered.c.series, previous + 1, numbered.c.number - 1)
        .where(numbered.c.number - previous > 1)
        .order_by(numbered.c.series, numbered.c.number).limit(limit)
    ).all()
    duplicate_rows = db.session.execute(
        select(Receipt.series, Receipt.number, func.count())
        .group_by(Receipt.series, Receipt.number).having(func.count() > 1)
        .order_by(Receipt.series, Receipt.number).limit(limit)
    ).all()
    totals = db.session.execute(
        select(Receipt.series, func.count(), func.max(Receipt.number)).group_by(Receipt.series)
    ).all()
    counters = dict(db.session.execute(
        select(ReceiptSequence.series, ReceiptSequence.next_number)).tuples().all())
    checks = []
    for series, documents, highest in sorted(totals):
        gaps = [Gap(s, int(first), int(last)) for s, first, last in gap_rows if s == series]
        following = counters.get(series)
        if following is not None and following - 1 > highest:
            # Numbers taken from the counter whose documents are not there.
            gaps.append(Gap(series, highest + 1, following - 1))
        checks.append(SeriesCheck(
            series=series, documents=int(documents), highest=int(highest),
            next_number=following, gaps=gaps,
            duplicates=[Duplicate(s, int(n), int(t)) for s, n, t in duplicate_rows
                        if s == series]))
    return checks


# --- What a page or export was asked for ----------------------------------------------------


def parse_day(text: str | None) -> date | None:
    """A date typed in a form (YYYY-MM-DD), or None when it is empty or no date."""
    try:
        return date.fromisoformat((text or "").strip()) if text else None
    except ValueError:
        return None


def utc_bounds(first: date | None, last: date | None,
               zone: ZoneInfo) -> tuple[datetime | None, datetime | None]:
    """[first 00:00, the day after last 00:00) in `zone`, as UTC moments (inclusive days)."""
    start = midnight_utc(first, zone) if first else None
    end = midnight_utc(last + timedelta(days=1), zone) if last else None
    return start, end
