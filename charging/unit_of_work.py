"""The unit of work: one transaction per handler, committed on success, rolled back on error.

    with locked_charge(pk) as charge:   # the charge under its row lock
        ...                             # change it, fire events, enqueue after commit

    with unit_of_work():                # reads, or writes that lock no charge
        ...

A handler that must talk to the network (a gateway call, an OCPI command) between two steps
uses two units of work with the call between them, in network_step(), so no lock is held
and no transaction is open while the other side works. A unit that finds nothing to do
under the lock calls leave_unchanged(): it then ends without writing, not even the lock's
own write.

Tasks queued with Task.enqueue_after_commit run only once the work is committed
(extensions.after_commit); a rollback drops them. Payment receivers are the exception to
"one unit per handler": they run inside the unit of work of the payment event that
announced them (payments.events.apply_event), which commits the event's claim and the
charge's change together, or neither.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import ColumnElement, bindparam
from sqlalchemy.exc import NoResultFound

from charging.models import Charge
from extensions import (
    RowLock,
    db,
    holds_write_lock,
    in_shared_transaction,
    locked_row,
    row_lock,
    undo_shared_transaction,
)

_OPEN = "charging.units_of_work"  # db.session.info: one flag per open unit, "leave unchanged"


class NestedUnitOfWork(RuntimeError):
    """A unit of work opened inside another: the inner commit would end the outer one."""


@contextmanager
def unit_of_work() -> Iterator[None]:
    """Commit what the block did, or roll it back (and re-raise) if it raised.

    Inside extensions.shared_transaction() (an OCPI receiver's request) the unit joins that
    transaction instead; the caller commits once, or, when the unit raised or left its
    charge unchanged, rolls back and keeps only what it received."""
    units: list[bool] = db.session.info.setdefault(_OPEN, [])
    if units:
        raise NestedUnitOfWork("a unit of work is already open in this session")
    if in_shared_transaction() and _caller_transaction_open():
        with _joined_unit(units):
            yield
        return
    units.append(False)
    try:
        yield
    except BaseException:
        units.pop()
        db.session.rollback()
        raise
    if units.pop():
        db.session.rollback()
        return
    try:
        db.session.commit()
    except BaseException:
        db.session.rollback()  # a failed flush leaves the session unusable until then
        raise


def _caller_transaction_open() -> bool:
    """Has the caller's transaction begun on the database (extensions.holds_write_lock)?
    Before it, on SQLite, a joined unit would read first and take the write lock only
    later, which SQLite refuses at once ("database is locked") when another writer came in
    between. Such a unit is an ordinary one."""
    return holds_write_lock()


@contextmanager
def _joined_unit(units: list[bool]) -> Iterator[None]:
    # In the caller's transaction: what is undone is undone by the caller, whole.
    units.append(False)
    try:
        yield
        if not units[-1]:
            # Written now, not at the caller's commit: a write the database refuses is
            # this unit's failure, which the caller undoes, keeping what it received.
            db.session.flush()
    except BaseException:
        units.pop()
        undo_shared_transaction()
        raise
    if units.pop():
        undo_shared_transaction()


@contextmanager
def network_step() -> Iterator[None]:
    """The call to the outside world between two units of work (a gateway call, an OCPI
    command): refused while a unit is open, so no lock is ever held across it. What the
    call leaves in the session (the demo gateway keeps its payments in this database)
    rides on the next unit of work; if the call raises, it is rolled back."""
    if db.session.info.get(_OPEN):
        raise NestedUnitOfWork("a network call inside a unit of work would hold its locks")
    try:
        yield
    except BaseException:
        db.session.rollback()
        raise


def leave_unchanged() -> None:
    """End the open unit of work without writing anything: what the handler found under
    the lock needs no change, and the lock's own write (lock_version, updated_at, which the
    sweeper reads as "last touched") is not kept either."""
    units: list[bool] = db.session.info.get(_OPEN, [])
    if not units:
        raise RuntimeError("leave_unchanged() outside a unit of work")
    units[-1] = True


@contextmanager
def locked_charge(charge_pk: int) -> Iterator[Charge]:
    """The charge under its row lock for the block, in one unit of work."""
    with unit_of_work():
        yield lock_charge(charge_pk)


def lock_charge(charge_pk: int) -> Charge:
    """The charge, re-read under a row lock held until the transaction ends, its
    lock_version counted up (written with the handler's own changes, in one UPDATE).

    On PostgreSQL the read takes the row lock (FOR UPDATE); SQLite has none, so a no-op
    UPDATE of lock_version takes its database write lock first. Either way concurrent handlers of
    the same charge queue here. Handlers take it through locked_charge; payment receivers,
    already inside the payment event's unit of work, take it directly.
    """
    charge = lock_charge_where(BY_PK, {"charge_pk": charge_pk})
    if charge is None:
        raise NoResultFound(f"no charge {charge_pk}")
    return charge


BY_PK = row_lock(Charge, Charge.pk == bindparam("charge_pk"), Charge.lock_version)


def charge_lock(condition: ColumnElement[bool]) -> RowLock:
    """The RowLock of the charge `condition` names, for lock_charge_where."""
    return row_lock(Charge, condition, Charge.lock_version)


def lock_charge_where(lock: RowLock, params: dict[str, Any], *,
                      count: bool = True) -> Charge | None:
    """The (first) charge `lock` names with `params`, found and locked in one read (see
    lock_charge), or None: an OCPI receiver names its charge by reference, and a look-up
    then a lock would read the row twice. `count=False` leaves lock_version for the
    caller to count up (count_lock) once it knows it will change the charge."""
    charge: Charge | None = locked_row(lock, params)
    if charge is not None and count:
        count_lock(charge)
    return charge


def count_lock(charge: Charge) -> None:
    charge.lock_version += 1  # the handler's write, even of nothing else, touches updated_at
