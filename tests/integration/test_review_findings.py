"""Review of the merged round: places where one change broke another's assumption.

Each test drives the real domain functions (the charging handlers) through the demo gateway
and the in-memory queue, with the fault put in at the step where it happens."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from charge_factory import deliver_demo_events, drop_queue, ended_charge, pending

from charging import cdrs, command_results, sessions, settlement, sweeper
from charging.models import Charge
from charging.states import ChargeStatus as S
from extensions import db
from ocpi.models import OcpiCdr, OcpiSession
from ocpi.transport import now_utc
from payments.demo import DemoGateway
from payments.gateway import PaymentError


def reload(charge: Charge) -> Charge:
    db.session.expire_all()
    return db.session.get(Charge, charge.pk)


def open_charge(status: S, *, session_id: str | None = "S1", n: int = 1) -> Charge:
    """A charge in `status` whose hold is authorised, with no CDR of its own yet."""
    charge = ended_charge(n=n)
    db.session.get(OcpiCdr, charge.cdr_pk).authorization_reference = f"ELSEWHERE{n}"
    charge.cdr_pk = None
    charge.status = status.value
    charge.session_id = session_id
    charge.cost_incl_vat = None
    if status == S.STOPPING:
        charge.stop_requested_at = now_utc()
        charge.stop_requested_by = "driver"
        charge.stop_attempts = 1
        charge.stop_command_uid = f"STOPCMD{n}"
        charge.stop_next_at = now_utc() + timedelta(seconds=60)
    db.session.commit()
    return charge


def lapse(app: Any, charge: Charge) -> list[str]:
    """The card authorisation runs out; its payment_intent.canceled webhook is applied."""
    drop_queue(app)
    DemoGateway().lapse(charge.hold_id)
    return deliver_demo_events(app)


def store_session(charge: Charge, status: str, session_id: str = "S1") -> OcpiSession:
    body = {
        "country_code": "SE", "party_id": "SIM", "id": session_id,
        "start_date_time": "2026-12-01T10:00:00Z", "kwh": 3,
        "cdr_token": {"country_code": "SE", "party_id": "SCN", "uid": charge.token_uid,
                      "type": "AD_HOC_USER", "contract_id": "SESCN1"},
        "auth_method": "COMMAND", "authorization_reference": charge.authorization_reference,
        "location_id": "LOC1", "evse_uid": "EVSE1", "connector_id": "1", "currency": "SEK",
        "status": status, "last_updated": "2026-12-01T10:30:00Z",
    }
    if status != "ACTIVE":
        body["end_date_time"] = body["last_updated"]
    row = OcpiSession(party_pk=charge.party_pk, country_code="SE", party_id="SIM",
                      session_id=session_id, authorization_reference=charge.authorization_reference,
                      token_uid=charge.token_uid, status=status, raw=json.dumps(body),
                      last_updated=now_utc())
    db.session.add(row)
    db.session.commit()
    return row


def age(charge: Charge, seconds: int) -> None:
    """Nothing touched the charge for `seconds`."""
    db.session.execute(db.update(Charge).where(Charge.pk == charge.pk).values(
        updated_at=now_utc() - timedelta(seconds=seconds)))
    db.session.commit()


# --- 1. A refused stop retry hid the lapse --------------------------------------------------


def test_a_refused_stop_after_a_lapse_keeps_the_lapse_flag(app: Any) -> None:
    """_stop_refused used fail(), overwriting AUTHORIZATION_LAPSED with STOP_REJECTED, which
    _stop_fulfilled then erased when the session ended: the operator's flag and its last
    known cost were gone, and settle went on to try to capture a hold that no longer
    exists."""
    charge = open_charge(S.STOPPING)
    lapse(app, charge)
    assert reload(charge).failure_code == "AUTHORIZATION_LAPSED"

    command_results.on_command_result("STOPCMD1", "STOP_SESSION", "REJECTED", "busy")
    charge = reload(charge)
    assert charge.failure_code == "AUTHORIZATION_LAPSED"
    assert "send_stop" in " ".join(pending(app))  # the standing stop is still retried

    session = store_session(charge, "COMPLETED")
    sessions.on_session_updated(session.pk, "COMPLETED", charge.authorization_reference,
                               charge.token_uid)
    charge = reload(charge)
    assert (charge.status, charge.failure_code) == ("ENDED", "AUTHORIZATION_LAPSED")


def test_a_stop_given_up_after_a_lapse_keeps_the_lapse_flag(app: Any) -> None:
    charge = open_charge(S.STOPPING)
    lapse(app, charge)
    charge = reload(charge)
    charge.stop_requested_at = now_utc() - timedelta(seconds=app.config["STOP_RETRY_FOR"] + 1)
    db.session.commit()
    command_results.on_command_result("STOPCMD1", "STOP_SESSION", "FAILED", None)
    charge = reload(charge)
    assert charge.failure_code == "AUTHORIZATION_LAPSED"
    assert charge.stop_next_at is None


# --- 2. A lapse before the CPO named the session: nothing ever stopped it -------------------


def test_a_lapse_before_the_first_session_stops_the_session_when_it_comes(app: Any) -> None:
    """authorization_lapsed only enqueued stop_unpaid_session when a session id was known;
    a charge CHARGING on the CommandResult alone, whose first Session came after the lapse,
    charged on with no money held and nobody stopped it."""
    charge = open_charge(S.CHARGING, session_id=None)
    others = lapse(app, charge)
    assert "charging.stop_unpaid_session" not in others  # nothing to stop yet
    drop_queue(app)

    session = store_session(charge, "ACTIVE")
    sessions.on_session_updated(session.pk, "ACTIVE", charge.authorization_reference,
                               charge.token_uid)
    charge = reload(charge)
    assert (charge.status, charge.failure_code) == ("CHARGING", "AUTHORIZATION_LAPSED")
    assert "charging.stop_unpaid_session" in pending(app)


# --- 3. The sweeper abandoned a lapsed charge that was still running ------------------------


def test_the_sweeper_ends_a_lapsed_charge_whose_completed_session_was_not_applied(
    app: Any,
) -> None:
    """_sweep_charging skips every OPERATOR_FLAGS charge, AUTHORIZATION_LAPSED included, but
    a lapsed charge still has to end and be released by itself (authorization_lapsed: "is
    released when it ends"). A COMPLETED Session whose receiver failed left it STOPPING for
    good, and its stored CDR was never linked."""
    charge = open_charge(S.STOPPING)
    lapse(app, charge)
    store_session(charge, "COMPLETED")  # its receiver failed: nothing applied it
    age(charge, app.config["SWEEP_GRACE_SECONDS"] + 5)
    drop_queue(app)

    sweeper.sweep()
    charge = reload(charge)
    assert (charge.status, charge.failure_code) == ("ENDED", "AUTHORIZATION_LAPSED")


def test_the_sweeper_releases_a_lapsed_ended_charge_whose_settle_was_lost(app: Any) -> None:
    charge = open_charge(S.CHARGING)
    lapse(app, charge)
    charge = reload(charge)
    cdr = ended_charge(n=2)  # a second charge's factory CDR, re-used as this one's
    cdr_row = db.session.get(OcpiCdr, cdr.cdr_pk)
    charge = reload(charge)
    charge.status = S.ENDED.value
    charge.cdr_pk = cdr_row.pk
    db.session.commit()
    age(charge, app.config["SWEEP_GRACE_SECONDS"] + 5)
    drop_queue(app)  # the settle task was lost

    sweeper.sweep()
    assert "charging.settle" in pending(app)


# --- 4. A failed release reported as released ------------------------------------------------


def test_settle_without_cdr_keeps_release_failed_when_the_release_is_refused(
    app: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With no cost known, settle_without_cdr releases and then flags RELEASED_WITHOUT_CDR
    unconditionally: a release the gateway refused (RELEASE_FAILED, the charge still ENDED
    with its hold in place) was overwritten with a flag saying it was released."""
    charge = open_charge(S.ENDED)

    def refuse(self: Any, hold_id: str, *, idempotency_key: str) -> Any:
        raise PaymentError("no such payment_intent", retryable=False)

    monkeypatch.setattr(DemoGateway, "cancel", refuse)
    settlement.settle_without_cdr(charge.pk)
    charge = reload(charge)
    assert (charge.status, charge.failure_code) == ("ENDED", "RELEASE_FAILED")
    assert charge.hold_released_at is None


# --- 5. A refused CDR hid a given-up stop ----------------------------------------------------


def test_a_refused_cdr_does_not_hide_stop_unconfirmed(app: Any) -> None:
    """on_cdr_refused keeps OPERATOR_FLAGS ("never hide a flag the sweeper obeys") but not
    STOP_UNCONFIRMED, which the sweeper obeys too (STOP_GIVEN_UP): the charge then left the
    operator's list and the sweeper took up the given-up stop again."""
    charge = open_charge(S.STOPPING)
    charge.failure_code, charge.failure_detail = "STOP_UNCONFIRMED", "STOP_REJECTED"
    charge.stop_next_at = None
    db.session.commit()
    cdrs.on_cdr_refused(charge.party_pk, "SE", "SIM", "CDR-X",
                           charge.authorization_reference, charge.token_uid, "bad total")
    assert reload(charge).failure_code == "STOP_UNCONFIRMED"
