"""The operator CLI: connecting to a CPO, inviting one, and printing QR stickers."""

from __future__ import annotations

import base64
import re
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from cpo_simulator import SimulatorSettings, create_simulator
from extensions import db
from ocpi.models import OcpiEvse, Party
from servers import ServerThread


@pytest.fixture
def simulator() -> Iterator[Any]:
    sim = create_simulator(SimulatorSettings(base_url="", token_a=secrets.token_urlsafe(12)))
    server = ServerThread(sim.app).start()
    sim.url = server.url
    try:
        yield sim
    finally:
        sim.shutdown()
        server.stop()


@pytest.fixture
def served_app(app: Any) -> Iterator[Any]:
    # The CPO calls back (versions with token B) while we register: we must be reachable.
    server = ServerThread(app).start()
    app.config["PUBLIC_BASE_URL"] = server.url
    try:
        yield app
    finally:
        server.stop()


def test_cpo_connect_registers_and_imports(served_app: Any, simulator: Any) -> None:
    runner = served_app.test_cli_runner()
    result = runner.invoke(args=["cpo", "connect", "--versions-url",
                                 f"{simulator.url}/ocpi/versions", "--token",
                                 simulator.settings.token_a, "--name", "Sim CPO"])
    assert result.exit_code == 0, result.output
    assert "Connected to Sim CPO (SE/SIM), OCPI 2.2.1; granted CPO SE*SIM." in result.output
    assert re.search(r"Imported 5 locations and 2 tariffs\.", result.output)
    party = db.session.scalar(db.select(Party))
    assert party.status == "CONNECTED"
    assert db.session.scalar(db.select(db.func.count()).select_from(OcpiEvse)) >= 5

    listed = runner.invoke(args=["cpo", "list"])
    assert "CONNECTED" in listed.output and "SE/SIM" in listed.output

    synced = runner.invoke(args=["cpo", "sync", "--full"])
    assert "Sim CPO: 5 locations, 2 tariffs" in synced.output


def test_cpo_connect_with_a_wrong_token_says_why(served_app: Any, simulator: Any) -> None:
    result = served_app.test_cli_runner().invoke(args=[
        "cpo", "connect", "--versions-url", f"{simulator.url}/ocpi/versions", "--token", "nope"])
    assert result.exit_code != 0
    assert "could not connect" in result.output
    assert db.session.scalar(db.select(db.func.count()).select_from(Party)) == 0


def test_cpo_invite_then_the_cpo_registers(served_app: Any, simulator: Any) -> None:
    result = served_app.test_cli_runner().invoke(
        args=["cpo", "invite", "--name", "Invited", "--role", "CPO:SE*SIM"])
    assert result.exit_code == 0, result.output
    versions_url = re.search(r"versions URL: (\S+)", result.output).group(1)
    token_a = re.search(r"token A:\s+(\S+)", result.output).group(1)
    assert versions_url == f"{served_app.config['PUBLIC_BASE_URL']}/ocpi/versions"

    def auth(token: str) -> dict[str, str]:
        return {"Authorization": "Token " + base64.b64encode(token.encode()).decode()}

    # Token A opens versions and credentials only.
    assert requests.get(versions_url, headers=auth(token_a), timeout=5).status_code == 200
    tokens_url = versions_url.replace("/versions", "/2.2.1/tokens")
    assert requests.get(tokens_url, headers=auth(token_a), timeout=5).status_code == 401

    # The CPO (played by the test, pointing at the simulator's endpoints) registers.
    body = {"token": simulator.settings.token_a, "url": f"{simulator.url}/ocpi/versions",
            "roles": [{"role": "CPO", "party_id": "SIM", "country_code": "SE",
                       "business_details": {"name": "Invited CPO"}}]}
    credentials_url = versions_url.replace("/versions", "/2.2.1/credentials")
    answer = requests.post(credentials_url, json=body, headers=auth(token_a), timeout=5)
    assert answer.status_code == 200, answer.text
    token_c = answer.json()["data"]["token"]
    assert answer.json()["data"]["roles"][0]["role"] == "EMSP"

    assert requests.get(tokens_url, headers=auth(token_a), timeout=5).status_code == 401
    assert requests.get(tokens_url, headers=auth(token_c), timeout=5).status_code == 200
    again = requests.post(credentials_url, json=body, headers=auth(token_c), timeout=5)
    assert again.status_code == 405
    db.session.expire_all()
    party = db.session.scalar(db.select(Party))
    assert (party.status, party.country_code, party.party_id) == ("CONNECTED", "SE", "SIM")


