"""The Chargers page's health figures at scale: a standalone check (not a pytest test).

    python bench/bench_chargers.py [--charges 100000] [--url sqlite:///PATH | postgresql+psycopg://...]

Builds the schema by the migrations (default: a SQLite file in a temporary folder; a
PostgreSQL URL is emptied first), stores the simulator's sites, then `--charges` settled
charges over four chargers with their timelines (one charge in 17 with a failed start) and
20,000 EVSE status changes, and times dashboard.chargers' two aggregates (charges; status
history) for 30 and 365 days. Exits 1 when one takes longer than --limit seconds (2).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for path in (ROOT, ROOT / "tests"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from common import migrated_test_app  # noqa: E402

EVSES = [("SIM-STO", "SIM-STO-1"), ("SIM-STO", "SIM-STO-2"), ("SIM-MMO", "SIM-MMO-1"),
         ("SIM-GBG", "SIM-GBG-1")]
TIMELINE = ("CREATED", "AUTHORIZED", "STARTING", "CHARGING", "ENDED", "CAPTURED")


def _fill(charges: int) -> None:
    from charge_factory import seed_chargers
    from sqlalchemy import insert, select

    from charging.models import Charge, ChargeEvent
    from extensions import db
    from ocpi.models import OcpiEvseStatusChange, OcpiLocation, Party
    from ocpi.transport import now_utc

    seed_chargers()
    party_pk = db.session.scalars(select(Party.pk)).one()
    now = now_utc()
    rows = []
    for n in range(charges):
        location_id, uid = EVSES[n % len(EVSES)]
        started = now - timedelta(minutes=n % 40000)
        rows.append({
            "public_id": f"p{n}", "party_pk": party_pk, "location_id": location_id,
            "evse_uid": uid, "evse_id": "X", "connector_id": "1", "currency": "SEK",
            "hold_minor": 30000, "gateway": "demo", "token_uid": f"t{n}",
            "authorization_reference": f"r{n}", "start_command_uid": f"c{n}",
            "status": "CAPTURED", "energy_kwh": 10, "session_started_at": started,
            "session_ended_at": started + timedelta(minutes=30), "created_at": started,
            "updated_at": started, "lock_version": 0, "refunded_minor": 0,
            "stop_attempts": 0, "language": "sv"})
    db.session.execute(insert(Charge), rows)
    events = []
    for pk in db.session.scalars(select(Charge.pk)):
        events += [{"charge_pk": pk, "to_status": s, "cause": "system", "at": now}
                   for s in TIMELINE]
        if pk % 17 == 0:
            events.append({"charge_pk": pk, "to_status": "START_FAILED", "cause": "ocpi",
                           "at": now})
    db.session.execute(insert(ChargeEvent), events)
    location_pk = db.session.scalars(select(OcpiLocation.pk)).first()
    db.session.execute(insert(OcpiEvseStatusChange), [
        {"location_pk": location_pk, "evse_uid": "SIM-STO-1",
         "status": "OUTOFORDER" if i % 2 else "AVAILABLE",
         "changed_at": now - timedelta(minutes=i * 10), "received_at": now}
        for i in range(20000, 0, -1)])
    db.session.commit()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--charges", type=int, default=100_000)
    parser.add_argument("--url", default="")
    parser.add_argument("--limit", type=float, default=2.0)
    args = parser.parse_args()
    url = args.url or f"sqlite:///{tempfile.mkdtemp()}/bench_chargers.db"
    app = migrated_test_app(url)
    slow = False
    with app.app_context():
        from dashboard.chargers import charge_figures, outage_figures
        from ocpi.transport import now_utc

        _fill(args.charges)
        now = now_utc()
        for days in (30, 365):
            since = now - timedelta(days=days)
            started = time.monotonic()
            figures = charge_figures(since)
            charges_s = time.monotonic() - started
            started = time.monotonic()
            outage_figures(since, now)
            outages_s = time.monotonic() - started
            failed = sum(f.failed_starts for f in figures.values())
            print(f"{days:>3} days: charges {charges_s:.2f} s ({failed} failed starts), "
                  f"status history {outages_s:.2f} s")
            slow = slow or max(charges_s, outages_s) > args.limit
    return 1 if slow else 0


if __name__ == "__main__":
    sys.exit(main())
