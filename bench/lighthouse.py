"""Lighthouse (mobile) on the driver's charger page and charge page, against the embedded
default (`python app.py`: SQLite, the demo gateway, the built-in CPO simulator) started on a
free port in a throw-away instance folder. Not part of ScanCharge.

    npm ci                                  # once: Lighthouse from package-lock.json
    .venv/bin/python bench/lighthouse.py    # [--lang sv] [--runs 3] [--json-dir DIR]

Prints, per page (the median of --runs Lighthouse runs), the performance, accessibility
and best-practices scores and the key metrics (FCP, LCP, TBT, CLS, bytes transferred), and
exits 1 when a page misses the targets (performance >= 95, accessibility 100, best practices
100), listing the audits that cost points. The charge page is of a charge started through
the demo gateway with its test card. Lighthouse's default mobile emulation: a mid-range
phone, CPU slowed 4x, a slow 4G network (simulated), so the figures are comparable across
machines only roughly.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
LIGHTHOUSE = ROOT / "node_modules" / ".bin" / "lighthouse"
CHROMIUM = os.environ.get("CHROME_PATH", "/usr/bin/chromium")
CATEGORIES = ("performance", "accessibility", "best-practices")
TARGETS = {"performance": 95, "accessibility": 100, "best-practices": 100}
METRICS = (("FCP", "first-contentful-paint", "ms"), ("LCP", "largest-contentful-paint", "ms"),
           ("TBT", "total-blocking-time", "ms"), ("CLS", "cumulative-layout-shift", ""),
           ("transfer", "total-byte-weight", "bytes"))
# Anything the app's own settings might pick up from the caller's shell: the bench measures
# the embedded default.
CLEARED_ENV = ("DATABASE_URL", "REDIS_URL", "STRIPE_SECRET_KEY", "STRIPE_PUBLISHABLE_KEY",
               "PUBLIC_BASE_URL", "SCANCHARGE_ENV", "PORT", "SIMULATOR_ENABLED", "SIMULATOR_PORT")


def free_port_pair() -> int:
    """A port P with P+1 free too (the simulator listens on PORT+1)."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        try:
            with socket.socket() as second:
                second.bind(("127.0.0.1", port + 1))
        except OSError:
            continue
        return port
    raise RuntimeError("no two adjacent free ports found")


def start_app(instance: Path) -> tuple[subprocess.Popen[str], str, str]:
    """The embedded default on a free port; its process, base URL and demo charger URL."""
    port = free_port_pair()
    env = {k: v for k, v in os.environ.items() if k not in CLEARED_ENV}
    # Simulated time at real speed: the charge stays CHARGING while its page is measured.
    env.update(SCANCHARGE_INSTANCE_DIR=str(instance), PYTHONUNBUFFERED="1",
               SIMULATOR_TIME_FACTOR="1")
    process = subprocess.Popen([sys.executable, "app.py", "--port", str(port)], cwd=ROOT,
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True)
    assert process.stdout is not None
    deadline = time.monotonic() + 120
    seen: list[str] = []
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        seen.append(line)
        match = re.search(r"Demo charger:\s+(\S+)", line)
        if match:
            return process, f"http://127.0.0.1:{port}", match.group(1)
    process.kill()
    raise RuntimeError("the embedded default did not start:\n" + "".join(seen[-30:]))


