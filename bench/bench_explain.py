"""Every look-up on a request path, the sweeper and a dashboard page uses an index at scale:
a standalone check (not a pytest test), on PostgreSQL.

    python bench/bench_explain.py [--charges 100000] [--url postgresql+psycopg://...]

Builds the schema by the migrations in its own database (default `bench` on this machine's
PostgreSQL; it is emptied first), fills it with `--charges` charges (most of them long
settled, a few hundred live), 1,000 locations and as many OCPI messages as charges,
ANALYZEs, then runs the real code paths (a sweep; the driver's charger and charge
look-ups; the dashboard's charge list by status, a charge's page, a party's messages by
module) while recording every SELECT they issue, and prints PostgreSQL's plan for each:
the statement, its cost and whether it scans a whole big table. Exits 1 when a statement
scans sequentially a table of more than 1,000 rows.
"""

from __future__ import annotations

import argparse
import datetime
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, event, text  # noqa: E402

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/bench"
BIG = 1000


def _fill(conn: Any, charges: int) -> None:
    conn.execute(text(
        "insert into ocpi_locations (party_pk, country_code, party_id, location_id, "
        "time_zone, raw, last_updated) select 1, 'SE', 'CPO', 'L' || n, "
        "'Europe/Stockholm', '{}', now() from generate_series(1, 1000) n"))
    # Mostly settled long ago; 0.5 % live (charging), a few waiting for payment or a CDR.
    conn.execute(text(
        "insert into charges (public_id, status, lock_version, party_pk, cpo_country_code, "
        "cpo_party_id, location_id, evse_uid, evse_id, connector_id, currency, hold_minor, "
        "refunded_minor, gateway, hold_id, token_uid, authorization_reference, session_id, "
        "stop_attempts, energy_kwh, language, created_at, updated_at) "
        "select 'p' || n, case when n % 200 = 0 then 'CHARGING' when n % 997 = 0 then 'ENDED'"
        " when n % 1009 = 0 then 'CREATED' else 'CAPTURED' end, 0, 1, 'SE', 'CPO', "
        "'L' || (n % 1000 + 1), 'E' || (n % 3000), 'SE*CPO*E' || (n % 3000), '1', 'SEK', "
        "15000, 0, 'demo', 'pi_' || n, 'T' || n, 'R' || n, 'S' || n, 0, 10, 'sv', "
        "now() - (n || ' minutes')::interval, now() - (n || ' minutes')::interval "
        "from generate_series(1, :n) n"), {"n": charges})
    conn.execute(text(
        "insert into ocpi_messages (at, direction, party_pk, method, url, module, "
        "duration_ms, object_id, request_truncated, response_truncated) "
        "select now() - (n || ' seconds')::interval, 'in', 1, 'PATCH', '/x', "
        "case n % 3 when 0 then 'sessions' when 1 then 'cdrs' else 'commands' end, 3, "
        "'S' || n, false, false from generate_series(1, :n) n"), {"n": charges})


def _record(engine: Any) -> tuple[list[tuple[str, Any]], Any]:
    seen: list[tuple[str, Any]] = []

    def before(conn: Any, cursor: Any, statement: str, parameters: Any, *rest: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            seen.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", before)
    return seen, before


def _walk(plan: dict[str, Any]) -> list[dict[str, Any]]:
    nodes = [plan]
    for child in plan.get("Plans", []):
        nodes += _walk(child)
    return nodes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--charges", type=int, default=100_000)
    parser.add_argument("--url", default=DEFAULT_URL)
    args = parser.parse_args(argv)

    from app import create_app, upgrade_database
    from config import TestConfig

    settings = {k: getattr(TestConfig, k) for k in dir(TestConfig) if k.isupper()}
    settings["SQLALCHEMY_DATABASE_URI"] = args.url
    engine = create_engine(args.url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()
    app = create_app(settings)
    upgrade_database(app)
    started = time.perf_counter()
    with app.app_context():
        from extensions import db
        from ocpi.models import Party, PartyGrant

        db.session.add(Party(pk=1, name="CPO", status="CONNECTED", country_code="SE",
                             party_id="CPO", grants=[PartyGrant(role="CPO", country_code="SE",
                                                                party_id="CPO")]))
        db.session.commit()
        with db.engine.begin() as conn:
            _fill(conn, args.charges)
        # As autovacuum leaves a table: statistics, and a visibility map for index-only scans.
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))
        print(f"{args.charges} charges, 1000 locations, {args.charges} messages "
              f"in {time.perf_counter() - started:.1f} s; PostgreSQL "
              f"{db.session.scalar(text('show server_version'))}")
        from dashboard.models import set_operator

        operator = set_operator("bench@example.com", "x", check_policy=False)
        db.session.commit()
        operator_pk = operator.pk
        seen, listener = _record(db.engine)
        _run_paths(app, operator_pk)
        event.remove(db.engine, "before_cursor_execute", listener)
        return _explain(db.engine, seen)


def _run_paths(app: Any, operator_pk: int) -> None:
    from charging import sweeper

    for name in ("start", "command_deadline", "send_stop", "expire_unpaid", "settle",
                 "settle_without_cdr", "release_hold"):
        getattr(sweeper, name).enqueue = lambda *a, **k: None  # type: ignore[method-assign]
    sweeper.sweep()
    from extensions import db

    db.session.remove()
    client = app.test_client()
    paths = ["/api/v1/chargers/SE*CPO*E17", "/api/v1/charges/p200", "/charge/p200"]
    for path in paths:
        client.get(path)
    with client.session_transaction() as session:
        session["operator_pk"] = operator_pk
        session["signed_in_at"] = time.time()  # a session older than its lifetime is refused
    # The charges search: by EVSE-ID, PaymentIntent and public id prefix, and today's charges
    # (one day of the filled ones) by amount.
    today = datetime.date.today().isoformat()
    for path in ["/dashboard/?status=CHARGING", "/dashboard/?q=SE*CPO*E17",
                 "/dashboard/?q=pi_17", "/dashboard/?q=p200",
                 f"/dashboard/?from={today}&sort=amount", "/dashboard/charges/p200",
                 "/dashboard/cpos/1/messages?module=sessions"]:
        response = client.get(path)
        if response.status_code != 200:
            print(f"  {path}: HTTP {response.status_code}", file=sys.stderr)


def _explain(engine: Any, seen: list[tuple[str, Any]]) -> int:
    sizes: dict[str, int] = {}
    bad = 0
    unique: dict[str, Any] = {}
    for statement, parameters in seen:
        unique.setdefault(" ".join(statement.split()), (statement, parameters))
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute("select relname, reltuples::bigint from pg_class where relkind = 'r'")
        sizes = dict(cursor.fetchall())
        for flat, (statement, parameters) in unique.items():
            cursor.execute("EXPLAIN (FORMAT JSON) " + statement, parameters)
            plan = cursor.fetchone()[0][0]["Plan"]
            scans = [node["Relation Name"] for node in _walk(plan)
                     if node["Node Type"] == "Seq Scan"
                     and sizes.get(node["Relation Name"], 0) > BIG]
            bad += bool(scans)
            used = sorted({node.get("Index Name", node["Node Type"]) for node in _walk(plan)
                           if "Scan" in node["Node Type"]})
            verdict = f"SEQ SCAN of {', '.join(scans)}" if scans else ", ".join(used)
            print(f"{plan['Total Cost']:>9.1f}  {verdict[:60]:<60}  {flat[:90]}")
        raw.rollback()
    finally:
        raw.close()
    print(f"{len(unique)} distinct statements, {bad} scanning a big table sequentially")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
