"""The ceiling an OCPI ingest is measured against: the least a receiver must do, on the same
stack (Flask, SQLAlchemy, the same database and gunicorn settings). Not part of ScanCharge.

Per request: the party's token looked up by its hash, the JSON body parsed, one row updated
(Session PATCH) or inserted (CDR POST), one commit, an OCPI envelope answered.

    CEILING_DATABASE_URL=... gunicorn -w 2 'bench.ceiling:create()'
"""

from __future__ import annotations

import hashlib
import json
import os
from datetime import UTC, datetime
from typing import Any

from flask import Flask, Response, request
from sqlalchemy import (
    Column,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    insert,
    select,
    update,
)

metadata = MetaData()
tokens = Table("ceiling_tokens", metadata, Column("hash", String(64), primary_key=True),
               Column("party", String(8)))
sessions = Table("ceiling_sessions", metadata, Column("id", String(36), primary_key=True),
                 Column("kwh", Text), Column("raw", Text), Column("last_updated", String(32)))
cdrs = Table("ceiling_cdrs", metadata, Column("pk", Integer, primary_key=True),
             Column("id", String(36), unique=True), Column("raw", Text))


def _envelope(status: int = 1000, http: int = 200) -> Response:
    body = {"status_code": status, "timestamp": datetime.now(UTC).isoformat()}
    return Response(json.dumps(body), status=http, mimetype="application/json")


def create() -> Flask:
    engine = create_engine(os.environ["CEILING_DATABASE_URL"], pool_pre_ping=False)
    app = Flask(__name__)

    def party() -> str | None:
        header = request.headers.get("Authorization", "")
        digest = hashlib.sha256(header.removeprefix("Token ").encode()).hexdigest()
        with engine.connect() as conn:
            return conn.scalar(select(tokens.c.party).where(tokens.c.hash == digest))

    @app.patch("/ocpi/2.2.1/sessions/<cc>/<pid>/<session_id>")
    def patch_session(cc: str, pid: str, session_id: str) -> Response:
        if party() is None:
            return _envelope(2001, 401)
        body: dict[str, Any] = json.loads(request.get_data())
        with engine.begin() as conn:
            conn.execute(update(sessions).where(sessions.c.id == session_id).values(
                kwh=str(body.get("kwh")), raw=request.get_data(as_text=True),
                last_updated=body["last_updated"]))
        return _envelope()

    @app.post("/ocpi/2.2.1/cdrs")
    def post_cdr() -> Response:
        if party() is None:
            return _envelope(2001, 401)
        body: dict[str, Any] = json.loads(request.get_data())
        with engine.begin() as conn:
            conn.execute(insert(cdrs).values(id=body["id"], raw=request.get_data(as_text=True)))
        return _envelope(http=201)

    return app


def prepare(url: str, token: str, session_ids: list[str]) -> None:
    engine = create_engine(url)
    metadata.drop_all(engine)
    metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(insert(tokens).values(hash=hashlib.sha256(token.encode()).hexdigest(),
                                           party="SE*CPO"))
        conn.execute(insert(sessions), [{"id": sid, "kwh": "0", "raw": "{}",
                                         "last_updated": ""} for sid in session_ids])
    engine.dispose()
