"""The shape of the OCPI ingest (docs/performance.md has the counts): a Session PATCH issues
the same SQL whether the Session holds 0 or 60 charging periods, never reads the stored
periods, and a PATCH and a CDR POST each stay within their statements and transactions
(the message log included). Shape, not speed: timings are for bench/bench_ingest.py."""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy import event

from charging.models import Charge
from charging.states import ChargeStatus as S
from extensions import db
from ocpi import messages, store
from ocpi.models import OcpiMessage, OcpiSession, Party, PartyGrant, token_hash
from ocpi.transport import json_dumps, now_utc

TOKEN = "ingest-token"
AUTH = {"Authorization": f"Token {base64.b64encode(TOKEN.encode()).decode()}",
        "Content-Type": "application/json"}
V = "/ocpi/2.2.1"
# What a PATCH and a CDR POST may cost at most (docs/performance.md), the message log's
# row included: one transaction for the request's own work, one for the log (batched by
# its writer in production). SQLite locks with an UPDATE where PostgreSQL reads FOR UPDATE
# (the Session's row, the charge's). A CDR that ends its charge is also marked applied
# (one UPDATE in the domain's part, so the sweeper never reads it again).
STATEMENTS = {"postgresql": {"patch": 7, "cdr": 8}, "sqlite": {"patch": 8, "cdr": 8}}
TRANSACTIONS = 2


def _session(n: int, periods: int) -> dict[str, Any]:
    return {
        "country_code": "SE", "party_id": "CPO", "id": f"S{n}",
        "start_date_time": "2026-12-01T08:00:00Z", "kwh": 0,
        "cdr_token": {"country_code": "SE", "party_id": "SCN", "uid": f"T{n}",
                      "type": "AD_HOC_USER", "contract_id": f"SE-SCN-T{n}"},
        "auth_method": "COMMAND", "authorization_reference": f"R{n}",
        "location_id": "L1", "evse_uid": "E1", "connector_id": "1", "currency": "SEK",
        "charging_periods": [_period(i) for i in range(periods)],
        "status": "ACTIVE", "last_updated": "2026-12-01T08:00:00Z",
    }


def _period(i: int) -> dict[str, Any]:
    return {"start_date_time": f"2026-12-01T{8 + i // 60:02d}:{i % 60:02d}:00Z",
            "dimensions": [{"type": "ENERGY", "volume": 0.25}]}


def _patch(i: int) -> dict[str, Any]:
    at = f"2026-12-02T{8 + i // 60:02d}:{i % 60:02d}:00Z"
    return {"kwh": i, "charging_periods": [{"start_date_time": at, "dimensions": [
        {"type": "ENERGY", "volume": 0.25}]}], "total_cost": {"excl_vat": i, "incl_vat": i},
        "last_updated": at}


def _cdr(n: int) -> dict[str, Any]:
    return {
        "country_code": "SE", "party_id": "CPO", "id": f"C{n}",
        "start_date_time": "2026-12-01T08:00:00Z", "end_date_time": "2026-12-01T09:00:00Z",
        "session_id": f"S{n}",
        "cdr_token": {"country_code": "SE", "party_id": "SCN", "uid": f"T{n}",
                      "type": "AD_HOC_USER", "contract_id": f"SE-SCN-T{n}"},
        "auth_method": "COMMAND", "authorization_reference": f"R{n}",
        "cdr_location": {"id": "L1", "address": "Storgatan 1", "city": "Stockholm",
                         "postal_code": "11122", "country": "SWE",
                         "coordinates": {"latitude": "59.33", "longitude": "18.06"},
                         "evse_uid": "E1", "evse_id": "SE*CPO*E1", "connector_id": "1",
                         "connector_standard": "IEC_62196_T2", "connector_format": "SOCKET",
                         "connector_power_type": "AC_3_PHASE"},
        "currency": "SEK", "charging_periods": [_period(0)],
        "total_cost": {"excl_vat": 40, "incl_vat": 50}, "total_energy": 10, "total_time": 1,
        "last_updated": "2026-12-01T09:00:00Z",
    }


