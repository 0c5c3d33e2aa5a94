"""Migration 0011 moves the charging periods already stored in ocpi_sessions.raw into
ocpi_session_periods, numbers exact, and the Session reads back whole as it was sent;
its downgrade puts them back."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

from flask_migrate import downgrade, upgrade
from sqlalchemy import text

from app import MIGRATIONS_DIR, create_app
from config import TestConfig
from extensions import db
from ocpi.transport import json_dumps

PERIODS = [
    {"start_date_time": "2026-12-01T08:00:00Z",
     "dimensions": [{"type": "ENERGY", "volume": Decimal("1.250")}]},
    {"start_date_time": "2026-12-01T08:15:00+01:00",
     "dimensions": [{"type": "TIME", "volume": Decimal("0.25")}], "tariff_id": "T1"},
]
SESSION = {"country_code": "SE", "party_id": "CPO", "id": "S1", "kwh": Decimal("12.50"),
           "charging_periods": PERIODS, "status": "ACTIVE",
           "last_updated": "2026-12-01T08:30:00Z"}
NO_PERIODS = {"country_code": "SE", "party_id": "CPO", "id": "S2", "kwh": 0,
              "status": "ACTIVE", "last_updated": "2026-12-01T08:30:00Z"}


def _raw(value: dict[str, Any]) -> str:
    return json_dumps(value)


def test_migration_0011_moves_stored_periods_out_and_back(tmp_path: Path) -> None:
    settings = {k: getattr(TestConfig, k) for k in dir(TestConfig) if k.isupper()}
    app = create_app({**settings, "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'm.db'}"})
    with app.app_context():
        upgrade(directory=MIGRATIONS_DIR, revision="0016")
        db.session.execute(text(
            "INSERT INTO ocpi_parties (pk, name, status, roles, endpoints, auth_encoding, "
            "created_at, updated_at) VALUES (1, 'CPO', 'CONNECTED', '[]', '[]', 'base64', "
            "'2026-12-01 08:00:00', '2026-12-01 08:00:00')"))
        for pk, body in ((1, SESSION), (2, NO_PERIODS)):
            db.session.execute(text(
                "INSERT INTO ocpi_sessions (pk, party_pk, country_code, party_id, session_id, "
                "token_uid, status, raw, last_updated) VALUES (:pk, 1, 'SE', 'CPO', :id, 'T', "
                "'ACTIVE', :raw, '2026-12-01 08:30:00')"), {"pk": pk, "id": body["id"],
                                                            "raw": _raw(body)})
        db.session.commit()

        upgrade(directory=MIGRATIONS_DIR, revision="0017")
        assert '"volume":1.250' in db.session.scalar(text(
            "SELECT raw FROM ocpi_session_periods WHERE session_pk = 1 AND seq = 0"))
        db.session.remove()
        # Read back through the models, which are the head's (later migrations add columns
        # but move no periods).
        upgrade(directory=MIGRATIONS_DIR, revision="head")
        from ocpi import store
        from ocpi.models import OcpiSession

        row = db.session.get_one(OcpiSession, 1)
        assert row.period_count == 2
        assert row.data["charging_periods"] == []
        whole = store.session_json(row)
        assert whole == json.loads(_raw(SESSION), parse_float=Decimal)
        assert store.charging_periods(row, 1) == [whole["charging_periods"][1]]
        untouched = db.session.get_one(OcpiSession, 2)
        assert (untouched.period_count, store.session_json(untouched)) == (0, NO_PERIODS)
        db.session.remove()

        downgrade(directory=MIGRATIONS_DIR, revision="0016")
        raw = db.session.scalar(text("SELECT raw FROM ocpi_sessions WHERE pk = 1"))
        assert json.loads(raw, parse_float=Decimal) == json.loads(_raw(SESSION),
                                                                  parse_float=Decimal)
        db.session.remove()
        db.engine.dispose()
