"""ScanCharge: the application factory, the operator CLI, and the embedded default.

    python app.py                # everything on one machine: SQLite, CPO simulator, demo gateway
    flask --app app cpo connect --versions-url URL --token TOKEN_A
    flask --app app worker       # a standalone queue worker (scale-out)
"""

from __future__ import annotations

import argparse
import logging
import os
import secrets
import sys
from pathlib import Path
from typing import Any

from flask import Flask, jsonify, request
from sqlalchemy import select
from werkzeug.exceptions import HTTPException

import cli
import config as config_module
import passwords
from extensions import db, migrate
from jobs import queue
from production import check_production, is_production, settle_defaults

log = logging.getLogger("scancharge")

MIGRATIONS_DIR = str(Path(__file__).resolve().parent / "migrations")


def create_app(config: type | dict[str, Any] | None = None) -> Flask:
    app = Flask(__name__, instance_path=str(config_module.INSTANCE_DIR))
    app.config.from_object(config_module.Config)
    if isinstance(config, dict):
        app.config.update(config)
    elif config is not None:
        app.config.from_object(config)

    # Every module that declares tasks or models is imported before the extensions bind.
    import dashboard.models  # noqa: F401
    import payments.models  # noqa: F401
    import wiring

    settle_defaults(app.config)
    # Before anything binds: a refused setting must not leave half an app running.
    check_production(app.config)

    from ocpi.outgoing import parse_allow_list

    # A wrong entry must stop the start, not fail every request to a CPO later.
    parse_allow_list(app.config["OCPI_ALLOWED_PRIVATE_TARGETS"])

    db.init_app(app)
    migrate.init_app(app, db, directory=MIGRATIONS_DIR)
    from i18n import init_translations

    init_translations(app)
    queue.init_app(app, wiring.tasks())

    from ratelimits import init_rate_limits
    from security_headers import init_security_headers

    init_rate_limits(app)
    init_security_headers(app)
    from static_assets import init_static_assets

    init_static_assets(app)

    from payments.setup import init_payments

    init_payments(app)

    from charging import refunds
    from payments.mail import init_mail

    wiring.connect()
    wiring.answers(app)
    init_mail(app, recipient_for=refunds.receipt_recipient)

    from dashboard import bp as dashboard_bp
    from dashboard.sticker_sheets import bp as stickers_bp
    from driver import bp as driver_bp
    from driver.api import bp as api_bp
    from ocpi.endpoints import bp as ocpi_bp
    from payments.webhooks import bp as payments_bp

    for blueprint in (ocpi_bp, payments_bp, driver_bp, api_bp, dashboard_bp, stickers_bp):
        app.register_blueprint(blueprint)
    from driver.messages import error_text
    from input_guard import init_input_guard

    init_input_guard(app, error_text=error_text)

    register_error_pages(app)

    @app.get("/favicon.ico")
    def favicon() -> Any:
        # Browsers ask for /favicon.ico whatever the page links: the same SVG, not a 404.
        return app.send_static_file("favicon.svg")

    cli.register_cli(app)
    from tariffs import cli as tariffs_cli

    tariffs_cli.register(app)
    from charging import cli as charges_cli

    charges_cli.register(app)
    return app


# --- Errors -----------------------------------------------------------------------------

# Whose answers are JSON for programs: the driver API and the gateway endpoints (OCPI has
# its own envelope). Never an HTML page there, whatever went wrong.
JSON_PREFIXES = ("/api/", "/payments/")
HTTP_ERROR_CODES = {400: "invalid_request", 404: "not_found", 405: "method_not_allowed",
                    413: "request_too_large", 429: "rate_limited", 500: "server_error"}
# The words for a reached limit, by the limit (ratelimits.RULES), in driver/messages.py.
RATE_LIMIT_TEXTS = {"charges_per_client": "rate_limited_charges",
                    "charges_per_evse": "rate_limited_charger",
                    "confirm_per_charge": "rate_limited_payment",
                    "login_per_client": "rate_limited_login",
                    "login_per_email": "rate_limited_login"}


