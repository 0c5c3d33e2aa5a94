"""What each pytest-xdist worker (`-n 2`, `make test`) takes for itself so that parallel
workers share no database and no Redis keys: its own PostgreSQL database and its own Redis
database numbers. (Each worker's tmp_path_factory, hence its SQLite template, is its own
already; every server the tests start listens on a port the kernel picks.)

Outside xdist (a plain `pytest` run) every function returns its argument unchanged."""

from __future__ import annotations

import os
import time

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

# Redis's default number of databases (`databases 16`): a worker's db number stays below it.
REDIS_DATABASES = 16


def worker_id() -> str:
    """"gw0", "gw1"... under xdist, "" otherwise."""
    return os.environ.get("PYTEST_XDIST_WORKER", "")


def worker_number() -> int:
    name = worker_id()
    return int(name[2:]) if name.startswith("gw") else 0


def postgres_url(url: str) -> str:
    """This worker's database on the server of `url`: `<database>_gw0`, `_gw1`... (kept
    between runs: the suite rebuilds its schema at the start of every session)."""
    if not worker_id():
        return url
    parsed = make_url(url)
    return parsed.set(database=f"{parsed.database}_{worker_id()}").render_as_string(
        hide_password=False)


def create_postgres_database(url: str, worker_url: str) -> None:
    """Create worker_url's database, if absent, through a connection to `url`'s."""
    if worker_url == url:
        return
    name = make_url(worker_url).database
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        for attempt in range(5):
            with engine.connect() as conn:
                if conn.scalar(text("select 1 from pg_database where datname = :name"),
                               {"name": name}):
                    return
                try:
                    conn.execute(text(f'CREATE DATABASE "{name}"'))
                    return
                except Exception as exc:
                    # The other worker may be copying template1 at the same moment
                    # ("source database is being accessed by other users"), or have
                    # just created this very database: look again.
                    if attempt == 4:
                        raise RuntimeError(f"could not create database {name}: {exc}") from exc
            time.sleep(0.2 * (attempt + 1))
    finally:
        engine.dispose()


def redis_url(url: str) -> str:
    """`url` with its database number moved by the worker's number: db + n, or db - n
    where db + n would pass Redis's last database (so `.../15` gives 15, 14...)."""
    number = worker_number()
    if not number:
        return url
    base, _, db = url.rpartition("/")
    if not db.isdigit() or "://" not in base:
        base, db = url.rstrip("/"), "0"
    moved = int(db) + number
    if moved >= REDIS_DATABASES:
        moved = int(db) - number
    if moved < 0:
        raise ValueError(f"no Redis database left for worker {worker_id()} from {url}")
    return f"{base}/{moved}"
