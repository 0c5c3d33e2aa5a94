"""What an operator decides about a charge: unlock its connector (a stuck cable), stop it,
retry its capture, release its hold, e-mail its receipt again, or mark it resolved with a
note (the Needs attention inbox, dashboard/attention.py).

Each is a handler of the domain, like the driver's: the charge changes under its lock in a
unit of work, through fire()/note(), with the operator named on the timeline (cause
"operator", ref the operator's e-mail). Captures and releases talk to the gateway between
two units of work (charging/settlement.py, charging/releases.py), never under a lock.
(Refunds, the other money decision, are charging/refunds.py.)
"""

from __future__ import annotations

from flask import current_app

from charging import settlement
from charging.cpo import cpo_of, ocpi_commands
from charging.driver_actions import request_stop
from charging.errors import DriverError
from charging.models import Charge
from charging.refunds import REFUNDABLE_STATES
from charging.releases import RELEASABLE, release_hold
from charging.states import OPERATOR_FLAGS, Event, can
from charging.states import ChargeStatus as S
from charging.timeline import Cause, note
from charging.unit_of_work import leave_unchanged, locked_charge, network_step, unit_of_work
from extensions import db
from jobs import background_task, backoff_delay
from ocpi.models import OcpiCommand, Party
from ocpi.modules.commands import CommandType
from ocpi.transport import now_utc
from payments import mail
from payments.gateway import PaymentError
from payments.models import Receipt

# The flags a person must look at (the inbox): those the sweeper leaves alone, and those
# where money and the CPO's word disagree or the card holder is involved.
ATTENTION_FLAGS = OPERATOR_FLAGS | frozenset({
    "STOP_UNCONFIRMED", "COST_ABOVE_HOLD", "CDR_PRICE_MISMATCH", "CDR_REFUSED",
    "REFUND_FAILED", "REFUND_UNRECORDED", "DISPUTED", "DISPUTE_LOST",
})

# Flags that no capture can fix: nothing is held, or the CDR's money is not the hold's.
_NOT_CAPTURABLE = frozenset({"AUTHORIZATION_LAPSED", "CURRENCY_MISMATCH"})


def actions_for(charge: Charge) -> tuple[str, ...]:
    """The decisions open to an operator for this charge in its state, as the inbox and
    the charge's page offer them (each checks again under the lock)."""
    found = []
    if can(charge.state, Event.CAPTURED) and charge.hold_id \
            and charge.failure_code not in _NOT_CAPTURABLE \
            and (charge.cdr_pk is not None or charge.cost_incl_vat):
        found.append("retry_capture")
    if charge.state in RELEASABLE and charge.hold_id and charge.hold_released_at is None:
        found.append("release")
    if charge.state in REFUNDABLE_STATES and (charge.captured_minor or 0) > charge.refunded_minor:
        found.append("refund")
    if charge.state in {S.STARTING, S.CHARGING} and charge.stop_requested_at is None:
        found.append("stop")
    found.append("resolve")
    return tuple(found)