def register_error_pages(app: Flask) -> None:
    from driver.messages import error_text
    from i18n import pick_language, render_in
    from ratelimits import RateLimited

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Any:
        # CPOs get the OCPI envelope, scripts and apps calling the JSON API get JSON,
        # people get a page; each says what to do in the driver's language.
        path = request.path
        if path == "/ocpi" or path.startswith("/ocpi/"):
            from ocpi.endpoints.blueprint import http_error as ocpi_http_error

            response = ocpi_http_error(exc)
        else:
            status = exc.code or 500
            code = HTTP_ERROR_CODES.get(status, f"http_{status}")
            text_code = code
            if isinstance(exc, RateLimited):
                text_code = RATE_LIMIT_TEXTS.get(exc.rule, code)
            if path.startswith(JSON_PREFIXES) or path in ("/api", "/payments"):
                language = pick_language()
                response = jsonify(error={"code": code,
                                          "message": error_text(text_code, language)})
                response.status_code = status
            elif path.startswith("/dashboard"):
                # In the operator's language (the dashboard's own aborts carry their words,
                # translated as they were raised); no switch: the dashboard's header has it.
                language = pick_language()
                message = (error_text(text_code, language) if status in (404, 429, 500)
                           else exc.description)
                response = app.make_response(
                    (render_in(language, "error.html", message=message,
                               language_switch=False), status))
            else:
                language = pick_language()
                response = app.make_response((render_in(
                    language, "error.html", message=error_text(text_code, language)
                ), status))
        if isinstance(exc, RateLimited):
            response.headers["Retry-After"] = str(exc.retry_after)
        allowed = getattr(exc, "valid_methods", None)
        if exc.code == 405 and allowed:
            response.headers["Allow"] = ", ".join(allowed)
        return response


# --- Database ---------------------------------------------------------------------------


def upgrade_database(app: Flask) -> None:
    """Create or migrate the schema to the newest Alembic revision."""
    from flask_migrate import upgrade

    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite:///"):
        Path(app.config["SQLALCHEMY_DATABASE_URI"].removeprefix("sqlite:///")).parent.mkdir(
            parents=True, exist_ok=True
        )
    with app.app_context():
        upgrade(directory=MIGRATIONS_DIR)


# --- CLI --------------------------------------------------------------------------------


# --- The embedded default ---------------------------------------------------------------


DEMO_OPERATOR_PASSWORD = passwords.DEMO_OPERATOR_PASSWORD


def ensure_operator(app: Flask) -> tuple[str, str | None]:
    """The first operator account, created if there is none.

    Returns (email, password) where the password is still the one configured (or the
    embedded default's demo password), so it can be printed; None once it was changed.
    """
    from dashboard.models import Operator, set_operator

    email = app.config["OPERATOR_EMAIL"].strip().lower()
    password = app.config["OPERATOR_PASSWORD"]
    demo = False
    if not password:
        if is_production(app.config):
            return email, None  # no well-known password in production: use `flask operator`
        password, demo = DEMO_OPERATOR_PASSWORD, True
    operator = db.session.scalar(select(Operator).where(Operator.email == email))
    if operator is None and db.session.scalar(select(Operator).limit(1)) is None:
        # The demo login is the embedded default's, public by design; a configured
        # OPERATOR_PASSWORD meets the policy like any other.
        operator = set_operator(email, password, check_policy=not demo)
    if operator is not None and operator.check_password(password):
        return email, password
    return email, None


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


SIMULATOR_STATE_FILE = "simulator.json"


def connect_simulator(simulator: Any, versions_url: str, token_a: str) -> Any:
    """The connection to the built-in simulator, keeping the one both sides remember.

    The simulator keeps its registration in the instance folder, so after a restart it may
    still hold ScanCharge's token B and the token C it gave. If ScanCharge's CONNECTED party
    at that versions URL holds the same pair, and the simulator still calls ScanCharge's
    current versions URL, nothing is redone: the open charges' sessions, commands and CDRs
    carry on under the same tokens. If the sides disagree (a file deleted, PORT changed),
    the simulator forgets its side and the handshake runs again; connect() then keeps
    ScanCharge's party, which holds the simulator's identity, and its history.
    """
    from ocpi.credentials import connect, our_versions_url
    from ocpi.models import Party, token_hash

    peer = simulator.peer_credentials()
    if peer is not None:
        party = db.session.scalar(
            select(Party).where(Party.status == "CONNECTED", Party.versions_url == versions_url)
            .order_by(Party.pk.desc()).limit(1)
        )
        if (party is not None and party.outgoing_token
                and simulator.authenticate([party.outgoing_token]) == "peer"
                and party.incoming_token_hash == token_hash(peer.token)
                and peer.url == our_versions_url()):
            log.info("simulator: still connected as %s, no handshake needed", party.name)
            return party
        log.info("simulator: its stored registration does not match ours; registering again")
        simulator.unregister()
    return connect(versions_url, token_a, "CPO simulator")


