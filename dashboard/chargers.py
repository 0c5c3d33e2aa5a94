"""Chargers, their health and tariffs: every EVSE with its live status and its price in words,
and, per charger and per site over a period, its sessions, charging time, energy, failed
starts and time out of order, so the chargers that need maintenance stand out.

The figures are SQL aggregates (one over the charges, one over the EVSE status history),
so the page costs the same at a hundred charges or a hundred thousand; only the per-EVSE
rows they produce are summed per site and sorted here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from flask import render_template, request
from sqlalchemy import ColumnElement, and_, case, func, literal, or_, select

import i18n
from charging.connectors import connector_power_kw, connector_tariff
from charging.models import Charge, ChargeEvent
from charging.states import ChargeStatus
from dashboard.blueprint import bp
from dashboard.permissions import requires
from extensions import UtcDateTime, db
from ocpi import store as ocpi_store
from ocpi.models import OcpiEvse, OcpiEvseStatusChange, OcpiLocation, Party
from ocpi.transport import now_utc

PERIOD_DAYS = (7, 30, 90, 365)
DEFAULT_DAYS = 30
# OUTOFORDER is the status the spec gives a broken charger; INOPERATIVE ("not yet active, or
# temporarily not available, but not broken") and BLOCKED are not a maintenance matter.
OUT_OF_ORDER = "OUTOFORDER"
# A charger needs a look when it is broken now, was out of order an hour or more in the
# period, or failed one start in five (and at least two: one failure is the driver's car).
ATTENTION_OUTAGE_SECONDS = 3600
ATTENTION_FAILED_MIN = 2
ATTENTION_FAILED_SHARE = Decimal("0.2")


@dataclass
class Figures:
    """What a charger (or a site, summed) did in the period."""

    sessions: int = 0
    seconds: int = 0
    energy_kwh: Decimal = Decimal(0)
    starts: int = 0
    failed_starts: int = 0
    outages: int = 0
    outage_seconds: int = 0

    def add(self, other: Figures) -> None:
        for name in ("sessions", "seconds", "energy_kwh", "starts", "failed_starts",
                     "outages", "outage_seconds"):
            setattr(self, name, getattr(self, name) + getattr(other, name))

    @property
    def failed_share(self) -> Decimal:
        return Decimal(self.failed_starts) / self.starts if self.starts else Decimal(0)


@dataclass
class ChargerRow:
    party: str
    location_pk: int
    site: str
    evse_id: str
    evse_uid: str
    status: str
    status_since: datetime
    clash: bool
    prefix_mismatch: bool
    tariff: list[str]
    figures: Figures
    attention: list[str] = field(default_factory=list)


@dataclass
class SiteRow:
    location_pk: int
    party: str
    site: str
    chargers: int = 0
    broken_now: int = 0
    figures: Figures = field(default_factory=Figures)
    attention: bool = False


def _epoch(column: Any) -> ColumnElement[Any]:
    """A timestamp as seconds since 1970 in SQL, on the database in use."""
    if db.session.get_bind().dialect.name == "postgresql":
        return func.extract("epoch", column)
    return (func.julianday(column) - 2440587.5) * 86400


def charge_figures(since: datetime) -> dict[tuple[int, str, str], Figures]:
    """Per (connection, location id, EVSE uid): the period's charges, one aggregate.

    A session is a charge whose CPO reported one started; its time runs to the session's
    end (a session still running is left out until it ends). A start is a START_SESSION
    sent; it failed when the charge's timeline went to START_FAILED (refused, failed, timed
    out or unanswered), even if a late Session followed."""
    # Per charge, one probe of the (to_status, charge_pk) index: a join against the set of
    # failed charges made SQLite scan it once per charge (48 s at 100,000 charges).
    failed = (select(ChargeEvent.pk)
              .where(ChargeEvent.to_status == ChargeStatus.START_FAILED.value,
                     ChargeEvent.charge_pk == Charge.pk)
              .exists())
    ended = and_(Charge.session_started_at.is_not(None), Charge.session_ended_at.is_not(None))
    duration = case((ended, _epoch(Charge.session_ended_at) - _epoch(Charge.session_started_at)),
                    else_=0)
    rows = db.session.execute(
        select(Charge.party_pk, Charge.location_id, Charge.evse_uid,
               func.count(Charge.session_started_at), func.sum(duration),
               func.sum(Charge.energy_kwh), func.count(Charge.start_command_uid),
               func.sum(case((failed, 1), else_=0)))
        .where(Charge.created_at >= since)
        .group_by(Charge.party_pk, Charge.location_id, Charge.evse_uid)
    ).tuples()
    return {
        (party_pk, location_id.upper(), evse_uid.upper()): Figures(
            sessions=sessions, seconds=int(seconds or 0),
            energy_kwh=Decimal(str(energy or 0)), starts=starts,
            failed_starts=int(failures or 0))
        for party_pk, location_id, evse_uid, sessions, seconds, energy, starts, failures in rows
    }


def outage_figures(since: datetime, now: datetime) -> dict[tuple[int, str], tuple[int, int]]:
    """Per (location pk, EVSE uid): how often and how many seconds it was OUTOFORDER in the
    period, from the status history: each status lasts until the EVSE's next one (or now),
    clipped to the period."""
    h = OcpiEvseStatusChange
    until = func.lead(h.changed_at).over(partition_by=(h.location_pk, h.evse_uid),
                                         order_by=(h.changed_at, h.pk))
    spans = select(h.location_pk, h.evse_uid, h.status, h.changed_at.label("start"),
                   until.label("until")).subquery()
    bound_now = literal(now, UtcDateTime())
    bound_since = literal(since, UtcDateTime())
    end = func.coalesce(spans.c.until, bound_now)
    start = case((spans.c.start < bound_since, bound_since), else_=spans.c.start)
    rows = db.session.execute(
        select(spans.c.location_pk, spans.c.evse_uid, func.count(),
               func.sum(_epoch(end) - _epoch(start)))
        .where(spans.c.status == OUT_OF_ORDER, or_(spans.c.until.is_(None),
                                                   spans.c.until > bound_since))
        .group_by(spans.c.location_pk, spans.c.evse_uid)
    ).tuples()
    return {(location_pk, evse_uid): (times, max(0, int(seconds or 0)))
            for location_pk, evse_uid, times, seconds in rows}


class TariffWords:
    """The price at an EVSE in the operator's language, as the driver's charger page puts
    it (tariffs.describe: what applies now, and what changes later today); each tariff
    described once per power and time zone."""

    def __init__(self, language: str, at: datetime) -> None:
        self.language, self.at = language, at
        self._tariffs: dict[tuple[int, tuple[str, ...]], dict[str, Any] | None] = {}
        self._words: dict[tuple[str, str, Decimal, str], list[str]] = {}

    def for_evse(self, location: OcpiLocation, evse: dict[str, Any]) -> list[str]:
        found: list[str] = []
        for connector in evse.get("connectors") or []:
            for line in self._connector(location, connector):
                if line not in found:
                    found.append(line)
        return found

    def _connector(self, location: OcpiLocation, connector: dict[str, Any]) -> list[str]:
        from tariffs import TariffError, describe

        key = (location.pk, tuple(connector.get("tariff_ids") or ()))
        if key not in self._tariffs:
            self._tariffs[key] = connector_tariff(location, connector)
        tariff = self._tariffs[key]
        if tariff is None:
            return []
        try:
            power = connector_power_kw(connector)
        except (KeyError, TypeError):
            power = Decimal(0)
        words_key = (location.party_id, str(tariff.get("id")), power, location.time_zone)
        if words_key not in self._words:
            try:
                words = describe(tariff, language=self.language, at=self.at,
                                 time_zone=location.time_zone, power_kw=power)
                self._words[words_key] = [words.summary, *words.changes]
            except (TariffError, ValueError, KeyError):
                self._words[words_key] = [str(tariff.get("id"))]
        return self._words[words_key]


def _attention(row: ChargerRow) -> list[str]:
    from flask_babel import gettext

    reasons = []
    f = row.figures
    if row.status == OUT_OF_ORDER:
        reasons.append(gettext("out of order now"))
    if f.outage_seconds >= ATTENTION_OUTAGE_SECONDS:
        reasons.append(gettext("out of order an hour or more in the period"))
    if f.failed_starts >= ATTENTION_FAILED_MIN and f.failed_share >= ATTENTION_FAILED_SHARE:
        reasons.append(gettext("one start in five or more failed"))
    return reasons


def charger_rows(since: datetime, now: datetime) -> list[ChargerRow]:
    usage = charge_figures(since)
    outages = outage_figures(since, now)
    words = TariffWords(i18n.current_language(), now)
    listing = []
    for evse_row, location, party in db.session.execute(
        select(OcpiEvse, OcpiLocation, Party)
        .join(OcpiLocation, OcpiEvse.location_pk == OcpiLocation.pk)
        .join(Party, OcpiLocation.party_pk == Party.pk)
        .order_by(Party.name, OcpiLocation.location_id, OcpiEvse.evse_uid)
    ).tuples():
        data = location.data
        evse: dict[str, Any] = next((e for e in data.get("evses") or []
                                     if str(e.get("uid", "")).upper() == evse_row.evse_uid), {})
        evse_id = evse.get("evse_id")
        figures = usage.get((party.pk, location.location_id, evse_row.evse_uid), Figures())
        figures.outages, figures.outage_seconds = outages.get(
            (location.pk, evse_row.evse_uid), (0, 0))
        row = ChargerRow(
            party=party.name, location_pk=location.pk,
            site=", ".join(str(x) for x in (data.get("name") or data.get("address"),
                                             data.get("city")) if x),
            evse_id=evse_id or evse_row.evse_uid, evse_uid=evse_row.evse_uid,
            status=evse_row.status, status_since=evse_row.last_updated, clash=evse_row.clash,
            prefix_mismatch=bool(evse_id) and not ocpi_store.evse_id_matches_owner(
                str(evse_id), location.country_code, location.party_id),
            tariff=words.for_evse(location, evse), figures=figures)
        row.attention = _attention(row)
        listing.append(row)
    return listing


def site_rows(chargers: list[ChargerRow]) -> list[SiteRow]:
    sites: dict[int, SiteRow] = {}
    for c in chargers:
        site = sites.setdefault(c.location_pk, SiteRow(c.location_pk, c.party, c.site))
        site.chargers += 1
        site.broken_now += c.status == OUT_OF_ORDER
        site.figures.add(c.figures)
        site.attention = site.attention or bool(c.attention)
    return list(sites.values())


# Sort keys: the most in need of maintenance first for every figure.
SORTS: dict[str, Callable[[Any], Any]] = {
    "site": lambda r: 0,
    "attention": lambda r: (-len(r.attention) if isinstance(r, ChargerRow) else -r.attention,
                            -r.figures.failed_starts, -r.figures.outage_seconds),
    "failed": lambda r: (-r.figures.failed_starts, -r.figures.failed_share),
    "out_of_order": lambda r: (-r.figures.outage_seconds, -r.figures.outages),
    "sessions": lambda r: -r.figures.sessions,
    "energy": lambda r: -r.figures.energy_kwh,
    "time": lambda r: -r.figures.seconds,
}


def duration_words(seconds: int) -> str:
    """'3 d 4 h', '3 h 05 min', '12 min', '—': charging or outage time at a glance."""
    if seconds <= 0:
        return "—"
    hours, minutes = divmod(round(seconds / 60), 60)
    if hours >= 48:
        return f"{hours // 24} d {hours % 24} h"
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min"


@bp.get("/chargers")
@requires("view")
def chargers() -> str:
    days = request.args.get("days", DEFAULT_DAYS, type=int)
    if days not in PERIOD_DAYS:
        days = DEFAULT_DAYS
    sort = request.args.get("sort", "site")
    if sort not in SORTS:
        sort = "site"
    now = now_utc()
    since = (now - timedelta(days=days)).astimezone(UTC)
    listing = charger_rows(since, now)
    sites = site_rows(listing)
    # sorted() is stable: equal figures keep the site order the query gave.
    listing.sort(key=SORTS[sort])
    sites.sort(key=SORTS[sort])
    return render_template("dashboard/chargers.html", chargers=listing, sites=sites,
                           days=days, periods=PERIOD_DAYS, sort=sort, since=since,
                           duration=duration_words)