def test_qr_command_writes_png_and_svg(app: Any, tmp_path: Path) -> None:
    runner = app.test_cli_runner()
    png = tmp_path / "sticker.png"
    # No stored Locations and the development base URL: both refusals waived (test_stickers.py
    # proves them).
    waive = ["--allow-unknown", "--allow-development-url"]
    result = runner.invoke(args=["qr", "SE*SIM*E00001", "--out", str(png), *waive])
    assert result.exit_code == 0, result.output
    assert png.read_bytes().startswith(b"\x89PNG")
    assert "http://127.0.0.1:5000/c/SE*SIM*E00001" in result.output
    svg = tmp_path / "sticker.svg"
    runner.invoke(args=["qr", "SE*SIM*E00001", "--format", "svg", "--out", str(svg), *waive])
    assert b"SE*SIM*E00001</text>" in svg.read_bytes()


def test_operator_command_sets_a_login(app: Any) -> None:
    from dashboard.models import Operator

    result = app.test_cli_runner().invoke(
        args=["operator", "--email", "Ops@Example.com", "--password", "s3cret-pass-42"])
    assert result.exit_code == 0, result.output
    operator = db.session.scalar(db.select(Operator))
    assert operator.email == "ops@example.com"
    assert operator.check_password("s3cret-pass-42")


@pytest.mark.parametrize("password,reason", [
    ("1", "the password is 1 characters; use at least 12"),
    ("Password1234", "most common passwords"),
    ("scancharge-demo", "the demo password"),
    ("ops-dashboard-login", "contains the e-mail's name ('ops')"),
])
def test_operator_command_refuses_a_weak_password(app: Any, password: str, reason: str) -> None:
    from dashboard.models import Operator

    result = app.test_cli_runner().invoke(
        args=["operator", "--email", "ops@example.com", "--password", password])
    assert result.exit_code == 2
    assert "Invalid value for '--password'" in result.output and reason in result.output
    assert db.session.scalar(db.select(Operator)) is None


def test_set_operator_applies_the_policy_too(app: Any) -> None:
    from dashboard.models import set_operator
    from passwords import PasswordPolicyError

    with pytest.raises(PasswordPolicyError, match="at least 12"):
        set_operator("ops@example.com", "short")


def _connect(served_app: Any, simulator: Any) -> Party:
    from ocpi.credentials import connect

    return connect(f"{simulator.url}/ocpi/versions", simulator.settings.token_a, "Sim CPO")


def test_cpo_refresh_rotates_tokens_both_ways(served_app: Any, simulator: Any) -> None:
    party = _connect(served_app, simulator)
    old_outgoing, old_incoming = party.outgoing_token, party.incoming_token_hash
    result = served_app.test_cli_runner().invoke(args=["cpo", "refresh", "Sim CPO"])
    assert result.exit_code == 0, result.output
    assert "new tokens exchanged" in result.output
    db.session.expire_all()
    party = db.session.get(Party, party.pk)
    assert party.outgoing_token != old_outgoing
    assert party.incoming_token_hash != old_incoming
    # The new token C works against the simulator.
    from ocpi.client import OcpiClient

    assert OcpiClient.for_party(party).get(f"{simulator.url}/ocpi/2.2.1/locations",
                                           module="locations")
    puts = [m for m in simulator.log if m["module"] == "credentials" and m["method"] == "PUT"]
    assert [m["http_status"] for m in puts] == [200]


def test_cpo_disconnect_unregisters_and_refuses_the_cpo(served_app: Any, simulator: Any) -> None:
    party = _connect(served_app, simulator)
    result = served_app.test_cli_runner().invoke(args=["cpo", "disconnect", str(party.pk)])
    assert result.exit_code == 0, result.output
    assert "disconnected" in result.output
    assert not simulator.registered
    db.session.expire_all()
    party = db.session.get(Party, party.pk)
    assert (party.status, party.outgoing_token, party.incoming_token_hash) == (
        "DISCONNECTED", None, None)
    unknown = served_app.test_cli_runner().invoke(args=["cpo", "disconnect", "nobody"])
    assert unknown.exit_code != 0 and "no CPO connection" in unknown.output
