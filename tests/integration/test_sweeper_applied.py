"""The sweeper reads only the stored Sessions and CDRs the domain is not done with: their
receivers mark them applied (ocpi.store.mark_applied) once the charge is past the
session's end, in their own unit of work. One whose signal was lost, or whose receiver
failed, is still found and applied by a sweep; one applied is not read again, nor is it by
the plan of the sweeper's queries (the partial indexes)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event, text, update

from charging import cdrs, sessions, sweeper
from charging.models import Charge
from charging.states import ChargeStatus as S
from extensions import db
from ocpi import store
from ocpi.models import OcpiCdr, OcpiSession, Party
from ocpi.transport import now_utc
from tests.charge_factory import SESSION

OLD = now_utc() - timedelta(hours=1)


def _charge(party: Party, status: S, n: int = 1) -> int:
    charge = Charge(party_pk=party.pk, cpo_country_code="SE", cpo_party_id="SIM",
                    location_id="LOC1", evse_uid="EVSE1", evse_id="SE*SIM*E00001",
                    connector_id="1", currency="SEK", hold_minor=30000, gateway="demo",
                    hold_id=f"pi_{n}", token_uid=f"TOK{n}", authorization_reference=f"REF{n}",
                    status=status.value, capture_before=now_utc() + timedelta(days=5))
    db.session.add(charge)
    db.session.commit()
    return charge.pk


def _session(party: Party, status: str, n: int = 1) -> int:
    row, _ = store.put_session(party, {
        **SESSION, "id": f"S{n}", "status": status, "authorization_reference": f"REF{n}",
        "cdr_token": {**SESSION["cdr_token"], "uid": f"TOK{n}"},
        **({"end_date_time": "2026-11-21T10:30:00Z"} if status == "COMPLETED" else {})})
    db.session.commit()
    return row.pk


def _cdr(party: Party, cdr_id: str = "CDR-1", **changes: Any) -> int:
    from test_settle_concurrency import CDR

    row, _ = store.store_cdr(party, {**CDR, "id": cdr_id, **changes})
    db.session.commit()
    return row.pk


def _due(charge_pk: int) -> None:
    """As if the charge was last touched an hour ago: the sweeper's grace is over."""
    db.session.execute(update(Charge).where(Charge.pk == charge_pk).values(updated_at=OLD))
    db.session.commit()


def _charge_row(pk: int) -> Charge:
    db.session.expire_all()
    return db.session.get_one(Charge, pk)


def _applied(model: type[OcpiSession] | type[OcpiCdr], pk: int) -> bool:
    db.session.expire_all()
    return db.session.get_one(model, pk).applied_at is not None


def test_an_applied_session_end_and_cdr_are_marked_in_their_receivers_unit(
    app: Any, party: Party
) -> None:
    charge = _charge(party, S.CHARGING)
    active = _session(party, "ACTIVE")
    sessions.on_session_updated(active, "ACTIVE", "REF1", "TOK1")
    # Its end is still to come: the sweeper may yet have to apply this Session.
    assert not _applied(OcpiSession, active)
    completed = _session(party, "COMPLETED")
    assert completed == active  # the same Session, PUT again
    sessions.on_session_updated(completed, "COMPLETED", "REF1", "TOK1")
    assert _charge_row(charge).status == S.ENDED
    assert _applied(OcpiSession, completed)
    cdr = _cdr(party)
    cdrs.on_cdr_received(cdr, "REF1", "TOK1", None)
    assert _charge_row(charge).cdr_pk == cdr
    assert _applied(OcpiCdr, cdr)


