"""One sweep at scale: its time and its SQL statements (a standalone check, not a pytest test).

    python bench/bench_sweeper.py [--db postgres|sqlite|both] [--charges 5000] [--runs 5]

Builds the schema by the migrations (PostgreSQL: database `bench` or `--url`, emptied
first; SQLite: a file in a temporary folder), then `--charges` live charges spread over the
live states as in real life, nearly all of them not due (unpaid charges a few minutes old,
starts waiting for their command's result, sessions PATCHed within the last two minutes with
their stored Session, stops to retry later, ended charges waiting for their CDR) and a few
dozen due, one or more of each kind of due work; beside them a history of final charges (10
per live charge, mostly CAPTURED with their stored Session and CDR, some EXPIRED or
CANCELLED with their hold released) so that a scan of `charges` shows; the stored Sessions
and CDRs are applied as their receivers leave them, but for the due ones whose signal was
lost. Then times
`charging.sweeper.sweep()` `--runs` times in an app context, the due charges put back as
they were between runs so each sweep does the same work, and counts its SQL statements.
Tasks go to the test config's in-memory queue, which nothing consumes: no task runs and
nothing is sent to a CPO or a gateway. `--by-step` times each step on its own; `--explain`
(PostgreSQL) prints each SELECT's plan, run, slowest first (BENCH_VERBOSE=1: the whole
plans). Exits 1 when a target is missed: a median under 100 ms and "a few dozen"
statements, taken as at most six dozen with this mix of 40 due charges (14 are the steps'
own queries, the rest the handlers of the charges the sweep moves itself; none grows with
the live charges: compare --charges 500).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from common import migrated_test_app  # noqa: E402

POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/bench"
TARGET_MS = 100.0
TARGET_STATEMENTS = 72  # "a few dozen": at most six
HISTORY_PER_LIVE = 10


class _Rows:
    """The rows to insert, built in memory and written in a few bulk inserts."""

    def __init__(self, party_pk: int, now: datetime) -> None:
        self.party_pk = party_pk
        self.now = now
        self.charges: list[dict[str, Any]] = []
        self.sessions: list[dict[str, Any]] = []
        self.cdrs: list[dict[str, Any]] = []
        self.commands: list[dict[str, Any]] = []

    def charge(self, name: str, status: str, age_s: float, **extra: Any) -> dict[str, Any]:
        n = len(self.charges)
        at = self.now - timedelta(seconds=age_s)
        row = {
            "public_id": f"{name}-{n}", "status": status, "lock_version": 0,
            "party_pk": self.party_pk, "cpo_country_code": "SE", "cpo_party_id": "CPO",
            "location_id": f"L{n % 500}", "evse_uid": f"E{n}", "evse_id": f"SE*CPO*E{n}",
            "connector_id": "1", "currency": "SEK", "hold_minor": 30000,
            "refunded_minor": 0, "gateway": "demo", "hold_id": f"pi_{n}",
            "token_uid": f"T{n}", "authorization_reference": f"R{n}", "session_id": None,
            "start_command_uid": None, "stop_attempts": 0, "energy_kwh": 0,
            "language": "sv", "created_at": at, "updated_at": at, "stop_next_at": None,
            "session_updated_at": None, "session_started_at": None, "capture_before": None,
            "hold_released_at": None, "cdr_pk": None, "failure_code": None,
        }
        row.update(extra)
        self.charges.append(row)
        return row

    def session(self, charge: dict[str, Any], status: str) -> None:
        charge["session_id"] = f"S{len(self.sessions)}-{charge['token_uid']}"
        self.sessions.append({
            "party_pk": self.party_pk, "country_code": "SE", "party_id": "CPO",
            "session_id": charge["session_id"], "status": status,
            "authorization_reference": charge["authorization_reference"],
            "token_uid": charge["token_uid"], "raw": json.dumps(self._session_raw(
                charge, status)),
            "last_updated": charge["session_updated_at"] or self.now,
            "applied_at": self._applied(charge)})

    def _applied(self, charge: dict[str, Any]) -> datetime | None:
        """As the receivers leave it: a Session or CDR whose charge is past its end is
        applied; one of a charge whose end is still to come is not (nor is one whose
        signal was lost, the due ones here)."""
        from charging.states import END_TO_COME

        return None if charge["status"] in END_TO_COME else charge["updated_at"]

    def _session_raw(self, charge: dict[str, Any], status: str) -> dict[str, Any]:
        """The fields the Session receiver reads (a stored Session's figures)."""
        started = (self.now - timedelta(hours=1)).isoformat()
        raw = {"id": charge["session_id"], "status": status, "start_date_time": started,
               "kwh": 12.5, "currency": "SEK", "total_cost": {"excl_vat": 40, "incl_vat": 50},
               "authorization_reference": charge["authorization_reference"]}
        if status == "COMPLETED":
            raw["end_date_time"] = self.now.isoformat()
        return raw

    def cdr(self, charge: dict[str, Any]) -> dict[str, Any]:
        row = {"party_pk": self.party_pk, "country_code": "SE", "party_id": "CPO",
               "cdr_id": f"CDR-{charge['token_uid']}", "session_id": charge["session_id"],
               "authorization_reference": charge["authorization_reference"],
               "token_uid": charge["token_uid"], "currency": "SEK",
               "total_cost_excl_vat": 100, "total_cost_incl_vat": 125,
               "raw": json.dumps({"id": f"CDR-{charge['token_uid']}", "currency": "SEK",
                                  "total_cost": {"excl_vat": 100, "incl_vat": 125}}),
               "received_at": self.now, "applied_at": self._applied(charge)}
        self.cdrs.append(row)
        return row

    def command(self, charge: dict[str, Any], age_s: float, deadline_in_s: float) -> None:
        uid = f"C-{charge['token_uid']}"
        charge["start_command_uid"] = uid
        self.commands.append({
            "uid": uid, "party_pk": self.party_pk, "command": "START_SESSION",
            "request": "{}", "timeout_seconds": 60,
            "deadline": self.now + timedelta(seconds=deadline_in_s),
            "created_at": self.now - timedelta(seconds=age_s)})


def _live(rows: _Rows, count: int) -> None:
    """`count` live charges, none of them due."""
    far = rows.now + timedelta(days=5)
    shares = {"CREATED": 0.04, "AUTHORIZED": 0.01, "STARTING": 0.03, "STOPPING": 0.03,
              "ENDED": 0.05}
    made = 0
    for status, share in shares.items():
        for i in range(int(count * share)):
            made += 1
            if status == "CREATED":
                rows.charge("live", status, 30 + i % 600)
            elif status == "AUTHORIZED":
                rows.charge("live", status, i % 20)
            elif status == "STARTING":
                rows.command(rows.charge("live", status, i % 30), i % 30, 60)
            elif status == "STOPPING":
                charge = rows.charge("live", status, 30 + i % 60, capture_before=far,
                                     stop_next_at=rows.now + timedelta(seconds=30),
                                     session_updated_at=rows.now - timedelta(seconds=20))
                rows.session(charge, "ACTIVE")
            else:  # waiting for its CDR, well within CDR_WAIT_SECONDS
                charge = rows.charge("live", status, 90 + i % 600, capture_before=far,
                                     session_updated_at=rows.now - timedelta(seconds=90))
                rows.session(charge, "COMPLETED")
    # The rest are charging, PATCHed by their CPO within the last two minutes: about half
    # of them older than the sweep's grace, so the ended-session join looks at them.
    for i in range(count - made):
        age = i % 120
        charge = rows.charge("live", "CHARGING", age, capture_before=far,
                             session_updated_at=rows.now - timedelta(seconds=age),
                             session_started_at=rows.now - timedelta(hours=1))
        rows.session(charge, "ACTIVE")


def _due(rows: _Rows) -> None:
    """A few dozen charges, at least one of every kind of work a sweep does."""
    old, quiet = 1200, rows.now - timedelta(seconds=1200)
    far = rows.now + timedelta(days=5)
    for _ in range(4):
        rows.charge("due", "CREATED", old)                      # expire
        rows.charge("due", "AUTHORIZED", 120)                   # start again
        rows.command(rows.charge("due", "STARTING", 120), 120, -30)  # result never came
        rows.charge("due", "STOPPING", 300, stop_next_at=rows.now - timedelta(seconds=5),
                    session_id="S-stop", capture_before=far)    # stop try due
    for _ in range(2):
        rows.charge("due", "STARTING", 300)                     # never sent
        rows.charge("due", "EXPIRED", 300)                      # hold not yet released
        rows.charge("due", "CHARGING", 300, capture_before=rows.now + timedelta(hours=1),
                    session_updated_at=rows.now - timedelta(seconds=30))  # hold lapses
    for _ in range(3):
        ended = rows.charge("due", "CHARGING", 300, capture_before=far,
                            session_updated_at=rows.now - timedelta(seconds=300))
        rows.session(ended, "COMPLETED")                        # its end was lost
        with_cdr = rows.charge("due", "CHARGING", 300, capture_before=far,
                               session_updated_at=rows.now - timedelta(seconds=300))
        rows.session(with_cdr, "ACTIVE")
        rows.cdr(with_cdr)                                      # its CDR's signal was lost
        silent = rows.charge("due", "CHARGING", old, capture_before=far,
                             session_updated_at=quiet)
        rows.session(silent, "ACTIVE")                          # CPO gone quiet
        rows.charge("due", "ENDED", 300, capture_before=far, cdr_pk=-1)  # settle
        rows.charge("due", "ENDED", old, capture_before=far)    # CDR late: pull
        rows.charge("due", "START_FAILED", 300)                 # release the hold


def _history(rows: _Rows, count: int) -> None:
    for i in range(count):
        status = "EXPIRED" if i % 20 == 0 else "CANCELLED" if i % 50 == 1 else "CAPTURED"
        age = 3600 + i * 60
        charge = rows.charge("old", status, age, hold_released_at=None
                             if status == "CAPTURED"
                             else rows.now - timedelta(seconds=age - 60))
        if status == "CAPTURED":  # its Session and CDR stay stored
            rows.session(charge, "COMPLETED")
            rows.cdr(charge)


def _fill(live: int) -> list[dict[str, Any]]:
    """Store everything; returns the due charges as stored, to put them back between runs."""
    from sqlalchemy import insert, select, text

    from charging.models import Charge
    from extensions import db
    from ocpi.models import OcpiCdr, OcpiCommand, OcpiSession, Party, PartyGrant
    from ocpi.transport import now_utc

    party = Party(name="CPO", status="CONNECTED", country_code="SE", party_id="CPO",
                  grants=[PartyGrant(role="CPO", country_code="SE", party_id="CPO")])
    db.session.add(party)
    db.session.commit()
    rows = _Rows(party.pk, now_utc())
    _due(rows)
    due_count, due_cdrs = len(rows.charges), len(rows.cdrs)
    _live(rows, live - due_count)
    _history(rows, live * HISTORY_PER_LIVE)
    history_cdrs = rows.cdrs[due_cdrs:]
    rows.cdrs = rows.cdrs[:due_cdrs]
    for model, batch in ((OcpiSession, rows.sessions), (OcpiCommand, rows.commands),
                         (OcpiCdr, history_cdrs)):
        for start in range(0, len(batch), 5000):
            db.session.execute(insert(model), batch[start:start + 5000])
    cdr_pks = []
    for cdr in rows.cdrs:
        cdr_pks.append(db.session.execute(insert(OcpiCdr).returning(OcpiCdr.pk), cdr)
                       .scalar_one())
    for charge in rows.charges:
        if charge["cdr_pk"] == -1:  # a settled one's own CDR, linked already
            rows.cdrs.append({**rows.cdrs[0], "cdr_id": f"CDR-{charge['token_uid']}",
                              "authorization_reference": charge["authorization_reference"],
                              "token_uid": charge["token_uid"],
                              "applied_at": rows._applied(charge)})
            charge["cdr_pk"] = db.session.execute(
                insert(OcpiCdr).returning(OcpiCdr.pk), rows.cdrs[-1]).scalar_one()
    for start in range(0, len(rows.charges), 5000):
        db.session.execute(insert(Charge), rows.charges[start:start + 5000])
    db.session.commit()
    _as_of_now(rows, live)
    if db.engine.dialect.name == "postgresql":
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))
    else:
        db.session.execute(text("ANALYZE"))
        db.session.commit()
    due = db.session.scalars(select(Charge).where(Charge.public_id.like("due-%"))).all()
    columns = [c.key for c in Charge.__table__.columns]
    stored = [{key: getattr(charge, key) for key in columns} for charge in due]
    db.session.remove()
    print(f"  {live} live charges ({due_count} due), {len(rows.charges) - live} final, "
          f"{len(rows.sessions)} Sessions, {len(rows.cdrs) + len(history_cdrs)} CDRs, "
          f"{len(rows.commands)} commands")
    return stored


