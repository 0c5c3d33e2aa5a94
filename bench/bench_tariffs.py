"""How fast the tariff engine prices sessions: a standalone benchmark (not a pytest test).

    python bench/bench_tariffs.py [--seconds 3] [--rounds 6] [--before REV] [--pairs 3]

1. The 330-case reference workload (tests/tariff_reference.py: 11 tariffs x 30 sessions,
   tariffs and periods as stored dicts, each session's total read): sessions per second
   with the engine as it was at REV (default: before issue 14's work on it, taken from git
   into a temporary folder) and as it is, measured in turns in separate processes (before,
   after, before, ...; the best of each), and the ratio, per second of wall-clock time and
   per second of the process's CPU time. Turns matter on a shared machine: other load slows
   both alike; the CPU time leaves out the time spent waiting for a core.
2. Sessions per second for a simple and a complex tariff, from JSON-like dicts (as stored)
   and from parsed models, plus plans and the driver's text, and the peak memory one
   pricing allocates.
3. The live cost per Session update (tariffs.price_live, the carried state passed through
   JSON as it is stored) with 0, 100 and 1,000 periods already priced, against pricing the
   whole session again as every update did before.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

if __name__ == "__main__" and "--engine" in sys.argv:  # the engine to time, before tariffs
    sys.path.insert(0, sys.argv[sys.argv.index("--engine") + 1])

from tariffs import (  # noqa: E402
    ChargingPeriod,
    Tariff,
    describe,
    price_plan,
    price_session,
    read,
)

D = Decimal
ZONE = "Europe/Stockholm"
START = datetime(2024, 6, 3, 14, 0, tzinfo=UTC)  # 16:00 in Stockholm, a Monday


def component(kind: str, price: str, vat: str = "25", step: int = 1) -> dict[str, Any]:
    return {"type": kind, "price": D(price), "vat": D(vat), "step_size": step}


SIMPLE = {
    "country_code": "SE", "party_id": "SCA", "id": "simple", "currency": "SEK",
    "last_updated": "2024-01-01T00:00:00Z",
    "elements": [{"price_components": [component("FLAT", "4"), component("ENERGY", "3.60")]}],
}

# Time-of-day energy, a kWh tier, power tiers, current-based time fees per weekday and
# weekend, parking by day, a time fee after an hour, a reservation, and price limits.
COMPLEX = {
    "country_code": "SE", "party_id": "SCA", "id": "complex", "currency": "SEK",
    "last_updated": "2024-01-01T00:00:00Z",
    "min_price": {"excl_vat": D(10), "incl_vat": D("12.50")},
    "max_price": {"excl_vat": D(800), "incl_vat": D(1000)},
    "elements": [
        {"price_components": [component("TIME", "60", step=60)],
         "restrictions": {"reservation": "RESERVATION"}},
        {"price_components": [component("FLAT", "4")]},
        {"price_components": [component("ENERGY", "4.40", step=100)],
         "restrictions": {"start_time": "17:00", "end_time": "20:00",
                          "day_of_week": ["MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY",
                                          "FRIDAY"]}},
        {"price_components": [component("ENERGY", "2.00", step=100)],
         "restrictions": {"start_time": "22:00", "end_time": "06:00"}},
        {"price_components": [component("ENERGY", "3.20", step=100)],
         "restrictions": {"min_kwh": D(40)}},
        {"price_components": [component("ENERGY", "3.00", step=100)],
         "restrictions": {"max_power": D(22)}},
        {"price_components": [component("ENERGY", "3.60", step=100)]},
        {"price_components": [component("TIME", "12", step=900)],
         "restrictions": {"max_current": D(32), "min_duration": 3600}},
        {"price_components": [component("TIME", "24", step=600)],
         "restrictions": {"min_current": D(32), "min_duration": 3600}},
        {"price_components": [component("PARKING_TIME", "60", step=300)],
         "restrictions": {"start_time": "09:00", "end_time": "18:00",
                          "day_of_week": ["MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY",
                                          "FRIDAY"]}},
        {"price_components": [component("PARKING_TIME", "30", step=300)]},
    ],
}


def periods(count: int, *, parking: bool) -> tuple[list[dict[str, Any]], datetime]:
    """count charging periods of 15 min at ~40 kW, then optionally 45 min of parking."""
    out = []
    at = START
    for i in range(count):
        out.append({"start_date_time": at.isoformat(),
                    "dimensions": [{"type": "ENERGY", "volume": D("10.125") - D(i) / 8},
                                   {"type": "MAX_CURRENT", "volume": D(60)},
                                   {"type": "MIN_CURRENT", "volume": D(40)}]})
        at += timedelta(minutes=15)
    if parking:
        out.append({"start_date_time": at.isoformat(),
                    "dimensions": [{"type": "ENERGY", "volume": D(0)},
                                   {"type": "PARKING_TIME", "volume": D("0.75")}]})
        at += timedelta(minutes=45)
    return out, at


def rate(fn: Callable[[], Any], seconds: float, rounds: int) -> float:
    """Calls per second, the best of several rounds: other load on the machine only ever
    slows a round down, so the best one is the closest to the engine's own speed."""
    fn()  # warm up
    best = 0.0
    for _ in range(rounds):
        n = 0
        began = time.perf_counter()
        deadline = began + seconds / rounds
        while True:
            fn()
            n += 1
            now = time.perf_counter()
            if now >= deadline:
                break
        best = max(best, n / (now - began))
    return best


