"""Pulling Locations and Tariffs from a CPO's Sender interfaces, all pages, incrementally."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from extensions import db
from jobs import Task, background_task, backoff_delay, periodic_task
from ocpi import notices, signals, store, v211
from ocpi.client import OcpiClient
from ocpi.hubclientinfo import pull_client_info
from ocpi.models import Party
from ocpi.transport import OcpiError, format_datetime, now_utc

log = logging.getLogger(__name__)


@dataclass
class PullReport:
    locations: int = 0
    tariffs: int = 0
    rejected: list[str] = field(default_factory=list)


def pull(party: Party, *, full: bool = False) -> PullReport:
    """Import the party's Locations and Tariffs changed since the last pull (or all)."""
    client = OcpiClient.for_party(party)
    started = now_utc()
    since: datetime | None = None if full else party.last_pull_at
    params = {"date_from": format_datetime(since)} if since else None
    report = PullReport()

    url = party.endpoint("hubclientinfo", "SENDER") if party.is_hub else None
    if url:
        # First: a CPO the hub says it no longer serves is refused in this very pull.
        try:
            report.rejected += pull_client_info(party, client, url)
        except OcpiError as exc:
            report.rejected.append(f"hubclientinfo: {exc.message}")
        db.session.flush()

    url = party.endpoint("tariffs", "SENDER")
    if url:
        for data in client.get_all(url, module="tariffs", params=params):
            try:
                if party.version == "2.1.1":
                    data = v211.tariff_to_canonical(data, *_owner_211(party))
                store.upsert_tariff(party, data)
                report.tariffs += 1
            except store.NotOwner as exc:
                _skipped(party, "tariff", data, exc, report)
            except OcpiError as exc:
                # transport_and_format: process the good objects of a list, log the bad ones.
                report.rejected.append(f"tariff {data.get('id')!r}: {exc.message}")
    url = party.endpoint("locations", "SENDER")
    changed = []
    if url:
        for data in client.get_all(url, module="locations", params=params):
            try:
                if party.version == "2.1.1":
                    data = v211.location_to_canonical(data, *_owner_211(party))
                row, _ = store.upsert_location(party, data)
                changed.append(row.location_id)
                report.locations += 1
            except store.NotOwner as exc:
                _skipped(party, "location", data, exc, report)
            except OcpiError as exc:
                report.rejected.append(f"location {data.get('id')!r}: {exc.message}")
    party.last_pull_at = started
    db.session.commit()
    for location_id in changed:
        signals.location_updated.send("ocpi", party_pk=party.pk, location_id=location_id,
                                      evse_uid=None)
    for problem in report.rejected:
        log.warning("pull from %s: %s", party.name, problem)
    return report


def _skipped(party: Party, what: str, data: dict, exc: OcpiError, report: PullReport) -> None:
    """A pulled object of a party the connection does not hold: never stored, and shown."""
    object_id = str(data.get("id"))[:36]
    report.rejected.append(f"{what} {object_id!r} skipped: {exc.message}")
    notices.record(party.pk, "SKIPPED", f"PULLED_FOREIGN_{what.upper()}",
                   f"pulled {what} {object_id}: {exc.message}", object_key=f"{what}:{object_id}")


@periodic_task("ocpi.pull_all", "OCPI_PULL_INTERVAL")
def pull_all() -> None:
    """Incremental pull from every connected party; one failing CPO does not stop the rest."""
    from sqlalchemy import select

    for party in db.session.scalars(select(Party).where(Party.status == "CONNECTED")).all():
        try:
            pull(party)
        except OcpiError as exc:
            db.session.rollback()
            log.warning("pull from %s failed: %s", party.name, exc.message)


@background_task("ocpi.pull_party")
def pull_party(party_pk: int, full: bool = False) -> None:
    """One connection's Locations and Tariffs now (an operator's Sync): a failure is in the
    message log and leaves last_pull_at as it was, so the dashboard shows the pull missing."""
    party = db.session.get(Party, party_pk)
    if party is None or party.status != "CONNECTED":
        return
    try:
        pull(party, full=full)
    except OcpiError as exc:
        db.session.rollback()
        log.warning("pull from %s failed: %s", party.name, exc.message)


