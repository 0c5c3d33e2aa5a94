"""Operator commands for charges: look one up, stop it, refund it.

    flask --app app charges show CHARGE_ID
    flask --app app charges stop CHARGE_ID [--yes]
    flask --app app charges refund CHARGE_ID [--amount 12.50] --reason TEXT [--operator EMAIL]

CHARGE_ID is the charge's id as the dashboard and the driver's link show it; the payment's
id (pi_...) works too. An id may start with "-": put it after "--", options first:
    flask --app app charges refund --reason "..." -- -x3Fq...
"""

from __future__ import annotations

import getpass
from decimal import Decimal, InvalidOperation

import click
from flask import Flask, current_app
from flask.cli import AppGroup
from sqlalchemy import select

from charging import driver_actions, refunds
from charging.errors import DriverError
from charging.models import Charge, ChargeEvent
from charging.unit_of_work import unit_of_work
from extensions import db
from payments.gateway import REFUND_CATEGORIES
from payments.models import Receipt
from payments.money import Money, exponent, to_minor

# The app.extensions key of the audit writer: (action, *, target, detail) -> None.
AUDIT_WRITER = "cli_audit"
charges = AppGroup("charges", help="Charges: show one, stop one, refund one.")


def register(app: Flask) -> None:
    app.cli.add_command(charges)


def _find(charge_id: str) -> Charge:
    charge = db.session.scalar(select(Charge).where(Charge.public_id == charge_id))
    if charge is None and charge_id.startswith("pi_"):
        charge = db.session.scalar(select(Charge).where(Charge.hold_id == charge_id))
    if charge is None:
        raise click.ClickException(
            f"no charge {charge_id!r}: use the id from the dashboard or the driver's link "
            "(/charge/<id>), or the payment's id (pi_...)"
        )
    return charge


def parse_amount(text: str, currency: str) -> int:
    """'12.50' (or '12,50') in major units of `currency` -> minor units, exactly."""
    cleaned = text.strip().replace(",", ".")
    try:
        amount = Decimal(cleaned)
    except InvalidOperation:
        raise click.BadParameter(f"{text!r} is not an amount; write it like 12.50",
                                 param_hint="--amount") from None
    if not amount.is_finite() or amount <= 0:
        raise click.BadParameter("the amount must be more than zero", param_hint="--amount")
    digits = exponent(currency)
    if amount != amount.quantize(Decimal(1).scaleb(-digits)):
        raise click.BadParameter(
            f"{currency} has {digits} decimals; {text!r} has more", param_hint="--amount")
    return to_minor(amount, currency)


@charges.command("refund")
@click.argument("charge_id")
@click.option("--amount", help="Amount to refund in major units (12.50); "
                               "default: everything not yet refunded.")
@click.option("--reason", required=True, help="Why: on the timeline and the credit note.")
@click.option("--operator", default=None,
              help="Who refunds (an e-mail address); default: cli:<your login>.")
