"""The floor of ScanCharge's own ingest: the statements a Session PATCH and a CDR POST of
ScanCharge issue (docs/performance.md), on ScanCharge's own tables, written as plain SQL
with no ORM, no validation, no domain and no message log. Not part of ScanCharge.

It answers one question: of the distance between ScanCharge and the ceiling
(bench/ceiling.py: one look-up, one write), how much is the data model's (a party with its
grants, a Session row and its period rows, a charge row, each locked and written), and how
much ScanCharge's code. No implementation of ScanCharge's duties on this schema can be
faster than the floor.

    FLOOR_DATABASE_URL=... gunicorn -w 2 'bench.floor:create()'

Per Session PATCH, in one transaction: the party and its grants by the token's hash; the
Session read FOR UPDATE; the new charging period inserted; the Session's row updated; the
charge read FOR UPDATE by its authorization reference or token uid; the charge updated.
Per CDR POST: the party and its grants; a stored CDR of that id looked for; the CDR
inserted (under an id of its own, so it never meets ScanCharge's); the charge read FOR
UPDATE and updated; a timeline row inserted.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from flask import Flask, Response, request
from sqlalchemy import Connection, create_engine, text

AUTH = text(
    "SELECT p.pk, p.status, g.role, g.country_code, g.party_id FROM ocpi_parties p "
    "LEFT JOIN ocpi_grants g ON g.party_pk = p.pk WHERE p.incoming_token_hash = :hash")
LOCK_SESSION = text(
    "SELECT * FROM ocpi_sessions WHERE country_code = :cc AND party_id = :pid "
    "AND session_id = :sid FOR UPDATE")
ADD_PERIOD = text(
    "INSERT INTO ocpi_session_periods (session_pk, seq, start_date_time, raw) "
    "VALUES (:pk, :seq, :start, :raw)")
UPDATE_SESSION = text(
    "UPDATE ocpi_sessions SET raw = :raw, last_updated = :last_updated, "
    "period_count = :count WHERE pk = :pk")
LOCK_CHARGE = text(
    "SELECT * FROM charges WHERE authorization_reference = :ref OR token_uid = :uid "
    "FOR UPDATE")
UPDATE_CHARGE = text(
    "UPDATE charges SET energy_kwh = :kwh, cost_incl_vat = :cost, session_updated_at = :now, "
    "lock_version = lock_version + 1, updated_at = :now WHERE pk = :pk")
FIND_CDR = text(
    "SELECT * FROM ocpi_cdrs WHERE country_code = :cc AND party_id = :pid AND cdr_id = :id")
ADD_CDR = text(
    "INSERT INTO ocpi_cdrs (party_pk, country_code, party_id, cdr_id, session_id, "
    "authorization_reference, token_uid, currency, total_cost_excl_vat, total_cost_incl_vat, "
    "raw, received_at) VALUES (:party, :cc, :pid, :id, :sid, :ref, :uid, :currency, :excl, "
    ":incl, :raw, :now) RETURNING pk")
END_CHARGE = text(
    "UPDATE charges SET status = 'ENDED', cdr_pk = :cdr, lock_version = lock_version + 1, "
    "updated_at = :now WHERE pk = :pk")
ADD_EVENT = text(
    "INSERT INTO charge_events (charge_pk, from_status, to_status, cause, cause_ref, note, at) "
    "VALUES (:pk, :old, 'ENDED', 'ocpi', :ref, 'CDR received', :now)")


def _envelope(status: int = 1000, http: int = 200) -> Response:
    body = {"status_code": status, "timestamp": datetime.now(UTC).isoformat()}
    return Response(json.dumps(body), status=http, mimetype="application/json")


def _party(conn: Connection) -> int | None:
    header = request.headers.get("Authorization", "")
    # ScanCharge keeps the hash of the token as issued; the peer sends it Base64-encoded.
    token = base64.b64decode(header.removeprefix("Token ")).decode()
    digest = hashlib.sha256(token.encode()).hexdigest()
    rows = conn.execute(AUTH, {"hash": digest}).all()
    return rows[0].pk if rows and rows[0].status == "CONNECTED" else None


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def create() -> Flask:
    engine = create_engine(os.environ["FLOOR_DATABASE_URL"], pool_pre_ping=False)
    app = Flask(__name__)

    @app.patch("/ocpi/2.2.1/sessions/<cc>/<pid>/<session_id>")
    def patch_session(cc: str, pid: str, session_id: str) -> Response:
        with engine.begin() as conn:
            if _party(conn) is None:
                return _envelope(2001, 401)
            patch: dict[str, Any] = json.loads(request.get_data(), parse_float=Decimal)
            row = conn.execute(LOCK_SESSION, {"cc": cc, "pid": pid, "sid": session_id}).one()
            data = json.loads(row.raw, parse_float=Decimal)
            periods = patch.pop("charging_periods", [])
            data.update(patch)
            for n, period in enumerate(periods):
                conn.execute(ADD_PERIOD, {"pk": row.pk, "seq": row.period_count + n,
                                          "start": period["start_date_time"],
                                          "raw": json.dumps(period, default=str)})
            conn.execute(UPDATE_SESSION, {"raw": json.dumps(data, default=str),
                                          "last_updated": patch["last_updated"],
                                          "count": row.period_count + len(periods),
                                          "pk": row.pk})
            charge = conn.execute(LOCK_CHARGE, {"ref": row.authorization_reference,
                                                "uid": row.token_uid}).first()
            if charge is not None:
                cost = (patch.get("total_cost") or {}).get("incl_vat")
                conn.execute(UPDATE_CHARGE, {"kwh": patch.get("kwh"), "cost": cost,
                                             "now": _now(), "pk": charge.pk})
        return _envelope()

    @app.post("/ocpi/2.2.1/cdrs")
    def post_cdr() -> Response:
        with engine.begin() as conn:
            party = _party(conn)
            if party is None:
                return _envelope(2001, 401)
            raw = request.get_data(as_text=True)
            cdr: dict[str, Any] = json.loads(raw, parse_float=Decimal)
            own_id = cdr["id"] + "F"  # never one of ScanCharge's
            keys = {"cc": cdr["country_code"], "pid": cdr["party_id"], "id": own_id}
            if conn.execute(FIND_CDR, keys).first() is None:
                pk = conn.execute(ADD_CDR, {
                    **keys, "party": party, "sid": cdr["session_id"],
                    "ref": cdr["authorization_reference"], "uid": cdr["cdr_token"]["uid"],
                    "currency": cdr["currency"], "excl": cdr["total_cost"]["excl_vat"],
                    "incl": cdr["total_cost"]["incl_vat"], "raw": raw, "now": _now()}).scalar()
                charge = conn.execute(LOCK_CHARGE, {"ref": cdr["authorization_reference"],
                                                    "uid": cdr["cdr_token"]["uid"]}).first()
                if charge is not None:
                    conn.execute(END_CHARGE, {"cdr": pk, "now": _now(), "pk": charge.pk})
                    conn.execute(ADD_EVENT, {"pk": charge.pk, "old": charge.status,
                                             "ref": f"cdr {own_id}", "now": _now()})
        return _envelope(http=201)

    return app