def api(base: str, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(base + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=15) as response:
        return json.load(response)


def start_charge(base: str, evse_id: str, lang: str) -> str:
    """A charge paid with the demo gateway's good test card, CHARGING; its page's URL."""
    charge = api(base, "POST", "/api/v1/charges", {"evse_id": evse_id, "language": lang})
    payment = charge["payment"]
    api(base, "POST", "/payments/demo/confirm", {
        "payment_intent": payment["payment_intent"], "client_secret": payment["client_secret"],
        "card_number": "4242424242424242"})
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if api(base, "GET", f"/api/v1/charges/{charge['id']}")["status"] == "CHARGING":
            return f"{base}/charge/{charge['id']}?lang={lang}"
        time.sleep(0.5)
    raise RuntimeError(f"charge {charge['id']} did not start charging")


def lighthouse(url: str) -> dict[str, Any]:
    command = [str(LIGHTHOUSE), url, "--form-factor=mobile", "--screenEmulation.mobile",
               f"--only-categories={','.join(CATEGORIES)}", "--output=json",
               "--output-path=stdout", "--quiet",
               "--chrome-flags=--headless=new --no-sandbox --disable-gpu"]
    done = subprocess.run(command, env={**os.environ, "CHROME_PATH": CHROMIUM},
                          capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        raise RuntimeError(f"lighthouse failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(done.stdout)


def median_run(url: str, runs: int) -> dict[str, Any]:
    """The run with the median performance score of `runs` (Lighthouse's own advice: one
    run varies with what else the machine does)."""
    reports = sorted((lighthouse(url) for _ in range(runs)),
                     key=lambda r: r["categories"]["performance"]["score"])
    scores = [round(r["categories"]["performance"]["score"] * 100) for r in reports]
    print(f"{url}: performance per run {scores}", flush=True)
    return reports[len(reports) // 2]


def summarise(name: str, report: dict[str, Any]) -> bool:
    """Prints the page's scores, metrics and lost points; True when it meets the targets."""
    scores = {c: round(report["categories"][c]["score"] * 100) for c in CATEGORIES}
    audits = report["audits"]
    print(f"\n{name}: {report['finalDisplayedUrl']}")
    print("  " + "  ".join(f"{c} {scores[c]}" for c in CATEGORIES))
    figures = []
    for label, key, unit in METRICS:
        value = audits[key]["numericValue"]
        figures.append(f"{label} {value:.3f}" if unit == "" else
                       f"{label} {value / 1024:.1f} KiB" if unit == "bytes" else
                       f"{label} {value:.0f} ms")
    print("  " + ", ".join(figures))
    met = all(scores[c] >= TARGETS[c] for c in CATEGORIES)
    for category in CATEGORIES:
        for ref in report["categories"][category]["auditRefs"]:
            audit = audits[ref["id"]]
            if ref["weight"] and audit["score"] is not None and audit["score"] < 1:
                print(f"  - {category}: {ref['id']} ({audit['score']}): {audit['title']}"
                      + (f" [{audit['displayValue']}]" if audit.get("displayValue") else ""))
    return met


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lang", default="en", help="the pages' language (default en)")
    parser.add_argument("--runs", type=int, default=3,
                        help="Lighthouse runs per page; the median is reported (default 3)")
    parser.add_argument("--json-dir", type=Path, help="keep each page's Lighthouse report here")
    args = parser.parse_args(argv)
    if not LIGHTHOUSE.exists():
        print(f"{LIGHTHOUSE} is missing: run `npm ci` in {ROOT}", file=sys.stderr)
        return 2
    if not Path(CHROMIUM).exists():
        print(f"no Chromium at {CHROMIUM} (set CHROME_PATH)", file=sys.stderr)
        return 2
    instance = Path(tempfile.mkdtemp(prefix="scancharge-lighthouse-"))
    process, base, charger_url = start_app(instance)
    met = True
    try:
        # The charger page first: once a charge runs there it reads "in use".
        pages = [("charger page", f"{charger_url}?lang={args.lang}")]
        reports = {pages[0][0]: median_run(pages[0][1], args.runs)}
        evse_id = charger_url.rsplit("/c/", 1)[1]
        pages.append(("charge page", start_charge(base, evse_id, args.lang)))
        reports[pages[1][0]] = median_run(pages[1][1], args.runs)
        for name, report in reports.items():
            met = summarise(name, report) and met
            if args.json_dir:
                args.json_dir.mkdir(parents=True, exist_ok=True)
                (args.json_dir / f"{name.replace(' ', '_')}.json").write_text(json.dumps(report))
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
        shutil.rmtree(instance, ignore_errors=True)
    print("\ntargets (performance >= 95, accessibility 100, best practices 100): "
          + ("met" if met else "MISSED"))
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
