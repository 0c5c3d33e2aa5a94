"""What a CPO's CDR does to its charge: the session is over and settled from it; a Credit
CDR voids an earlier one; a CDR the edge refused flags the charge.

OCPI receivers: the CDR is already stored (or refused) and answered for (wiring.py logs a
failure here, and the sweeper applies the stored CDR again).
"""

from __future__ import annotations

import logging

from charging.cpo import charge_for, lock_charge_for_object, owned_by
from charging.models import Charge
from charging.settlement import settle
from charging.states import END_TO_COME, Event, can
from charging.states import ChargeStatus as S
from charging.stopping import STOP_GIVEN_UP
from charging.timeline import Cause, fail, fire, note
from charging.unit_of_work import locked_charge, unit_of_work
from extensions import db
from ocpi import store as ocpi_store
from ocpi.models import OcpiCdr

log = logging.getLogger(__name__)


def on_cdr_received(
    cdr_pk: int, authorization_reference: str | None, token_uid: str | None, session_id: str | None
) -> None:
    # One unit: the charge found, locked and updated once (a foreign CDR is flagged for
    # the operator in it), and the CDR marked applied once there is nothing left for the
    # sweeper to do with it; a failure rolls the mark back with the rest.
    with unit_of_work():
        stored = db.session.get(OcpiCdr, cdr_pk)
        charge = lock_charge_for_object(stored) if stored is not None else None
        if charge is None:
            if stored is not None:
                ocpi_store.mark_applied(stored)
            log.warning("CDR %s matches no charge of its sender", cdr_pk)
            return
        cdr = db.session.get_one(OcpiCdr, cdr_pk)
        if cdr.data.get("credit"):
            _on_credit_cdr(charge, cdr)
        else:
            _on_cdr(charge, cdr)
        if charge.state not in END_TO_COME:
            # Past the end it is linked, or flagged, or a credit that unlinked the CDR it
            # voids (the settle step then waits for the replacement, not this one).
            ocpi_store.mark_applied(cdr)


def _on_cdr(charge: Charge, cdr: OcpiCdr) -> None:
    cause = Cause("ocpi", f"cdr {cdr.cdr_id}", "CDR received")
    if charge.cdr_pk is None:
        charge.cdr_pk = cdr.pk
    elif charge.cdr_pk != cdr.pk:
        # A replacement after a credit CDR, for a charge already settled: money may differ.
        fail(charge, "CDR_REPLACED", f"CDR {cdr.cdr_id} after the charge was settled")
        cause = Cause("ocpi", f"cdr {cdr.cdr_id}", "another CDR for a settled charge: flagged")
    if can(charge.state, Event.SESSION_ACTIVE):
        # The Session never reached us (or came after the start looked failed): the CDR
        # says charging happened.
        charge.failure_code = charge.failure_detail = None
        fire(charge, Event.SESSION_ACTIVE, cause)
    if can(charge.state, Event.SESSION_ENDED):
        fire(charge, Event.SESSION_ENDED, cause)
    else:
        note(charge, cause)
    if charge.state == S.ENDED:
        settle.enqueue_after_commit(charge.pk)


def _on_credit_cdr(charge: Charge, credit: OcpiCdr) -> None:
    """A Credit CDR voids an earlier CDR (mod_cdrs: Credit CDRs); its replacement follows."""
    original_id = credit.data.get("credit_reference_id")
    linked = db.session.get(OcpiCdr, charge.cdr_pk) if charge.cdr_pk else None
    cause = Cause("ocpi", f"cdr {credit.cdr_id}", f"credit CDR for {original_id}")
    if linked is not None and linked.cdr_id == str(original_id).upper() \
            and charge.state == S.ENDED:
        charge.cdr_pk = None  # not settled yet: wait for the replacement CDR
        note(charge, Cause(cause.kind, cause.ref, f"{cause.note}: waiting for its replacement"))
    elif charge.state in {S.CAPTURED, S.REFUNDED}:
        fail(charge, "CDR_CREDITED", f"credit CDR {credit.cdr_id} after capture")
        note(charge, Cause(cause.kind, cause.ref, f"{cause.note} after capture: flagged"))
    else:
        note(charge, cause)


def on_cdr_refused(
    party_pk: int, country_code: str, party_id: str, cdr_id: str | None,
    authorization_reference: str | None, token_uid: str | None, reason: str,
) -> None:
    """A CDR for this charge could not be taken in (the edge refused it, 2001): flag the
    charge, so it never waits in silence for a CDR that was sent. Only its own CPO's
    refused CDR flags it; the state is left alone (the sweeper still settles by deadline)."""
    with unit_of_work():
        pk = charge_for(authorization_reference, token_uid)
        if pk is not None and not owned_by(db.session.get_one(Charge, pk), party_pk,
                                           country_code, party_id):
            pk = None
    if pk is None:
        return
    with locked_charge(pk) as charge:
        if charge.failure_code not in STOP_GIVEN_UP:  # never hide a flag the sweeper obeys
            fail(charge, "CDR_REFUSED", reason[:500])
        note(charge, Cause("ocpi", f"cdr {cdr_id or '?'}", f"CDR refused: {reason}"[:1000]))