@click.option("--category", type=click.Choice(REFUND_CATEGORIES),
              default="requested_by_customer", show_default=True,
              help="Stripe's reason for the refund.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
def refund_command(charge_id: str, amount: str | None, reason: str, operator: str | None,
                   category: str, yes: bool) -> None:
    """Refund a captured charge, in full or in part, and issue its credit note.

    A CHARGE_ID starting with "-" goes last, after "--".
    """
    with unit_of_work():  # nothing is left open while the operator confirms
        charge = _find(charge_id)
        currency = charge.currency
        amount_minor = parse_amount(amount, currency) if amount is not None else None
        left = (charge.captured_minor or 0) - charge.refunded_minor
        what = Money(amount_minor if amount_minor is not None else left, currency).format("en")
        public_id = charge.public_id
    operator = operator or f"cli:{getpass.getuser()}"
    if not yes:
        click.confirm(f"Refund {what} of charge {public_id} to the card ({reason})?",
                      abort=True)
    try:
        result = refunds.refund(public_id, amount_minor, reason, operator,
                                category=category)  # type: ignore[arg-type]
    except refunds.RefundError as exc:
        raise click.ClickException(f"{exc} [{exc.code}]") from exc

    def fmt(minor: int) -> str:
        return Money(minor, result.currency).format("en")

    click.echo(
        ("Finished refund" if result.resumed else "Refunded")
        + f" #{result.sequence}: {fmt(result.amount_minor)} of charge {result.charge_id} "
        f"(gateway refund {result.gateway_refund_id}, {result.gateway_status})."
    )
    click.echo(f"Refunded in total: {fmt(result.refunded_minor)} of {fmt(result.captured_minor)}"
               f" captured; {fmt(result.remaining_minor)} left. Status {result.status}.")
    if result.credit_note_number:
        click.echo(f"Credit note {result.credit_note_number}.")
    _audit("refund", result.charge_id,
           f"#{result.sequence} {fmt(result.amount_minor)} by {operator}: {reason}"
           + (f"; credit note {result.credit_note_number}" if result.credit_note_number else ""))


def _audit(action: str, target: str, detail: str) -> None:
    """The command's row in the operators' audit log, in a unit of work of its own once
    the change it records is done. The writer is the app's (cli.register_cli puts
    dashboard.audit.record_command in app.extensions): the domain imports no dashboard."""
    writer = current_app.extensions[AUDIT_WRITER]
    with unit_of_work():
        writer(action, target=target, detail=detail)


@charges.command("stop")
@click.argument("charge_id")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
def stop_command(charge_id: str, yes: bool) -> None:
    """Stop charging on the driver's behalf (a charger to be freed, a driver who phoned):
    the stop is kept and sent as the driver's is, and the driver's page says the operator
    stopped it. A CHARGE_ID starting with "-" goes after "--"."""
    with unit_of_work():
        charge = _find(charge_id)
        pk, public_id, status = charge.pk, charge.public_id, charge.status
    if status not in {"STARTING", "CHARGING", "STOPPING"}:
        raise click.ClickException(f"charge {public_id} is {status}: nothing to stop")
    if not yes:
        click.confirm(f"Stop charge {public_id}? The driver pays for what was charged so far.",
                      abort=True)
    try:
        stopped = driver_actions.request_stop(pk, by="operator")
    except DriverError as exc:
        raise click.ClickException(f"charge {public_id} is {exc.detail}: nothing to stop "
                                   f"[{exc.code}]") from exc
    click.echo(f"Stop requested for charge {public_id} (status {stopped.status}).")
    _audit("stop", public_id, f"was {status}")


@charges.command("show")
@click.argument("charge_id")
def show_command(charge_id: str) -> None:
    """Status, amounts, receipt and credit notes, refunds, and the timeline of a charge.

    A CHARGE_ID starting with "-" goes after "--".
    """
    charge = _find(charge_id)

    def fmt(minor: int | None) -> str:
        return "-" if minor is None else Money(minor, charge.currency).format("en")

    click.echo(f"Charge {charge.public_id}  {charge.status}"
               + (f"  FLAG {charge.failure_code}: {charge.failure_detail or ''}"
                  if charge.failure_code else ""))
    click.echo(f"  charger     {charge.evse_id} connector {charge.connector_id}")
    click.echo(f"  created     {charge.created_at:%Y-%m-%d %H:%M:%S} UTC")
    click.echo(f"  payment     {charge.gateway} {charge.hold_id or '-'}"
               + (f"  {charge.card_brand or 'card'} {charge.card_last4}"
                  if charge.card_last4 else ""))
    click.echo(f"  held        {fmt(charge.hold_minor)}")
    click.echo(f"  captured    {fmt(charge.captured_minor)}")
    click.echo(f"  refunded    {fmt(charge.refunded_minor)}")
    if charge.captured_minor:
        click.echo(f"  refundable  {fmt(charge.captured_minor - charge.refunded_minor)}")
    if charge.email:
        click.echo(f"  e-mail      {charge.email}")
    receipt = db.session.get(Receipt, charge.receipt_pk) if charge.receipt_pk else None
    if receipt is not None:
        click.echo(f"  receipt     {receipt.display_number}  {fmt(receipt.total_minor)}"
                   f"  issued {receipt.issued_at:%Y-%m-%d %H:%M} UTC"
                   + (f"  e-mailed {receipt.sent_at:%Y-%m-%d %H:%M} UTC"
                      if receipt.sent_at else ""))
        for note in receipt.credit_notes:
            click.echo(f"  credit note {note.display_number}  {fmt(note.total_minor)}"
                       f"  issued {note.issued_at:%Y-%m-%d %H:%M} UTC")
    rows = refunds.refunds_of(charge.public_id)
    if rows:
        click.echo("Refunds:")
        for row in rows:
            click.echo(f"  #{row.sequence}  {row.state:<9} {fmt(row.amount_minor):>12}  "
                       f"{row.created_at:%Y-%m-%d %H:%M}  {row.operator}  {row.reason}"
                       + (f"  ({row.gateway_refund_id})" if row.gateway_refund_id else "")
                       + (f"  error: {row.error}" if row.error else ""))
            if row.state == "started":
                click.echo("      not finished: run the same refund again to finish it")
    click.echo("Timeline:")
    events = db.session.scalars(
        select(ChargeEvent).where(ChargeEvent.charge_pk == charge.pk).order_by(ChargeEvent.pk)
    ).all()
    for event in events:
        move = (f"{event.from_status or '-'} -> {event.to_status}"
                if event.from_status != event.to_status else f"   {event.to_status}")
        click.echo(f"  {event.at:%Y-%m-%d %H:%M:%S}  {move:<26} {event.cause:<8} "
                   f"{event.cause_ref or '':<24} {event.note or ''}")
