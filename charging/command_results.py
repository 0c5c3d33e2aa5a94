"""What a CPO's CommandResult does to the charge it is about (START_SESSION, STOP_SESSION).

An OCPI receiver: the result is already stored and answered for (wiring.py logs a failure
here, and the sweeper re-drives the charge).
"""

from __future__ import annotations

from sqlalchemy import select

from charging.models import Charge
from charging.starting import result_cause, start_result
from charging.stopping import stop_result
from charging.unit_of_work import locked_charge, unit_of_work
from extensions import db


def on_command_result(
    command_uid: str, command_type: str, result: str, message: str | None
) -> None:
    column = (
        Charge.start_command_uid if command_type == "START_SESSION" else Charge.stop_command_uid
    )
    with unit_of_work():
        pk = db.session.scalar(select(Charge.pk).where(column == command_uid))
    if pk is None:
        return
    with locked_charge(pk) as charge:
        cause = result_cause(command_uid, command_type, result, message)
        if command_type == "START_SESSION":
            start_result(charge, result, message, cause)
        elif command_type == "STOP_SESSION":
            stop_result(charge, result, message, cause)
