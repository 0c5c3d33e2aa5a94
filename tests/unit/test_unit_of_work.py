"""locked_charge: the charge under its lock, committed on success, rolled back on error."""

from __future__ import annotations

from typing import Any

import pytest

from charging.models import Charge
from charging.unit_of_work import locked_charge
from extensions import db
from tests.charge_factory import ended_charge


def test_commits_on_success_and_rolls_back_on_error(app: Any) -> None:
    charge = ended_charge()
    pk, version = charge.pk, charge.lock_version
    with locked_charge(pk) as locked:
        locked.failure_code = "KEPT"
    db.session.expire_all()
    kept = db.session.get(Charge, pk)
    assert kept is not None and kept.failure_code == "KEPT" and kept.lock_version == version + 1

    with pytest.raises(RuntimeError), locked_charge(pk) as locked:
        locked.failure_code = "LOST"
        raise RuntimeError("handler failed")
    db.session.expire_all()
    after = db.session.get(Charge, pk)
    assert after is not None and after.failure_code == "KEPT"
    assert after.lock_version == version + 1


def test_leave_unchanged_keeps_not_even_the_lock(app: Any) -> None:
    from charging.unit_of_work import leave_unchanged

    charge = ended_charge()
    pk, version, touched = charge.pk, charge.lock_version, charge.updated_at
    with locked_charge(pk) as locked:
        locked.failure_code = "NOT_KEPT"
        leave_unchanged()
    db.session.expire_all()
    after = db.session.get(Charge, pk)
    assert after is not None and after.failure_code is None
    assert (after.lock_version, after.updated_at) == (version, touched)


def test_units_do_not_nest_and_no_network_call_runs_inside_one(app: Any) -> None:
    from charging.unit_of_work import NestedUnitOfWork, network_step, unit_of_work

    pk = ended_charge().pk
    with pytest.raises(NestedUnitOfWork), locked_charge(pk), unit_of_work():
        pass
    with pytest.raises(NestedUnitOfWork), locked_charge(pk), network_step():
        pass
    with network_step():  # between two units: allowed
        pass
    with locked_charge(pk) as locked:
        locked.failure_code = "AFTER"
    db.session.expire_all()
    assert db.session.get_one(Charge, pk).failure_code == "AFTER"


def test_inside_a_shared_transaction_a_unit_joins_it_and_a_failure_asks_for_undo(
    app: Any
) -> None:
    from extensions import after_commit, shared_transaction

    pk = ended_charge().pk
    ran: list[str] = []
    db.session.get_one(Charge, pk).failure_detail = "the caller's own work"
    db.session.flush()
    with shared_transaction() as shared, locked_charge(pk) as locked:
        locked.failure_code = "KEPT"
        after_commit(lambda: ran.append("kept"))
    assert not shared.undo
    assert ran == [], "a unit committed the caller's transaction"
    db.session.commit()
    db.session.expire_all()
    after = db.session.get_one(Charge, pk)
    assert (after.failure_detail, after.failure_code) == ("the caller's own work", "KEPT")
    assert ran == ["kept"]

    after.failure_detail = "stored again"  # the caller's write: its transaction is open
    db.session.flush()
    with shared_transaction() as shared, pytest.raises(RuntimeError), \
            locked_charge(pk) as locked:
        locked.failure_code = "LOST"
        raise RuntimeError("handler failed")
    assert shared.undo, "the caller was not told to undo the failed unit"


def test_inside_a_shared_transaction_leave_unchanged_asks_for_undo(app: Any) -> None:
    from charging.unit_of_work import leave_unchanged
    from extensions import shared_transaction

    pk = ended_charge().pk
    db.session.get_one(Charge, pk).failure_detail = "the caller's own work"
    db.session.flush()
    with shared_transaction() as shared, locked_charge(pk):
        leave_unchanged()
    assert shared.undo