@dataclass
class Seen:
    statements: list[str] = field(default_factory=list)
    transactions: int = 0


def _counting(run: Callable[[], Any]) -> Seen:
    seen = Seen()

    def statement(conn: Any, cursor: Any, text: str, *rest: Any) -> None:
        seen.statements.append(text)

    def begin(conn: Any) -> None:
        seen.transactions += 1

    engine = db.engine
    event.listen(engine, "before_cursor_execute", statement)
    event.listen(engine, "begin", begin)
    try:
        run()
        messages.flush()  # the message log's rows are part of a request's cost
    finally:
        event.remove(engine, "before_cursor_execute", statement)
        event.remove(engine, "begin", begin)
    return seen


def charging_at_cpo(numbers: Iterable[int], hold_minor: int) -> None:
    """The CPO (TOKEN its credentials) and, for each n, a charge CHARGING in its session
    S{n} with token T{n} and authorization R{n}: what _session(n) and _cdr(n) name."""
    db.session.add(Party(
        name="CPO", country_code="SE", party_id="CPO", status="CONNECTED",
        incoming_token_hash=token_hash(TOKEN), outgoing_token="out", endpoints=[],
        grants=[PartyGrant(role="CPO", country_code="SE", party_id="CPO")]))
    db.session.commit()
    party_pk = db.session.scalar(db.select(Party.pk))
    for n in numbers:
        db.session.add(Charge(
            party_pk=party_pk, cpo_country_code="SE", cpo_party_id="CPO", location_id="L1",
            evse_uid="E1", evse_id="SE*CPO*E1", connector_id="1", currency="SEK",
            hold_minor=hold_minor, gateway="demo", status=S.CHARGING.value, hold_id=f"pi_{n}",
            token_uid=f"T{n}", authorization_reference=f"R{n}", session_id=f"S{n}",
            created_at=now_utc(), updated_at=now_utc()))
    db.session.commit()


@pytest.fixture
def client(app: Any) -> Any:
    charging_at_cpo((1, 2, 3), hold_minor=10_000_000)
    test_client = app.test_client()
    for n, periods in ((1, 0), (2, 60)):
        put = test_client.put(f"{V}/sessions/SE/CPO/S{n}", data=json_dumps(_session(n, periods)),
                              headers=AUTH)
        assert put.status_code == 201, put.get_data(as_text=True)
    db.session.remove()
    return test_client


def _patched(client: Any, n: int, i: int) -> Seen:
    def run() -> None:
        answer = client.patch(f"{V}/sessions/SE/CPO/S{n}", data=json_dumps(_patch(i)),
                              headers=AUTH)
        assert answer.get_json()["status_code"] == 1000

    seen = _counting(run)
    db.session.remove()
    return seen


def _shape(statements: list[str]) -> list[str]:
    # The same statement whatever its values (pysqlite and psycopg differ only in markers).
    return [re.sub(r"\s+", " ", s) for s in statements]


def test_a_patch_costs_the_same_at_0_and_60_stored_periods(client: Any) -> None:
    _patched(client, 1, 0), _patched(client, 2, 0)  # warm: first-use look-ups are no cost
    short, long = _patched(client, 1, 1), _patched(client, 2, 1)
    assert _shape(short.statements) == _shape(long.statements)
    reads = [s for s in long.statements if "ocpi_session_periods" in s
             and not s.lstrip().upper().startswith("INSERT")]
    assert reads == [], "a PATCH read or rewrote the stored periods"
    row = db.session.scalar(db.select(OcpiSession).where(OcpiSession.session_id == "S2"))
    assert row is not None and row.period_count == 62
    periods = store.charging_periods(row, 60)
    assert [p["start_date_time"] for p in periods] == ["2026-12-02T08:00:00Z",
                                                        "2026-12-02T08:01:00Z"]
    assert len(store.session_json(row)["charging_periods"]) == 62


