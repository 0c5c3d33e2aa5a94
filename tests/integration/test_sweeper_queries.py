"""The sweeper's work is in proportion to what is due, not to how many charges are live:
a sweep issues the same number of SQL statements with 3 or 60 charging charges, and finds
the one whose Session already ended among them."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event, select, update

from charging import sweeper
from charging.models import Charge
from charging.states import ChargeStatus as S
from extensions import db
from ocpi.models import OcpiCommand, OcpiSession, Party
from ocpi.transport import now_utc

OLD = now_utc() - timedelta(hours=1)


def _charging(party: Party, count: int, start: int = 0) -> None:
    for n in range(start, start + count):
        db.session.add(Charge(
            party_pk=party.pk, cpo_country_code="SE", cpo_party_id="SIM", location_id="L",
            evse_uid="E", evse_id="SE*SIM*E1", connector_id="1", currency="SEK",
            hold_minor=10000, gateway="demo", status=S.CHARGING.value, hold_id=f"pi_{n}",
            token_uid=f"T{n}", authorization_reference=f"R{n}", session_id=f"S{n}",
            created_at=OLD, updated_at=OLD, session_updated_at=now_utc()))
    db.session.commit()


def _statements_of_one_sweep(app: Any, monkeypatch: pytest.MonkeyPatch) -> tuple[int, list]:
    ended: list[Any] = []
    monkeypatch.setattr(sweeper, "on_session_updated", lambda *args: ended.append(args))
    for name in ("start", "command_deadline", "send_stop", "expire_unpaid", "settle",
                 "settle_without_cdr", "release_hold"):
        monkeypatch.setattr(getattr(sweeper, name), "enqueue", lambda *a, **k: None)
    seen: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *rest: Any) -> None:
        seen.append(statement)

    engine = db.engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        sweeper.sweep()
    finally:
        event.remove(engine, "before_cursor_execute", count)
    db.session.rollback()
    return len(seen), ended


def test_a_sweep_costs_the_same_statements_for_3_or_60_live_charges(
    app: Any, party: Party, monkeypatch: pytest.MonkeyPatch
) -> None:
    _charging(party, 3)
    few, _ = _statements_of_one_sweep(app, monkeypatch)
    _charging(party, 57, start=3)
    many, _ = _statements_of_one_sweep(app, monkeypatch)
    assert many == few


def test_the_sweep_still_finds_the_charge_whose_session_ended(
    app: Any, party: Party, monkeypatch: pytest.MonkeyPatch
) -> None:
    _charging(party, 20)
    db.session.add(OcpiSession(party_pk=party.pk, country_code="SE", party_id="SIM",
                               session_id="S7", status="COMPLETED",
                               authorization_reference="R7", token_uid="T7", raw="{}",
                               last_updated=now_utc()))
    # The same reference from another CPO's session over the same connection is not it.
    db.session.add(OcpiSession(party_pk=party.pk, country_code="SE", party_id="XYZ",
                               session_id="S8", status="COMPLETED",
                               authorization_reference="R8", token_uid="T8", raw="{}",
                               last_updated=now_utc()))
    db.session.commit()
    _, ended = _statements_of_one_sweep(app, monkeypatch)
    assert [args[2] for args in ended] == ["R7"]


def _starting(party: Party, count: int, start: int = 0) -> None:
    """Starts sent a moment ago, waiting for their command's result: not due."""
    for n in range(start, start + count):
        db.session.add(OcpiCommand(uid=f"C{n}", party_pk=party.pk, command="START_SESSION",
                                   request="{}", deadline=now_utc() + timedelta(minutes=1)))
        db.session.add(Charge(
            party_pk=party.pk, cpo_country_code="SE", cpo_party_id="SIM", location_id="L",
            evse_uid="E", evse_id="SE*SIM*E1", connector_id="1", currency="SEK",
            hold_minor=10000, gateway="demo", status=S.STARTING.value, hold_id=f"pi_s{n}",
            token_uid=f"TS{n}", authorization_reference=f"RS{n}", start_command_uid=f"C{n}"))
    db.session.commit()


