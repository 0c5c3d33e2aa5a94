"""OCPI ingest against its ceiling: a standalone benchmark (not a pytest test).

    python bench/bench_ingest.py [--db postgres|sqlite|both] [--seconds 10]
                                 [--connections 8] [--workers 2]

For each database, on this machine: ScanCharge (`app:create_app()`) and the ceiling
(`bench/ceiling.py`: token look-up, JSON parse, one row written, commit, envelope) each run
under gunicorn with the same settings (`--workers` sync workers), and wrk drives them with
`--connections` connections for `--seconds`:

- Session PATCH: each adds one charging period (and kWh, cost, last_updated) to one of 400
  ACTIVE sessions of CHARGING charges, every session's updates in order;
- CDR POST: each a new CDR for one of ScanCharge's CHARGING charges.

On PostgreSQL a third server, the floor (`bench/floor.py`: ScanCharge's own statements on
its own tables as plain SQL, no ORM, validation, domain or message log), runs after them:
how much of the distance to the ceiling is the data model's and how much ScanCharge's code.

It prints requests per second for each and their ratios, then PATCH latency at 0, 100 and
1,000 stored charging periods (one connection, the three sessions in turn; median and p95
of 100 PATCHes each without total_cost, which ScanCharge prices itself, then 100 with the
CPO's) and the ratio of 1,000 to 0; then checks that nothing was lost (every answered
PATCH's period stored, every request in the message log, after the server's clean stop).
Needs gunicorn and wrk (Debian: apt-get install wrk) and, for --db postgres,
the PostgreSQL of docs/performance.md (database `bench`, emptied) and Redis (db 13) for the
queue, as in a scaled-out deployment.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import requests  # noqa: E402
from common import clone_postgres, empty_postgres  # noqa: E402
from sqlalchemy import create_engine, insert, text  # noqa: E402

PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/bench"
REDIS_QUEUE = "redis://127.0.0.1:6379/13"
TOKEN = "bench-cpo-token"
AUTH = f"Token {base64.b64encode(TOKEN.encode()).decode()}"
SESSIONS = 400
CDR_CHARGES = 60_000
ROUND_OFFSET = 10_000  # each turn's PATCH times and CDR ids start past the last turn's
START = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
V = "/ocpi/2.2.1"

# One wrk thread per connection; thread t owns the sessions n with n % threads == t, so
# each session's PATCHes carry increasing timestamps, as one CPO's would.
WRK_PATCH = r"""
local threads, counter, tid = tonumber(os.getenv("BENCH_CONNECTIONS")), 0, 0
local sessions = tonumber(os.getenv("BENCH_SESSIONS"))
local auth = os.getenv("BENCH_AUTH")
local offset = tonumber(os.getenv("BENCH_OFFSET"))
local id = 0
setup = function(thread) thread:set("tid", id); id = id + 1 end
init = function() tid = tonumber(wrk.thread:get("tid")) end
request = function()
  counter = counter + 1
  local n = ((counter * threads + tid) % sessions) + 1
  local at = os.date("!%Y-%m-%dT%H:%M:%SZ", 1796112000 + (offset + counter) * 60)
  local body = string.format('{"kwh":%d.25,"charging_periods":[{"start_date_time":"%s",'
    .. '"dimensions":[{"type":"ENERGY","volume":0.25}]}],'
    .. '"total_cost":{"excl_vat":%d.10,"incl_vat":%d.50},"last_updated":"%s"}',
    counter, at, counter, counter, at)
  return wrk.format("PATCH", "/ocpi/2.2.1/sessions/SE/CPO/S" .. n,
    {["Authorization"] = auth, ["Content-Type"] = "application/json"}, body)
