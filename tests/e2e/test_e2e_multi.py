"""Two CPOs at once, directly and through a hub: each charge's commands reach the CPO that
owns its charger, and each CPO's Sessions and CDRs settle the right charge."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any

from conftest import LiveStack

from extensions import db


@dataclass
class Cpo:
    simulator: Any
    url: str


def start_cpo(stack: ExitStack, party_id: str) -> Cpo:
    from cpo_simulator import SimulatorSettings, create_simulator
    from servers import ServerThread

    simulator = create_simulator(SimulatorSettings(
        base_url="", token_a=secrets.token_urlsafe(12), party_id=party_id,
        time_factor=600.0, tick_seconds=0.2, result_delay=0.1))
    stack.callback(simulator.shutdown)
    server = ServerThread(simulator.app).start()
    stack.callback(server.stop)
    return Cpo(simulator, server.url)


@contextmanager
def scancharge(make_app: Callable[..., Any]) -> Iterator[LiveStack]:
    from jobs import EmbeddedWorker
    from servers import ServerThread

    app = make_app(OCPI_DEFAULT_COMMAND_TIMEOUT=5, QUEUE_MAX_POLL_DELAY=0.05,
                   LATE_SESSION_GRACE=1)
    server = ServerThread(app)
    app.config["PUBLIC_BASE_URL"] = server.url
    server.start()
    worker = EmbeddedWorker(app, workers=4).start()
    try:
        yield LiveStack(app, server.url, None, "", 0, "")
    finally:
        worker.stop()
        server.stop()
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


def connect(stack: LiveStack, versions_url: str, token: str,
            acting_for: tuple[tuple[str, str, str], ...] = ()) -> None:
    from ocpi.credentials import connect as ocpi_connect
    from ocpi.sync import pull

    with stack.app.app_context():
        pull(ocpi_connect(versions_url, token, acting_for=acting_for), full=True)
        db.session.remove()


def charge_to_the_end(stack: LiveStack, evse_id: str) -> dict[str, Any]:
    charge_id = stack.pay_and_charge(evse_id)
    assert stack.api("POST", f"/api/v1/charges/{charge_id}/stop").status_code == 202
    return stack.wait_status(charge_id, "CAPTURED", timeout=20)


def started_on(cpo: Cpo) -> list[dict[str, Any]]:
    return [m for m in cpo.simulator.log
            if m["direction"] == "in" and m["url"].endswith("/START_SESSION")]


def test_two_cpos_at_once(make_app: Callable[..., Any]) -> None:
    with ExitStack() as resources:
        first, second = start_cpo(resources, "SIM"), start_cpo(resources, "SI2")
        stack = resources.enter_context(scancharge(make_app))
        connect(stack, f"{first.url}/ocpi/versions", first.simulator.settings.token_a)
        connect(stack, f"{second.url}/ocpi/versions", second.simulator.settings.token_a)

        done_first = charge_to_the_end(stack, "SE*SIM*E00001")
        done_second = charge_to_the_end(stack, "SE*SI2*E00001")

        assert len(started_on(first)) == 1 and len(started_on(second)) == 1
        assert started_on(second)[0]["request"]["location_id"].startswith("SI2-")
        for done, cpo in ((done_first, first), (done_second, second)):
            cdr = cpo.simulator.cdrs[-1]
            assert done["captured"]["amount_minor"] == int(
                cdr["total_cost"]["incl_vat"] * 100)


def test_two_cpos_behind_a_hub(make_app: Callable[..., Any]) -> None:
    from cpo_simulator.hub import HubSettings, create_hub
    from servers import ServerThread

    with ExitStack() as resources:
        first, second = start_cpo(resources, "SIM"), start_cpo(resources, "SI2")
        hub = create_hub(HubSettings(base_url="", token_a="hub-token-a"))
        resources.callback(hub.shutdown)
        hub_server = ServerThread(hub.app)
        hub.settings.base_url = hub_server.url
        hub_server.start()
        resources.callback(hub_server.stop)
        hub.connect(f"{first.url}/ocpi/versions", first.simulator.settings.token_a)
        hub.connect(f"{second.url}/ocpi/versions", second.simulator.settings.token_a)

        stack = resources.enter_context(scancharge(make_app))
        connect(stack, f"{hub_server.url}/ocpi/versions", "hub-token-a",
                acting_for=(("CPO", "SE", "SIM"), ("CPO", "SE", "SI2")))
        with stack.app.app_context():
            from ocpi.models import OcpiLocation, Party

            parties = db.session.scalars(db.select(Party)).all()
            assert [(p.country_code, p.party_id, p.is_hub) for p in parties] == [
                ("SE", "HUB", True)]
            owners = {(loc.country_code, loc.party_id)
                      for loc in db.session.scalars(db.select(OcpiLocation))}
            assert owners == {("SE", "SIM"), ("SE", "SI2")}

        done = charge_to_the_end(stack, "SE*SI2*E00001")

        assert started_on(first) == []
        start = started_on(second)[0]
        # The hub forwarded it; ScanCharge addressed it to the CPO behind the hub.
        routed = [m for m in hub.log if m.get("direction") == "in"
                  and str(m.get("url", "")).endswith("/START_SESSION")]
        assert routed, "START_SESSION did not pass through the hub"
        assert (routed[0]["from"], routed[0]["to"].upper()) == ("SCN", "SI2")
        assert start["request"]["location_id"].startswith("SI2-")
        cdr = second.simulator.cdrs[-1]
        assert done["captured"]["amount_minor"] == int(cdr["total_cost"]["incl_vat"] * 100)
