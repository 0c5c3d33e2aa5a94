"""The charges list as the operator's search tool: one box that finds a charge by any id a
driver, a CPO or the payment provider may quote, filters (status, flag, CPO, site, dates in
the operator's time zone), a sort, pages, and the totals of everything the filter matches.

Everything is in the query string, so a search is a link an operator can share. The totals
are SQL aggregates over the whole match (not the page), one row per currency: amounts of
different currencies are never added together.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from flask import render_template, request
from flask_babel import gettext
from sqlalchemy import (
    ColumnElement,
    CompoundSelect,
    and_,
    func,
    not_,
    or_,
    select,
    union,
)

from charging.models import Charge, ChargeEvent
from charging.states import ChargeStatus
from dashboard.blueprint import PAGE_SIZE, bp
from dashboard.formatting import operator_zone
from dashboard.permissions import requires
from extensions import db
from ocpi.models import OcpiCdr, OcpiLocation, Party
from payments.models import Receipt

# A charge whose card was declined and that was never paid shows as this, not as CREATED.
DECLINED = "DECLINED"
NEVER_PAID = (ChargeStatus.CREATED.value, ChargeStatus.EXPIRED.value,
              ChargeStatus.CANCELLED.value)
# charging/payment_events.on_hold_failed notes a decline on the timeline in these words.
DECLINE_NOTE = "payment failed%"
ANY_FLAG = "any"
# A public id is found by its beginning, but not by so few characters that it is a guess.
MIN_ID_PREFIX = 4
SORTS = ("newest", "oldest", "amount", "kwh")
# How the receipt number is printed (payments.models.Receipt.display_number): SERIES-000123.
RECEIPT_NUMBER = re.compile(r"(?P<series>[^\s-]+)-(?P<number>\d{1,12})")
# The last four digits as an operator may copy them from a receipt: "•••• 4242", "*4242".
CARD_DIGITS = re.compile(r"[*•·xX.\s]*(?P<last4>\d{4})")


@dataclass
class ChargeSearch:
    """What the operator asked for, read from the query string; values that do not parse
    are dropped with a word in `problems` rather than failing the page."""

    q: str = ""
    status: str | None = None
    flag: str | None = None
    party: int | None = None
    site: int | None = None
    date_from: date | None = None
    date_to: date | None = None
    sort: str = "newest"
    page: int = 1
    problems: list[str] = field(default_factory=list)

    @classmethod
    def from_args(cls, args: Mapping[str, str]) -> ChargeSearch:
        search = cls(q=" ".join((args.get("q") or "").split()))
        status = (args.get("status") or "").upper()
        if status in {s.value for s in ChargeStatus} | {DECLINED}:
            search.status = status
        search.flag = (args.get("flag") or "").strip() or None
        search.party = _positive(args.get("party"))
        search.site = _positive(args.get("site"))
        search.date_from = search._day(args, "from")
        search.date_to = search._day(args, "to")
        if search.date_from and search.date_to and search.date_from > search.date_to:
            search.problems.append(gettext("The “from” date is after the “to” date."))
        sort = args.get("sort") or "newest"
        search.sort = sort if sort in SORTS else "newest"
        search.page = _positive(args.get("page")) or 1
        return search

    def _day(self, args: Mapping[str, str], name: str) -> date | None:
        text = (args.get(name) or "").strip()
        if not text:
            return None
        try:
            return date.fromisoformat(text)
        except ValueError:
            self.problems.append(gettext("“%(text)s” is not a date: write it as 2026-11-21.",
                                         text=text))
            return None

    def link_args(self) -> dict[str, str]:
        """The query string of this search without its page: for page links and sorts."""
        values = {
            "q": self.q, "status": self.status, "flag": self.flag,
            "party": self.party, "site": self.site,
            "from": self.date_from.isoformat() if self.date_from else None,
            "to": self.date_to.isoformat() if self.date_to else None,
            "sort": None if self.sort == "newest" else self.sort,
        }
        return {key: str(value) for key, value in values.items() if value}

    @property
    def narrowed(self) -> bool:
        return any(key != "sort" for key in self.link_args())


def _positive(text: str | None) -> int | None:
    return int(text) if text and text.isdigit() and int(text) > 0 else None


def local_midnight_utc(day: date) -> datetime:
    """The start of a day in the operator's time zone, as the UTC instant stored times use."""
    return datetime.combine(day, time(), tzinfo=operator_zone()).astimezone(UTC)


