"""Fixtures: an app built with test configuration on SQLite (or on PostgreSQL when
TEST_DATABASE_URL names one), and a live stack (ScanCharge and the CPO simulator as real
HTTP servers on 127.0.0.1, with queue workers) for end-to-end tests."""

from __future__ import annotations

import os
import re
import secrets
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, text  # noqa: E402

from app import create_app, upgrade_database  # noqa: E402
from config import TestConfig  # noqa: E402
from extensions import db  # noqa: E402
from tests import queue_drain, workers  # noqa: E402

# Under pytest-xdist each worker has a database of its own on that server (tests/workers.py).
SHARED_PG_URL = os.environ.get("TEST_DATABASE_URL", "")
PG_URL = workers.postgres_url(SHARED_PG_URL) if SHARED_PG_URL else ""


def _postgres_reachable(url: str) -> str | None:
    try:
        engine = create_engine(url)
        with engine.connect() as conn:
            conn.execute(text("select 1"))
        engine.dispose()
        return None
    except Exception as exc:
        return f"{exc.__class__.__name__}: {exc}".splitlines()[0]


@pytest.fixture(scope="session")
def database_template(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A migrated database: a SQLite file to copy per test, or the PostgreSQL URL."""
    if PG_URL:
        problem = _postgres_reachable(SHARED_PG_URL)
        if problem:
            pytest.skip(f"TEST_DATABASE_URL is set but PostgreSQL is not reachable: {problem}")
        workers.create_postgres_database(SHARED_PG_URL, PG_URL)
        engine = create_engine(PG_URL)
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        engine.dispose()
        upgrade_database(create_app({**_test_settings(), "SQLALCHEMY_DATABASE_URI": PG_URL}))
        return PG_URL
    path = tmp_path_factory.mktemp("db") / "template.db"
    template_app = create_app({**_test_settings(), "SQLALCHEMY_DATABASE_URI": f"sqlite:///{path}"})
    upgrade_database(template_app)
    with template_app.app_context():
        db.engine.dispose()  # the last connection closing folds the WAL into the file we copy
    return str(path)


def _test_settings() -> dict[str, Any]:
    return {k: getattr(TestConfig, k) for k in dir(TestConfig) if k.isupper()}


@pytest.fixture
def database_url(database_template: str, tmp_path: Path) -> Iterator[str]:
    if PG_URL:
        yield PG_URL
        engine = create_engine(PG_URL)
        with engine.begin() as conn:
            tables = [r[0] for r in conn.execute(text(
                "select tablename from pg_tables where schemaname='public' "
                "and tablename <> 'alembic_version'"))]
            if tables:
                conn.execute(text("TRUNCATE " + ", ".join(f'"{t}"' for t in tables)
                                  + " RESTART IDENTITY CASCADE"))
        engine.dispose()
        return
    path = tmp_path / "scancharge.db"
    shutil.copy(database_template, path)
    yield f"sqlite:///{path}"


@pytest.fixture
def make_app(database_url: str) -> Callable[..., Any]:
    def build(**overrides: Any) -> Any:
        return create_app({**_test_settings(), "SQLALCHEMY_DATABASE_URI": database_url,
                           **overrides})

    return build


@pytest.fixture
def app(make_app: Callable[..., Any]) -> Iterator[Any]:
    application = make_app()
    with application.app_context():
        yield application
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def party(app: Any) -> Any:
    """The simulator's CPO (SE*SIM), connected with its one grant, committed."""
    from tests.charge_factory import sim_party

    row = sim_party()
    db.session.commit()
    return row


@pytest.fixture
def client(app: Any) -> Any:
    return app.test_client()


# --- The live stack ---------------------------------------------------------------------

QUEUE_WORKERS = 4  # the live stack's queue worker threads


@dataclass
class LiveStack:
    app: Any
    base_url: str
    simulator: Any
    simulator_url: str
    party_pk: int
    evse_id: str

    def api(self, method: str, path: str, **kw: Any) -> Any:
        import requests

        return requests.request(method, self.base_url + path, timeout=10, **kw)

    def wait_for(self, predicate: Callable[[], Any], timeout: float = 15.0,
                 what: str = "condition") -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            time.sleep(0.05)
        raise AssertionError(f"timed out after {timeout}s waiting for {what}")

    def wait_queue_drained(self, timeout: float = 30.0) -> None:
        """Until the queue has run every task queued before this call (tests/queue_drain.py)."""
        queue_drain.wait_drained(self.app, QUEUE_WORKERS, timeout)

    def pay_and_charge(self, evse_id: str) -> str:
        """A driver's charge at evse_id, paid with the demo gateway's good test card and
        CHARGING; its public id."""
        created = self.api("POST", "/api/v1/charges", json={"evse_id": evse_id,
                                                              "language": "en"})
        assert created.status_code == 201, created.text
        charge = created.json()
        payment = charge["payment"]
        confirmed = self.api("POST", "/payments/demo/confirm", json={
            "payment_intent": payment["payment_intent"],
            "client_secret": payment["client_secret"], "card_number": "4242424242424242"})
        assert confirmed.status_code == 200, confirmed.text
        self.wait_status(charge["id"], "CHARGING")
        return charge["id"]

    def charge_status(self, public_id: str) -> dict[str, Any]:
        return self.api("GET", f"/api/v1/charges/{public_id}").json()

    def wait_status(self, public_id: str, *statuses: str, timeout: float = 15.0) -> dict:
        return self.wait_for(
            lambda: (c := self.charge_status(public_id))["status"] in statuses and c,
            timeout, f"charge {public_id} to reach {statuses}",
        )


# --- An operator signed in through the test client -------------------------------------


def csrf(client: Any, path: str) -> str:
    """The CSRF token of the form on the page at `path`, read as a browser would."""
    page = client.get(path).get_data(as_text=True)
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found is not None, f"no CSRF field on {path}"
    return found.group(1)


def operator_client(app: Any, email: str, role: str, password: str) -> Any:
    """A test client signed in through the login form as a new operator `email` of `role`."""
    from dashboard.models import set_operator

    set_operator(email, password, role=role)
    db.session.commit()
    client = app.test_client()
    answer = client.post("/dashboard/login", data={
        "email": email, "password": password, "csrf": csrf(client, "/dashboard/login")})
    assert answer.status_code == 302
    return client


@dataclass
class SimulatorBeside:
    app: Any
    base: str
    simulator: Any
    simulator_url: str
    token_a: str


@contextmanager
def simulator_beside(make_app: Callable[..., Any], **simulator: Any) -> Iterator[SimulatorBeside]:
    """ScanCharge (at its real address as PUBLIC_BASE_URL, with one queue worker) and the
    simulator (SimulatorSettings `simulator`) on real sockets, not connected: a test invites
    and connects the CPO itself."""
    from cpo_simulator import SimulatorSettings, create_simulator
    from jobs import EmbeddedWorker
    from servers import ServerThread

    token_a = secrets.token_urlsafe(16)
    cpo = create_simulator(SimulatorSettings(base_url="", token_a=token_a, **simulator))
    sim_server = ServerThread(cpo.app).start()
    application = make_app(QUEUE_MAX_POLL_DELAY=0.05)
    server = ServerThread(application)
    # The CPO fetches our versions with token B during the handshake: at our real address.
    application.config["PUBLIC_BASE_URL"] = server.url
    server.start()
    worker = EmbeddedWorker(application, workers=1).start()
    try:
        yield SimulatorBeside(application, server.url, cpo, sim_server.url, token_a)
    finally:
        worker.stop()
        cpo.shutdown()
        server.stop()
        sim_server.stop()
        with application.app_context():
            db.engine.dispose()


@contextmanager
def running_stack(make_app: Callable[..., Any], **overrides: Any) -> Iterator[LiveStack]:
    """ScanCharge and the simulator on real sockets, connected by the real handshake."""
    from cpo_simulator import SimulatorSettings, create_simulator
    from jobs import EmbeddedWorker
    from ocpi.credentials import connect
    from ocpi.models import OcpiEvse, OcpiLocation
    from ocpi.sync import pull
    from servers import ServerThread

    token_a = secrets.token_urlsafe(16)
    simulator = create_simulator(SimulatorSettings(
        base_url="", token_a=token_a, time_factor=600.0, tick_seconds=0.2, result_delay=0.1,
    ))
    sim_server = ServerThread(simulator.app).start()
    settings = {"OCPI_DEFAULT_COMMAND_TIMEOUT": 5, "QUEUE_MAX_POLL_DELAY": 0.05,
                "LATE_SESSION_GRACE": 1, **overrides}
    application = make_app(**settings)
    server = ServerThread(application)
    application.config["PUBLIC_BASE_URL"] = server.url
    server.start()
    worker = EmbeddedWorker(application, workers=QUEUE_WORKERS).start()
    try:
        with application.app_context():
            party = connect(f"{sim_server.url}/ocpi/versions", token_a, "CPO simulator")
            pull(party, full=True)
            evse = db.session.scalar(
                db.select(OcpiEvse).where(OcpiEvse.status == "AVAILABLE").order_by(OcpiEvse.pk)
            )
            location = db.session.get(OcpiLocation, evse.location_pk)
            evse_id = next(e["evse_id"] for e in location.data["evses"]
                           if e["uid"].upper() == evse.evse_uid)
            party_pk = party.pk
            db.session.remove()
        yield LiveStack(application, server.url, simulator, sim_server.url, party_pk, evse_id)
    finally:
        worker.stop()
        simulator.shutdown()
        server.stop()
        sim_server.stop()
        with application.app_context():
            db.session.remove()
            db.engine.dispose()


@pytest.fixture
def live_stack(make_app: Callable[..., Any]) -> Iterator[LiveStack]:
    with running_stack(make_app) as stack:
        yield stack


# --- The Stripe stand-in (tests/stripe_standin.py): one server per test module ------------


@pytest.fixture(scope="module")
def _served() -> Iterator[tuple[Any, Any]]:
    from stripe_standin import create_stripe_standin

    from servers import ServerThread

    standin = create_stripe_standin()
    with ServerThread(standin.app) as running:
        yield standin, running


@pytest.fixture
def standin(_served: tuple[Any, Any], monkeypatch: pytest.MonkeyPatch) -> Any:
    """The stand-in, reset, for the real `stripe` library (its retries without delay);
    modules that need it otherwise define their own."""
    import stripe

    monkeypatch.setattr(stripe.HTTPClient, "INITIAL_DELAY", 0.0)
    monkeypatch.setattr(stripe.HTTPClient, "MAX_DELAY", 0.0)
    _served[0].reset()
    _served[0].url = _served[1].url
    return _served[0]
