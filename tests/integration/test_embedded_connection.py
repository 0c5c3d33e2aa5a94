"""app.connect_simulator: the embedded default keeps its connection to a simulator that kept
its state, and redoes the handshake (keeping the party) when the two sides disagree."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from stub_peers import Switch

from app import connect_simulator
from cpo_simulator import SimulatorSettings, create_simulator
from extensions import db
from ocpi.models import OcpiMessage, Party, token_hash
from servers import ServerThread


def handshakes() -> int:
    return db.session.scalar(select(func.count()).select_from(OcpiMessage).where(
        OcpiMessage.direction == "out", OcpiMessage.module == "credentials",
        OcpiMessage.method == "POST"))


def test_connect_simulator_keeps_or_repairs_the_connection(
    make_app: Callable[..., Any], tmp_path: Path
) -> None:
    state_path = str(tmp_path / "simulator.json")
    made: list[Any] = []

    def simulator() -> Any:
        # A fresh token A at every start, as run_embedded makes one.
        made.append(create_simulator(SimulatorSettings(
            base_url="", token_a=secrets.token_urlsafe(16), state_path=state_path)))
        return made[-1]

    app = make_app()
    server = ServerThread(app).start()
    app.config["PUBLIC_BASE_URL"] = server.url
    first = simulator()
    switch = Switch()  # one port for every restart, as the embedded default has
    switch.target = first.app
    sim_server = ServerThread(switch).start()
    versions_url = f"{sim_server.url}/ocpi/versions"
    try:
        with app.app_context():
            party = connect_simulator(first, versions_url, first.settings.token_a)
            assert party.status == "CONNECTED" and handshakes() == 1
            pk, token_c = party.pk, party.outgoing_token

            # Restarted on the same state: both sides hold the same tokens, nothing redone.
            second = simulator()
            switch.target = second.app
            assert connect_simulator(second, versions_url, second.settings.token_a).pk == pk
            assert handshakes() == 1
            assert db.session.get(Party, pk).outgoing_token == token_c

            # ScanCharge's side no longer matches (say its database was restored from a
            # backup): the simulator forgets its registration, the handshake runs again and
            # ScanCharge keeps its party, now with tokens both sides agree on.
            party = db.session.get(Party, pk)
            party.outgoing_token = "stale"
            db.session.commit()
            third = simulator()
            switch.target = third.app
            repaired = connect_simulator(third, versions_url, third.settings.token_a)
            assert repaired.pk == pk and handshakes() == 2
            assert third.authenticate([repaired.outgoing_token]) == "peer"
            assert repaired.incoming_token_hash == token_hash(third.peer_credentials().token)
            assert db.session.scalar(select(func.count()).select_from(Party)) == 1
            db.session.remove()
    finally:
        for each in made:
            each.shutdown()
        sim_server.stop()
        server.stop()
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
