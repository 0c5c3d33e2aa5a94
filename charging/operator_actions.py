"""What an operator does to a charge at the charger: UNLOCK_CONNECTOR for a stuck cable.

(Refunds, the other operator action, are charging/refunds.py.)
"""

from __future__ import annotations

from flask import current_app

from charging.cpo import cpo_of, ocpi_commands
from charging.models import Charge
from charging.timeline import Cause, note
from charging.unit_of_work import locked_charge, network_step, unit_of_work
from extensions import db
from jobs import background_task, backoff_delay
from ocpi.models import OcpiCommand, Party
from ocpi.modules.commands import CommandType


# Its own retries with backoff (OCPI_RETRY_*), each try on the charge's timeline.
@background_task("charging.unlock_connector")
def unlock_connector(charge_pk: int, operator: str, attempt: int = 0) -> str:
    """UNLOCK_CONNECTOR for the charge's connector, on an operator's request (a stuck cable:
    mod_commands allows it to operators only, never to drivers). Returns the CPO's answer;
    the asynchronous result shows in the charge's OCPI messages. A CPO that could not be
    reached, or did not answer, is asked again in the background with backoff (a cable
    stuck in a charger is worth a few more tries), up to OCPI_RETRY_ATTEMPTS."""
    with unit_of_work():
        charge = db.session.get_one(Charge, charge_pk)
        party_pk, correlation, to = charge.party_pk, charge.correlation_id, cpo_of(charge)
        body = {"location_id": charge.location_id, "evse_uid": charge.evse_uid,
                "connector_id": charge.connector_id}
    with network_step():  # ocpi.commands stores and commits the command itself
        command: OcpiCommand = ocpi_commands().send_command(
            db.session.get_one(Party, party_pk), CommandType.UNLOCK_CONNECTOR, body,
            correlation_id=correlation, to=to,
        )
    with locked_charge(charge_pk) as charge:
        answer = command.response_result or "ERROR"
        words = (f"{operator} asked to unlock connector {charge.connector_id}: {answer}"
                 + (f" ({command.response_message})" if command.response_message else ""))
        cfg = current_app.config
        if answer in {"ERROR", "NO_RESPONSE"} and attempt + 1 < cfg["OCPI_RETRY_ATTEMPTS"]:
            delay = backoff_delay(attempt, cfg["OCPI_RETRY_BASE_DELAY"],
                                  cfg["OCPI_RETRY_MAX_DELAY"])
            words += f"; trying again in {round(delay)} s"
            unlock_connector.enqueue_after_commit(charge_pk, operator, attempt + 1, delay=delay)
        note(charge, Cause("operator", command.uid, words))
    return answer