def test_a_receiver_that_fails_leaves_the_session_to_the_sweep(
    app: Any, party: Party, monkeypatch: pytest.MonkeyPatch
) -> None:
    charge = _charge(party, S.CHARGING)
    session = _session(party, "COMPLETED")

    def fail(charge: Charge, *args: Any) -> None:
        sessions.fire(charge, sessions.Event.SESSION_ENDED, sessions.Cause("ocpi"))
        raise RuntimeError("the receiver fails after the end was applied")

    with monkeypatch.context() as patched:
        patched.setattr(sessions, "_apply", fail)
        with pytest.raises(RuntimeError):
            sessions.on_session_updated(session, "COMPLETED", "REF1", "TOK1")
    # The mark went with the rest of the unit.
    assert (_charge_row(charge).status, _applied(OcpiSession, session)) == (S.CHARGING, False)
    _due(charge)
    sweeper.sweep()
    assert (_charge_row(charge).status, _applied(OcpiSession, session)) == (S.ENDED, True)


def test_a_session_patched_to_completed_whose_signal_was_lost_is_found(
    app: Any, party: Party
) -> None:
    charge = _charge(party, S.CHARGING)
    session = _session(party, "ACTIVE")
    sessions.on_session_updated(session, "ACTIVE", "REF1", "TOK1")
    row = db.session.get_one(OcpiSession, session)
    store.patch_session(row, {"status": "COMPLETED", "end_date_time": "2026-11-21T10:30:00Z",
                              "last_updated": "2026-11-21T10:30:00Z"})
    db.session.commit()  # ... and the signal lost
    _due(charge)
    sweeper.sweep()
    assert (_charge_row(charge).status, _applied(OcpiSession, session)) == (S.ENDED, True)


def test_an_end_stored_while_the_charge_was_starting_is_found_once_it_charges(
    app: Any, party: Party
) -> None:
    # A short session: its COMPLETED Session comes before the START_SESSION's result, so
    # the receiver cannot end the charge yet; the Session must stay to apply.
    charge = _charge(party, S.STARTING)
    session = _session(party, "COMPLETED")
    sessions.on_session_updated(session, "COMPLETED", "REF1", "TOK1")
    assert (_charge_row(charge).status, _applied(OcpiSession, session)) == (S.STARTING, False)
    from charging.command_results import on_command_result

    db.session.execute(update(Charge).where(Charge.pk == charge).values(
        start_command_uid="C1"))
    db.session.commit()
    on_command_result("C1", "START_SESSION", "ACCEPTED", None)
    assert _charge_row(charge).status == S.CHARGING
    _due(charge)
    sweeper.sweep()
    assert (_charge_row(charge).status, _applied(OcpiSession, session)) == (S.ENDED, True)


def test_a_cdr_whose_signal_was_lost_ends_and_links_its_charge_in_a_sweep(
    app: Any, party: Party
) -> None:
    charging = _charge(party, S.CHARGING)
    cdr = _cdr(party)  # stored, never announced
    _due(charging)
    sweeper.sweep()
    charge = _charge_row(charging)
    assert (charge.status, charge.cdr_pk, _applied(OcpiCdr, cdr)) == (S.ENDED, cdr, True)


def test_a_cdr_whose_signal_was_lost_links_an_ended_charge_in_a_sweep(
    app: Any, party: Party
) -> None:
    charge = _charge(party, S.CHARGING)
    session = _session(party, "COMPLETED")
    sessions.on_session_updated(session, "COMPLETED", "REF1", "TOK1")
    cdr = _cdr(party)
    _due(charge)
    sweeper.sweep()
    assert (_charge_row(charge).cdr_pk, _applied(OcpiCdr, cdr)) == (cdr, True)


def test_the_sweep_does_not_link_again_the_cdr_a_credit_cdr_voided(
    app: Any, party: Party
) -> None:
    charge = _charge(party, S.STOPPING)
    original = _cdr(party)
    cdrs.on_cdr_received(original, "REF1", "TOK1", None)
    credit = _cdr(party, "CDR-1-C", credit=True, credit_reference_id="CDR-1",
                  total_cost={"excl_vat": -36, "incl_vat": -45})
    cdrs.on_cdr_received(credit, "REF1", "TOK1", None)
    assert (_charge_row(charge).status, _charge_row(charge).cdr_pk) == (S.ENDED, None)
    _due(charge)
    sweeper.sweep()
    # Waiting for the replacement still: not settled from the CDR the credit voided.
    assert _charge_row(charge).cdr_pk is None
    replacement = _cdr(party, "CDR-2", total_cost={"excl_vat": 30, "incl_vat": 37.5})
    sweeper.sweep()  # its signal lost too
    assert _charge_row(charge).cdr_pk == replacement


