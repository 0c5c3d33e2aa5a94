"""Every command-line change is in the operators' audit log, by "cli:<account>": CPO
connections (against the CPO simulator), invitations, syncs, refreshes and disconnections,
operator logins, QR codes and sticker sheets, refunds and stops. A command the app registers
must be in AUDITED or, saying why, in NOT_AUDITED: a new command that is in neither fails
here, so it is decided whether it changes something before it ships."""

from __future__ import annotations

import getpass
from pathlib import Path
from typing import Any

import click
from sqlalchemy import select
from test_cli import served_app, simulator  # noqa: F401 (fixtures)

from charging.models import Charge
from dashboard.audit import cli_actor
from dashboard.models import OperatorAction
from extensions import db
from ocpi.models import Party

# command -> the audit action it records.
AUDITED = {
    "cpo connect": "cpo_connect",
    "cpo invite": "cpo_invite",
    "cpo refresh": "cpo_refresh",
    "cpo disconnect": "cpo_disconnect",
    "cpo sync": "cpo_sync",
    "qr code": "qr_code",
    "qr sheet": "sticker_sheet",
    "operator": "operator_set",
    "charges refund": "refund",
    "charges stop": "stop",
}
# command -> why it records nothing.
NOT_AUDITED = {
    "cpo list": "reads",
    "charges show": "reads",
    "tariffs price": "prices files given to it; stores nothing",
    "worker": "runs queued tasks; each task's change is recorded where it is made",
    "db": "Flask-Migrate's schema commands, run at deployment (the audit table may not exist)",
}


def _commands(group: click.Group, prefix: str = "") -> list[str]:
    names = []
    for name, command in group.commands.items():
        if isinstance(command, click.Group) and name != "db":
            names += _commands(command, f"{prefix}{name} ")
        else:
            names.append(prefix + name)
    return names


def _log() -> list[tuple[str, str, str, str]]:
    db.session.expire_all()
    return [(a.actor, a.action, a.target, a.detail) for a in
            db.session.scalars(select(OperatorAction).order_by(OperatorAction.pk))]


def _run(app: Any, *args: str) -> str:
    result = app.test_cli_runner().invoke(args=list(args))
    assert result.exit_code == 0, result.output
    return str(result.output)


def test_every_command_is_audited_or_says_why_not(app: Any) -> None:
    commands = set(_commands(app.cli))
    assert commands - AUDITED.keys() - NOT_AUDITED.keys() == set(), (
        "a command in neither AUDITED nor NOT_AUDITED: record its change with "
        "dashboard.audit.record_command and test it here")
    assert AUDITED.keys() | (NOT_AUDITED.keys() - {"db"}) <= commands, "a listed command is gone"


def test_the_actor_is_the_computer_account() -> None:
    assert cli_actor() == f"cli:{getpass.getuser()}"


def test_cpo_commands_are_audited(served_app: Any, simulator: Any) -> None:  # noqa: F811
    app = served_app
    _run(app, "cpo", "connect", "--versions-url", f"{simulator.url}/ocpi/versions",
         "--token", simulator.settings.token_a, "--name", "Sim CPO")
    _run(app, "cpo", "sync")
    _run(app, "cpo", "refresh", "Sim CPO")
    invited = _run(app, "cpo", "invite", "--name", "Next CPO", "--role", "CPO:SE*NXT")
    party = db.session.scalar(select(Party).where(Party.name == "Sim CPO"))
    assert party is not None
    _run(app, "cpo", "disconnect", str(party.pk))
    log = _log()
    assert [action for _, action, _, _ in log] == [
        "cpo_connect", "cpo_sync", "cpo_sync", "cpo_refresh", "cpo_invite", "cpo_disconnect"]
    assert {actor for actor, *_ in log} == {cli_actor()}
    assert log[0][2] == "Sim CPO" and "granted CPO SE*SIM" in log[0][3]
    assert "5 locations" in log[1][3]
    token_a = invited.split("token A:")[1].strip()
    assert all(token_a not in detail for *_, detail in log), "a token A in the audit log"
    assert log[4][2:] == ("Next CPO", "may register as CPO SE*NXT")


def test_a_failed_command_records_nothing(served_app: Any, simulator: Any) -> None:  # noqa: F811
    result = served_app.test_cli_runner().invoke(args=[
        "cpo", "connect", "--versions-url", f"{simulator.url}/ocpi/versions",
        "--token", "not-the-token"])
    assert result.exit_code != 0
    assert _log() == []


def test_operator_logins_set_on_the_command_line_are_audited(app: Any) -> None:
    _run(app, "operator", "--email", "Ops@Example.com", "--password", "correct horse battery")
    _run(app, "operator", "--email", "ops@example.com", "--password", "tram lantern pebble",
         "--role", "support")
    assert _log() == [
        (cli_actor(), "operator_set", "ops@example.com", "created; role admin"),
        (cli_actor(), "operator_set", "ops@example.com", "reset (was admin); role support"),
    ]


def test_qr_codes_and_sticker_sheets_are_audited(app: Any, tmp_path: Path) -> None:
    from charge_factory import seed_chargers

    seed_chargers()
    png, pdf = tmp_path / "code.png", tmp_path / "sheet.pdf"
    dev = "--allow-development-url"
    _run(app, "qr", "SE*SIM*E00001", "--out", str(png), dev)
    _run(app, "qr", "sheet", "--evse", "SE*SIM*E00001", "--evse", "SE*SIM*E00002",
         "-o", str(pdf), dev)
    code, sheet = _log()
    assert code[:3] == (cli_actor(), "qr_code", "SE*SIM*E00001")
    assert str(png) in code[3] and "/c/SE*SIM*E00001" in code[3]
    assert sheet[1:3] == ("sticker_sheet", "SE*SIM*E00001, SE*SIM*E00002")
    assert sheet[3].startswith(f"2 stickers (a4) to {pdf}")


def test_refunds_and_stops_are_audited(app: Any) -> None:
    from charge_factory import captured_charge

    captured = captured_charge()
    _run(app, "charges", "refund", "--amount", "10", "--reason", "broken cable", "--yes",
         "--", captured.public_id)
    party = db.session.scalar(select(Party).where(Party.party_id == "SIM"))
    assert party is not None
    starting = Charge(
        party_pk=party.pk, cpo_country_code="SE", cpo_party_id="SIM", location_id="L1",
        evse_uid="E1", evse_id="SE*SIM*E00001", connector_id="1", currency="SEK",
        hold_minor=30000, gateway="demo", hold_id="pi_demo_9", token_uid="TOK9",
        authorization_reference="REF9", status="STARTING")
    db.session.add(starting)
    db.session.commit()
    _run(app, "charges", "stop", "--yes", "--", starting.public_id)
    refund, stop = _log()
    assert refund[:3] == (cli_actor(), "refund", captured.public_id)
    assert "SEK 10.00" in refund[3] and "broken cable" in refund[3]
    assert f"by {cli_actor()}" in refund[3] and "credit note" in refund[3]
    assert stop == (cli_actor(), "stop", starting.public_id, "was STARTING")
