"""The chaos run at its small size: 8 charges, 3 SIGKILLs, 1 cut of every database
connection, 1 misbehaving-CPO window, against the scale-out shape (gunicorn -w 3, two queue
workers, PostgreSQL, Redis, the simulator as its own process). About a minute.

It runs in the PostgreSQL pass (TEST_DATABASE_URL set to a PostgreSQL URL; its own database
`chaos` on that server, created if missing, never TEST_DATABASE_URL's own) or whenever
CHAOS_TEST=1; it is skipped, with the reason, in the SQLite pass and when PostgreSQL, Redis
or gunicorn is missing. The larger size is `python -m tests.chaos --charges 60 --kills 15
--cuts 5` (docs/reliability.md).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from tests.chaos import runner


def _database_url() -> str | None:
    if os.environ.get("CHAOS_DATABASE_URL"):
        return os.environ["CHAOS_DATABASE_URL"]
    test_url = os.environ.get("TEST_DATABASE_URL", "")
    if test_url.startswith("postgresql"):
        return make_url(test_url).set(database="chaos").render_as_string(hide_password=False)
    if os.environ.get("CHAOS_TEST") == "1":
        return runner.DEFAULT_DATABASE_URL
    return None


def test_small_chaos_run_keeps_every_invariant(tmp_path: Path) -> None:
    database_url = _database_url()
    if database_url is None:
        pytest.skip("the chaos run needs the scale-out shape: it runs in the PostgreSQL pass "
                    "(TEST_DATABASE_URL=postgresql+psycopg://...) or with CHAOS_TEST=1")
    queue_url = os.environ.get("CHAOS_QUEUE_URL", runner.DEFAULT_QUEUE_URL)
    problem = runner.problem_with_services(database_url, queue_url)
    if problem:
        pytest.skip(f"chaos run impossible here: {problem}")
    opts = runner.Options(
        charges=8, kills=3, cuts=1, cpo_faults=1,
        seed=int(os.environ.get("CHAOS_SEED", "1")), duration=20,
        database_url=database_url, queue_url=queue_url, log_dir=tmp_path / "chaos",
    )
    result = runner.run(opts)
    print(result.summary)
    assert result.violations == [], result.summary
    assert result.figures["kills"] and result.figures["cuts"] == 1, result.summary
    assert result.figures["states"].get("CAPTURED"), result.summary
