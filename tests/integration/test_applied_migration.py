"""Migration 0019 takes the Sessions and CDRs already stored as applied, but for those
naming a charge of their sender whose end is still to come, which the sweeper may yet have
to apply; its downgrade drops the column and the partial indexes."""

from __future__ import annotations

from pathlib import Path

from flask_migrate import downgrade, upgrade
from sqlalchemy import text

from app import MIGRATIONS_DIR, create_app
from config import TestConfig
from extensions import db

# (reference, the charge's state or None for no charge, whether the sweeper may need it)
ROWS = [("R1", "CHARGING", True), ("R2", "STARTING", True), ("R3", "CAPTURED", False),
        ("R4", "ENDED", False), ("R5", "RELEASED", False), ("R6", None, False)]


def test_migration_0019_marks_applied_what_no_charge_still_needs(tmp_path: Path) -> None:
    settings = {k: getattr(TestConfig, k) for k in dir(TestConfig) if k.isupper()}
    app = create_app({**settings, "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'm.db'}"})
    with app.app_context():
        upgrade(directory=MIGRATIONS_DIR, revision="0018")
        for pk in (1, 2):  # the charges' connection, and another one
            db.session.execute(text(
                "INSERT INTO ocpi_parties (pk, name, status, roles, endpoints, auth_encoding, "
                "created_at, updated_at) VALUES (:pk, 'CPO', 'CONNECTED', '[]', '[]', "
                "'base64', '2026-12-01 08:00:00', '2026-12-01 08:00:00')"), {"pk": pk})
        for n, (ref, state, _) in enumerate(ROWS):
            if state is not None:
                db.session.execute(text(
                    "INSERT INTO charges (public_id, status, lock_version, party_pk, "
                    "location_id, evse_uid, evse_id, connector_id, currency, hold_minor, "
                    "refunded_minor, gateway, token_uid, authorization_reference, "
                    "stop_attempts, energy_kwh, language, created_at, updated_at) VALUES "
                    "(:ref, :state, 0, 1, 'L', 'E', 'SE*CPO*E1', '1', 'SEK', 100, 0, 'demo', "
                    ":token, :ref, 0, 0, 'sv', '2026-12-01 08:00:00', '2026-12-01 08:00:00')"),
                    {"ref": ref, "state": state, "token": f"T{ref}"})
            for party_pk in (1, 2):
                db.session.execute(text(
                    "INSERT INTO ocpi_sessions (party_pk, country_code, party_id, session_id, "
                    "authorization_reference, token_uid, status, raw, last_updated, "
                    "period_count) VALUES (:party, 'SE', 'CPO', :id, :ref, :token, "
                    "'COMPLETED', '{}', '2026-12-01 08:30:00', 0)"),
                    {"party": party_pk, "id": f"S{n}-{party_pk}", "ref": ref,
                     "token": f"T{ref}"})
                db.session.execute(text(
                    "INSERT INTO ocpi_cdrs (party_pk, country_code, party_id, cdr_id, "
                    "authorization_reference, token_uid, currency, total_cost_excl_vat, raw, "
                    "received_at) VALUES (:party, 'SE', 'CPO', :id, NULL, :token, 'SEK', 1, "
                    "'{}', '2026-12-01 08:40:00')"),  # named by its token only
                    {"party": party_pk, "id": f"C{n}-{party_pk}", "token": f"T{ref}"})
        db.session.commit()

        upgrade(directory=MIGRATIONS_DIR, revision="0019")
        for table, when in (("ocpi_sessions", "2026-12-01 08:30:00"),
                            ("ocpi_cdrs", "2026-12-01 08:40:00")):
            stored = db.session.execute(text(
                f"SELECT token_uid, party_pk, applied_at FROM {table}")).all()
            assert {(token, party): applied for token, party, applied in stored} == {
                (f"T{ref}", party): None if needed and party == 1 else when
                for ref, _, needed in ROWS for party in (1, 2)}, table
        db.session.remove()

        downgrade(directory=MIGRATIONS_DIR, revision="0018")
        columns = [row[1] for row in db.session.execute(text(
            "PRAGMA table_info(ocpi_sessions)"))]
        assert "applied_at" not in columns
        db.session.remove()
        db.engine.dispose()