end
"""

WRK_CDR = r"""
local counter, tid, id = 0, 0, 0
local threads = tonumber(os.getenv("BENCH_CONNECTIONS"))
local auth = os.getenv("BENCH_AUTH")
local template = os.getenv("BENCH_CDR")
local offset = tonumber(os.getenv("BENCH_OFFSET"))
setup = function(thread) thread:set("tid", id); id = id + 1 end
init = function() tid = tonumber(wrk.thread:get("tid")) end
request = function()
  counter = counter + 1
  local n = offset + counter * threads + tid
  local body = template:gsub("@N@", tostring(n))
  return wrk.format("POST", "/ocpi/2.2.1/cdrs",
    {["Authorization"] = auth, ["Content-Type"] = "application/json"}, body)
end
"""


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def session_body(n: int, periods: int = 0) -> dict[str, Any]:
    return {
        "country_code": "SE", "party_id": "CPO", "id": f"S{n}",
        "start_date_time": _iso(START), "kwh": 0,
        "cdr_token": {"country_code": "SE", "party_id": "SCN", "uid": f"T{n}",
                      "type": "AD_HOC_USER", "contract_id": f"SE-SCN-T{n}"},
        "auth_method": "COMMAND", "authorization_reference": f"R{n}",
        "location_id": "L1", "evse_uid": "E1", "connector_id": "1", "currency": "SEK",
        "charging_periods": [
            {"start_date_time": _iso(START + timedelta(seconds=30 * i)),
             "dimensions": [{"type": "ENERGY", "volume": 0.25}]} for i in range(periods)],
        "status": "ACTIVE", "last_updated": _iso(START),
    }


def cdr_template() -> str:
    cdr = {
        "country_code": "SE", "party_id": "CPO", "id": "C@N@",
        "start_date_time": _iso(START), "end_date_time": _iso(START + timedelta(hours=1)),
        "session_id": "CS@N@",
        "cdr_token": {"country_code": "SE", "party_id": "SCN", "uid": "CT@N@",
                      "type": "AD_HOC_USER", "contract_id": "SE-SCN-CT@N@"},
        "auth_method": "COMMAND", "authorization_reference": "CR@N@",
        "cdr_location": {"id": "L1", "address": "Storgatan 1", "city": "Stockholm",
                         "postal_code": "11122", "country": "SWE",
                         "coordinates": {"latitude": "59.33", "longitude": "18.06"},
                         "evse_uid": "E1", "evse_id": "SE*CPO*E1", "connector_id": "1",
                         "connector_standard": "IEC_62196_T2", "connector_format": "SOCKET",
                         "connector_power_type": "AC_3_PHASE"},
        "currency": "SEK",
        "charging_periods": [{"start_date_time": _iso(START),
                              "dimensions": [{"type": "ENERGY", "volume": 10}]}],
        "total_cost": {"excl_vat": 40, "incl_vat": 50}, "total_energy": 10,
        "total_time": 1, "last_updated": _iso(START + timedelta(hours=1)),
    }
    return json.dumps(cdr)


def _settings(url: str, queue: str) -> dict[str, str]:
    return {"DATABASE_URL": url, "QUEUE_URL": queue, "SECRET_KEY": "bench",
            "PUBLIC_BASE_URL": "http://127.0.0.1:5000", "SIMULATOR_ENABLED": "0",
            "RATE_LIMIT_STORAGE_URL": "memory://", "SCANCHARGE_ENV": "development"}


def prepare_scancharge(url: str, queue: str) -> None:
    os.environ.update(_settings(url, queue))
    from app import create_app, upgrade_database

    empty_postgres(url)
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "QUEUE_URL": queue})
    upgrade_database(app)
    with app.app_context():
        from charging.models import Charge
        from extensions import db
        from ocpi.models import Party, PartyGrant, token_hash

        db.session.add(Party(
            name="Bench CPO", country_code="SE", party_id="CPO", status="CONNECTED",
            incoming_token_hash=token_hash(TOKEN), outgoing_token="bench-out", endpoints=[],
            roles=[{"role": "CPO", "country_code": "SE", "party_id": "CPO",
                    "business_details": {"name": "Bench CPO"}}],
            grants=[PartyGrant(role="CPO", country_code="SE", party_id="CPO")]))
        db.session.commit()
        party_pk = db.session.scalar(text("select pk from ocpi_parties"))
        base = {"party_pk": party_pk, "cpo_country_code": "SE", "cpo_party_id": "CPO",
                "location_id": "L1", "evse_uid": "E1", "evse_id": "SE*CPO*E1",
                "connector_id": "1", "currency": "SEK", "hold_minor": 10_000_000,
                "gateway": "demo", "status": "CHARGING", "lock_version": 0,
                "refunded_minor": 0, "stop_attempts": 0, "energy_kwh": 0, "language": "sv",
                "created_at": START, "updated_at": START}
        rows = [{**base, "public_id": f"p{n}", "hold_id": f"pi_{n}", "token_uid": f"T{n}",
                 "authorization_reference": f"R{n}", "session_id": f"S{n}"}
                for n in range(1, SESSIONS + 4)]
        rows += [{**base, "public_id": f"cp{n}", "hold_id": f"cpi_{n}", "token_uid": f"CT{n}",
                  "authorization_reference": f"CR{n}", "session_id": f"CS{n}"}
                 for n in range(CDR_CHARGES)]
        with db.engine.begin() as conn:
            for start in range(0, len(rows), 5000):
                conn.execute(insert(Charge), rows[start:start + 5000])
        client = app.test_client()
        from ocpi import messages
        for n in range(1, SESSIONS + 1):
            put = client.put(f"{V}/sessions/SE/CPO/S{n}", json=session_body(n),
                             headers={"Authorization": AUTH})
            assert put.status_code in (200, 201), put.get_data(as_text=True)[:300]
        for n, periods in zip(range(SESSIONS + 1, SESSIONS + 4), (0, 100, 1000), strict=True):
            put = client.put(f"{V}/sessions/SE/CPO/S{n}", json=session_body(n, periods),
                             headers={"Authorization": AUTH})
            assert put.status_code in (200, 201), put.get_data(as_text=True)[:300]
        messages.flush()
        db.engine.dispose()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Gunicorn:
    def __init__(self, target: str, env: dict[str, str], workers: int) -> None:
        self.port = _free_port()
        gunicorn = shutil.which("gunicorn") or str(Path(sys.executable).parent / "gunicorn")
        self.process = subprocess.Popen(
            [gunicorn, "-w", str(workers), "-b", f"127.0.0.1:{self.port}", "--log-level",
             "warning", target], cwd=ROOT, env={**os.environ, **env},
            stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                requests.get(f"http://127.0.0.1:{self.port}/ocpi/versions", timeout=10)
                return
            except requests.RequestException:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"gunicorn {target} did not start")

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=30)


def wrk(port: int, script: str, seconds: int, connections: int,
        env: dict[str, str]) -> tuple[float, int]:
    """Requests per second, and how many requests were answered."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write(script)
    out = subprocess.run(
        ["wrk", "-t", str(connections), "-c", str(connections), "-d", f"{seconds}s",
         "-s", handle.name, f"http://127.0.0.1:{port}"],
        capture_output=True, text=True, env={**os.environ, **env,
                                             "BENCH_CONNECTIONS": str(connections)},
        check=True).stdout
    os.unlink(handle.name)
    if "Non-2xx" in out:
        raise RuntimeError(f"errors under load:\n{out}")
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out)[1])  # type: ignore[index]
    return rate, int(re.search(r"(\d+) requests in", out)[1])  # type: ignore[index]


