"""The receipts and credit notes: the numbered series newest first, filtered by date (in the
operator's time zone) and kind, the series' gap check, and each document as the driver got
it (on a page, or the PDF)."""

from __future__ import annotations

from flask import Response, abort, render_template, request
from sqlalchemy import func, select

from dashboard import ledger
from dashboard.audit import record
from dashboard.blueprint import PAGE_SIZE, bp
from dashboard.formatting import operator_zone
from dashboard.permissions import requires
from extensions import db
from payments.models import Receipt

KINDS = ("receipt", "credit_note")


@bp.get("/receipts")
@requires("view")
def receipts() -> str:
    zone = operator_zone()
    first = ledger.parse_day(request.args.get("from"))
    last = ledger.parse_day(request.args.get("to"))
    kind = request.args.get("kind") if request.args.get("kind") in KINDS else None
    page = max(1, request.args.get("page", 1, type=int))
    start, end = ledger.utc_bounds(first, last, zone)
    query = ledger.documents_query(start, end, kind)
    total = db.session.execute(
        select(func.count()).select_from(query.order_by(None).subquery())).scalar_one()
    names = ledger.Names()
    rows = [ledger.document_from_row(row, names) for row in db.session.execute(
        query.offset((page - 1) * PAGE_SIZE).limit(PAGE_SIZE))]
    return render_template(
        "dashboard/receipts.html", documents=rows, total=total, page=page,
        pages=max(1, -(-total // PAGE_SIZE)), kind=kind,
        first=first.isoformat() if first else "", last=last.isoformat() if last else "",
        checks=ledger.gap_check())


def _document(pk: int) -> tuple[Receipt, Receipt]:
    """(the document asked for, the receipt it is printed on): a credit note is printed on
    the receipt it credits, as the driver sees it."""
    document = db.get_or_404(Receipt, pk)
    printed = db.session.get(Receipt, document.credits_pk) if document.is_credit_note \
        else document
    if printed is None:
        abort(404)
    return document, printed


@bp.get("/receipts/<int:pk>")
@requires("view")
def receipt_document(pk: int) -> str:
    from payments.receipt_document import build

    document, printed = _document(pk)
    # The operator reads the dashboard's language; the PDF is the driver's, in theirs.
    return render_template("dashboard/receipt.html", document=document, receipt=printed,
                           doc=build(printed, "en"))


@bp.get("/receipts/<int:pk>.pdf")
@requires("view")
def receipt_document_pdf(pk: int) -> Response:
    from payments.receipt_pdf import render_pdf

    document, printed = _document(pk)
    data = render_pdf(printed, printed.language)
    record("receipt_pdf", target=document.display_number,
           detail=f"printed on {printed.display_number}")
    db.session.commit()
    response = Response(data, mimetype="application/pdf")
    disposition = "attachment" if request.args.get("download") else "inline"
    response.headers["Content-Disposition"] = \
        f'{disposition}; filename="receipt-{printed.display_number}.pdf"'
    return response
