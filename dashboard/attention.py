"""Needs attention: every flagged or stuck charge in one inbox, oldest first, each with what
happened in plain words and the actions that resolve it (retry the capture, release the
hold, refund, stop, mark resolved with a note). The decisions are the domain's
(charging/operator_actions.py); each lands on the charge's timeline and in the audit log.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from flask import current_app, flash, g, render_template, request
from flask.typing import ResponseReturnValue
from flask_babel import gettext
from sqlalchemy import and_, or_, select

from charging.deadlines import Waiting, start_commands, waiting_for
from charging.models import Charge
from charging.operator_actions import ATTENTION_FLAGS, OperatorActionError, actions_for
from charging.states import OPEN_STATES
from charging.states import ChargeStatus as S
from dashboard import formatting
from dashboard.audit import record
from dashboard.blueprint import bp
from dashboard.charge_page import back_to, charge_or_404
from dashboard.permissions import requires
from dashboard.remedies import flag_words
from extensions import db
from ocpi.transport import now_utc
from payments.models import RefundRecord

# The states with a deadline of their own (charging/deadlines.py): stuck when it passed.
WAITING_STATES = frozenset(s.value for s in OPEN_STATES | {S.START_FAILED})

# A refund this old and still "started" is no longer on its way: its request was lost.
UNFINISHED_AFTER = timedelta(minutes=10)

# Enough for a bad day; an inbox longer than this is a fire, and the oldest come first.
INBOX_LIMIT = 500


@dataclass(frozen=True)
class Attention:
    charge: Charge
    what: str  # in plain words
    detail: str | None
    waiting: Waiting | None
    actions: tuple[str, ...]  # of: retry_capture, release, refund, stop, resolve


def unfinished_refunds() -> dict[str, RefundRecord]:
    """Refunds started a while ago and never finished (the gateway did not answer, nobody
    ran them again), by charge: the driver may have had the money back with no credit
    note, and the webhook saying so is no flag (charging/refunds.py counts them in)."""
    rows = db.session.scalars(
        select(RefundRecord).where(RefundRecord.state == "started",
                                   RefundRecord.created_at < now_utc() - UNFINISHED_AFTER)
        .order_by(RefundRecord.pk).limit(INBOX_LIMIT)
    )
    return {row.reference.removeprefix("charge:"): row for row in rows}


def needs_attention() -> list[Attention]:
    """Every flagged charge, every overdue one and every one with an unfinished refund, not
    marked resolved, oldest first."""
    unfinished = unfinished_refunds()
    now = now_utc()
    # Stuck means overdue and left so: a charge that changed within the sweeper's own grace
    # (SWEEP_GRACE_SECONDS), or an unpaid one younger than UNPAID_CHARGE_TTL, is still being
    # worked on. Only the others are read, so the inbox (and the header's count, on every
    # page) costs what is stuck, not every open charge.
    settled_since = now - timedelta(seconds=current_app.config["SWEEP_GRACE_SECONDS"])
    unpaid_since = now - timedelta(seconds=current_app.config["UNPAID_CHARGE_TTL"])
    candidates = db.session.scalars(
        select(Charge).where(
            Charge.resolved_at.is_(None),
            or_(Charge.failure_code.in_(sorted(ATTENTION_FLAGS)),
                Charge.public_id.in_(sorted(unfinished)),
                and_(Charge.status.in_(sorted(WAITING_STATES)),
                     or_(Charge.updated_at < settled_since,
                         Charge.created_at < unpaid_since)),
                # A given-up charge is over once its hold is given back.
                and_(Charge.status.in_([S.CANCELLED.value, S.EXPIRED.value]),
                     Charge.hold_id.is_not(None), Charge.hold_released_at.is_(None))),
        ).order_by(Charge.created_at, Charge.pk).limit(INBOX_LIMIT * 4)
    ).all()
    commands = start_commands(candidates)
    items = []
    for charge in candidates:
        waiting = waiting_for(charge, commands)
        if charge.failure_code in ATTENTION_FLAGS:
            items.append(Attention(charge, flag_words(charge.failure_code),
                                   charge.failure_detail, waiting, actions_for(charge)))
        elif waiting is not None and waiting.overdue():
            items.append(Attention(
                charge, gettext("Stuck: waiting for %(what)s, overdue.", what=waiting.what),
                charge.failure_detail, waiting, actions_for(charge)))
        elif (started := unfinished.get(charge.public_id)) is not None:
            items.append(Attention(
                charge, gettext("Refund #%(n)s of %(amount)s was started and never finished: "
                                "the payment provider may have paid it back. Finish it on the "
                                "charge's page (it cannot refund twice).", n=started.sequence,
                                amount=formatting.money(started.amount_minor, started.currency)),
                started.reason, waiting, actions_for(charge)))
        if len(items) >= INBOX_LIMIT:
            break
    return items


@bp.app_context_processor
def _attention_count() -> dict[str, Any]:
    def count() -> int:
        # Once per page, and only for a signed-in operator (the header shows it). Kept on
        # the request, not g: an app context can outlive a request (the CLI's, a test's).
        key = "scancharge.attention_count"
        if key not in request.environ:
            request.environ[key] = len(needs_attention()) if g.get("operator") else 0
        return int(request.environ[key])

    return {"attention_count": count}


@bp.get("/attention")
@requires("view")
def attention() -> str:
    return render_template("dashboard/attention.html", items=needs_attention())


def _act(public_id: str, action: str, done: str) -> ResponseReturnValue:
    """Run one operator decision on a charge, then audit it (or say why it was not done)."""
    from charging import operator_actions

    charge = charge_or_404(public_id)
    operator = g.operator.email
    try:
        if action == "retry_capture":
            operator_actions.retry_capture(charge.pk, operator)
        elif action == "release":
            operator_actions.release(charge.pk, operator)
        else:
            operator_actions.mark_resolved(charge.pk, operator, request.form.get("note", ""))
    except OperatorActionError as exc:
        flash(gettext("Not done: %(why)s", why=str(exc)))
        return back_to(charge)
    db.session.refresh(charge)
    record(action, target=charge.public_id,
           detail=f"{charge.status}; flag {charge.failure_code or 'none'}"
                  + (f"; note: {charge.resolution_note}" if action == "resolve" else ""))
    db.session.commit()
    flash(done)
    return back_to(charge)


@bp.post("/charges/<public_id>/retry-capture")
@requires("settle")
def retry_capture(public_id: str) -> ResponseReturnValue:
    return _act(public_id, "retry_capture", gettext("Captured: the receipt is issued."))


@bp.post("/charges/<public_id>/release")
@requires("settle")
def release(public_id: str) -> ResponseReturnValue:
    return _act(public_id, "release", gettext("The hold is released: nothing is charged."))


@bp.post("/charges/<public_id>/resolve")
@requires("settle")
def resolve(public_id: str) -> ResponseReturnValue:
    return _act(public_id, "resolve", gettext("Marked resolved: it has left the inbox."))
