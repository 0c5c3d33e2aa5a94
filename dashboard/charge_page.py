"""A charge's page: its timeline, its money, its OCPI messages, its receipt and credit notes,
and what an operator may do to it (refund, resend the receipt, stop, unlock), each action
guarded by its permission, on the charge's timeline (by the domain) and in the audit log."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from flask import abort, flash, g, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext
from sqlalchemy import and_, or_, select

import i18n
from charging.models import Charge, ChargeEvent
from charging.operator_actions import actions_for
from charging.pricing import cdr_total
from charging.refunds import REFUNDABLE_STATES, RefundError, refunds_of
from dashboard.audit import record
from dashboard.blueprint import bp
from dashboard.permissions import requires
from extensions import db
from ocpi.models import OcpiCdr, OcpiMessage, Party
from payments.models import Receipt
from payments.money import Money, from_minor, to_minor

# A long charge gets a Session PATCH every few minutes: its page shows the latest ones.
CHARGE_MESSAGES = 200


def charge_or_404(public_id: str) -> Charge:
    charge = db.session.scalar(select(Charge).where(Charge.public_id == public_id))
    if charge is None:
        abort(404)
    return charge


def back_to(charge: Charge) -> ResponseReturnValue:
    """After an action: the page it was asked from (the inbox or the charge's own page);
    never a URL from the form, so no action redirects off the dashboard."""
    if request.form.get("back") == "attention":
        return redirect(url_for("dashboard.attention"))
    return redirect(url_for("dashboard.charge_detail", public_id=charge.public_id))


@dataclass(frozen=True)
class MoneySummary:
    currency: str
    held: int
    cost: Decimal | None  # the CDR's total, or the last Session's cost (major units)
    captured: int | None
    refunded: int
    vat: int | None  # VAT on what stays paid: the receipt's less its credit notes'

    @property
    def net(self) -> int:
        return (self.captured or 0) - self.refunded

    @property
    def refundable(self) -> int:
        return max(0, self.net)


def money_of(charge: Charge, receipt: Receipt | None) -> MoneySummary:
    cdr = db.session.get(OcpiCdr, charge.cdr_pk) if charge.cdr_pk is not None else None
    cost = cdr_total(cdr) if cdr is not None else charge.cost_incl_vat
    vat = None
    if receipt is not None:
        vat = receipt.vat_minor + sum(note.vat_minor for note in receipt.credit_notes)
    return MoneySummary(charge.currency, charge.hold_minor, cost, charge.captured_minor,
                        charge.refunded_minor, vat)


@bp.get("/charges/<public_id>")
@requires("view")
def charge_detail(public_id: str) -> str:
    from charging.deadlines import waiting_for

    charge = charge_or_404(public_id)
    events = db.session.scalars(
        select(ChargeEvent).where(ChargeEvent.charge_pk == charge.pk).order_by(ChargeEvent.pk)
    ).all()
    receipt = db.session.get(Receipt, charge.receipt_pk) if charge.receipt_pk else None
    logged = charge_messages(charge)
    return render_template(
        "dashboard/charge.html", charge=charge, events=events,
        party=db.session.get(Party, charge.party_pk), ocpi_messages=logged,
        more_messages=len(logged) >= CHARGE_MESSAGES, waiting=waiting_for(charge),
        receipt=receipt, refunds=refunds_of(charge.public_id), money=money_of(charge, receipt),
        refundable_state=charge.state in REFUNDABLE_STATES,
        new_credit_note=request.args.get("credit_note"), settle_actions=actions_for(charge),
    )


@bp.post("/charges/<public_id>/unlock")
@requires("unlock")
def unlock(public_id: str) -> ResponseReturnValue:
    from charging.operator_actions import unlock_connector

    charge = charge_or_404(public_id)
    answer = unlock_connector(charge.pk, g.operator.email)
    # The command is a network step of its own (charging/operator_actions.py): the audit row
    # records the request with the CPO's answer; its tries stand on the charge's timeline.
    record("unlock", target=charge.public_id, detail=f"connector {charge.connector_id}: {answer}")
    db.session.commit()
    if answer == "ACCEPTED":
        flash(gettext("The CPO accepted the unlock; its result appears under OCPI messages."))
    else:
        flash(gettext("The CPO did not accept the unlock (%(answer)s). See the timeline for its "
                      "words.", answer=answer))
    return back_to(charge)


@bp.post("/charges/<public_id>/stop")
@requires("stop")
def stop(public_id: str) -> ResponseReturnValue:
    from charging.operator_actions import OperatorActionError, stop_charge

    charge = charge_or_404(public_id)
    try:
        stop_charge(charge.pk, g.operator.email)
    except OperatorActionError as exc:
        flash(gettext("The charge was not stopped: %(why)s", why=str(exc)))
        return back_to(charge)
    record("stop", target=charge.public_id, detail=f"stop requested at {charge.evse_id}")
    db.session.commit()
    flash(gettext("Stop requested: STOP_SESSION goes to the CPO and is retried until the "
                  "charger confirms. The timeline shows each try."))
    return back_to(charge)


@bp.post("/charges/<public_id>/resend")
@requires("resend")
def resend(public_id: str) -> ResponseReturnValue:
    from charging.operator_actions import OperatorActionError, resend_receipt

    charge = charge_or_404(public_id)
    try:
        address = resend_receipt(charge.pk, g.operator.email)
    except OperatorActionError as exc:
        flash(gettext("The receipt was not sent: %(why)s", why=str(exc)))
        return back_to(charge)
    record("resend_receipt", target=charge.public_id, detail=f"to {address}")
    db.session.commit()
    flash(gettext("The receipt is being e-mailed again to %(address)s.", address=address))
    return back_to(charge)


def _refund_request(charge: Charge, remaining: int) -> tuple[int | None, str, str | None]:
    """(amount in minor units or None for all that is left, reason, what is wrong or None)
    from the refund form, the amount read as the operator's language writes numbers."""
    reason = (request.form.get("reason") or "").strip()
    typed = (request.form.get("amount") or "").strip()
    amount: int | None = None
    if typed:
        value = i18n.parse_amount(typed, charge.currency, i18n.current_language())
        if value is None:
            return None, reason, gettext("“%(typed)s” is not an amount.", typed=typed)
        amount = to_minor(value, charge.currency)
        if from_minor(amount, charge.currency) != value:
            # Rounding would refund another amount than the one typed ("12.345" or
            # "0.005" kronor, "12.50" yen): the operator says which they mean.
            return None, reason, gettext(
                "“%(typed)s” has more decimals than %(currency)s has.", typed=typed,
                currency=charge.currency)
        if amount <= 0:
            return None, reason, gettext("The amount to refund must be more than zero.")
        if amount > remaining:
            return None, reason, gettext(
                "At most %(most)s can be refunded.",
                most=Money(remaining, charge.currency).format(i18n.current_language()))
    if not reason:
        return amount, reason, gettext("Give the reason: it is on the credit note and the "
                                       "timeline.")
    return amount, reason, None


@bp.post("/charges/<public_id>/refund/review")
@requires("refund")
def refund_review(public_id: str) -> ResponseReturnValue:
    """The confirmation step: what the refund will do, in words, before it is done."""
    charge = charge_or_404(public_id)
    remaining = (charge.captured_minor or 0) - charge.refunded_minor
    if charge.state not in REFUNDABLE_STATES or remaining <= 0:
        flash(gettext("This charge has nothing left to refund."))
        return back_to(charge)
    amount, reason, wrong = _refund_request(charge, remaining)
    if wrong:
        flash(wrong)
        return back_to(charge)
    receipt = db.session.get(Receipt, charge.receipt_pk) if charge.receipt_pk else None
    return render_template("dashboard/refund_confirm.html", charge=charge, reason=reason,
                           amount=amount if amount is not None else remaining,
                           whole=amount is None or amount == remaining, remaining=remaining,
                           receipt=receipt)


@bp.post("/charges/<public_id>/refund")
@requires("refund")
def refund(public_id: str) -> ResponseReturnValue:
    from charging import refunds

    charge = charge_or_404(public_id)
    try:
        amount = int(request.form.get("amount_minor", ""))
        refunded_before = int(request.form.get("refunded_before", ""))
    except ValueError:
        abort(400)
    reason = (request.form.get("reason") or "").strip()
    try:
        result = refunds.refund(charge.public_id, amount, reason, g.operator.email,
                                refunded_before=refunded_before)
    except RefundError as exc:
        record("refund_refused", target=charge.public_id, detail=f"{exc.code}: {exc}")
        db.session.commit()
        flash(gettext("The refund was not made: %(why)s", why=str(exc)))
        return back_to(charge)
    refunded = Money(result.amount_minor, result.currency).format("en")
    record("refund", target=charge.public_id,
           detail=f"refund #{result.sequence} of {refunded}: {reason}; credit note "
                  f"{result.credit_note_number or 'none (no receipt)'}")
    db.session.commit()
    flash(gettext("Refunded %(amount)s to the card.",
                  amount=Money(result.amount_minor, result.currency)
                  .format(i18n.current_language())))
    return redirect(url_for("dashboard.charge_detail", public_id=charge.public_id,
                            credit_note=result.credit_note_number or None,
                            _anchor="documents"))


def charge_messages(charge: Charge, limit: int = CHARGE_MESSAGES) -> list[OcpiMessage]:
    """The OCPI messages that concern a charge, oldest first (the latest `limit` of them).

    ocpi/ knows no charges; its messages carry the keys a charge is known by, and the join
    is made here: the charge's correlation_id is the X-Correlation-ID of its commands (and of
    the CommandResults the CPO echoes it in); the CPO's Session and CDR pushes name its
    authorization_reference or Token uid, or (PATCHes) only the session id in the URL; a
    CommandResult names the command uid in its URL.
    """
    m = OcpiMessage
    conditions: list[Any] = [
        # Messages logged before the correlation id stopped being the public id too.
        m.correlation_id.in_([charge.correlation_id, charge.public_id]),
        m.authorization_reference == charge.authorization_reference.upper(),
        m.token_uid == charge.token_uid.upper(),
    ]
    commands = [uid.upper() for uid in (charge.start_command_uid, charge.stop_command_uid) if uid]
    if commands:
        conditions.append(and_(m.module == "commands", m.object_id.in_(commands)))
    same_party = m.party_pk == charge.party_pk
    if charge.session_id:
        conditions.append(
            and_(m.module == "sessions", same_party, m.object_id == charge.session_id.upper())
        )
    if charge.cdr_pk is not None:
        cdr_id = db.session.scalar(select(OcpiCdr.cdr_id).where(OcpiCdr.pk == charge.cdr_pk))
        if cdr_id:
            conditions.append(and_(m.module == "cdrs", same_party, m.object_id == cdr_id))
    latest = db.session.scalars(
        select(m).where(or_(*conditions)).order_by(m.pk.desc()).limit(limit)
    ).all()
    return sorted(latest, key=lambda message: (message.at, message.pk))


__all__ = ["CHARGE_MESSAGES", "charge_messages", "charge_or_404"]