def test_starts_waiting_for_their_result_cost_no_statements_beside_one_never_sent(
    app: Any, party: Party, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The start never sent is failed (a commit) while the waiting ones are still to look
    # at: they must not be read again one by one.
    db.session.add(Charge(
        party_pk=party.pk, cpo_country_code="SE", cpo_party_id="SIM", location_id="L",
        evse_uid="E", evse_id="SE*SIM*E1", connector_id="1", currency="SEK",
        hold_minor=10000, gateway="demo", status=S.STARTING.value, hold_id="pi_never",
        token_uid="TN", authorization_reference="RN", created_at=OLD, updated_at=OLD))
    _starting(party, 2)
    few, _ = _statements_of_one_sweep(app, monkeypatch)
    db.session.execute(update(Charge).where(Charge.token_uid == "TN").values(
        status=S.STARTING.value, failure_code=None, updated_at=OLD))
    db.session.commit()
    _starting(party, 30, start=2)
    many, _ = _statements_of_one_sweep(app, monkeypatch)
    assert db.session.scalar(select(Charge.status).where(Charge.token_uid == "TN")) \
        == S.START_FAILED.value
    assert many == few


def test_holds_released_long_ago_are_not_read_by_the_sweep(
    app: Any, party: Party, monkeypatch: pytest.MonkeyPatch
) -> None:
    released: list[Any] = []
    pks = []
    for n, released_at in enumerate([OLD, OLD, None]):
        db.session.add(Charge(
            party_pk=party.pk, cpo_country_code="SE", cpo_party_id="SIM", location_id="L",
            evse_uid="E", evse_id="SE*SIM*E1", connector_id="1", currency="SEK",
            hold_minor=10000, gateway="demo", status=S.EXPIRED.value, hold_id=f"pi_x{n}",
            token_uid=f"TX{n}", authorization_reference=f"RX{n}",
            hold_released_at=released_at, created_at=OLD, updated_at=OLD))
        db.session.flush()
        pks.append(db.session.scalar(select(Charge.pk).where(Charge.hold_id == f"pi_x{n}")))
    db.session.commit()
    loaded: list[Any] = []

    def on_load(target: Charge, context: Any) -> None:
        loaded.append(target.hold_id)

    event.listen(Charge, "load", on_load)
    try:
        monkeypatch.setattr(sweeper.release_hold, "enqueue", released.append)
        sweeper._sweep_releases(now_utc())
    finally:
        event.remove(Charge, "load", on_load)
    # Only the one still to release comes back, and as its key only (no Charge loaded).
    assert loaded == []
    assert released == [pks[2]]


def test_ended_charges_waiting_for_their_cdr_are_not_read_by_the_settle_step(
    app: Any, party: Party, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ocpi.models import OcpiCdr

    cdr = OcpiCdr(party_pk=party.pk, country_code="SE", party_id="SIM", cdr_id="CDR-S",
                  authorization_reference="R-stored", token_uid="T-stored", currency="SEK",
                  total_cost_excl_vat=1, raw="{}")
    db.session.add(cdr)
    db.session.flush()
    lapsing = now_utc() - timedelta(days=30)  # past any capture deadline
    for name, extra in (("wait1", {}), ("wait2", {}), ("linked", {"cdr_pk": cdr.pk}),
                        ("stored", {}), ("lapsing", {"created_at": lapsing})):
        db.session.add(Charge(
            party_pk=party.pk, cpo_country_code="SE", cpo_party_id="SIM", location_id="L",
            evse_uid="E", evse_id="SE*SIM*E1", connector_id="1", currency="SEK",
            hold_minor=10000, gateway="demo", status=S.ENDED.value, hold_id=name,
            token_uid=f"T-{name}", authorization_reference=f"R-{name}",
            **{"created_at": OLD, "updated_at": OLD, **extra}))
    db.session.commit()
    loaded: list[Any] = []
    done: list[str] = []

    def on_load(target: Charge, context: Any) -> None:
        loaded.append(target.hold_id)

    monkeypatch.setattr(sweeper.settle, "enqueue", lambda pk: done.append(f"settle {pk}"))
    monkeypatch.setattr(sweeper.settle_without_cdr, "enqueue",
                        lambda pk: done.append(f"without {pk}"))
    monkeypatch.setattr(sweeper, "on_cdr_received", lambda *args: done.append(f"cdr {args[1]}"))
    event.listen(Charge, "load", on_load)
    try:
        settled = sweeper._sweep_ended(now_utc())
    finally:
        event.remove(Charge, "load", on_load)
    pk = dict(db.session.execute(select(Charge.hold_id, Charge.pk)).tuples().all())
    assert sorted(loaded) == ["lapsing", "linked", "stored"]
    assert settled == 1
    assert sorted(done) == sorted([f"settle {pk['linked']}", "cdr R-stored",
                                   f"without {pk['lapsing']}"])