class OperatorActionError(Exception):
    """An operator action that cannot be done now; `code` is stable, the message says why
    and what to do instead."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


# Its own retries with backoff (OCPI_RETRY_*), each try on the charge's timeline.
@background_task("charging.unlock_connector")
def unlock_connector(charge_pk: int, operator: str, attempt: int = 0) -> str:
    """UNLOCK_CONNECTOR for the charge's connector, on an operator's request (a stuck cable:
    mod_commands allows it to operators only, never to drivers). Returns the CPO's answer;
    the asynchronous result shows in the charge's OCPI messages. A CPO that could not be
    reached, or did not answer, is asked again in the background with backoff (a cable
    stuck in a charger is worth a few more tries), up to OCPI_RETRY_ATTEMPTS."""
    with unit_of_work():
        charge = db.session.get_one(Charge, charge_pk)
        party_pk, correlation, to = charge.party_pk, charge.correlation_id, cpo_of(charge)
        body = {"location_id": charge.location_id, "evse_uid": charge.evse_uid,
                "connector_id": charge.connector_id}
    with network_step():  # ocpi.commands stores and commits the command itself
        command: OcpiCommand = ocpi_commands().send_command(
            db.session.get_one(Party, party_pk), CommandType.UNLOCK_CONNECTOR, body,
            correlation_id=correlation, to=to,
        )
    with locked_charge(charge_pk) as charge:
        answer = command.response_result or "ERROR"
        words = (f"{operator} asked to unlock connector {charge.connector_id}: {answer}"
                 + (f" ({command.response_message})" if command.response_message else ""))
        cfg = current_app.config
        if answer in {"ERROR", "NO_RESPONSE"} and attempt + 1 < cfg["OCPI_RETRY_ATTEMPTS"]:
            delay = backoff_delay(attempt, cfg["OCPI_RETRY_BASE_DELAY"],
                                  cfg["OCPI_RETRY_MAX_DELAY"])
            words += f"; trying again in {round(delay)} s"
            unlock_connector.enqueue_after_commit(charge_pk, operator, attempt + 1, delay=delay)
        note(charge, Cause("operator", command.uid, words))
    return answer


def stop_charge(charge_pk: int, operator: str) -> Charge:
    """The driver's own durable stop (charging/stopping.py), asked by an operator: kept on
    the charge and retried until the charger confirms; asking twice is asking once."""
    try:
        return request_stop(charge_pk, by="operator", who=operator)
    except DriverError as exc:
        raise OperatorActionError(
            "not_charging", f"the charge is {exc.detail or 'not charging'}: there is nothing "
                            "to stop") from exc


def retry_capture(charge_pk: int, operator: str) -> Charge:
    """Capture again what the CDR (or, without one, the last Session) says, after a capture
    failed: settlement's own capture, with a fresh idempotency key for this retry (a key
    that failed would replay its failure at Stripe; the hold itself can be captured only
    once, so a new key cannot capture twice)."""
    with locked_charge(charge_pk) as charge:
        if not can(charge.state, Event.CAPTURED) or not charge.hold_id:
            raise OperatorActionError(
                "not_capturable", f"the charge is {charge.status}: only an ENDED charge with a "
                                  "hold can be captured")
        if charge.failure_code in _NOT_CAPTURABLE:
            raise OperatorActionError(
                "not_capturable", f"flagged {charge.failure_code}: a capture cannot fix it; "
                                  "release the hold or mark it resolved")
        if charge.cdr_pk is None and not charge.cost_incl_vat:
            raise OperatorActionError(
                "no_cost", "no CDR and no cost known: nothing to capture; release the hold")
        if charge.failure_code == "CAPTURE_FAILED":
            charge.failure_code = charge.failure_detail = None
        note(charge, Cause("operator", operator, f"{operator} retries the capture"))
        # lock_version only grows: each retry's key is new, and stable within the retry.
        attempt, with_cdr = charge.lock_version, charge.cdr_pk is not None
    try:
        if with_cdr:
            settlement.settle(charge_pk, attempt)
        else:
            settlement.settle_without_cdr(charge_pk, attempt)
    except PaymentError as exc:
        raise OperatorActionError(
            "gateway_unavailable", f"the payment gateway did not answer ({exc}); nothing was "
                                   "captured twice: try again in a while") from exc
    charge = db.session.get_one(Charge, charge_pk, populate_existing=True)
    if charge.state != S.CAPTURED:
        raise OperatorActionError(
            "capture_failed", f"the capture did not go through: "
                              f"{charge.failure_detail or charge.status}")
    return charge


def release(charge_pk: int, operator: str) -> Charge:
    """Give the hold back to the card, nothing captured (releases.release_hold): for a
    charge the operator decides not to charge, or whose release failed before."""
    with locked_charge(charge_pk) as charge:
        if charge.state not in RELEASABLE or not charge.hold_id \
                or charge.hold_released_at is not None:
            raise OperatorActionError(
                "not_releasable", f"the charge is {charge.status}"
                + (" and its hold is released already" if charge.hold_released_at else "")
                + ": there is no hold to release")
        if charge.failure_code == "RELEASE_FAILED":
            charge.failure_code = charge.failure_detail = None
        note(charge, Cause("operator", operator,
                           f"{operator} releases the hold, nothing to be charged"))
    try:
        why = release_hold(charge_pk)
    except PaymentError as exc:
        raise OperatorActionError(
            "gateway_unavailable", f"the payment gateway did not answer ({exc}); the hold is "
                                   "still in place: try again in a while") from exc
    charge = db.session.get_one(Charge, charge_pk, populate_existing=True)
    if charge.hold_released_at is None:
        raise OperatorActionError(
            "release_failed", f"the release did not go through: {why or charge.status}")
    return charge


def resend_receipt(charge_pk: int, operator: str) -> str:
    """E-mail the charge's receipt (with its credit notes, in the PDF) to the driver's
    address again; returns the address."""
    with locked_charge(charge_pk) as charge:
        if charge.receipt_pk is None:
            raise OperatorActionError("no_receipt", "the charge has no receipt yet")
        if not charge.email:
            raise OperatorActionError("no_email", "the driver gave no e-mail address")
        if not mail.enabled():
            raise OperatorActionError(
                "mail_disabled", "e-mail is not set up (SMTP_HOST): no receipt is sent")
        receipt = db.session.get_one(Receipt, charge.receipt_pk)
        mail.resend_after_commit(receipt)
        note(charge, Cause("operator", operator,
                           f"{operator} e-mails receipt {receipt.display_number} again "
                           "to the driver's address"))
        return charge.email


def mark_resolved(charge_pk: int, operator: str, resolution: str) -> Charge:
    """The operator settled the flag (or the stuck charge) some other way and says how:
    the charge leaves the inbox until a new flag is set (timeline.fail)."""
    resolution = (resolution or "").strip()
    if not resolution:
        raise OperatorActionError("note_required", "say in a note how it was resolved")
    with locked_charge(charge_pk) as charge:
        if charge.resolved_at is not None and charge.resolution_note == resolution:
            leave_unchanged()  # the same form sent twice
            return charge
        charge.resolved_at = now_utc()
        charge.resolved_by = operator
        charge.resolution_note = resolution
        what = f"flag {charge.failure_code}" if charge.failure_code else "stuck charge"
        note(charge, Cause("operator", operator,
                           f"{operator} marked the {what} resolved: {resolution}"))
        return charge