def test_a_session_or_cdr_of_no_charge_is_applied_and_not_looked_at_again(
    app: Any, party: Party
) -> None:
    session = _session(party, "COMPLETED", n=9)
    sessions.on_session_updated(session, "COMPLETED", "REF9", "TOK9")
    cdr = _cdr(party, "CDR-9", authorization_reference="REF9",
               cdr_token={**SESSION["cdr_token"], "uid": "TOK9"})
    cdrs.on_cdr_received(cdr, "REF9", "TOK9", None)
    assert _applied(OcpiSession, session) and _applied(OcpiCdr, cdr)


def test_an_applied_session_end_is_not_read_by_the_sweep(
    app: Any, party: Party, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A charge past its end never comes back to CHARGING; set it so by hand, to see that
    # the sweep leaves an applied Session and CDR alone.
    charge = _charge(party, S.CHARGING)
    session = _session(party, "COMPLETED")
    cdr = _cdr(party)
    for model, pk in ((OcpiSession, session), (OcpiCdr, cdr)):
        db.session.execute(update(model).where(model.pk == pk).values(applied_at=OLD))
    _due(charge)
    applied: list[Any] = []
    monkeypatch.setattr(sweeper, "on_session_updated", lambda *args: applied.append(args))
    monkeypatch.setattr(sweeper, "on_cdr_received", lambda *args: applied.append(args))
    assert sweeper._sweep_charging(now_utc()) == 0
    assert applied == []


def _plans(step: Any, model: type[OcpiSession] | type[OcpiCdr]) -> list[str]:
    """The plan of each SELECT of the step that reads `model`'s table."""
    seen: list[tuple[str, Any]] = []

    def record(conn: Any, cursor: Any, statement: str, parameters: Any, *rest: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT") \
                and f"JOIN {model.__tablename__}" in statement:
            seen.append((statement, parameters))

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        step(now_utc())
    finally:
        event.remove(db.engine, "before_cursor_execute", record)
    db.session.rollback()
    plans = []
    with db.engine.connect() as conn:
        raw = conn.connection.dbapi_connection
        cursor = raw.cursor()  # type: ignore[union-attr]
        if conn.dialect.name == "postgresql":
            # Tables this small are read whole; the question is whether the partial index
            # can serve the query at all.
            cursor.execute("SET enable_seqscan = off")
            explain = "EXPLAIN "
        else:
            explain = "EXPLAIN QUERY PLAN "
        for statement, parameters in seen:
            cursor.execute(explain + statement, parameters)
            plans.append("\n".join(str(row) for row in cursor.fetchall()))
        conn.rollback()
    return plans


def test_the_sweepers_joins_read_only_what_is_still_to_apply_by_the_partial_indexes(
    app: Any, party: Party, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sweeper, "on_session_updated", lambda *args: None)
    monkeypatch.setattr(sweeper, "on_cdr_received", lambda *args: None)
    for n in range(1, 4):
        charge = _charge(party, S.CHARGING, n)
        _session(party, "COMPLETED", n)
        _due(charge)
    ended = _charge(party, S.ENDED, 4)
    _due(ended)
    db.session.execute(text("ANALYZE"))
    db.session.commit()
    session_plans = _plans(sweeper._sweep_charging, OcpiSession)
    cdr_plans = _plans(sweeper._sweep_charging, OcpiCdr) + _plans(sweeper._sweep_ended,
                                                                  OcpiCdr)
    assert len(session_plans) == 1 and len(cdr_plans) == 2
    assert all("ix_ocpi_sessions_unapplied_end" in plan for plan in session_plans), \
        session_plans
    assert all("ix_ocpi_cdrs_unapplied" in plan for plan in cdr_plans), cdr_plans