def declined_clause() -> ColumnElement[bool]:
    """The card was declined and the charge never paid: what a driver who gave up after a
    refused card leaves behind (it would otherwise read as a plain CREATED row)."""
    event = ChargeEvent
    declined = select(event.pk).where(
        event.charge_pk == Charge.pk, event.cause == "payment", event.note.like(DECLINE_NOTE),
    ).exists()
    paid = select(event.pk).where(
        event.charge_pk == Charge.pk, event.to_status == ChargeStatus.AUTHORIZED.value,
    ).exists()
    return and_(Charge.status.in_(NEVER_PAID), declined, not_(paid))


def _escaped_like(text: str) -> str:
    # "/" as the escape character, as SQLAlchemy's autoescape: a backslash would be doubled
    # or not depending on the PostgreSQL connection's standard_conforming_strings.
    return text.replace("/", "//").replace("%", "/%").replace("_", "/_")


def matching_ids(term: str) -> CompoundSelect[tuple[int]]:
    """The pks of the charges an id names: each look-up on an index of its own (see the
    indexes on charges, receipts and ocpi_cdrs), joined with UNION so none of them scans."""
    low = term.lower()
    lookups = [
        select(Charge.pk).where(func.lower(Charge.evse_id) == low),
        select(Charge.pk).where(func.lower(Charge.email) == low),
        select(Charge.pk).where(func.lower(Charge.hold_id) == low),
        select(Charge.pk).where(func.lower(Charge.session_id) == low),
        # CDR ids are stored upper-cased, as OCPI's case-insensitive strings (ocpi/store.py).
        select(Charge.pk).where(Charge.cdr_pk.in_(
            select(OcpiCdr.pk).where(OcpiCdr.cdr_id == term.upper()))),
    ]
    if len(term) >= MIN_ID_PREFIX:
        lookups.append(select(Charge.pk).where(
            func.lower(Charge.public_id).like(_escaped_like(low) + "%", escape="/")))
    else:
        lookups.append(select(Charge.pk).where(func.lower(Charge.public_id) == low))
    if card := CARD_DIGITS.fullmatch(term):
        lookups.append(select(Charge.pk).where(Charge.card_last4 == card["last4"]))
    if receipt := RECEIPT_NUMBER.fullmatch(term):
        # A credit note's number finds the charge of the receipt it credits.
        lookups.append(select(Charge.pk).where(Charge.receipt_pk.in_(
            select(func.coalesce(Receipt.credits_pk, Receipt.pk)).where(
                Receipt.number == int(receipt["number"]),
                func.lower(Receipt.series) == receipt["series"].lower(),
            ))))
    return union(*lookups)


def conditions(search: ChargeSearch, site: OcpiLocation | None) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = []
    if search.q:
        # The ids are looked up first and their few charges named by pk: as a subquery, the
        # planner guesses the union's size from its parts (a CDR join guessed as every
        # charge) and reads the whole table to join it.
        where.append(Charge.pk.in_(db.session.scalars(matching_ids(search.q)).all()))
    if search.status == DECLINED:
        where.append(declined_clause())
    elif search.status in NEVER_PAID:
        where.extend([Charge.status == search.status, not_(declined_clause())])
    elif search.status:
        where.append(Charge.status == search.status)
    if search.flag == ANY_FLAG:
        where.append(Charge.failure_code.is_not(None))
    elif search.flag:
        where.append(Charge.failure_code == search.flag)
    if search.party:
        where.append(Charge.party_pk == search.party)
    if site is not None:
        where.extend([Charge.party_pk == site.party_pk, Charge.location_id == site.location_id])
    if search.date_from:
        where.append(Charge.created_at >= local_midnight_utc(search.date_from))
    if search.date_to:
        where.append(Charge.created_at < local_midnight_utc(search.date_to + timedelta(days=1)))
    return where


def _order(sort: str) -> list[Any]:
    if sort == "oldest":
        return [Charge.created_at.asc(), Charge.pk.asc()]
    if sort == "amount":
        return [Charge.captured_minor.desc().nulls_last(), Charge.pk.desc()]
    if sort == "kwh":
        return [Charge.energy_kwh.desc(), Charge.pk.desc()]
    return [Charge.created_at.desc(), Charge.pk.desc()]


@dataclass(frozen=True)
class Totals:
    """What the matched charges add up to, in one currency."""

    currency: str
    count: int
    kwh: Decimal
    captured_minor: int
    refunded_minor: int
    net_minor: int
    vat_minor: int


