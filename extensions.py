"""Extensions, created once here and bound to an app in create_app()."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar, cast

from flask_babel import Babel
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import (
    ColumnElement,
    DateTime,
    MetaData,
    Select,
    TypeDecorator,
    Update,
    event,
    select,
    update,
)
from sqlalchemy.engine import CursorResult, Engine
from sqlalchemy.orm import DeclarativeBase, registry
from sqlalchemy.orm import Session as OrmSession

# Constraint names fixed so Alembic migrations are the same on SQLite and PostgreSQL.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def now_utc() -> datetime:
    """Now, aware and in UTC: what every stored timestamp is (UtcDateTime)."""
    return datetime.now(UTC)


class UtcDateTime(TypeDecorator):
    """Timestamps stored as naive UTC and read back as aware UTC, on every database.

    SQLite keeps no offset and PostgreSQL's plain timestamp would shift by the session's
    time zone; storing UTC and attaching it on the way out gives the same value on both.
    """

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: pass an aware UTC datetime")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        return value.replace(tzinfo=UTC) if value is not None else None


class Base(DeclarativeBase):
    registry = registry(
        metadata=MetaData(naming_convention=NAMING_CONVENTION),
        type_annotation_map={datetime: UtcDateTime},
    )


db = SQLAlchemy(model_class=Base)
# db.Model is built from Base at run time, so a type checker cannot see it as a class; models
# derive from Model, which is db.Model when running and Base when checked.
if TYPE_CHECKING:
    Model = Base
else:
    Model = db.Model
migrate = Migrate(render_as_batch=True)  # batch mode: SQLite cannot ALTER most things
# Bound with its catalogues and locale selector by i18n.init_translations.
babel = Babel()


def rows_changed(statement: Any) -> int:
    """Run an UPDATE or DELETE in the current session and say how many rows it touched.

    Session.execute is typed as returning a plain Result; for DML it is a CursorResult,
    whose rowcount is the claim (zero: someone else got there first).
    """
    result = cast("CursorResult[Any]", db.session.execute(statement))
    return result.rowcount


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection, _record) -> None:
    # Several threads (web server, queue workers) share one SQLite file: WAL lets readers
    # run beside a writer, and busy_timeout makes a writer wait instead of failing.
    if type(dbapi_connection).__module__.startswith("sqlite3"):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()


def after_commit(callback) -> None:
    """Run `callback()` once the current transaction commits; forget it on rollback.

    Work that must only happen if the change is durable (enqueueing a task that reads the
    change, notifying the outside world) is registered here instead of run in place.
    """
    db.session.info.setdefault("after_commit", []).append(callback)


@event.listens_for(OrmSession, "after_commit")
def _run_after_commit(session: OrmSession) -> None:
    if session.in_nested_transaction():
        return  # a savepoint released (SQLAlchemy says "commit"): nothing is durable yet
    callbacks = session.info.pop("after_commit", [])
    for callback in callbacks:
        callback()


@event.listens_for(OrmSession, "after_rollback")
def _forget_after_commit(session: OrmSession) -> None:
    session.info.pop("after_commit", None)


class RowLock(NamedTuple):
    """A locking read of the row a condition names, its values as bind parameters: built
    once (on the ingest path, building and keying a statement costs about a third of what
    SQLAlchemy spends on it), run by locked_row."""

    touch: Update  # SQLite's no-op UPDATE that takes its write lock first
    read: Select[Any]


def row_lock(model: Any, condition: ColumnElement[bool], unchanged: Any) -> RowLock:
    """The RowLock of `model`'s row under `condition`; `unchanged` is a column of it that
    the no-op UPDATE sets to itself."""
    return RowLock(touch=update(model).where(condition).values({unchanged: unchanged}),
                   read=select(model).where(condition).with_for_update()
                   .execution_options(populate_existing=True))


def locked_row(lock: RowLock, params: dict[str, Any]) -> Any:
    """The (first) row `lock` names with `params`, re-read under a row lock held until the
    transaction ends, or None. On PostgreSQL the read takes the lock (FOR UPDATE); SQLite
    has none, so a no-op UPDATE takes its database write lock first, unless this
    transaction has written already and so holds it. Either way concurrent writers of the
    same row queue here."""
    if not holds_write_lock():
        db.session.execute(lock.touch, params)
    return db.session.scalars(lock.read, params).first()


def holds_write_lock() -> bool:
    """Has this transaction begun on the database, and may it write without waiting for
    another writer? Always on PostgreSQL (row locks do the rest); on SQLite, once it has
    written: pysqlite begins a transaction only at the first write, which takes the one
    write lock."""
    if db.session.get_bind().dialect.name != "sqlite":
        return True
    dbapi = db.session.connection().connection.dbapi_connection
    return bool(getattr(dbapi, "in_transaction", False))


_SHARED = "shared_transaction"  # db.session.info: units of work join the caller's transaction
T = TypeVar("T")


class SharedTransaction:
    """What shared_transaction() tells its caller afterwards: whether a unit of work in it
    failed or left its charge unchanged, so that the domain's part must be undone."""

    def __init__(self) -> None:
        self.undo = False


@contextmanager
def shared_transaction() -> Iterator[SharedTransaction]:
    """Units of work opened in the block (charging.unit_of_work) join the current
    transaction instead of committing their own: an OCPI receiver stores what a CPO sent
    and lets the domain act on it in one transaction, committed once by the caller.

    No savepoint is taken (two round trips on every push, for a failure that is rare): a
    unit that fails, or ends unchanged, sets `undo`, and the caller then rolls the whole
    transaction back and stores what it received again, alone (the sweeper re-drives the
    charge from it)."""
    shared = SharedTransaction()
    db.session.info[_SHARED] = shared
    try:
        yield shared
    finally:
        db.session.info.pop(_SHARED, None)


def stored_then_applied(store_it: Callable[[], T], announce: Callable[[T], None]) -> T:
    """What a peer sent stored (`store_it`), announced so that the domain acts on it in the
    same transaction (`announce`, under shared_transaction), and committed once. When the
    domain's part must be undone, the transaction is rolled back and `store_it` runs again
    alone, so what was received is kept whatever the domain did. Returns what the last
    `store_it` returned."""
    stored = store_it()
    db.session.flush()
    with shared_transaction() as shared:
        announce(stored)
    if shared.undo:
        db.session.rollback()
        stored = store_it()
    db.session.commit()
    return stored


def in_shared_transaction() -> bool:
    return db.session.info.get(_SHARED) is not None


def undo_shared_transaction() -> None:
    """The domain's part of the shared transaction must not be kept (see shared_transaction)."""
    shared = db.session.info.get(_SHARED)
    if shared is not None:
        shared.undo = True

