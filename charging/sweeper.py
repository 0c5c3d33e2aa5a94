"""The sweeper: nothing is lost if a task or a signal was.

Every SWEEP_INTERVAL it re-drives each open charge whose next step should already have
happened, and the payment events stored but not applied: a lost task, a failed receiver or a
crash between two steps is never lost for good. One small step per kind of due work, each a
query for what is due (_SWEEP_STEPS). The sweeper itself only reads and enqueues; every
change it makes goes through a handler's unit of work.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import and_, false, or_, select

from charging.cdrs import on_cdr_received
from charging.deadlines import capture_deadline
from charging.models import Charge
from charging.payment_events import expire_unpaid
from charging.releases import release_hold
from charging.sessions import on_session_updated
from charging.settlement import settle, settle_without_cdr
from charging.starting import command_deadline, fail_start, start
from charging.states import OPERATOR_FLAGS, Event, can
from charging.states import ChargeStatus as S
from charging.stopping import STOP_GIVEN_UP, send_stop, stop_unpaid_session
from charging.timeline import Cause, fire
from charging.unit_of_work import locked_charge
from extensions import db
from jobs import periodic_task
from ocpi import store as ocpi_store
from ocpi.models import OcpiCdr, OcpiCommand, OcpiSession
from ocpi.transport import now_utc

log = logging.getLogger(__name__)


@periodic_task("charging.sweep", "SWEEP_INTERVAL")
def sweep() -> dict[str, int]:
    """Re-drive every open charge whose next step should already have happened, and the
    payment events stored but not applied: a lost task, a failed receiver or a crash
    between two steps is never lost for good. Each step is one query for what is due."""
    now = now_utc()
    return {name: step(now) for name, step in _SWEEP_STEPS}


def _grace() -> timedelta:
    return timedelta(seconds=current_app.config["SWEEP_GRACE_SECONDS"])


def _due_where(now: datetime, older_than: timedelta, *statuses: S,
               proceeding: frozenset[str] = frozenset()) -> list[Any]:
    """Conditions for charges in `statuses` untouched for `older_than`, less those a person
    must handle (but for the flags in `proceeding`, whose charges still move on by
    themselves). Served by ix_charges_status_updated_at."""
    left_alone = OPERATOR_FLAGS - proceeding
    return [
        Charge.status.in_([status.value for status in statuses]),
        Charge.updated_at < now - older_than,
        or_(Charge.failure_code.is_(None), Charge.failure_code.not_in(left_alone)),
    ]


def _due(now: datetime, older_than: timedelta, *statuses: S,
         proceeding: frozenset[str] = frozenset()) -> list[Charge]:
    """The due charges, oldest first. Sorted here, not by the database: the few that come
    back are cheap to sort, while an ORDER BY pk tempts PostgreSQL to walk the whole table
    in pk order (its statistics of updated_at are mostly of long-settled charges)."""
    return _sorted(db.session.scalars(
        select(Charge).where(*_due_where(now, older_than, *statuses, proceeding=proceeding))))


def _sorted(charges: Iterable[Charge]) -> list[Charge]:
    return sorted(charges, key=lambda charge: charge.pk)


def _from_its_cpo(model: type[OcpiSession] | type[OcpiCdr]) -> Any:
    """Join condition: a stored Session or CDR naming a charge, sent over its connection by
    its CPO. A candidate filter only: the handler re-checks ownership (lock_charge_for_object)."""
    return and_(
        model.authorization_reference == Charge.authorization_reference,
        model.party_pk == Charge.party_pk,
        or_(Charge.cpo_country_code.is_(None),
            and_(model.country_code == Charge.cpo_country_code,
                 model.party_id == Charge.cpo_party_id)),
    )


def _stored_cdrs(due: list[Any], excluding: Collection[int] = ()) -> dict[int, OcpiCdr]:
    """Each due charge's first stored CDR from its CPO still to apply, in one query: the
    CDRs already applied, nearly all of them, are not read (ix_ocpi_cdrs_unapplied)."""
    found: dict[int, OcpiCdr] = {}
    for charge_pk, cdr in db.session.execute(
        select(Charge.pk, OcpiCdr).join(OcpiCdr, _from_its_cpo(OcpiCdr))
        .where(*due, ocpi_store.still_to_apply(OcpiCdr)).order_by(Charge.pk, OcpiCdr.pk)
    ).tuples():
        if charge_pk not in excluding:
            found.setdefault(charge_pk, cdr)
    return found


# A lapsed charge is flagged for a person, yet still has to end and be released by itself
# (authorization_lapsed): the sweeper applies its stored Session or CDR and settles it.
LAPSE_PROCEEDS = frozenset({"AUTHORIZATION_LAPSED"})


def _sweep_payment_events(now: datetime) -> int:
    from payments.events import apply_event
    from payments.models import PaymentEvent

    applied = 0
    for event_pk in db.session.scalars(select(PaymentEvent.pk).where(
        PaymentEvent.applied_at.is_(None), PaymentEvent.received_at < now - _grace()
    )).all():
        try:
            applied += apply_event(event_pk)
        except Exception:
            log.exception("payment event %s still cannot be applied", event_pk)
    return applied


def _sweep_authorized(now: datetime) -> int:
    charges = _due(now, _grace(), S.AUTHORIZED)
    for charge in charges:
        start.enqueue(charge.pk)
    return len(charges)


def _sweep_starting(now: datetime) -> int:
    """Starts whose command's result is in or overdue, and starts never sent. Only those
    come back (the many starts still waiting for their result stay in the database), read
    as plain values first: a start failed here commits, which would expire every charge
    and command still to look at and cost one SELECT each."""
    result_wait = timedelta(seconds=current_app.config["OCPI_DEFAULT_COMMAND_TIMEOUT"])
    rows = db.session.execute(
        select(Charge.pk, OcpiCommand.uid)
        .outerjoin(OcpiCommand, OcpiCommand.uid == Charge.start_command_uid)
        .where(*_due_where(now, timedelta(0), S.STARTING), or_(
            OcpiCommand.result.is_not(None),
            OcpiCommand.deadline < now,
            OcpiCommand.deadline.is_(None) & (OcpiCommand.created_at < now - result_wait),
            # The start was never sent (a crash between commit and send).
            OcpiCommand.uid.is_(None) & (Charge.updated_at < now - result_wait),
        )).order_by(Charge.pk)
    ).tuples().all()
    for charge_pk, command_uid in rows:
        if command_uid is not None:
            command_deadline.enqueue(command_uid)
            continue
        with locked_charge(charge_pk) as locked:
            if can(locked.state, Event.START_FAILED):
                fail_start(locked, "CPO_UNREACHABLE", "START_SESSION was never sent",
                           Cause("system", note="START_SESSION never sent"))
    return len(rows)


def _sweep_stops(now: datetime) -> int:
    """Standing stop requests whose next try is due, or whose trigger was lost."""
    charges = list(db.session.scalars(select(Charge).where(
        Charge.status == S.STOPPING.value,
        or_(Charge.failure_code.is_(None), Charge.failure_code.not_in(STOP_GIVEN_UP)),
        or_(Charge.stop_next_at <= now,
            Charge.stop_next_at.is_(None) & Charge.session_id.is_not(None)
            & (Charge.updated_at < now - _grace())),
    ).order_by(Charge.pk)))
    for charge in charges:
        if charge.stop_next_at is None:
            with locked_charge(charge.pk) as locked:
                locked.stop_next_at = now
        send_stop.enqueue(charge.pk)
    return len(charges)


def _sweep_charging(now: datetime) -> int:
    """CHARGING or STOPPING charges whose end is already stored: a Session COMPLETED or
    INVALID, or a CDR, whose receiver failed or whose signal was lost. Two queries
    whatever the number of live charges, each reading only the stored Sessions and CDRs
    not yet applied (the receivers mark the rest): its work is what changed, not every
    Session and CDR ever stored."""
    due = _due_where(now, _grace(), S.CHARGING, S.STOPPING, proceeding=LAPSE_PROCEEDS)
    ended_sessions = db.session.execute(
        select(Charge.pk, OcpiSession).join(OcpiSession, _from_its_cpo(OcpiSession))
        .where(*due, ocpi_store.still_to_apply(OcpiSession)).order_by(Charge.pk)
    ).tuples().all()
    done: set[int] = set()
    for charge_pk, stored in ended_sessions:
        if charge_pk not in done:
            done.add(charge_pk)
            on_session_updated(stored.pk, stored.status, stored.authorization_reference,
                               stored.token_uid)
    cdrs = _stored_cdrs(due, excluding=done)
    for cdr in cdrs.values():
        on_cdr_received(cdr.pk, cdr.authorization_reference, cdr.token_uid, cdr.session_id)
    return len(done) + len(cdrs)


def _sweep_capture_deadline(now: datetime) -> int:
    """CHARGING or STOPPING charges whose card authorisation is about to lapse: end them
    here and settle from the last known cost (flagged), rather than let the hold lapse
    unpaid, whether the CPO went quiet or keeps pushing a session that never ends; a
    session still running is stopped, since from here no money covers it."""
    silence = timedelta(seconds=current_app.config["SESSION_SILENCE_SECONDS"])
    candidates = db.session.scalars(select(Charge.pk).where(
        Charge.status.in_([S.CHARGING.value, S.STOPPING.value]),
        or_(Charge.failure_code.is_(None), Charge.failure_code.not_in(OPERATOR_FLAGS)),
        _capture_deadline_passed_where(now),
    ).order_by(Charge.pk)).all()
    ended = 0
    for pk in candidates:
        with locked_charge(pk) as charge:
            if can(charge.state, Event.SESSION_ENDED) \
                    and capture_deadline_passed(charge, now):
                silent = (charge.session_updated_at or charge.created_at) < now - silence
                charge.end_reason = charge.end_reason or ("CPO_SILENT" if silent
                                                          else "CAPTURE_DEADLINE")
                fire(charge, Event.SESSION_ENDED, Cause("deadline", note=(
                    ("no word from the CPO" if silent else "the session has not ended")
                    + " and the card authorisation is about to lapse: settling from the last "
                      "known cost")))
                settle_without_cdr.enqueue_after_commit(charge.pk)
                if not silent and charge.session_id:
                    stop_unpaid_session.enqueue_after_commit(charge.pk)
                ended += 1
    return ended


def _sweep_silent(now: datetime) -> int:
    """CHARGING or STOPPING charges the CPO has gone quiet about: ask it for its Sessions
    and CDRs (the capture deadline, if it comes first, is _sweep_capture_deadline's)."""
    silence = timedelta(seconds=current_app.config["SESSION_SILENCE_SECONDS"])
    pull_from: dict[int, datetime] = {}
    for charge in _due(now, silence, S.CHARGING, S.STOPPING):
        if (charge.session_updated_at or charge.created_at) >= now - silence:
            continue
        since = (charge.session_started_at or charge.created_at) - timedelta(hours=1)
        pull_from[charge.party_pk] = min(since, pull_from.get(charge.party_pk, since))
    from ocpi.sync import pull_cdrs, pull_sessions

    for party_pk, since in pull_from.items():
        pull_sessions.enqueue(party_pk, since.isoformat())
        pull_cdrs.enqueue(party_pk, since.isoformat())
    return len(pull_from)


def capture_deadline_passed(charge: Charge, now: datetime) -> bool:
    """Has the last moment to capture come (the card authorisation lapses soon after)?"""
    return capture_deadline(charge) < now


def _capture_deadline_passed_where(now: datetime) -> Any:
    """capture_deadline_passed as a condition, for a query to return only such charges."""
    cfg = current_app.config
    margin = timedelta(hours=cfg["CAPTURE_SAFETY_MARGIN_HOURS"])
    deadline = timedelta(hours=cfg["HOLD_CAPTURE_DEADLINE_HOURS"])
    return or_(Charge.capture_before < now + margin,
               Charge.capture_before.is_(None) & (Charge.created_at < now - deadline))


def _sweep_unpaid(now: datetime) -> int:
    charges = _due(now, timedelta(seconds=current_app.config["UNPAID_CHARGE_TTL"]), S.CREATED)
    for charge in charges:
        expire_unpaid.enqueue(charge.pk)
    return len(charges)


def _sweep_ended(now: datetime) -> int:
    """ENDED charges: settle those with their CDR; link a stored CDR; settle without one
    when the authorisation is about to lapse. Only those come back: the many still
    waiting for their CDR, with nothing to do yet, stay in the database."""
    settled = 0
    due = _due_where(now, _grace(), S.ENDED, proceeding=LAPSE_PROCEEDS)
    stored = _stored_cdrs([*due, Charge.cdr_pk.is_(None)])
    charges = _sorted(db.session.scalars(select(Charge).where(*due, or_(
        Charge.cdr_pk.is_not(None), _capture_deadline_passed_where(now),
        Charge.pk.in_(list(stored)) if stored else false()))))
    for charge in charges:
        if charge.cdr_pk is not None:
            settle.enqueue(charge.pk)
            settled += 1
            continue
        cdr = stored.get(charge.pk)
        if cdr is not None:
            on_cdr_received(cdr.pk, cdr.authorization_reference, cdr.token_uid, cdr.session_id)
        elif capture_deadline_passed(charge, now) \
                and charge.failure_code != "AUTHORIZATION_LAPSED":  # nothing to capture
            settle_without_cdr.enqueue(charge.pk)
    return settled


def _sweep_late_cdrs(now: datetime) -> int:
    """ENDED charges whose CDR is late: ask each CPO for its CDRs (once per CPO and sweep)."""
    cdr_wait = timedelta(seconds=current_app.config["CDR_WAIT_SECONDS"])
    pull_from: dict[int, datetime] = {}
    for charge in _due(now, cdr_wait, S.ENDED):
        if charge.cdr_pk is None and not capture_deadline_passed(charge, now):
            since = (charge.session_started_at or charge.created_at) - timedelta(hours=1)
            pull_from[charge.party_pk] = min(since, pull_from.get(charge.party_pk, since))
    from ocpi.sync import pull_cdrs

    for party_pk, since in pull_from.items():
        pull_cdrs.enqueue(party_pk, since.isoformat())
    return len(pull_from)


def _sweep_releases(now: datetime) -> int:
    """Holds still to give back: failed starts, and cancelled or expired charges whose
    release was never confirmed (a lost task must not keep a driver's money). The
    cancelled and expired ones released long ago, the many, stay in the database
    (ix_charges_status_hold_released_at). Only their keys are read: PostgreSQL expects
    thousands of rows here (its statistics cannot tell the captured charges' empty
    hold_released_at from these), and to sort that many whole rows it planned a parallel
    scan whose workers' start cost more than the query."""
    pks = list(db.session.scalars(select(Charge.pk).where(
        *_due_where(now, _grace(), S.START_FAILED))))
    pks += db.session.scalars(select(Charge.pk).where(
        *_due_where(now, _grace(), S.CANCELLED, S.EXPIRED),
        Charge.hold_released_at.is_(None), Charge.hold_id.is_not(None),
    )).all()
    for pk in sorted(pks):
        release_hold.enqueue(pk)
    return len(pks)


_SWEEP_STEPS = (
    ("events", _sweep_payment_events),
    ("start", _sweep_authorized),
    ("deadline", _sweep_starting),
    ("stop", _sweep_stops),
    ("ended", _sweep_charging),
    ("capture_deadline", _sweep_capture_deadline),
    ("silent", _sweep_silent),
    ("expire", _sweep_unpaid),
    ("settle", _sweep_ended),
    ("cdr_pulls", _sweep_late_cdrs),
    ("release", _sweep_releases),
)