def totals(where: list[ColumnElement[bool]]) -> list[Totals]:
    """Count, energy, money captured, refunded and net, and the VAT of the receipts less
    that of their credit notes: per currency, over every charge the filter matches."""
    captured = func.coalesce(func.sum(Charge.captured_minor), 0)
    refunded = func.coalesce(func.sum(Charge.refunded_minor), 0)
    sums = db.session.execute(
        select(Charge.currency, func.count(), func.coalesce(func.sum(Charge.energy_kwh), 0),
               captured, refunded, captured - refunded)
        .where(*where).group_by(Charge.currency).order_by(Charge.currency)
    ).tuples().all()
    # Credit notes carry negative VAT: the sum is the VAT of what was kept.
    vat = dict(db.session.execute(
        select(Charge.currency, func.coalesce(func.sum(Receipt.vat_minor), 0))
        .join(Receipt, or_(Receipt.pk == Charge.receipt_pk,
                           Receipt.credits_pk == Charge.receipt_pk))
        .where(*where).group_by(Charge.currency)
    ).tuples().all())
    return [Totals(currency, int(count), Decimal(kwh), int(cap or 0), int(ref), int(net or 0),
                   int(vat.get(currency) or 0))
            for currency, count, kwh, cap, ref, net in sums]


def status_counts() -> dict[str, int]:
    """Charges per status over all charges, a declined card counted as its own status.

    Counted by status alone (an index-only scan of ix_charges_status_updated_at); only the
    never-paid statuses are looked into for declines, so the page never reads every charge's
    timeline."""
    counts = {status: count for status, count in db.session.execute(
        select(Charge.status, func.count()).group_by(Charge.status)).tuples()}
    declined = db.session.execute(
        select(Charge.status, func.count()).where(declined_clause()).group_by(Charge.status)
    ).tuples().all()
    for status, count in declined:
        counts[status] -= count
        counts[DECLINED] = counts.get(DECLINED, 0) + count
    return counts


def sites() -> list[tuple[int, str]]:
    """Every stored location, as (pk, "CPO · name") for the site filter."""
    rows = db.session.execute(
        select(OcpiLocation, Party.name).join(Party, OcpiLocation.party_pk == Party.pk)
        .order_by(Party.name, OcpiLocation.location_id)
    ).tuples().all()
    return [(location.pk, f"{party} · {site_name(location)}") for location, party in rows]


def site_name(location: OcpiLocation) -> str:
    data = location.data
    return str(data.get("name") or data.get("address") or location.location_id)


@dataclass(frozen=True)
class Listing:
    """What a page of results shows beside each charge."""

    declined: set[int]
    receipts: dict[int, str]
    parties: dict[int, str]
    sites: dict[tuple[int, str], str]
    waiting: dict[int, Any]


def listing(rows: list[Charge]) -> Listing:
    from charging.deadlines import start_commands, waiting_for

    commands = start_commands(rows)
    pks = [c.pk for c in rows]
    declined = set(db.session.scalars(
        select(Charge.pk).where(Charge.pk.in_(pks), declined_clause())))
    receipt_pks = [c.receipt_pk for c in rows if c.receipt_pk is not None]
    receipts = {r.pk: r.display_number for r in db.session.scalars(
        select(Receipt).where(Receipt.pk.in_(receipt_pks)))}
    parties = {p.pk: p.name for p in db.session.scalars(select(Party))}
    places = {(c.party_pk, c.location_id) for c in rows}
    locations = db.session.scalars(select(OcpiLocation).where(
        OcpiLocation.party_pk.in_({party for party, _ in places}),
        OcpiLocation.location_id.in_({location for _, location in places}))).all()
    return Listing(declined=declined, receipts=receipts, parties=parties,
                   sites={(loc.party_pk, loc.location_id): site_name(loc) for loc in locations},
                   waiting={c.pk: waiting_for(c, commands) for c in rows})


@bp.get("/")
@requires("view")
def charges() -> str:
    search = ChargeSearch.from_args(request.args)
    site = db.session.get(OcpiLocation, search.site) if search.site else None
    if search.site and site is None:
        search.problems.append(gettext("That site is not stored any more: every site is shown."))
        search.site = None
    where = conditions(search, site)
    sums = totals(where)
    total = sum(t.count for t in sums)
    pages = max(1, -(-total // PAGE_SIZE))
    page = min(search.page, pages)
    rows = list(db.session.scalars(
        select(Charge).where(*where).order_by(*_order(search.sort))
        .offset((page - 1) * PAGE_SIZE).limit(PAGE_SIZE)))
    flags = db.session.scalars(
        select(Charge.failure_code).where(Charge.failure_code.is_not(None))
        .group_by(Charge.failure_code).order_by(Charge.failure_code)).all()
    return render_template(
        "dashboard/charges.html", search=search, charges=rows, total=total, page=page,
        pages=pages, totals=sums, counts=status_counts(), statuses=[s.value for s in ChargeStatus],
        declined_status=DECLINED, any_flag=ANY_FLAG, flags=flags, sorts=SORTS,
        parties=db.session.scalars(select(Party).order_by(Party.name)).all(), sites=sites(),
        shown=listing(rows), link_args=search.link_args())