LATENCY_PATCHES = 200


def patch_latencies(port: int, sessions: dict[int, int], with_cost: bool,
                    count: int = LATENCY_PATCHES // 2) -> dict[int, tuple[float, float]]:
    """Median and p95 per stored-period count, the sessions PATCHed in turn (so the
    machine's load, which drifts, weighs on each alike). Without total_cost ScanCharge
    prices the periods itself (charging.pricing.estimate_cost)."""
    timings: dict[int, list[float]] = {periods: [] for periods in sessions.values()}
    offset = count if with_cost else 0
    with requests.Session() as http:
        for i in range(offset, offset + count):
            at = _iso(START + timedelta(days=1, seconds=30 * i))
            body: dict[str, Any] = {"kwh": i, "charging_periods": [
                {"start_date_time": at, "dimensions": [{"type": "ENERGY", "volume": 0.25}]}],
                "last_updated": at}
            if with_cost:
                body["total_cost"] = {"excl_vat": i, "incl_vat": i}
            for n, periods in sessions.items():
                started = time.perf_counter()
                answer = http.patch(f"http://127.0.0.1:{port}{V}/sessions/SE/CPO/S{n}",
                                    json=body, headers={"Authorization": AUTH})
                timings[periods].append((time.perf_counter() - started) * 1000)
                assert answer.status_code == 200, answer.text[:300]
    figures = {}
    for periods, times in timings.items():
        times.sort()
        figures[periods] = statistics.median(times), times[int(len(times) * 0.95)]
    return figures


def _stored(url: str) -> tuple[int, int, int]:
    """Messages logged, periods of the wrk sessions, periods of the latency sessions."""
    engine = create_engine(url)
    with engine.connect() as conn:
        logged = conn.scalar(text("select count(*) from ocpi_messages"))
        counts = dict(conn.execute(text("select session_id, period_count from ocpi_sessions")
                                   ).tuples().all())
    engine.dispose()
    wrk_sessions = sum(counts.get(f"S{n}", 0) for n in range(1, SESSIONS + 1))
    latency_sessions = sum(counts.get(f"S{n}", 0) for n in range(SESSIONS + 1, SESSIONS + 4))
    return logged or 0, wrk_sessions, latency_sessions


def nothing_lost(before: tuple[int, int, int], after: tuple[int, int, int],
                 answered: dict[str, int], connections: int) -> str:
    """Every answered PATCH's period stored, every request logged (after the server's clean
    stop); wrk may leave up to one request per connection unanswered but served."""
    logged, periods, latency = (b - a for a, b in zip(before, after, strict=True))
    requests = answered["patch"] + answered["cdr"] + answered["latency"]
    problems = []
    if not answered["patch"] <= periods <= answered["patch"] + connections:
        problems.append(f"{periods} periods stored for {answered['patch']} PATCHes answered")
    if latency != answered["latency"]:
        problems.append(f"{latency} periods stored for {answered['latency']} PATCHes")
    # + the start-up probe (GET /ocpi/versions) and what wrk cut off at each run's end
    if not requests <= logged <= requests + 1 + 2 * connections:
        problems.append(f"{logged} messages logged for {requests} requests answered")
    if problems:
        raise RuntimeError("lost: " + "; ".join(problems))
    return (f"nothing lost: {periods} periods for {answered['patch']} PATCHes answered, "
            f"{latency} of {answered['latency']}; {logged} messages for {requests} requests")


def run(db: str, args: argparse.Namespace) -> None:
    if db == "postgres":
        url, queue = PG_URL, REDIS_QUEUE
        ceiling_url = PG_URL
    else:
        folder = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
        url, queue = f"sqlite:///{folder / 'scancharge.db'}", f"sqlite:///{folder / 'queue.db'}"
        ceiling_url = f"sqlite:///{folder / 'ceiling.db'}"
    prepare_scancharge(url, queue)
    from bench.ceiling import prepare

    prepare(ceiling_url, AUTH.removeprefix("Token "), [f"S{n}" for n in range(1, SESSIONS + 1)])
    if db == "postgres":  # the floor's own copy of ScanCharge's database, as prepared
        floor_url = clone_postgres(url, "bench_floor")
    load_env = {"BENCH_SESSIONS": str(SESSIONS), "BENCH_AUTH": AUTH, "BENCH_CDR": cdr_template()}
    answered = {"latency": 3 * 2 * (LATENCY_PATCHES // 2), "patch": 0, "cdr": 0}
    before = _stored(url)
    targets = [
        ("scancharge", "app:create_app()", _settings(url, queue)),
        ("ceiling", "bench.ceiling:create()", {"CEILING_DATABASE_URL": ceiling_url}),
    ]
    if db == "postgres":  # the floor's plain SQL locks with FOR UPDATE, which SQLite lacks
        targets.append(("floor", "bench.floor:create()", {"FLOOR_DATABASE_URL": floor_url}))
    servers = {name: Gunicorn(target, env, args.workers) for name, target, env in targets}
    counts: dict[str, int] = {}
    spent: dict[str, float] = {}
    try:
        # In turns, a short run each, the order rotated every round: the machine's load
        # drifts, and would otherwise weigh on whichever ran in a bad moment.
        for kind, script in (("patch", WRK_PATCH), ("cdr", WRK_CDR)):
            turn_seconds = max(1, args.seconds // args.rounds)
            for turn in range(args.rounds):
                names = list(servers)
                names = names[turn % len(names):] + names[:turn % len(names)]
                for name in names:
                    rate, count = wrk(servers[name].port, script, turn_seconds,
                                      args.connections,
                                      {**load_env, "BENCH_OFFSET": str(turn * ROUND_OFFSET)})
                    key = f"{name} {kind}"
                    counts[key] = counts.get(key, 0) + count
                    spent[key] = spent.get(key, 0.0) + count / rate
                    if name == "scancharge":
                        answered[kind] += count
        latency_sessions = dict(zip(range(SESSIONS + 1, SESSIONS + 4), (0, 100, 1000),
                                    strict=True))
        latency = {with_cost: patch_latencies(servers["scancharge"].port, latency_sessions,
                                              with_cost)
                   for with_cost in (False, True)}  # priced by us first: the Session keeps
        # the CPO's total_cost once sent, and ScanCharge then uses it
    finally:
        for server in servers.values():
            server.stop()  # a clean stop: the message log's writers write what waits
    lost = nothing_lost(before, _stored(url), answered, args.connections * args.rounds)
    figures = {key: counts[key] / spent[key] for key in counts}
    print(f"\n== {db}: gunicorn -w {args.workers} (sync), wrk -c {args.connections}, "
          f"{args.seconds} s each in {args.rounds} turns ==")
    for kind in ("patch", "cdr"):
        ours, ceiling = figures[f"scancharge {kind}"], figures[f"ceiling {kind}"]
        label = "Session PATCH" if kind == "patch" else "CDR POST"
        print(f"{label:<14} ScanCharge {ours:8.1f} req/s   ceiling {ceiling:8.1f} req/s   "
              f"ratio {ours / ceiling:.2f}")
        if f"floor {kind}" in figures:
            floor = figures[f"floor {kind}"]
            print(f"{'':<14} floor (ScanCharge's statements, plain SQL) {floor:8.1f} req/s: "
                  f"floor / ceiling {floor / ceiling:.2f}, ScanCharge / floor {ours / floor:.2f}")
    for with_cost, figures_by in latency.items():
        label = "with total_cost" if with_cost else "without total_cost (ScanCharge prices)"
        for periods, (median, p95) in figures_by.items():
            print(f"PATCH {label}, at {periods:>4} periods: median {median:6.2f} ms, "
                  f"p95 {p95:6.2f} ms")
        print(f"PATCH {label}, at 1000 / at 0 periods: "
              f"{figures_by[1000][0] / figures_by[0][0]:.2f}")
    print(lost)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--db", choices=("postgres", "sqlite", "both"), default="both")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=5,
                        help="turns per server and kind, each --seconds/--rounds long")
    args = parser.parse_args(argv)
    for db in ("postgres", "sqlite") if args.db == "both" else (args.db,):
        run(db, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
