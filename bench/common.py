"""What several benchmarks do alike: start from an empty PostgreSQL schema, and build the
schema by the migrations under the test configuration.

Imported by the scripts in bench/ (run as `python bench/NAME.py`, so this folder is on
sys.path); the product is imported inside the functions, after each script has put the
repository root on sys.path.
"""

from __future__ import annotations

from typing import Any


def empty_postgres(url: str) -> None:
    """Drop everything in the public schema of a PostgreSQL URL; other URLs are left alone
    (a SQLite file in a fresh temporary folder is empty already)."""
    from sqlalchemy import create_engine, text

    if not url.startswith("postgresql"):
        return
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()


def clone_postgres(url: str, name: str) -> str:
    """A copy of the PostgreSQL database at `url` as the database `name` (dropped first),
    made from it as a template; its URL. Nothing may be connected to `url` meanwhile."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    source = make_url(url)
    engine = create_engine(source.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{source.database}"'))
    engine.dispose()
    return source.set(database=name).render_as_string(hide_password=False)


def migrated_test_app(url: str) -> Any:
    """The app under TestConfig on an emptied database at `url`, its schema built by the
    migrations (not create_all) so the benchmark measures the indexes production has."""
    from app import create_app, upgrade_database
    from config import TestConfig

    empty_postgres(url)
    settings = {k: getattr(TestConfig, k) for k in dir(TestConfig) if k.isupper()}
    app = create_app({**settings, "SQLALCHEMY_DATABASE_URI": url})
    upgrade_database(app)
    return app
