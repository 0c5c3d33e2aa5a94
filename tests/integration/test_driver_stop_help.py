"""A stop that cannot be sent, or is refused, tells the driver what to do now (end charging
from the car, unplug, whom to call), on the charge page; and the commands a CPO receives
carry a correlation id that is not the charge's public id (the driver's credential)."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask, request

from charging import driver_actions, stopping
from charging.models import Charge
from charging.states import ChargeStatus as S
from extensions import db
from ocpi.models import Party, PartyGrant, token_hash
from servers import ServerThread
from tests.stub_peers import answer


class RecordingCpo:
    """Answers every command with `result` (or HTTP 500), keeping each request's headers."""

    def __init__(self) -> None:
        self.app = Flask("recording-cpo")
        self.result = "ACCEPTED"
        self.received: list[tuple[dict[str, str], str]] = []
        self.lock = threading.Lock()

        @self.app.post("/cpo/2.2.1/commands/<command>")
        def command(command: str) -> Any:
            with self.lock:
                self.received.append((dict(request.headers), request.get_data(as_text=True)))
            if self.result == "HTTP_500":
                return answer(status=500, code=3000)
            return answer({"result": self.result, "timeout": 30})


@pytest.fixture
def cpo() -> Iterator[RecordingCpo]:
    stub = RecordingCpo()
    server = ServerThread(stub.app).start()
    stub.url = server.url
    yield stub
    server.stop()


def charging_charge(commands_url: str) -> Charge:
    party = Party(
        name="Stub CPO", status="CONNECTED", country_code="SE", party_id="SIM", version="2.2.1",
        incoming_token_hash=token_hash("tok-cpo"), outgoing_token="tok-out",
        endpoints=[{"identifier": "commands", "role": "RECEIVER", "url": commands_url}],
        grants=[PartyGrant(role="CPO", country_code="SE", party_id="SIM")],
    )
    db.session.add(party)
    db.session.flush()
    row = Charge(party_pk=party.pk, cpo_country_code="SE", cpo_party_id="SIM",
                 location_id="LOC1", evse_uid="EVSE1", evse_id="SE*SIM*E1", connector_id="1",
                 currency="SEK", hold_minor=20000, gateway="demo", hold_id="pi_demo_help",
                 token_uid="TOKHELP", authorization_reference="REFHELP", session_id="S1",
                 status=S.CHARGING.value, language="en")
    db.session.add(row)
    db.session.commit()
    return row


def stop_now(charge: Charge) -> Charge:
    driver_actions.request_stop(charge.pk)
    stopping.send_stop(charge.pk)
    db.session.expire_all()
    return db.session.get(Charge, charge.pk)


def shown(client: Any, charge: Charge, lang: str = "en") -> str:
    page = client.get(f"/charge/{charge.public_id}?lang={lang}").get_data(as_text=True)
    failure = re.search(r'<p id="failure"[^>]*>(.*?)</p>', page, re.S)
    assert failure, "no failure line on the charge page"
    return failure.group(1).replace("&#39;", "'")


def test_commands_carry_a_correlation_id_that_is_not_the_public_id(
    app: Any, cpo: RecordingCpo
) -> None:
    charge = charging_charge(f"{cpo.url}/cpo/2.2.1/commands")
    stop_now(charge)
    assert len(cpo.received) == 1
    headers, body = cpo.received[0]
    assert headers["X-Correlation-Id"] == charge.correlation_id
    assert charge.public_id not in headers["X-Correlation-Id"]
    assert all(charge.public_id not in value for value in headers.values())
    assert charge.public_id not in body
    # Stable (the dashboard finds the messages by it) and another charge's is another.
    assert charge.correlation_id == Charge(public_id=charge.public_id).correlation_id
    assert charge.correlation_id != Charge(public_id="x" * 22).correlation_id


@pytest.mark.parametrize("cpo_answer", ["HTTP_500", "unreachable"])
def test_a_stop_that_cannot_be_sent_says_what_to_do_now(
    make_app: Any, cpo: RecordingCpo, cpo_answer: str
) -> None:
    app = make_app(SUPPORT_PHONE="+46 8 123 45 67", SUPPORT_EMAIL="")
    with app.app_context():
        cpo.result = "HTTP_500"
        url = (f"{cpo.url}/cpo/2.2.1/commands" if cpo_answer == "HTTP_500"
               else "http://127.0.0.1:9/cpo/2.2.1/commands")  # nothing listens on port 9
        charge = stop_now(charging_charge(url))
        assert (charge.status, charge.failure_code) == ("STOPPING", "STOP_ERROR")
        client = app.test_client()
        text = shown(client, charge)
        assert "We can't reach the charger's operator to stop charging. We keep trying." in text
        assert "end charging from the car and unplug the cable" in text
        assert "Support (ScanCharge Demo AB): +46 8 123 45 67." in text
        api = client.get(f"/api/v1/charges/{charge.public_id}?lang=sv").get_json()
        assert "dra ur kabeln" in api["failure"]["message"]
        assert "+46 8 123 45 67" in api["failure"]["message"]
        db.session.remove()
        db.engine.dispose()


def test_a_refused_stop_says_what_to_do_and_whom_to_call(app: Any, client: Any,
                                                         cpo: RecordingCpo) -> None:
    cpo.result = "REJECTED"
    charge = stop_now(charging_charge(f"{cpo.url}/cpo/2.2.1/commands"))
    assert charge.failure_code == "STOP_REJECTED"
    text = shown(client, charge)
    assert "The charger refused to stop. We keep trying." in text
    assert "unplug the cable" in text
    assert "+46 8 000 00 00 or support@example.com" in text
    swedish = shown(client, charge, "sv")
    assert "+46 8 000 00 00 eller support@example.com" in swedish