def test_a_patch_and_a_cdr_post_stay_within_their_round_trips(client: Any) -> None:
    _patched(client, 1, 0)
    patch = _patched(client, 1, 1)

    def post() -> None:
        answer = client.post(f"{V}/cdrs", data=json_dumps(_cdr(3)), headers=AUTH)
        assert answer.status_code == 201, answer.get_data(as_text=True)

    cdr = _counting(post)
    db.session.remove()
    print(f"\nSession PATCH: {len(patch.statements)} statements in {patch.transactions} "
          f"transactions; CDR POST: {len(cdr.statements)} in {cdr.transactions}")
    most = STATEMENTS[db.engine.dialect.name]
    assert len(patch.statements) <= most["patch"], patch.statements
    assert len(cdr.statements) <= most["cdr"], cdr.statements
    assert (patch.transactions, cdr.transactions) == (TRANSACTIONS, TRANSACTIONS)
    assert db.session.query(OcpiMessage).count() == 5  # every request logged
    charge = db.session.scalar(db.select(Charge).where(Charge.session_id == "S3"))
    assert charge is not None and charge.status == S.ENDED.value


@pytest.mark.parametrize("kind", ["patch", "cdr"])
def test_a_failing_domain_keeps_what_the_cpo_sent_and_changes_no_charge(
    client: Any, kind: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """No savepoint guards the domain's part of a push: when it fails, the receiver rolls
    the request back and stores the object again alone; the CPO gets its 1000."""
    from charging import cdrs, sessions

    def broken(*args: Any, **kwargs: Any) -> None:
        charge = db.session.scalar(db.select(Charge).where(Charge.session_id == "S1"))
        assert charge is not None
        charge.failure_code = "HALF_DONE"  # what the domain changed before it failed
        db.session.flush()
        raise RuntimeError("the domain failed")

    monkeypatch.setattr(sessions, "_take_figures", broken)
    monkeypatch.setattr(cdrs, "_on_cdr", broken)
    if kind == "patch":
        answer = client.patch(f"{V}/sessions/SE/CPO/S1", data=json_dumps(_patch(5)),
                              headers=AUTH)
    else:
        answer = client.post(f"{V}/cdrs", data=json_dumps({**_cdr(1), "id": "C1"}),
                             headers=AUTH)
    assert answer.status_code in (200, 201), answer.get_data(as_text=True)
    assert answer.get_json()["status_code"] == 1000
    assert "the domain failed" in caplog.text
    db.session.remove()
    charge = db.session.scalar(db.select(Charge).where(Charge.session_id == "S1"))
    assert charge is not None and charge.failure_code is None
    if kind == "patch":
        row = db.session.scalar(db.select(OcpiSession).where(OcpiSession.session_id == "S1"))
        assert row is not None and row.period_count == 1
        assert row.data["kwh"] == _patch(5)["kwh"]
    else:
        from ocpi.models import OcpiCdr

        assert db.session.scalar(db.select(OcpiCdr.cdr_id)) == "C1"


def test_a_domain_write_the_database_refuses_keeps_the_session(
    client: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The domain's changes are written inside its unit (not first at the request's
    commit), so a write the database refuses is undone like any failure of the domain."""
    from charging import sessions

    real = sessions._apply

    def refused(charge: Charge, *args: Any) -> None:
        real(charge, *args)
        charge.public_id = None  # type: ignore[assignment]  # NOT NULL: refused at the write

    monkeypatch.setattr(sessions, "_apply", refused)
    answer = client.patch(f"{V}/sessions/SE/CPO/S1", data=json_dumps(_patch(7)), headers=AUTH)
    assert answer.status_code == 200, answer.get_data(as_text=True)
    assert answer.get_json()["status_code"] == 1000
    assert "on_session_updated failed" in caplog.text
    db.session.remove()
    row = db.session.scalar(db.select(OcpiSession).where(OcpiSession.session_id == "S1"))
    assert row is not None and row.period_count == 1 and row.data["kwh"] == 7
    charge = db.session.scalar(db.select(Charge).where(Charge.session_id == "S1"))
    assert charge is not None and charge.status == S.CHARGING.value
