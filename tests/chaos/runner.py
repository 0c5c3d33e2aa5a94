"""The chaos run: the scale-out shape, scripted drivers, SIGKILLs and database cuts, then
the money and stop invariants checked straight from the database.

    python -m tests.chaos --charges 60 --kills 15 --cuts 5 --seed 1

What runs (all on 127.0.0.1, each its own process, logs in --log-dir):
- PostgreSQL database `chaos` (schema dropped and migrated with `flask db upgrade`),
  Redis db 7 (flushed) as the queue;
- the CPO simulator (`python -m cpo_simulator`, fast clock), connected with
  `flask cpo connect` (credentials handshake and pull);
- `gunicorn -w 3 'app:create_app()'` and two `flask worker` processes (one --no-periodic),
  with short sweeper, TTL, CDR-wait and stop-retry settings so a batch settles in minutes.

Drivers (threads) use the JSON API as a phone does: create the charge, pay with the demo
gateway's test card, poll, and press stop (some early, while starting), let the battery fill,
never pay, or pay with a declined card (some try another card). A phone retries a request
that failed (connection reset, 5xx). Meanwhile the chaos thread SIGKILLs a random gunicorn
worker (the master replaces it) or a queue worker (restarted here), terminates every
database connection of the chaos database, and makes the CPO misbehave for a few seconds
(refuse stops, or accept starts and never answer).

Afterwards it waits (bounded) until every charge is final or flagged for an operator, then
checks the invariants (see `verify`) and exits 1 on any violation.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import requests
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DATABASE_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/chaos"
DEFAULT_QUEUE_URL = "redis://127.0.0.1:6379/7"
FINAL = {"CAPTURED", "RELEASED", "EXPIRED", "CANCELLED", "REFUNDED"}
GOOD_CARD = "4242424242424242"
DECLINED_CARD = "4000000000000002"

# ScanCharge's settings for the run: every wait that is minutes in production is seconds
# here. The sweeper is a huey crontab, so it runs once a minute however short this is.
SETTINGS = {
    "SWEEP_INTERVAL": "60",
    "SWEEP_GRACE_SECONDS": "5",
    "UNPAID_CHARGE_TTL": "20",
    "CDR_WAIT_SECONDS": "10",
    "SESSION_SILENCE_SECONDS": "20",
    "LATE_SESSION_GRACE": "5",
    "OCPI_DEFAULT_COMMAND_TIMEOUT": "5",
    "OCPI_HTTP_TIMEOUT": "5",
    "OCPI_PULL_INTERVAL": "60",
    "STOP_RETRY_BASE_DELAY": "1",
    "STOP_RETRY_MAX_DELAY": "4",
    "STOP_RETRY_FOR": "600",
    "STOP_CONFIRM_SECONDS": "15",
    "QUEUE_MAX_POLL_DELAY": "0.2",
    "QUEUE_WORKERS": "4",
    # Each driver sends its own address (X-Forwarded-For, believed from one proxy: the
    # runner). Drivers poll far faster than a phone's page, and a batch sends more charges
    # to one EVSE in minutes than a charger sees in an hour: those two limits are lifted.
    "TRUSTED_PROXIES": "1",
    "RATE_LIMIT_LOOKUPS_PER_CLIENT": "1000000/minute",
    "RATE_LIMIT_CHARGES_PER_EVSE": "1000/hour",
}
# The simulated CPO: a fast clock and small batteries, so a full charge takes seconds.
SIM_TIME_FACTOR = 300.0
SIM_TICK_SECONDS = 0.5
SIM_BEHAVIOUR = {"command_timeout": 5, "result_delay": 0.2, "session_max_kwh": "20"}
SLOWEST_KW = 22.0  # the simulator's slowest connector: AC, 3 x 230 V x 32 A
# Longest a charge may take from creation to final or flagged: paying (TTL), charging to a
# full battery, then recovery by the once-a-minute sweeper (a lost task or push costs up to
# a sweep, a few chains two or three) plus the silence, CDR wait and late-start grace.
SWEEP_PERIOD = 60


def charge_budget_seconds() -> float:
    fill = float(SIM_BEHAVIOUR["session_max_kwh"]) / SLOWEST_KW * 3600 / SIM_TIME_FACTOR
    return (int(SETTINGS["UNPAID_CHARGE_TTL"]) + fill + 3 * SWEEP_PERIOD
            + int(SETTINGS["SESSION_SILENCE_SECONDS"]) + int(SETTINGS["CDR_WAIT_SECONDS"])
            + int(SETTINGS["LATE_SESSION_GRACE"]) + int(SETTINGS["OCPI_DEFAULT_COMMAND_TIMEOUT"])
            + 30)


@dataclass
class Options:
    charges: int = 8
    kills: int = 3
    cuts: int = 1
    cpo_faults: int = 1
    seed: int = 1
    duration: float = 20.0  # seconds over which drivers arrive and chaos strikes
    gunicorn_workers: int = 3
    database_url: str = DEFAULT_DATABASE_URL
    queue_url: str = DEFAULT_QUEUE_URL
    log_dir: Path | None = None
    quiet: bool = False


@dataclass
class Plan:
    n: int
    kind: str  # stop | full | unpaid | declined
    start_at: float
    early_stop: bool = False
    stop_after: float = 1.0
    another_card: bool = False


@dataclass
class Seen:
    """What one driver saw."""

    plan: Plan
    charge_id: str | None = None
    evse: str | None = None
    stop_answered: bool = False  # POST /stop answered 202
    stop_refused: str | None = None  # its 409 code, e.g. not_charging (battery full first)
    stop_missed: bool = False  # it ended (a full battery) before the driver saw CHARGING
    last_status: str | None = None
    outcome: str = "pending"


@dataclass
class Result:
    violations: list[str] = field(default_factory=list)
    observations: list[str] = field(default_factory=list)
    summary: str = ""
    figures: dict[str, Any] = field(default_factory=dict)


def log(opts: Options, message: str) -> None:
    if not opts.quiet:
        print(f"[chaos {time.strftime('%H:%M:%S')}] {message}", flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid ...: comm may hold spaces, so split after the last ')'.
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid:
            found.append(int(entry.name))
    return found


def problem_with_services(database_url: str, queue_url: str) -> str | None:
    """Why the chaos run cannot run here, or None (creates the database if missing)."""
    try:
        import gunicorn  # noqa: F401
    except ImportError:
        return "gunicorn is not installed"
    try:
        import redis

        redis.Redis.from_url(queue_url, socket_timeout=3).ping()
    except Exception as exc:
        return f"Redis at {queue_url} is not reachable: {type(exc).__name__}: {exc}"
    url = make_url(database_url)
    if not url.drivername.startswith("postgresql"):
        return f"{database_url} is not PostgreSQL"
    try:
        engine = create_engine(url)
        with engine.connect() as conn:
            conn.execute(text("select 1"))
        engine.dispose()
        return None
    except Exception as exc:
        first = f"{type(exc).__name__}: {exc}".splitlines()[0]
        if "does not exist" not in first:
            return f"PostgreSQL at {url.render_as_string(hide_password=True)}: {first}"
    try:
        admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{url.database}"'))
        admin.dispose()
    except Exception as exc:
        return f"could not create database {url.database}: {exc}".splitlines()[0]
    return None


# --- The stack ------------------------------------------------------------------------


class Stack:
    """The processes of one run; every one started here is stopped here."""

    def __init__(self, opts: Options, log_dir: Path) -> None:
        self.opts = opts
        self.log_dir = log_dir
        self.sim_port = free_port()
        self.web_port = free_port()
        self.sim_url = f"http://127.0.0.1:{self.sim_port}"
        self.base_url = f"http://127.0.0.1:{self.web_port}"
        self.token_a = "chaos-" + os.urandom(8).hex()
        self.env = {k: v for k, v in os.environ.items()
                    if k not in {"STRIPE_SECRET_KEY", "SCANCHARGE_ENV", "TEST_DATABASE_URL"}}
        self.env.update(SETTINGS)
        self.env.update(
            DATABASE_URL=opts.database_url,
            QUEUE_URL=opts.queue_url,
            SECRET_KEY="chaos-" + os.urandom(8).hex(),
            PUBLIC_BASE_URL=self.base_url,
            OCPI_ALLOWED_PRIVATE_TARGETS="127.0.0.1",
            SCANCHARGE_INSTANCE_DIR=str(log_dir / "instance"),
            SIMULATOR_ENABLED="0",
            PYTHONUNBUFFERED="1",
        )
        self.simulator: subprocess.Popen | None = None
        self.gunicorn: subprocess.Popen | None = None
        self.workers: dict[str, subprocess.Popen] = {}
        self.lock = threading.Lock()
        self.starts: Counter[str] = Counter()

    def _spawn(self, name: str, args: list[str]) -> subprocess.Popen:
        self.starts[name] += 1
        with open(self.log_dir / f"{name}.log", "ab") as out:
            return subprocess.Popen(args, cwd=ROOT, env=self.env, stdout=out,
                                    stderr=subprocess.STDOUT)

    def flask(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        done = subprocess.run([sys.executable, "-m", "flask", "--app", "app", *args],
                              cwd=ROOT, env=self.env, capture_output=True, text=True,
                              timeout=120)
        if check and done.returncode != 0:
            raise RuntimeError(f"flask {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
        return done

    def reset_storage(self) -> None:
        import redis

        redis.Redis.from_url(self.opts.queue_url).flushdb()
        engine = create_engine(self.opts.database_url, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                              "WHERE datname = current_database() AND pid <> pg_backend_pid()"))
            conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        engine.dispose()
        self.flask("db", "upgrade")

    def start(self) -> None:
        self.reset_storage()
        self.simulator = self._spawn("simulator", [
            sys.executable, "-m", "cpo_simulator", "--port", str(self.sim_port),
            "--token-a", self.token_a, "--time-factor", str(SIM_TIME_FACTOR),
            "--tick-seconds", str(SIM_TICK_SECONDS)])
        self.gunicorn = self._spawn("gunicorn", [
            sys.executable, "-m", "gunicorn", "-w", str(self.opts.gunicorn_workers),
            "-b", f"127.0.0.1:{self.web_port}", "--timeout", "30", "--graceful-timeout", "5",
            "app:create_app()"])
        self._wait_http(f"{self.sim_url}/sim/behaviour", "the simulator")
        self._wait_http(f"{self.base_url}/ocpi/versions", "gunicorn")
        requests.post(f"{self.sim_url}/sim/behaviour", json=SIM_BEHAVIOUR,
                      timeout=5).raise_for_status()
        connected = self.flask("cpo", "connect", "--versions-url",
                               f"{self.sim_url}/ocpi/versions", "--token", self.token_a,
                               "--name", "CPO simulator")
        log(self.opts, connected.stdout.strip().replace("\n", "; "))
        for name in ("worker-periodic", "worker-2"):
            self.start_worker(name)

    def start_worker(self, name: str) -> None:
        args = [sys.executable, "-m", "flask", "--app", "app", "worker"]
        if name != "worker-periodic":
            args.append("--no-periodic")
        with self.lock:
            self.workers[name] = self._spawn(name, args)

    def _wait_http(self, url: str, what: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                requests.get(url, timeout=2)
                return
            except requests.RequestException:
                time.sleep(0.2)
        raise RuntimeError(f"{what} did not answer at {url} within {timeout} s "
                           f"(see {self.log_dir})")

    def web_workers(self) -> list[int]:
        return children_of(self.gunicorn.pid) if self.gunicorn else []

    def stop(self) -> None:
        procs = [p for p in (self.gunicorn, self.simulator, *self.workers.values()) if p]
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=5)


# --- Drivers --------------------------------------------------------------------------


class Phone:
    """HTTP as a phone does it: a failed request (connection reset, 5xx) is tried again."""

    def __init__(self, base_url: str, errors: Counter[str], lock: threading.Lock,
                 address: str) -> None:
        self.base_url = base_url
        self.errors = errors
        self.lock = lock
        # Each driver is its own phone: ScanCharge keys its limits and the one open unpaid
        # charge per EVSE on the client's address, which the runner, as the one proxy in
        # front of gunicorn (TRUSTED_PROXIES=1), forwards.
        self.headers = {"X-Forwarded-For": address}

    def _count(self, what: str) -> None:
        with self.lock:
            self.errors[what] += 1

    def call(self, method: str, path: str, tries: int = 8, **kw: Any) -> requests.Response | None:
        delay = 0.3
        what = f"{method} {path.split('/charges/')[0]}" + ("/charges/…" if "/charges/" in path
                                                          else "")
        for _ in range(tries):
            try:
                response = requests.request(method, self.base_url + path, timeout=15,
                                            headers=self.headers, **kw)
            except requests.RequestException as exc:
                self._count(f"{what}: {type(exc).__name__}")
            else:
                if response.status_code < 500:
                    return response
                self._count(f"{what}: HTTP {response.status_code}")
            time.sleep(delay)
            delay = min(delay * 2, 4)
        return None


class EvsePool:
    """One paying driver per charger at a time; a charger the API calls occupied is put
    back after a while (its status may lag behind the CPO's). Drivers who mean to press
    stop prefer an AC charger: a DC one fills the small test battery in about two seconds."""

    def __init__(self, evses: dict[str, bool]) -> None:
        self.lock = threading.Lock()
        self.ac = {evse_id for evse_id, is_ac in evses.items() if is_ac}
        self.free = list(evses)

    def take(self, timeout: float, prefer_ac: bool = False) -> str | None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if self.free:
                    pick = next((e for e in self.free if e in self.ac), None) \
                        if prefer_ac else None
                    pick = pick or self.free[0]
                    self.free.remove(pick)
                    return pick
            time.sleep(0.2)
        return None

    def give_back(self, evse_id: str, after: float = 0.0) -> None:
        def put() -> None:
            with self.lock:
                self.free.append(evse_id)

        if after <= 0:
            put()
        else:
            threading.Timer(after, put).start()


class Driver(threading.Thread):
    def __init__(self, run: Run, plan: Plan) -> None:
        super().__init__(name=f"driver-{plan.n}", daemon=True)
        self.run_ = run
        self.plan = plan
        self.seen = Seen(plan)
        self.phone = Phone(run.stack.base_url, run.http_errors, run.lock,
                           f"198.51.{plan.n // 250}.{plan.n % 250 + 1}")
        self.rng = random.Random(run.opts.seed * 1000 + plan.n)

    def run(self) -> None:
        try:
            self._drive()
        except Exception as exc:  # a driver's bug must not hide the others' results
            self.seen.outcome = f"driver crashed: {type(exc).__name__}: {exc}"

    def _status(self) -> str | None:
        r = self.phone.call("GET", f"/api/v1/charges/{self.seen.charge_id}")
        if r is not None and r.status_code == 200:
            self.seen.last_status = r.json()["status"]
        return self.seen.last_status

    def _poll_until(self, statuses: set[str], deadline: float) -> str | None:
        while time.monotonic() < deadline:
            status = self._status()
            if status in statuses or status in FINAL:
                return status
            time.sleep(1.0)
        return None

    def _drive(self) -> None:
        run, plan = self.run_, self.plan
        time.sleep(max(0.0, plan.start_at - (time.monotonic() - run.t0)))
        pays = plan.kind in {"stop", "full"} or (plan.kind == "declined" and plan.another_card)
        evse = (run.pool.take(run.budget, prefer_ac=plan.kind == "stop") if pays
                else self.rng.choice(run.evse_ids))
        if evse is None:
            self.seen.outcome = "no free charger"
            return
        try:
            self._charge(evse, pays)
        finally:
            if pays:
                run.pool.give_back(self.seen.evse or evse)

    def _charge(self, evse: str, pays: bool) -> None:
        run, plan = self.run_, self.plan
        created = None
        for _ in range(4):
            created = self.phone.call("POST", "/api/v1/charges",
                                      json={"evse_id": evse, "language": "en"})
            if created is None or created.status_code == 201:
                break
            code = (created.json().get("error") or {}).get("code")
            if code not in {"charger_occupied", "charger_unavailable"}:
                break
            if not pays:  # the driver walks to another charger
                evse = self.rng.choice(run.evse_ids)
                continue
            # Stale status (a lost EVSE push): another charger, this one back later.
            run.pool.give_back(evse, after=15)
            evse = run.pool.take(run.budget, prefer_ac=plan.kind == "stop")
            if evse is None:
                break
        self.seen.evse = evse
        if created is None or created.status_code != 201:
            self.seen.outcome = ("create failed: " + (
                "no answer" if created is None else f"{created.status_code} {created.text[:80]}"))
            return
        body = created.json()
        self.seen.charge_id = body["id"]
        payment = body["payment"]
        deadline = time.monotonic() + run.budget
        if plan.kind == "unpaid":
            self.seen.outcome = "left unpaid"
            return
        if plan.kind == "declined":
            self._confirm(payment, DECLINED_CARD)
            if not plan.another_card:
                self.seen.outcome = "declined, gave up"
                return
            time.sleep(self.rng.uniform(0.5, 2))
        self._confirm(payment, GOOD_CARD)
        if plan.kind == "stop":
            wanted = {"STARTING", "CHARGING"} if plan.early_stop else {"CHARGING"}
            status = self._poll_until(wanted, deadline)
            self.seen.stop_missed = status not in wanted
            if status in wanted:
                if not plan.early_stop:
                    time.sleep(plan.stop_after)
                self._press_stop(deadline)
        final = self._poll_until(FINAL, deadline)
        self.seen.outcome = final or f"still {self.seen.last_status} at the driver's deadline"

    def _confirm(self, payment: dict[str, Any], card: str) -> None:
        self.phone.call("POST", "/payments/demo/confirm", json={
            "payment_intent": payment["payment_intent"],
            "client_secret": payment["client_secret"], "card_number": card})

    def _press_stop(self, deadline: float) -> None:
        while time.monotonic() < deadline:
            r = self.phone.call("POST", f"/api/v1/charges/{self.seen.charge_id}/stop")
            if r is not None and r.status_code == 202:
                self.seen.stop_answered = True
                return
            if r is not None and r.status_code == 409:
                error = r.json().get("error") or {}
                self.seen.stop_refused = f"{error.get('code')} ({error.get('detail')})"
                return  # not charging: it ended before the stop (a full battery)
            time.sleep(1)


# --- Chaos ----------------------------------------------------------------------------


class Chaos(threading.Thread):
    def __init__(self, run: Run) -> None:
        super().__init__(name="chaos", daemon=True)
        self.run_ = run
        opts = run.opts
        self.rng = random.Random(opts.seed * 7919)
        span = opts.duration * 1.1  # the last drivers are still charging after `duration`
        moments = [("kill", self.rng.uniform(0.1, 1) * span) for _ in range(opts.kills)]
        moments += [("cut", self.rng.uniform(0.1, 1) * span) for _ in range(opts.cuts)]
        moments += [("cpo", self.rng.uniform(0.1, 0.9) * span) for _ in range(opts.cpo_faults)]
        self.moments = sorted(moments, key=lambda m: m[1])
        self.done: list[tuple[float, str]] = []

    def run(self) -> None:
        faults = 0
        for kind, at in self.moments:
            time.sleep(max(0.0, at - (time.monotonic() - self.run_.t0)))
            try:
                if kind == "kill":
                    what = self.kill()
                elif kind == "cut":
                    what = self.cut()
                else:
                    what = self.cpo_fault(faults)
                    faults += 1
            except Exception as exc:
                what = f"{kind} failed: {type(exc).__name__}: {exc}"
            self.done.append((time.monotonic() - self.run_.t0, what))
            log(self.run_.opts, f"chaos: {what}")

    def kill(self) -> str:
        stack = self.run_.stack
        if self.rng.random() < 0.5:
            pids = stack.web_workers()
            if pids:
                pid = self.rng.choice(pids)
                os.kill(pid, signal.SIGKILL)
                self.run_.kills["gunicorn worker"] += 1
                return f"SIGKILL gunicorn worker {pid}"
        with stack.lock:
            name = self.rng.choice(sorted(stack.workers))
            proc = stack.workers[name]
        proc.kill()
        proc.wait(timeout=10)
        self.run_.kills[f"queue {name}"] += 1
        time.sleep(self.rng.uniform(0.2, 2.0))  # the supervisor's restart delay
        stack.start_worker(name)
        return f"SIGKILL queue {name} {proc.pid}, restarted"

    def cut(self) -> str:
        engine = create_engine(self.run_.opts.database_url)
        with engine.begin() as conn:
            cut = conn.execute(text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()")).scalar()
        engine.dispose()
        self.run_.cuts.append(int(cut))
        return f"terminated {cut} database connections"

    def cpo_fault(self, index: int) -> str:
        sim = self.run_.stack.sim_url
        change = {"stop": "reject"} if index % 2 == 0 else {"start": "no_result"}
        requests.post(f"{sim}/sim/behaviour", json=change, timeout=5).raise_for_status()
        self.run_.cpo_faults[next(f"{k}={v}" for k, v in change.items())] += 1

        def undo() -> None:
            back = {k: "accept" for k in change}
            with contextlib.suppress(requests.RequestException):
                requests.post(f"{sim}/sim/behaviour", json=back, timeout=5)

        threading.Timer(4.0, undo).start()
        return f"CPO misbehaves for 4 s: {change}"


# --- The run --------------------------------------------------------------------------


class Run:
    def __init__(self, opts: Options, stack: Stack) -> None:
        self.opts = opts
        self.stack = stack
        self.lock = threading.Lock()
        self.http_errors: Counter[str] = Counter()
        self.kills: Counter[str] = Counter()
        self.cuts: list[int] = []
        self.cpo_faults: Counter[str] = Counter()
        self.budget = charge_budget_seconds()
        self.t0 = time.monotonic()
        self.evse_ids: list[str] = []
        self.pool: EvsePool

    def plans(self) -> list[Plan]:
        rng = random.Random(self.opts.seed)
        kinds = ["stop"] * 40 + ["full"] * 30 + ["unpaid"] * 15 + ["declined"] * 15
        plans = []
        for n in range(self.opts.charges):
            # Every run has each kind at least once.
            kind = ("stop", "full", "unpaid", "declined")[n] if n < 4 else rng.choice(kinds)
            plans.append(Plan(
                n=n, kind=kind, start_at=rng.uniform(0, self.opts.duration),
                early_stop=kind == "stop" and rng.random() < 0.25,
                stop_after=rng.uniform(0.2, 3.0),
                another_card=kind == "declined" and rng.random() < 0.5,
            ))
        return plans

    def load_evses(self) -> None:
        engine = create_engine(self.opts.database_url)
        with engine.connect() as conn:
            raws = [r[0] for r in conn.execute(text("SELECT raw FROM ocpi_locations"))]
        engine.dispose()
        evses = {}
        for raw in raws:
            for evse in json.loads(raw).get("evses") or []:
                if evse.get("status") == "AVAILABLE" and evse.get("evse_id"):
                    power = (evse.get("connectors") or [{}])[0].get("power_type", "")
                    evses[evse["evse_id"]] = power.startswith("AC")
        if not evses:
            raise RuntimeError("the pull imported no AVAILABLE charger")
        self.evse_ids = sorted(evses)
        self.pool = EvsePool(evses)


def run(opts: Options) -> Result:
    log_dir = opts.log_dir or Path(f"/tmp/scancharge-chaos-{opts.seed}-{int(time.time())}")
    log_dir.mkdir(parents=True, exist_ok=True)
    stack = Stack(opts, log_dir)
    log(opts, f"logs in {log_dir}")
    try:
        stack.start()
        r = Run(opts, stack)
        r.load_evses()
        log(opts, f"{len(r.evse_ids)} chargers; {opts.charges} charges over {opts.duration} s, "
                  f"{opts.kills} kills, {opts.cuts} DB cuts, {opts.cpo_faults} CPO faults; "
                  f"charge budget {r.budget:.0f} s")
        drivers = [Driver(r, plan) for plan in r.plans()]
        chaos = Chaos(r)
        r.t0 = time.monotonic()
        chaos.start()
        for d in drivers:
            d.start()
        chaos.join()
        for d in drivers:
            d.join(timeout=r.budget + opts.duration)
        batch_seconds = time.monotonic() - r.t0
        log(opts, f"drivers done after {batch_seconds:.0f} s; waiting for every charge to "
                  "settle")
        with stack.lock:  # every queue worker alive for the settling
            for name, proc in list(stack.workers.items()):
                if proc.poll() is not None:
                    stack.start_worker(name)
        settled = wait_settled(opts, r)
        log(opts, f"settled after {time.monotonic() - r.t0:.0f} s" if settled
            else "NOT settled before the deadline")
        result = verify(opts, r, drivers, chaos)
        result.figures["seconds"] = round(time.monotonic() - r.t0)
        result.figures["log_dir"] = str(log_dir)
        result.summary = summary(opts, r, drivers, chaos, result)
        return result
    finally:
        stack.stop()


def _open_charges(opts: Options) -> list[tuple[str, str, datetime]]:
    from charging.stopping import STOP_GIVEN_UP

    engine = create_engine(opts.database_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(text(
                "SELECT public_id, status, failure_code, created_at FROM charges")).all()
    finally:
        engine.dispose()
    return [(p, s, c) for p, s, f, c in rows if s not in FINAL and f not in STOP_GIVEN_UP]


def wait_settled(opts: Options, r: Run) -> bool:
    last = ""
    while True:
        open_ = _open_charges(opts)
        if not open_:
            return True
        newest = max(c for _, _, c in open_).replace(tzinfo=UTC)
        if datetime.now(UTC) > newest + timedelta(seconds=r.budget):
            return False
        states = Counter(s for _, s, _ in open_)
        text_ = ", ".join(f"{k} {v}" for k, v in sorted(states.items()))
        if text_ != last:
            log(opts, f"open: {text_}")
            last = text_
        time.sleep(2)


# --- The invariants -------------------------------------------------------------------


def verify(opts: Options, r: Run, drivers: list[Driver], chaos: Chaos) -> Result:
    """The invariants, read from the database, the demo gateway's tables and the CPO."""
    from charging.stopping import STOP_GIVEN_UP

    res = Result()
    bad = res.violations.append
    engine = create_engine(opts.database_url)
    with engine.connect() as conn:
        charges = [dict(row._mapping) for row in conn.execute(text("SELECT * FROM charges"))]
        intents = {row.intent_id: dict(row._mapping) for row in conn.execute(text(
            "SELECT * FROM demo_payment_intents"))}
        receipts = [dict(row._mapping) for row in conn.execute(text(
            "SELECT * FROM receipts ORDER BY series, number"))]
        events = [dict(row._mapping) for row in conn.execute(text(
            "SELECT type, object_id, applied_at FROM payment_events"))]
        timeline: dict[int, list[str]] = {}
        for pk, to_status in conn.execute(text(
                "SELECT charge_pk, to_status FROM charge_events ORDER BY pk")):
            timeline.setdefault(pk, []).append(to_status)
    engine.dispose()
    sim_state = requests.get(f"{r.stack.sim_url}/sim/state", timeout=10).json()
    sim_log = requests.get(f"{r.stack.sim_url}/sim/log", timeout=10).json()
    sessions = {s["id"]: s for s in sim_state["sessions"]}
    max_kwh = float(SIM_BEHAVIOUR["session_max_kwh"])
    stops_accepted = {
        (m.get("request") or {}).get("session_id") for m in sim_log
        if m["direction"] == "in" and m["url"].endswith("/commands/STOP_SESSION")
        and ((m.get("response") or {}).get("data") or {}).get("result") == "ACCEPTED"}
    now = datetime.now(UTC)
    by_hold = {c["hold_id"]: c for c in charges if c["hold_id"]}

    # 1. Every charge final, or flagged for an operator, within its deadline.
    for c in charges:
        flagged = c["failure_code"] in STOP_GIVEN_UP
        if c["status"] not in FINAL and not flagged:
            age = (now - c["created_at"].replace(tzinfo=UTC)).total_seconds()
            bad(f"open past its deadline: {c['public_id']} {c['status']} "
                f"({c['failure_code'] or 'no flag'}), {age:.0f} s old, budget "
                f"{r.budget:.0f} s")

    # 2. No double capture; money and receipts agree.
    succeeded = Counter(e["object_id"] for e in events if e["type"] == "payment_intent.succeeded")
    for intent_id, i in intents.items():
        captures = [k for k in i["applied_keys"] or [] if k.endswith("-capture")]
        if len(captures) > 1 or succeeded[intent_id] > 1:
            bad(f"double capture: {intent_id} capture keys {captures}, "
                f"{succeeded[intent_id]} succeeded events")
        if i["amount_received_minor"] > i["amount_minor"]:
            bad(f"captured more than held: {intent_id} {i['amount_received_minor']} > "
                f"{i['amount_minor']}")
        charge = by_hold.get(intent_id)
        if i["status"] == "succeeded" and (charge is None or charge["status"] != "CAPTURED"):
            bad(f"money taken but the charge does not say so: {intent_id} succeeded, charge "
                f"{charge and charge['public_id']} {charge and charge['status']}")
    for c in charges:
        if c["status"] != "CAPTURED":
            continue
        i = intents.get(c["hold_id"])
        if i is None or i["status"] != "succeeded" \
                or i["amount_received_minor"] != c["captured_minor"]:
            bad(f"CAPTURED charge {c['public_id']} captured {c['captured_minor']} but its "
                f"intent is {i and i['status']} with {i and i['amount_received_minor']}")
    per_ref = Counter(rc["reference"] for rc in receipts)
    for c in charges:
        want = 1 if c["status"] == "CAPTURED" else 0
        have = per_ref[f"charge:{c['public_id']}"]
        if have != want or (want and not c["receipt_pk"]):
            bad(f"{c['public_id']} {c['status']} has {have} receipts (expected {want})")
    series: dict[str, list[int]] = {}
    for rc in receipts:
        series.setdefault(rc["series"], []).append(rc["number"])
    for name, numbers in series.items():
        if numbers != list(range(1, len(numbers) + 1)):
            bad(f"receipt series {name} is broken: {numbers}")

    # 3. No orphan hold: money held only for a charge still open within its deadline.
    for intent_id, i in intents.items():
        charge = by_hold.get(intent_id)
        if i["status"] == "requires_capture" and (charge is None or charge["status"] in FINAL):
            bad(f"orphan hold: {intent_id} still holds {i['amount_capturable_minor']} for "
                f"charge {charge and charge['public_id']} {charge and charge['status']}")
    for c in charges:
        if c["status"] in FINAL and c["status"] != "CAPTURED" and c["hold_id"]:
            i = intents.get(c["hold_id"])
            if i is not None and i["status"] not in {"canceled"}:
                bad(f"{c['public_id']} {c['status']} but its intent is {i['status']}")

    # 4. No lost stop: a stop the API took stands until the session ended by it (or by a
    #    full battery first), and the charge then ended and settled.
    by_id = {c["public_id"]: c for c in charges}
    for d in drivers:
        if not d.seen.stop_answered:
            continue
        c = by_id.get(d.seen.charge_id)
        if c is None or c["stop_requested_at"] is None:
            bad(f"stop answered 202 but not recorded: {d.seen.charge_id}")
            continue
    for c in charges:
        if c["stop_requested_by"] != "driver":
            continue
        if c["session_id"] is None:
            if c["status"] not in FINAL:
                bad(f"stopped before a session, not final: {c['public_id']} {c['status']}")
            continue
        s = sessions.get(c["session_id"]) or next(
            (x for x in sessions.values() if x["id"].upper() == c["session_id"].upper()), None)
        path = timeline.get(c["pk"], [])
        if "ENDED" not in path:
            bad(f"lost stop: {c['public_id']} never ENDED ({' > '.join(dict.fromkeys(path))})")
        if s is None:
            bad(f"lost stop: the CPO has no session {c['session_id']} of {c['public_id']}")
            continue
        full = float(s.get("kwh") or 0) >= max_kwh - 1e-6
        if s["status"] != "COMPLETED" or not (s["id"] in stops_accepted or full):
            bad(f"lost stop: {c['public_id']} session {s['id']} is {s['status']} at "
                f"{s.get('kwh')} kWh and the CPO accepted no STOP_SESSION for it")

    # No charger left running, and every session the CPO ran is paid or flagged.
    by_ref = {c["authorization_reference"]: c for c in charges}
    for s in sessions.values():
        if s["status"] != "COMPLETED":
            bad(f"charger left running: session {s['id']} is {s['status']}")
        c = by_ref.get(str(s.get("authorization_reference") or "").upper())
        if c is not None and float(s.get("kwh") or 0) > 0 and c["status"] != "CAPTURED" \
                and not c["failure_code"]:
            res.observations.append(
                f"unbilled: session {s['id']} {s.get('kwh')} kWh, charge {c['public_id']} "
                f"{c['status']} without a flag")
    paid_expired = [c["public_id"] for c in charges if c["status"] == "EXPIRED"
                    and (intents.get(c["hold_id"]) or {}).get("card_last4") == GOOD_CARD[-4:]
                    and "AUTHORIZED" not in timeline.get(c["pk"], [])]
    if paid_expired:
        res.observations.append(
            f"{len(paid_expired)} paid charges expired unstarted: the demo gateway's "
            f"authorisation event never reached them (it lives only as a queue payload until "
            f"stored, and a SIGKILLed worker loses the task it runs); the hold was released: "
            f"{paid_expired}")
    if len(sim_log) >= 10_000:
        res.observations.append("the simulator's log is full: STOP_SESSION checks may miss")

    res.figures.update(
        charges=len(charges),
        driver_charges=sum(1 for d in drivers if d.seen.charge_id),
        states=dict(Counter(c["status"] for c in charges)),
        flags=dict(Counter(c["failure_code"] for c in charges if c["failure_code"])),
        kills=dict(r.kills),
        cuts=len(r.cuts),
        connections_cut=sum(r.cuts),
        cpo_faults=dict(r.cpo_faults),
        http_errors=dict(r.http_errors),
        stops=sum(1 for d in drivers if d.seen.stop_answered),
        stops_too_late=sum(1 for d in drivers if d.seen.stop_refused),
        stops_refused=dict(Counter(d.seen.stop_refused for d in drivers
                                   if d.seen.stop_refused)),
        stops_missed=sum(1 for d in drivers if d.seen.stop_missed),
        receipts=len(receipts),
        captured_minor=sum(c["captured_minor"] or 0 for c in charges),
        sessions=len(sessions),
        violations=len(res.violations),
    )
    return res


def summary(opts: Options, r: Run, drivers: list[Driver], chaos: Chaos, res: Result) -> str:
    f = res.figures
    lines = [
        "",
        f"ScanCharge chaos run: seed {opts.seed}, {opts.charges} drivers, "
        f"{opts.gunicorn_workers} gunicorn workers, 2 queue workers, {os.cpu_count()} cores",
        f"  logs: {f['log_dir']}   wall time: {f['seconds']} s",
        f"  charges in the database: {f['charges']} ({f['driver_charges']} known to drivers;"
        f" any more were created by a retried POST whose answer was lost)",
        "  by final state:  " + ", ".join(f"{k} {v}" for k, v in sorted(f["states"].items())),
        "  failure codes:   " + (", ".join(f"{k} {v}" for k, v in sorted(f["flags"].items()))
                                 or "none"),
        "  driver plans:    " + ", ".join(
            f"{k} {v}" for k, v in sorted(Counter(d.plan.kind for d in drivers).items())),
        f"  stops pressed:   {f['stops']} answered 202, {f['stops_too_late']} refused"
        + "".join(f" [{k} {v}]" for k, v in f["stops_refused"].items())
        + f", {f['stops_missed']} not pressed (full before CHARGING was seen)",
        "  kills:           " + (", ".join(f"{k} {v}" for k, v in sorted(f["kills"].items()))
                                 or "none"),
        f"  DB cuts:         {f['cuts']} ({f['connections_cut']} connections terminated)",
        "  CPO faults:      " + (", ".join(f"{k} {v}" for k, v in f["cpo_faults"].items())
                                 or "none"),
        "  HTTP errors seen by drivers (each retried): " + (
            ", ".join(f"{k} {v}" for k, v in sorted(f["http_errors"].items())) or "none"),
        f"  receipts: {f['receipts']}, captured {f['captured_minor'] / 100:.2f} in total; "
        f"CPO sessions: {f['sessions']}",
        "  driver outcomes: " + ", ".join(
            f"{k} {v}" for k, v in sorted(Counter(d.seen.outcome for d in drivers).items())),
    ]
    for note_ in res.observations:
        lines.append(f"  observation: {note_}")
    lines.append(f"  invariant violations: {len(res.violations)}")
    for v in res.violations:
        lines.append(f"    VIOLATION {v}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tests.chaos", description=__doc__.split("\n")[0])
    p.add_argument("--charges", type=int, default=8, help="drivers, one charge each (8)")
    p.add_argument("--kills", type=int, default=3, help="SIGKILLs of a random worker (3)")
    p.add_argument("--cuts", type=int, default=1, help="cuts of every DB connection (1)")
    p.add_argument("--cpo-faults", type=int, default=None,
                   help="4 s windows of a misbehaving CPO (default kills / 3, at least 1)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--duration", type=float, default=None,
                   help="seconds over which drivers arrive and chaos strikes "
                        "(default: 1.5 s per charge, at least 20)")
    p.add_argument("--web-workers", type=int, default=3, help="gunicorn -w (3)")
    p.add_argument("--database-url", default=os.environ.get("CHAOS_DATABASE_URL",
                                                            DEFAULT_DATABASE_URL))
    p.add_argument("--queue-url", default=os.environ.get("CHAOS_QUEUE_URL", DEFAULT_QUEUE_URL))
    p.add_argument("--log-dir", type=Path, default=None)
    p.add_argument("--json", action="store_true", help="also print the figures as JSON")
    a = p.parse_args(argv)
    opts = Options(
        charges=a.charges, kills=a.kills, cuts=a.cuts,
        cpo_faults=a.cpo_faults if a.cpo_faults is not None else max(1, a.kills // 3),
        seed=a.seed, duration=a.duration or max(20.0, a.charges * 1.5),
        gunicorn_workers=a.web_workers, database_url=a.database_url, queue_url=a.queue_url,
        log_dir=a.log_dir,
    )
    problem = problem_with_services(opts.database_url, opts.queue_url)
    if problem:
        print(f"chaos run impossible here: {problem}", file=sys.stderr)
        return 2
    result = run(opts)
    print(result.summary)
    if a.json:
        print(json.dumps(result.figures, default=str))
    return 1 if result.violations else 0