def run_embedded(port: int, host: str = "127.0.0.1") -> None:
    from cpo_simulator import SimulatorSettings, create_simulator
    from jobs import EmbeddedWorker
    from ocpi.sync import pull
    from servers import ServerThread

    base_url = os.environ.get("PUBLIC_BASE_URL", f"http://{host}:{port}")
    app = create_app({"PUBLIC_BASE_URL": base_url})
    upgrade_database(app)

    simulator = None
    if app.config["SIMULATOR_ENABLED"]:
        # A fixed port (PORT+1 or SIMULATOR_PORT), never a free one: the OCPI endpoint URLs
        # each side stored at the handshake must still work after a restart.
        sim_port = app.config["SIMULATOR_PORT"] or port + 1
        token_a = secrets.token_urlsafe(24)
        # Its state lives next to ScanCharge's database, so open charges outlive a restart
        # (even a kill -9); deleting the file resets the simulator.
        simulator = create_simulator(SimulatorSettings(
            base_url=f"http://{host}:{sim_port}", token_a=token_a,
            time_factor=app.config["SIMULATOR_TIME_FACTOR"],
            state_path=str(Path(app.instance_path) / SIMULATOR_STATE_FILE),
        ))
        sim_server = ServerThread(simulator.app, host, sim_port).start()
        # Outgoing requests refuse loopback (ocpi/outgoing.py); the embedded default talks
        # to its own simulator there, so exactly that host:port is allowed, nothing else.
        app.config["OCPI_ALLOWED_PRIVATE_TARGETS"] = ",".join(
            t for t in (app.config["OCPI_ALLOWED_PRIVATE_TARGETS"],
                        f"{_url_host(host)}:{sim_server.port}") if t)

    server = ServerThread(app, host, port)
    server.start()
    worker = EmbeddedWorker(app).start()
    with app.app_context():
        email, password = ensure_operator(app)
        demo_evse = None
        if simulator is not None:
            party = connect_simulator(simulator, f"{sim_server.url}/ocpi/versions", token_a)
            report = pull(party, full=True)
            log.info("simulator: %d locations, %d tariffs", report.locations, report.tariffs)
            # Only now, with both sides connected and ScanCharge serving: the charge points
            # of sessions open before the restart carry on, undelivered CDRs are posted.
            simulator.resume()
            from ocpi.models import OcpiEvse

            demo_evse = db.session.scalar(
                select(OcpiEvse).where(OcpiEvse.status == "AVAILABLE").order_by(OcpiEvse.pk)
            )
        gateway = app.extensions["payment_gateway"].kind

    print(f"\nScanCharge is running at {base_url}  (payments: {gateway} gateway)")
    if demo_evse is not None:
        from ocpi.models import OcpiLocation

        with app.app_context():
            location = db.session.get_one(OcpiLocation, demo_evse.location_pk)
            evse = next(e for e in location.data["evses"]
                        if e["uid"].upper() == demo_evse.evse_uid)
        print(f"  Demo charger:       {base_url}/c/{evse['evse_id']}")
        print(f"  All demo chargers:  {base_url}/dashboard/chargers")
    print(f"  Operator dashboard: {base_url}/dashboard  ({email}"
          + (f" / {password})" if password else ", with the password you set)"))
    print(f"  OCPI versions:      {base_url}/ocpi/versions")
    if simulator is not None:
        print(f"  CPO simulator:      {sim_server.url}/ocpi/versions")
    if gateway == "demo":
        print("  Demo card: 4242 4242 4242 4242 (any date, any CVC). No real money moves.")
    print("Press Ctrl+C to stop.\n")
    try:
        server._thread.join()
    except KeyboardInterrupt:
        print("Stopping…")
    finally:
        worker.stop()
        server.stop()
        if simulator is not None:
            simulator.shutdown()
            sim_server.stop()


def main(argv: list[str] | None = None) -> int | None:
    parser = argparse.ArgumentParser(description="Run ScanCharge on the embedded default.")
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "5000")))
    parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    logging.getLogger("huey").setLevel(logging.WARNING)
    from production import ConfigurationError

    try:
        run_embedded(args.port, args.host)
    except ConfigurationError as exc:
        # The operator's to fix, not a crash: the list of problems without a traceback.
        print(exc, file=sys.stderr)
        return 2
    return None


if __name__ == "__main__":
    sys.exit(main())
