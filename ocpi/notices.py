"""Notices: what the operator should see about a connection (ocpi_notices).

- MISUSE: a party sent something that names another party's charge (a token uid or
  authorization reference of ours it was never given).
- REFUSED: an object that could not be taken in (kept in the message log as sent).
- SKIPPED: a pulled object owned by a party the connection does not hold.
- CLASH: an EVSE-ID another party already holds.
- DEVIATION: the object broke the spec where its meaning was still clear, and was taken in.

Each is kept once per (party, code, object) and counted, so a sloppy CPO's every CDR adds
to one row. Notes are written in their own savepoint: a notice never fails the request
that raised it, and a request that fails still leaves its notice when the caller commits.
"""

from __future__ import annotations

import logging

from sqlalchemy import ColumnElement, select, update
from sqlalchemy.exc import IntegrityError

from extensions import db, rows_changed
from ocpi.models import OcpiNotice
from ocpi.transport import now_utc

log = logging.getLogger(__name__)

KINDS = ("MISUSE", "REFUSED", "SKIPPED", "CLASH", "DEVIATION")


def record(
    party_pk: int | None, kind: str, code: str, detail: str, object_key: str = ""
) -> None:
    """Count one occurrence of `code` for the party (and object); does not commit."""
    if kind not in KINDS:
        raise ValueError(f"unknown notice kind {kind!r}")
    object_key = (object_key or "")[:64]
    detail = detail[:2000]
    log.warning("OCPI %s %s (party %s, %s): %s", kind, code, party_pk, object_key or "-", detail)
    now = now_utc()
    bumped = rows_changed(
        update(OcpiNotice)
        .where(_same(party_pk, code, object_key))
        .values(count=OcpiNotice.count + 1, last_at=now, detail=detail)
    )
    if bumped:
        return
    try:
        with db.session.begin_nested():
            db.session.add(OcpiNotice(party_pk=party_pk, kind=kind, code=code,
                                      object_key=object_key, detail=detail,
                                      first_at=now, last_at=now))
    except IntegrityError:
        # Another request wrote the first one a moment ago: count on it instead.
        db.session.execute(
            update(OcpiNotice).where(_same(party_pk, code, object_key))
            .values(count=OcpiNotice.count + 1, last_at=now, detail=detail)
        )


def _same(party_pk: int | None, code: str, object_key: str) -> ColumnElement[bool]:
    party = OcpiNotice.party_pk.is_(None) if party_pk is None else OcpiNotice.party_pk == party_pk
    return party & (OcpiNotice.code == code) & (OcpiNotice.object_key == object_key)


def deviation(party_pk: int | None, code: str, detail: str) -> None:
    """The spec was not followed, but the meaning was clear and ScanCharge took it in."""
    record(party_pk, "DEVIATION", code, detail)


def for_party(party_pk: int, limit: int = 200) -> list[OcpiNotice]:
    return list(db.session.scalars(
        select(OcpiNotice).where(OcpiNotice.party_pk == party_pk)
        .order_by(OcpiNotice.last_at.desc()).limit(limit)
    ))


def latest(limit: int = 200, kinds: tuple[str, ...] = KINDS) -> list[OcpiNotice]:
    return list(db.session.scalars(
        select(OcpiNotice).where(OcpiNotice.kind.in_(kinds))
        .order_by(OcpiNotice.last_at.desc()).limit(limit)
    ))
