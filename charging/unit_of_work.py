"""The unit of work: one transaction per handler, committed on success, rolled back on error.

    with locked_charge(pk) as charge:   # the charge under its row lock
        ...                             # change it, fire events, enqueue after commit

Tasks queued with Task.enqueue_after_commit run only once the work is committed
(extensions.after_commit); a rollback drops them.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import select, update

from charging.models import Charge
from extensions import db


@contextmanager
def unit_of_work() -> Iterator[None]:
    """Commit what the block did, or roll it back (and re-raise) if it raised."""
    try:
        yield
    except BaseException:
        db.session.rollback()
        raise
    db.session.commit()


@contextmanager
def locked_charge(charge_pk: int) -> Iterator[Charge]:
    """The charge under its row lock for the block, in one unit of work."""
    with unit_of_work():
        yield lock_charge(charge_pk)


def lock_charge(charge_pk: int) -> Charge:
    """The charge, re-read under a row lock held until the transaction ends.

    The lock is an UPDATE of lock_version: on PostgreSQL a row lock, on SQLite the
    database write lock; either way concurrent handlers of the same charge queue here.
    """
    db.session.execute(
        update(Charge).where(Charge.pk == charge_pk).values(lock_version=Charge.lock_version + 1)
    )
    return db.session.scalars(
        select(Charge).where(Charge.pk == charge_pk).execution_options(populate_existing=True)
    ).one()
