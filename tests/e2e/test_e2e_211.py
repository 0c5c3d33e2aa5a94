"""The ad-hoc flow against an OCPI 2.1.1 CPO: its shapes, its plain tokens, its endpoints,
behind the same internal interfaces (the simulator in 2.1.1 mode, over real HTTP)."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from contextlib import ExitStack
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from test_e2e_multi import charge_to_the_end, connect, scancharge

from extensions import db


def start_211_cpo(resources: ExitStack, versions: tuple[str, ...] = ("2.1.1",)) -> Any:
    from cpo_simulator import SimulatorSettings, create_simulator
    from servers import ServerThread

    simulator = create_simulator(SimulatorSettings(
        base_url="", token_a=secrets.token_urlsafe(12), versions=versions,
        time_factor=600.0, tick_seconds=0.2, result_delay=0.1))
    resources.callback(simulator.shutdown)
    server = ServerThread(simulator.app).start()
    resources.callback(server.stop)
    simulator.url = server.url
    return simulator


def test_a_whole_charge_with_a_211_cpo(make_app: Callable[..., Any]) -> None:
    with ExitStack() as resources:
        cpo = start_211_cpo(resources)
        stack = resources.enter_context(scancharge(make_app))
        connect(stack, f"{cpo.url}/ocpi/versions", cpo.settings.token_a)
        with stack.app.app_context():
            from ocpi.models import OcpiTariff, Party

            party = db.session.scalar(db.select(Party))
            assert (party.version, party.country_code, party.party_id) == ("2.1.1", "SE", "SIM")
            tariff = db.session.scalar(db.select(OcpiTariff)).data
            # 2.1.1 prices exclude VAT and carry no rate: ours is added.
            assert {c["vat"] for e in tariff["elements"] for c in e["price_components"]} == {
                Decimal("25")}

        done = charge_to_the_end(stack, "SE*SIM*E00001")

        log = cpo.log
        start = next(m for m in log if m["direction"] == "in"
                     and m["url"].endswith("/START_SESSION"))
        assert "authorization_reference" not in start["request"]
        assert start["request"]["token"]["type"] == "OTHER"
        assert start["request"]["token"]["auth_id"] == start["request"]["token"]["uid"]
        assert "/ocpi/2.1.1/commands/START_SESSION/" in start["request"]["response_url"]
        # Plain tokens both ways in 2.1.1.
        assert all(m["http_status"] < 400 for m in log if m["direction"] == "out"), [
            (m["method"], m["url"], m["http_status"]) for m in log
            if m["direction"] == "out" and m["http_status"] >= 400]

        cdr = cpo.cdrs[-1]
        incl = (Decimal(str(cdr["total_cost"])) * Decimal("1.25")).quantize(
            Decimal("0.01"), ROUND_HALF_UP)
        assert done["captured"]["amount_minor"] == int(incl * 100)


def test_a_cpo_offering_both_versions_is_spoken_to_in_221(make_app: Callable[..., Any]) -> None:
    with ExitStack() as resources:
        cpo = start_211_cpo(resources, versions=("2.1.1", "2.2.1"))
        stack = resources.enter_context(scancharge(make_app))
        connect(stack, f"{cpo.url}/ocpi/versions", cpo.settings.token_a)
        with stack.app.app_context():
            from ocpi.models import Party

            assert db.session.scalar(db.select(Party)).version == "2.2.1"
        assert cpo.version == "2.2.1"


def test_a_211_cpo_registers_with_us(make_app: Callable[..., Any]) -> None:
    import requests

    with ExitStack() as resources:
        cpo = start_211_cpo(resources)
        stack = resources.enter_context(scancharge(make_app))
        with stack.app.app_context():
            from ocpi.credentials import invite

            _, token_a = invite("Old CPO", [("CPO", "SE", "SIM")])
        versions = requests.get(f"{stack.base_url}/ocpi/versions", timeout=5,
                                headers={"Authorization": f"Token {token_a}"}).json()["data"]
        assert [v["version"] for v in versions] == ["2.2.1", "2.1.1"]
        details = requests.get(f"{stack.base_url}/ocpi/2.1.1", timeout=5,
                               headers={"Authorization": f"Token {token_a}"}).json()["data"]
        assert all("role" not in e for e in details["endpoints"])
        # The CPO (played by the test, its endpoints the 2.1.1 simulator's) registers in 2.1.1.
        body = {"token": cpo.settings.token_a, "url": f"{cpo.url}/ocpi/versions",
                "party_id": "SIM", "country_code": "SE",
                "business_details": {"name": "Old CPO AB"}}
        answer = requests.post(f"{stack.base_url}/ocpi/2.1.1/credentials", json=body,
                               headers={"Authorization": f"Token {token_a}"}, timeout=5)
        assert answer.status_code == 200, answer.text
        ours = answer.json()["data"]
        assert set(ours) == {"token", "url", "business_details", "party_id", "country_code"}
        with stack.app.app_context():
            from ocpi.models import Party

            party = db.session.scalar(db.select(Party))
            assert (party.status, party.version, party.party_id) == ("CONNECTED", "2.1.1", "SIM")
