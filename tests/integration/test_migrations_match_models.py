"""The Alembic migrations build exactly the schema the models declare: a column, index or
constraint added to a model without its migration (or the reverse) fails here, on the
database the suite runs on (SQLite, or PostgreSQL with TEST_DATABASE_URL)."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from extensions import db


def test_the_migrated_schema_is_the_models_schema(app: Any) -> None:
    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": False})
        differences = compare_metadata(context, db.metadata)
    assert differences == [], "models and migrations differ: add a migration (flask db " \
        f"revision --autogenerate) for {differences}"