def _fetch_or_retry(task: Task[..., Any], party: Party, url: str, module: str, since_text: str,
                    attempt: int) -> list[dict] | None:
    """Every object of a CPO's Sender list, or None: then the task is enqueued again with
    backoff (jobs.backoff_delay), OCPI_RETRY_ATTEMPTS tries in all; every try is in the
    message log. Fetched whole before anything is stored, so a failure half-way through
    the pages stores nothing twice."""
    from flask import current_app

    from ocpi.transport import parse_datetime

    params = {"date_from": format_datetime(parse_datetime(since_text))}
    try:
        return list(OcpiClient.for_party(party).get_all(url, module=module, params=params))
    except OcpiError as exc:
        cfg = current_app.config
        if attempt + 1 >= cfg["OCPI_RETRY_ATTEMPTS"]:
            log.warning("%s from %s failed %d times, giving up: %s", module, party.name,
                        attempt + 1, exc.message)
            return None
        delay = backoff_delay(attempt, cfg["OCPI_RETRY_BASE_DELAY"], cfg["OCPI_RETRY_MAX_DELAY"])
        log.warning("%s from %s failed (%s): trying again in %d s", module, party.name,
                    exc.message, delay)
        task.enqueue(party.pk, since_text, attempt + 1, delay=delay)
        return None


def _owner_211(party: Party) -> tuple[str, str]:
    # A 2.1.1 object names no owner of its own (or may not be trusted to): it is the
    # connected CPO's, registered with its country_code and party_id.
    return party.country_code or "", party.party_id or ""


def _store_pulled(party: Party, pulled: list[dict] | None, what: str,
                  to_canonical: Any, store_one: Any) -> list[tuple[Any, bool]]:
    """Store each pulled object as if pushed: (row, created) for those taken in. A foreign
    one is skipped and noted; a bad one is logged; neither stops the rest."""
    stored = []
    for data in pulled or []:
        try:
            if party.version == "2.1.1":
                data = to_canonical(data, *_owner_211(party))
            stored.append(store_one(party, data))
        except store.NotOwner as exc:
            _skipped(party, what, data, exc, PullReport())
        except OcpiError as exc:
            log.warning("pulled %s %r from %s refused: %s", what, data.get("id"), party.name,
                        exc.message)
    db.session.commit()
    return stored


@background_task("ocpi.pull_sessions")
def pull_sessions(party_pk: int, since_text: str, attempt: int = 0) -> int:
    """Fetch the Sessions a CPO has changed since `since` (its Sessions Sender interface):
    for charges it has gone quiet about. Each is stored as if pushed, and announced."""
    party = db.session.get(Party, party_pk)
    url = party.endpoint("sessions", "SENDER") if party is not None else None
    if party is None or url is None:
        return 0
    pulled = _fetch_or_retry(pull_sessions, party, url, "sessions", since_text, attempt)
    changed = [row for row, _ in _store_pulled(party, pulled, "session",
                                               v211.session_to_canonical, store.put_session)]
    for row in changed:
        signals.session_updated.send("ocpi", session_pk=row.pk, status=row.status,
                                     authorization_reference=row.authorization_reference,
                                     token_uid=row.token_uid)
    return len(changed)


@background_task("ocpi.pull_cdrs")
def pull_cdrs(party_pk: int, since_text: str, attempt: int = 0) -> int:
    """Fetch the CDRs a CPO has from `since` on (its CDRs Sender interface), for those it
    did not push: each new one is stored and announced as if pushed. Returns how many."""
    party = db.session.get(Party, party_pk)
    url = party.endpoint("cdrs", "SENDER") if party is not None else None
    if party is None or url is None:
        return 0
    pulled = _fetch_or_retry(pull_cdrs, party, url, "cdrs", since_text, attempt)
    new = [row for row, created in _store_pulled(party, pulled, "cdr", v211.cdr_to_canonical,
                                                 store.store_cdr) if created]
    for row in new:
        signals.cdr_received.send("ocpi", cdr_pk=row.pk,
                                  authorization_reference=row.authorization_reference,
                                  token_uid=row.token_uid, session_id=row.session_id)
    return len(new)