def _as_of_now(rows: _Rows, live: int) -> None:
    """The live charges' and commands' times moved on by as long as the inserts took, so
    that what was built not due is still not due when the sweeps run on a slow machine."""
    from sqlalchemy import select, update

    from charging.models import Charge
    from extensions import db
    from ocpi.models import OcpiCommand
    from ocpi.transport import now_utc

    moved = now_utc() - rows.now
    pks = dict(db.session.execute(select(Charge.public_id, Charge.pk).where(
        Charge.public_id.not_like("old-%"))).tuples().all())
    times = ("created_at", "updated_at", "stop_next_at", "session_updated_at",
             "session_started_at", "capture_before")
    db.session.execute(update(Charge), [
        {"pk": pks[row["public_id"]],
         **{key: row[key] + moved for key in times if row[key] is not None}}
        for row in rows.charges[:live]])
    uids = dict(db.session.execute(select(OcpiCommand.uid, OcpiCommand.pk)).tuples().all())
    db.session.execute(update(OcpiCommand), [
        {"pk": uids[row["uid"]], "created_at": row["created_at"] + moved,
         "deadline": row["deadline"] + moved} for row in rows.commands])
    db.session.commit()


def _put_back(app: Any, due: list[dict[str, Any]]) -> None:
    """The due charges as they were, their timeline rows gone, their Sessions and CDRs
    not applied again (those of the charges whose end is to come: the lost signals), the
    queue emptied."""
    from sqlalchemy import delete, update

    from charging.models import Charge, ChargeEvent
    from charging.states import END_TO_COME
    from extensions import db
    from jobs import queue
    from ocpi.models import OcpiCdr, OcpiSession

    pks = [row["pk"] for row in due]
    db.session.execute(delete(ChargeEvent).where(ChargeEvent.charge_pk.in_(pks)))
    db.session.execute(update(Charge), due)
    lost = [row["authorization_reference"] for row in due if row["status"] in END_TO_COME]
    for model in (OcpiSession, OcpiCdr):
        db.session.execute(update(model).where(model.authorization_reference.in_(lost))
                           .values(applied_at=None))
    db.session.commit()
    db.session.remove()
    queue.huey(app).flush()


