"""The accountant's downloads for a range of days (in the operator's zone): charges,
receipts and credit notes, the VAT summary per rate and period (CSV, dashboard/spreadsheet.py),
and the SIE 4 file of the sales and refunds (dashboard/bookkeeping.py, dashboard/sie.py).

Every export is recorded in the audit log (who took which books, for which days) before a
byte is sent; the files are streamed, so a year of charges never sits in memory whole.

Charges are listed by their internal number, not the public id: that id is the driver's
credential for the charge (charging/models.py) and a spreadsheet travels.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import date
from typing import Any

from flask import Response, render_template, request, stream_with_context
from flask_babel import gettext
from sqlalchemy import select
from sqlalchemy.orm import aliased

from charging.models import Charge
from dashboard import bookkeeping, formatting, ledger, sie, spreadsheet, summaries
from dashboard.audit import record
from dashboard.blueprint import bp
from dashboard.permissions import requires
from dashboard.reports import chosen_range
from extensions import db
from ocpi.models import OcpiCdr
from payments.models import Receipt
from payments.money import from_minor

STREAM_BATCH = 1000


def _download(name: str, chunks: Iterator[bytes], mimetype: str) -> Response:
    response = Response(stream_with_context(chunks), mimetype=mimetype)
    response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    response.headers["Cache-Control"] = "no-store"  # the books, not for a shared cache
    return response


def _recorded(what: str, period: str, first: date, last: date) -> None:
    record("export", target=what, detail=f"{first} to {last}, per {period}, "
                                         f"times in {formatting.zone_name()}")
    db.session.commit()


def _zoned(name: str) -> str:
    return f"{name} ({formatting.zone_name()})"


# --- Charges ------------------------------------------------------------------------------

CHARGE_COLUMNS = ("charge", "created", "status", "cpo", "site", "location_id", "evse_id",
                  "connector_id", "session_started", "session_ended", "energy_kwh",
                  "currency", "held", "captured", "refunded", "net", "receipt",
                  "payment_intent", "session_id", "cdr_id", "card_brand", "card_last4",
                  "flag")
ZONED_CHARGE_COLUMNS = {"created", "session_started", "session_ended"}


def _charge_rows(first: date, last: date) -> Iterator[Sequence[spreadsheet.Cell]]:
    zone = formatting.operator_zone()
    start, end = ledger.utc_bounds(first, last, zone)
    names = ledger.Names()
    receipt = aliased(Receipt)
    query = (select(Charge, receipt.series, receipt.number, OcpiCdr.cdr_id)
             .outerjoin(receipt, receipt.pk == Charge.receipt_pk)
             .outerjoin(OcpiCdr, OcpiCdr.pk == Charge.cdr_pk)
             .where(Charge.created_at >= start, Charge.created_at < end)
             .order_by(Charge.created_at, Charge.pk)
             .execution_options(yield_per=STREAM_BATCH))
    for c, series, number, cdr_id in db.session.execute(query):
        def money(minor: int | None, currency: str = c.currency) -> Any:
            return spreadsheet.amount(minor, currency)
        yield (c.pk, spreadsheet.stamp(c.created_at, zone), c.status,
               names.cpo(c.party_pk, c.cpo_country_code, c.cpo_party_id),
               names.site(c.cpo_country_code, c.cpo_party_id, c.location_id), c.location_id,
               c.evse_id, c.connector_id, spreadsheet.stamp(c.session_started_at, zone),
               spreadsheet.stamp(c.session_ended_at, zone), c.energy_kwh, c.currency,
               money(c.hold_minor), money(c.captured_minor), money(c.refunded_minor),
               money((c.captured_minor or 0) - c.refunded_minor),
               f"{series}-{number:06d}" if series else None, c.hold_id, c.session_id, cdr_id,
               c.card_brand, c.card_last4, c.failure_code)


@bp.get("/exports/charges.csv")
@requires("exports")
def export_charges() -> Response:
    period, first, last = chosen_range(request.args, capped=False)
    _recorded("charges.csv", period, first, last)
    header = [_zoned(n) if n in ZONED_CHARGE_COLUMNS else n for n in CHARGE_COLUMNS]
    return _download(f"charges-{first}-{last}.csv",
                     spreadsheet.rows_to_csv(header, _charge_rows(first, last)),
                     "text/csv; charset=utf-8")


# --- Receipts and credit notes ------------------------------------------------------------

DOCUMENT_COLUMNS = ("number", "kind", "issued", "credits", "currency", "total_incl_vat",
                    "net_excl_vat", "vat", "vat_rate", "charge", "cpo", "site",
                    "energy_kwh", "payment_reference", "reason")


def _document_rows(first: date, last: date) -> Iterator[Sequence[spreadsheet.Cell]]:
    zone = formatting.operator_zone()
    start, end = ledger.utc_bounds(first, last, zone)
    for d in ledger.stream_documents(start, end, oldest_first=True):
        yield (d.display_number, "credit_note" if d.is_credit_note else "receipt",
               spreadsheet.stamp(d.issued_at, zone), d.credits_number, d.currency,
               spreadsheet.amount(d.total_minor, d.currency),
               spreadsheet.amount(d.net_minor, d.currency),
               spreadsheet.amount(d.vat_minor, d.currency), d.vat_rate.normalize(),
               d.charge_pk, d.cpo, d.site, d.energy_kwh if not d.is_credit_note else None,
               d.payment_reference, d.reason or None)


@bp.get("/exports/receipts.csv")
@requires("exports")
def export_receipts() -> Response:
    period, first, last = chosen_range(request.args, capped=False)
    _recorded("receipts.csv", period, first, last)
    header = [_zoned(n) if n == "issued" else n for n in DOCUMENT_COLUMNS]
    return _download(f"receipts-{first}-{last}.csv",
                     spreadsheet.rows_to_csv(header, _document_rows(first, last)),
                     "text/csv; charset=utf-8")


# --- The VAT summary ----------------------------------------------------------------------

VAT_COLUMNS = ("period", "period_first_day", "period_last_day", "currency", "vat_rate",
               "sales_excl_vat", "sales_vat", "refunds_excl_vat", "refunds_vat",
               "balance_excl_vat", "balance_vat")


def _vat_rows(report: summaries.Report) -> Iterator[Sequence[spreadsheet.Cell]]:
    for currency in report.currencies:
        for start, totals in report.periods(currency):
            following = ledger.next_period(start, report.period)
            for rate, v in totals.rates():
                def money(minor: int, cur: str = currency) -> Any:
                    return from_minor(minor, cur)
                yield (report.label(start), start.isoformat(),
                       date.fromordinal(following.toordinal() - 1).isoformat(), currency,
                       rate, money(v.sales_net), money(v.sales_vat), money(v.refunds_net),
                       money(v.refunds_vat), money(v.net), money(v.vat))


@bp.get("/exports/vat.csv")
@requires("exports")
def export_vat() -> Response:
    period, first, last = chosen_range(request.args, capped=False)
    _recorded("vat.csv", period, first, last)
    # A summary has a row per period and rate: small, so it is added up before sending.
    report = summaries.for_range(period, first, last, formatting.operator_zone())
    return _download(f"vat-{period}-{first}-{last}.csv",
                     spreadsheet.rows_to_csv(VAT_COLUMNS, list(_vat_rows(report))),
                     "text/csv; charset=utf-8")


# --- SIE 4 --------------------------------------------------------------------------------


@bp.get("/exports/sie.se")
@requires("exports")
def export_sie() -> Response | tuple[str, int]:
    period, first, last = chosen_range(request.args, capped=False)
    try:
        book = bookkeeping.Book.from_config(first, last)
        vouchers = book.vouchers()
    except bookkeeping.CannotBook as problem:
        return render_template("dashboard/export_refused.html", problem=str(problem),
                               title=gettext("No SIE file for this range")), 422
    _recorded("sie", period, first, last)
    return _download(f"scancharge-{first}-{last}.se",
                     sie.document(book.company(), book.accounts(), vouchers),
                     "text/plain; charset=cp437")
