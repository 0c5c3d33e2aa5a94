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