def _one_sweep(app: Any) -> tuple[float, int, dict[str, int], int]:
    from sqlalchemy import event

    from charging import sweeper
    from extensions import db
    from jobs import queue

    statements: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *rest: Any) -> None:
        statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        started = time.perf_counter()
        result = sweeper.sweep()
        db.session.commit()
        elapsed = (time.perf_counter() - started) * 1000
    finally:
        event.remove(db.engine, "before_cursor_execute", count)
        db.session.remove()
    return elapsed, len(statements), result, queue.huey(app).pending_count()


def _by_step(app: Any) -> None:
    """Each step of one sweep on its own (as sweep() runs them): where the time goes."""
    from sqlalchemy import event

    from charging import sweeper
    from extensions import db
    from ocpi.transport import now_utc

    statements: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *rest: Any) -> None:
        statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        now = now_utc()
        for name, step in sweeper._SWEEP_STEPS:
            before, started = len(statements), time.perf_counter()
            done = step(now)
            elapsed = (time.perf_counter() - started) * 1000
            print(f"    {name:<17} {elapsed:7.1f} ms {len(statements) - before:4} statements"
                  f" ({done} done)")
        db.session.commit()
    finally:
        event.remove(db.engine, "before_cursor_execute", count)
        db.session.remove()


def _explain(app: Any, due: list[dict[str, Any]], verbose: bool = False) -> None:
    """PostgreSQL's plan of each distinct SELECT of one sweep, run (EXPLAIN ANALYZE) on the
    due charges put back as they were before it (else the queries find nothing to do): its
    time and the scans it does, the slowest first."""
    from sqlalchemy import event

    from charging import sweeper
    from extensions import db

    seen: dict[str, Any] = {}

    def record(conn: Any, cursor: Any, statement: str, parameters: Any, *rest: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            seen.setdefault(" ".join(statement.split()), (statement, parameters))

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        sweeper.sweep()
        db.session.commit()
    finally:
        event.remove(db.engine, "before_cursor_execute", record)
        db.session.remove()
    _put_back(app, due)
    plans: list[tuple[float, str, str]] = []
    raw = db.engine.raw_connection()
    try:
        cursor = raw.cursor()
        for flat, (statement, parameters) in seen.items():
            cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + statement, parameters)
            plan = cursor.fetchone()[0][0]  # type: ignore[index]
            scans = sorted({f"{node['Node Type']} {node.get('Index Name', '')}".strip()
                            for node in _walk(plan["Plan"]) if "Scan" in node["Node Type"]})
            plans.append((plan["Execution Time"], ", ".join(scans), flat))
            if verbose:
                print(plan["Execution Time"], flat[flat.find(" FROM "):])
                cursor.execute("EXPLAIN ANALYZE " + statement, parameters)
                print("\n".join(row[0] for row in cursor.fetchall()))
        raw.rollback()
    finally:
        raw.close()
    for ms, used, flat in sorted(plans, reverse=True)[:12]:
        print(f"    {ms:7.2f} ms  {used[:70]:<70}  {flat[:100]}")


