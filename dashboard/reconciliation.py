"""Reconciliation with the payment provider (permission: reports): per day in the operator's
time zone, what ScanCharge captured and refunded against the provider's balance
transactions and payouts, every difference listed with a link to its charge; the
differences as CSV (permission: exports, recorded in the audit log).

The comparison itself is the domain's read model (charging/reconciliation.py); this module
chooses the days, puts the kinds and the provider's errors in words, and writes the CSV.
"""

from __future__ import annotations

import csv
import io
from datetime import date, datetime, timedelta

from flask import Response, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext

import i18n
from charging import reconciliation as model
from dashboard.audit import record
from dashboard.blueprint import bp
from dashboard.formatting import operator_zone
from dashboard.permissions import requires
from extensions import db
from payments.gateway import PaymentError
from payments.money import from_minor
from payments.setup import current_gateway

DEFAULT_DAYS = 7
YEARS = (1971, 9998)  # the provider's books start in 1970, Unix time


def kind_words(kind: str) -> str:
    return {
        model.CAPTURE_NOT_AT_PROVIDER: gettext(
            "Captured here, but the provider has no transaction for it"),
        model.PAYMENT_UNKNOWN_HERE: gettext(
            "A payment at the provider that ScanCharge has no capture for"),
        model.AMOUNT_DIFFERS: gettext("The captured amount differs"),
        model.CURRENCY_DIFFERS: gettext("The currency differs"),
        model.REFUND_NOT_AT_PROVIDER: gettext(
            "Refunded here, but the provider has no refund for it"),
        model.REFUND_UNKNOWN_HERE: gettext(
            "A refund at the provider that ScanCharge did not record"),
        model.REFUND_AMOUNT_DIFFERS: gettext("The refunded amount differs"),
        model.PAYOUT_DIFFERS: gettext(
            "The payout is not the net of the transactions it pays out"),
    }.get(kind, kind)


def kind_advice(kind: str) -> str:
    """What the operator does about a difference of this kind."""
    return {
        model.CAPTURE_NOT_AT_PROVIDER: gettext(
            "Look the PaymentIntent up in the provider's dashboard: if it shows no capture, "
            "the driver was not charged."),
        model.PAYMENT_UNKNOWN_HERE: gettext(
            "If a charge is linked, its capture was not recorded here: open it and check "
            "its timeline. Otherwise the payment was made outside ScanCharge."),
        model.AMOUNT_DIFFERS: gettext(
            "Compare the charge's receipt with the payment in the provider's dashboard."),
        model.CURRENCY_DIFFERS: gettext(
            "The provider converted the payment: the account settles in another currency."),
        model.REFUND_NOT_AT_PROVIDER: gettext(
            "Check the refund in the provider's dashboard; the driver may not have had the "
            "money back."),
        model.REFUND_UNKNOWN_HERE: gettext(
            "Someone refunded in the provider's dashboard: no credit note was issued for it."),
        model.REFUND_AMOUNT_DIFFERS: gettext(
            "Compare the credit note with the refund in the provider's dashboard."),
        model.PAYOUT_DIFFERS: gettext(
            "Ask the provider's support about the payout; keep its id at hand."),
    }.get(kind, "")


def provider_problem(exc: PaymentError) -> dict[str, str]:
    """The provider's error in words, with what to do about it."""
    if exc.category == "connection":
        words = gettext("ScanCharge could not reach Stripe.")
        todo = gettext("Check the server's internet connection and status.stripe.com, then "
                       "reload this page in a few minutes.")
    elif exc.category == "authentication":
        words = gettext("Stripe refused ScanCharge's API key.")
        todo = gettext("Check STRIPE_SECRET_KEY in the settings (a restricted key needs read "
                       "access to balance transactions and payouts) and restart ScanCharge.")
    elif exc.category == "rate_limit":
        words = gettext("Stripe asked ScanCharge to slow down.")
        todo = gettext("Wait a minute, then reload this page.")
    elif exc.retryable:
        words = gettext("Stripe had a problem answering.")
        todo = gettext("Reload this page in a few minutes; if it lasts, see status.stripe.com.")
    else:
        words = gettext("Stripe refused to show its books.")
        todo = gettext("Give the details below to whoever runs ScanCharge.")
    return {"words": words, "todo": todo, "detail": str(exc)}


