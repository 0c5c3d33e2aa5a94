"""Events that arrive late or out of order: a Session after the start looked failed, a
Session after the hold was released, a CDR with no Session before it."""

from __future__ import annotations

from typing import Any

import pytest

from charging import cdrs, sessions, starting, timeline, unit_of_work
from charging.models import Charge, ChargeEvent
from charging.states import ChargeStatus as S
from extensions import db
from ocpi import store
from ocpi.models import Party
from tests.charge_factory import SESSION


def make_charge(party: Party, status: S, failure_code: str | None = None) -> Charge:
    charge = Charge(party_pk=party.pk, cpo_country_code="SE", cpo_party_id="SIM",
                    location_id="LOC1", evse_uid="EVSE1",
                    evse_id="SE*SIM*E00001", connector_id="1", currency="SEK",
                    hold_minor=30000, gateway="demo", hold_id="pi_demo_x", token_uid="TOK1",
                    authorization_reference="REF1", status=status.value,
                    failure_code=failure_code)
    db.session.add(charge)
    db.session.commit()
    return charge


def push_session(party: Party, **changes: Any) -> int:
    row, _ = store.put_session(party, {**SESSION, **changes})
    db.session.commit()
    return row.pk


def pending_tasks(app: Any) -> list[str]:
    return [t.name for t in app.extensions["queue"].huey.pending()]


def test_a_late_session_after_a_timeout_is_charged(app: Any, party: Party) -> None:
    charge = make_charge(party, S.START_FAILED, "START_TIMEOUT")
    session_pk = push_session(party)
    sessions.on_session_updated(session_pk, "ACTIVE", "REF1", "TOK1")
    db.session.expire_all()
    charge = db.session.get(Charge, charge.pk)
    assert charge.status == "CHARGING"
    assert charge.failure_code is None
    assert str(charge.energy_kwh) == "1.5000"
    notes = [e.note for e in db.session.scalars(db.select(ChargeEvent))]
    assert "late Session ACTIVE" in notes


def test_a_session_after_the_hold_was_released_is_stopped_and_flagged(
    app: Any, party: Party
) -> None:
    charge = make_charge(party, S.RELEASED, "START_NO_RESULT")
    session_pk = push_session(party)
    sessions.on_session_updated(session_pk, "ACTIVE", "REF1", "TOK1")
    db.session.expire_all()
    charge = db.session.get(Charge, charge.pk)
    assert charge.status == "RELEASED"
    assert charge.failure_code == "UNPAID_SESSION"
    assert "charging.stop_unpaid_session" in pending_tasks(app)
    # A second push does not stop it twice.
    sessions.on_session_updated(session_pk, "ACTIVE", "REF1", "TOK1")
    assert pending_tasks(app).count("charging.stop_unpaid_session") == 1


def test_a_cdr_after_a_failed_looking_start_ends_and_settles(app: Any, party: Party) -> None:
    from test_settle_concurrency import CDR

    charge = make_charge(party, S.START_FAILED, "START_NO_RESULT")
    cdr, _ = store.store_cdr(party, CDR)
    db.session.commit()
    cdrs.on_cdr_received(cdr.pk, "REF1", "TOK1", None)
    db.session.expire_all()
    charge = db.session.get(Charge, charge.pk)
    assert (charge.status, charge.cdr_pk, charge.failure_code) == ("ENDED", cdr.pk, None)
    assert "charging.settle" in pending_tasks(app)


@pytest.mark.parametrize(("code", "delayed"), [("START_REJECTED", False),
                                               ("START_EVSE_OCCUPIED", False),
                                               ("START_TIMEOUT", True),
                                               ("START_NO_RESULT", True),
                                               ("CPO_UNREACHABLE", True)])
def test_uncertain_start_failures_keep_the_hold_a_little(app: Any, party: Party, code: str,
                                                         delayed: bool) -> None:
    charge = make_charge(party, S.STARTING)
    locked = unit_of_work.lock_charge(charge.pk)
    starting.fail_start(locked, code, None, timeline.Cause("ocpi"))
    db.session.commit()
    # Without a consumer, a delayed task waits in the queue with its eta set.
    tasks = app.extensions["queue"].huey.pending()
    assert [(t.name, t.eta is not None) for t in tasks] == [("charging.release_hold", delayed)]


def _cdr(**changes: Any) -> dict[str, Any]:
    from test_settle_concurrency import CDR

    return {**CDR, **changes}


def test_a_credit_cdr_before_settling_waits_for_the_replacement(app: Any, party: Party) -> None:
    charge = make_charge(party, S.STOPPING)
    original, _ = store.store_cdr(party, _cdr())
    db.session.commit()
    cdrs.on_cdr_received(original.pk, "REF1", "TOK1", None)
    assert db.session.get(Charge, charge.pk).cdr_pk == original.pk

    credit, _ = store.store_cdr(party, _cdr(id="CDR-1-C", credit=True,
                                            credit_reference_id="CDR-1",
                                            total_cost={"excl_vat": -36, "incl_vat": -45}))
    db.session.commit()
    cdrs.on_cdr_received(credit.pk, "REF1", "TOK1", None)
    db.session.expire_all()
    charge = db.session.get(Charge, charge.pk)
    assert (charge.status, charge.cdr_pk) == ("ENDED", None)

    replacement, _ = store.store_cdr(party, _cdr(id="CDR-2",
                                                 total_cost={"excl_vat": 30, "incl_vat": 37.5}))
    db.session.commit()
    cdrs.on_cdr_received(replacement.pk, "REF1", "TOK1", None)
    db.session.expire_all()
    assert db.session.get(Charge, charge.pk).cdr_pk == replacement.pk


def test_a_credit_cdr_after_capture_is_flagged(app: Any, party: Party) -> None:
    charge = make_charge(party, S.CAPTURED)
    original, _ = store.store_cdr(party, _cdr())
    charge.cdr_pk = original.pk
    credit, _ = store.store_cdr(party, _cdr(id="CDR-1-C", credit=True,
                                            credit_reference_id="CDR-1",
                                            total_cost={"excl_vat": -36, "incl_vat": -45}))
    db.session.commit()
    cdrs.on_cdr_received(credit.pk, "REF1", "TOK1", None)
    db.session.expire_all()
    charge = db.session.get(Charge, charge.pk)
    assert (charge.status, charge.failure_code, charge.cdr_pk) == (
        "CAPTURED", "CDR_CREDITED", original.pk)