def peak_kib(fn: Callable[[], Any]) -> float:
    fn()
    tracemalloc.start()
    tracemalloc.reset_peak()
    fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 1024


# The commit before issue 14's changes to the engine: today's engine is measured against it.
BEFORE = "8182942"


def workload_rate(seconds: float) -> dict[str, float]:
    """Reference sessions priced per second (each total read), the best of several passes
    over the workload: per second of wall-clock time and per second of this process's CPU
    time. On a shared machine the CPU time is the steadier figure: time the process spends
    waiting for a core counts in the wall-clock time only."""
    from tests.tariff_reference import cases

    workload = cases()

    def price_all() -> None:
        for case in workload:
            case.price().total  # noqa: B018 - what the live cost and the hold read

    price_all()  # warm up
    best_wall = best_cpu = float("inf")
    deadline = time.perf_counter() + seconds
    while True:
        wall, cpu = time.perf_counter(), time.process_time()
        price_all()
        best_wall = min(best_wall, time.perf_counter() - wall)
        best_cpu = min(best_cpu, time.process_time() - cpu)
        if time.perf_counter() >= deadline:
            break
    return {"per_second": len(workload) / best_wall, "per_cpu_second": len(workload) / best_cpu}


def engine_of(rev: str, folder: Path) -> Path:
    """The tariff engine at git revision `rev`, unpacked into folder/tariffs."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "tariffs"],
                             check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    return folder


def compare(before: str, pairs: int, seconds: float) -> None:
    with tempfile.TemporaryDirectory(prefix="tariffs-before-") as tmp:
        try:
            old = engine_of(before, Path(tmp))
        except (OSError, subprocess.CalledProcessError):
            after = workload_rate(seconds)
            print(f"reference workload: no engine at {before} to compare with (not a git "
                  f"checkout with that revision); after only: {after['per_second']:,.0f}/s "
                  f"({after['per_cpu_second']:,.0f} per CPU second)")
            return
        best = {(which, unit): 0.0 for which in ("before", "after")
                for unit in ("per_second", "per_cpu_second")}
        for _ in range(pairs):
            for which, extra in (("before", ["--engine", str(old)]), ("after", [])):
                out = subprocess.run(
                    [sys.executable, __file__, "--workload-only", "--seconds", str(seconds),
                     *extra], check=True, capture_output=True, text=True,
                    env={**os.environ, "PYTHONHASHSEED": "0"}).stdout
                for unit, value in json.loads(out).items():
                    best[(which, unit)] = max(best[(which, unit)], value)
    for unit, label in (("per_second", "wall-clock"), ("per_cpu_second", "CPU time")):
        before_rate, after_rate = best[("before", unit)], best[("after", unit)]
        print(f"reference workload (330 sessions, {label}): before ({before}) "
              f"{before_rate:,.0f}/s, after {after_rate:,.0f}/s, "
              f"ratio {after_rate / before_rate:.1f}x (best of {pairs} turns each)")


def live_periods(count: int) -> list[dict[str, Any]]:
    """count periods of 15 min at 40 kW (10 kWh each), as a CPO sends them."""
    return [{"start_date_time": (START + timedelta(minutes=15 * i)).isoformat(),
             "dimensions": [{"type": "ENERGY", "volume": D(10)},
                            {"type": "MAX_CURRENT", "volume": D(60)},
                            {"type": "MIN_CURRENT", "volume": D(40)}]}
            for i in range(count)]


def live_cost(seconds: float) -> None:
    from tariffs import price_live
    from tariffs.live import fed

    print("live cost per Session update (complex tariff, one new period each):")
    figures = {}
    for done in (0, 100, 1000):
        periods = live_periods(done + 2)
        end = START + timedelta(minutes=15 * (done + 1) + 5)
        first = price_live(COMPLEX, periods[:done + 1], time_zone=ZONE, session_end=end)
        assert first is not None and first.state is not None
        stored = json.dumps(first.state)
        later = end + timedelta(minutes=15)

        def update(stored: str = stored, periods: list[dict[str, Any]] = periods,
                   later: datetime = later) -> None:
            state = json.loads(stored)
            live = price_live(COMPLEX, periods[fed(state):], time_zone=ZONE, session_end=later,
                              state=state)
            assert live is not None and live.state is not None
            json.dumps(live.state)

        def again(periods: list[dict[str, Any]] = periods, later: datetime = later) -> None:
            price_session(COMPLEX, periods, time_zone=ZONE, session_end=later).total  # noqa: B018

        figures[done] = 1e6 / rate(update, seconds, 6)
        whole = 1e6 / rate(again, seconds, 3)
        print(f"  {done:>5} periods priced: carried {figures[done]:>8,.0f} us, "
              f"whole session again {whole:>9,.0f} us")
    print(f"  carried at 1,000 / at 0: {figures[1000] / figures[0]:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="time per case")
    parser.add_argument("--rounds", type=int, default=6, help="rounds per case (best wins)")
    parser.add_argument("--before", default=BEFORE, help="git revision of the engine before")
    parser.add_argument("--pairs", type=int, default=3, help="turns of before and after")
    parser.add_argument("--workload-only", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--engine", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.workload_only:
        print(json.dumps(workload_rate(args.seconds)))
        return

    compare(args.before, args.pairs, args.seconds)
    simple_periods, simple_end = periods(1, parking=False)
    complex_periods, complex_end = periods(16, parking=True)  # 16:00-20:45 local
    simple_t = read(Tariff, SIMPLE)
    complex_t = read(Tariff, COMPLEX)
    simple_p = [read(ChargingPeriod, p) for p in simple_periods]
    complex_p = [read(ChargingPeriod, p) for p in complex_periods]

    cases: list[tuple[str, Callable[[], Any]]] = [
        ("simple, 1 period, dicts",
         lambda: price_session(SIMPLE, simple_periods, time_zone=ZONE, session_end=simple_end)),
        ("simple, 1 period, parsed",
         lambda: price_session(simple_t, simple_p, time_zone=ZONE, session_end=simple_end)),
        ("complex, 17 periods, dicts",
         lambda: price_session(COMPLEX, complex_periods, time_zone=ZONE,
                               session_end=complex_end)),
        ("complex, 17 periods, parsed",
         lambda: price_session(complex_t, complex_p, time_zone=ZONE,
                               session_end=complex_end)),
        ("simple plan (30 kWh)",
         lambda: price_plan(simple_t, start=START, energy_kwh=D(30),
                            duration=timedelta(hours=1), power_kw=D(50), time_zone=ZONE)),
        ("complex plan (4 h, 11 kW)",
         lambda: price_plan(complex_t, start=START, energy_kwh=D(44),
                            duration=timedelta(hours=4), power_kw=D(11), time_zone=ZONE)),
        ("complex describe (sv)",
         lambda: describe(complex_t, language="sv", at=START, time_zone=ZONE,
                          power_kw=D(50))),
    ]
    print(f"tariff engine benchmark - Python {platform.python_version()} on "
          f"{platform.machine()}, {args.seconds:g} s per case (best of {args.rounds} rounds), "
          "one core")
    print(f"{'case':<30} {'per second':>11} {'us each':>9} {'peak KiB':>9}")
    for name, fn in cases:
        per_second = rate(fn, args.seconds, args.rounds)
        print(f"{name:<30} {per_second:>11,.0f} {1e6 / per_second:>9,.0f} "
              f"{peak_kib(fn):>9,.0f}")
    check = price_session(complex_t, complex_p, time_zone=ZONE, session_end=complex_end)
    print(f"(complex session: {len(check.lines)} priced lines, total {check.total.incl_vat} "
          f"{check.currency} incl. VAT)")
    live_cost(args.seconds)


if __name__ == "__main__":
    main()