def chosen_days() -> tuple[date, date, str | None]:
    """The range asked for (from, to: local dates, both included), the last 7 days by
    default, and what is wrong with it."""
    today = datetime.now(operator_zone()).date()
    default_first = today - timedelta(days=DEFAULT_DAYS - 1)
    try:
        first = date.fromisoformat(request.args.get("from") or default_first.isoformat())
        last = date.fromisoformat(request.args.get("to") or today.isoformat())
    except ValueError:
        return default_first, today, gettext("Give the days as dates (YYYY-MM-DD).")
    if not (YEARS[0] <= first.year and last.year <= YEARS[1]):
        # Year 1 or 9999 has no day before or after it to read the books from (a 500).
        return default_first, today, gettext("Give the days as dates (YYYY-MM-DD).")
    if last < first:
        return first, last, gettext("The last day comes before the first.")
    if (last - first).days >= model.MAX_DAYS:
        return first, last, gettext("At most %(days)s days at a time.", days=model.MAX_DAYS)
    return first, last, None


@bp.get("/reconciliation")
@requires("reports")
def reconciliation() -> ResponseReturnValue:
    first, last, problem = chosen_days()
    result, failure = None, None
    if problem is None:
        try:
            result = model.reconcile(current_gateway(), first, last, operator_zone())
        except PaymentError as exc:
            failure = provider_problem(exc)
    status = 400 if problem else 502 if failure else 200
    return render_template(
        "dashboard/reconciliation.html", first=first, last=last, problem=problem,
        failure=failure, result=result, kind_words=kind_words, kind_advice=kind_advice,
        fmt_date=lambda day: i18n.format_day(day, i18n.current_language()),
        csv_url=_csv_url(first, last),
    ), status


def _csv_url(first: date, last: date) -> str:
    # "from" is a Python keyword, so the arguments go in as a dict.
    days: dict[str, str] = {"from": first.isoformat(), "to": last.isoformat()}
    return url_for("dashboard.reconciliation_csv", **days)  # type: ignore[arg-type]


CSV_COLUMNS = ("day", "kind", "what", "currency", "ours", "provider", "difference", "charge",
               "payment_intent", "provider_transaction", "provider_refund", "payout")


def _amount(minor: int | None, currency: str) -> str:
    """A spreadsheet's number: the major units with a point, no currency sign."""
    if minor is None:
        return ""
    return str(from_minor(minor, currency))


def differences_csv(result: model.Reconciliation) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for d in result.differences:
        writer.writerow([
            d.day.isoformat(), d.kind, kind_words(d.kind), d.currency,
            _amount(d.ours_minor, d.currency), _amount(d.theirs_minor, d.currency),
            _amount(d.difference_minor, d.currency), d.charge_id or "", d.hold_id or "",
            d.transaction_id or "", d.refund_id or "", d.payout_id or "",
        ])
    return out.getvalue()


@bp.get("/reconciliation.csv")
@requires("exports")
def reconciliation_csv() -> ResponseReturnValue:
    first, last, problem = chosen_days()
    if problem is not None:
        return Response(problem, status=400, mimetype="text/plain")
    try:
        result = model.reconcile(current_gateway(), first, last, operator_zone())
    except PaymentError as exc:
        failure = provider_problem(exc)
        return Response(f"{failure['words']} {failure['todo']}\n{failure['detail']}\n",
                        status=502, mimetype="text/plain")
    record("export", target=f"reconciliation {first.isoformat()}..{last.isoformat()}",
           detail=f"{len(result.differences)} differences, gateway {result.gateway}")
    db.session.commit()
    # A byte order mark, so a spreadsheet opens the file as UTF-8.
    body = "\ufeff" + differences_csv(result)
    filename = f"reconciliation-{first.isoformat()}-{last.isoformat()}.csv"
    return Response(body, mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})
