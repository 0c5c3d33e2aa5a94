"""Pulling Locations and Tariffs from a CPO's Sender interfaces, all pages, incrementally."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

from extensions import db
from jobs import background_task, periodic_task
from ocpi import notices, signals, store, v211
from ocpi.client import OcpiClient
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
        from ocpi.hubclientinfo import pull_client_info

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
                    data = v211.tariff_to_canonical(data, party.country_code, party.party_id)
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
                    data = v211.location_to_canonical(data, party.country_code, party.party_id)
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


@background_task("ocpi.pull_cdrs", retries=2, retry_delay=60)
def pull_cdrs(party_pk: int, since_text: str) -> int:
    """Fetch the CDRs a CPO has from `since` on (its CDRs Sender interface), for those it
    did not push: each new one is stored and announced as if pushed. Returns how many."""
    from ocpi.transport import parse_datetime

    party = db.session.get(Party, party_pk)
    url = party.endpoint("cdrs", "SENDER") if party is not None else None
    if url is None:
        return 0
    new = []
    params = {"date_from": format_datetime(parse_datetime(since_text))}
    for data in OcpiClient.for_party(party).get_all(url, module="cdrs", params=params):
        try:
            if party.version == "2.1.1":
                data = v211.cdr_to_canonical(data, party.country_code, party.party_id)
            row, created = store.store_cdr(party, data)
        except store.NotOwner as exc:
            _skipped(party, "cdr", data, exc, PullReport())
            continue
        except OcpiError as exc:
            log.warning("pulled CDR %r from %s refused: %s", data.get("id"), party.name,
                        exc.message)
            continue
        if created:
            new.append(row)
    db.session.commit()
    for row in new:
        signals.cdr_received.send("ocpi", cdr_pk=row.pk,
                                  authorization_reference=row.authorization_reference,
                                  token_uid=row.token_uid, session_id=row.session_id)
    return len(new)