def _walk(plan: dict[str, Any]) -> list[dict[str, Any]]:
    nodes = [plan]
    for child in plan.get("Plans", []):
        nodes += _walk(child)
    return nodes


def bench(url: str, live: int, runs: int, by_step: bool = False,
          explain: bool = False) -> bool:
    app = migrated_test_app(url)
    with app.app_context():
        started = time.perf_counter()
        due = _fill(live)
        print(f"  built in {time.perf_counter() - started:.1f} s")
        _one_sweep(app)  # warm: imports, compiled statements, the connection pool
        _put_back(app, due)
        times, counts = [], []
        for _ in range(runs):
            elapsed, statements, result, enqueued = _one_sweep(app)
            times.append(elapsed)
            counts.append(statements)
            _put_back(app, due)
        if by_step:
            _by_step(app)
            _put_back(app, due)
        if explain and url.startswith("postgresql"):
            _explain(app, due, verbose=bool(os.environ.get("BENCH_VERBOSE")))
            _put_back(app, due)
    median, worst = statistics.median(times), max(times)
    done = {name: n for name, n in result.items() if n}
    print(f"  sweep: median {median:.1f} ms, worst {worst:.1f} ms over {runs} runs; "
          f"{max(counts)} SQL statements; {enqueued} tasks enqueued; work {done}")
    met = median < TARGET_MS and max(counts) <= TARGET_STATEMENTS
    print(f"  target (< {TARGET_MS:.0f} ms, <= {TARGET_STATEMENTS} statements): "
          f"{'met' if met else 'MISSED'}")
    return met


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--db", choices=("postgres", "sqlite", "both"), default="both")
    parser.add_argument("--charges", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--url", default=POSTGRES_URL, help="the PostgreSQL database")
    parser.add_argument("--by-step", action="store_true", help="time each step on its own")
    parser.add_argument("--explain", action="store_true",
                        help="PostgreSQL: the plan of each SELECT, run (EXPLAIN ANALYZE)")
    args = parser.parse_args(argv)
    urls = []
    if args.db in ("postgres", "both"):
        urls.append(args.url)
    if args.db in ("sqlite", "both"):
        urls.append(f"sqlite:///{tempfile.mkdtemp()}/bench_sweeper.db")
    met = True
    for url in urls:
        print(url.split(":")[0].split("+")[0] + ":")
        met = bench(url, args.charges, args.runs, args.by_step, args.explain) and met
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
