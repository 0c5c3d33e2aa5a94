"""What a charge costs: the running estimate from its Session, the CDR checked against its
tariff, and when the cost comes near the hold."""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from flask import current_app

from charging.cpo import tariff_of, time_zone_of
from charging.models import Charge
from charging.timeline import Cause, fail, money, note
from extensions import db
from ocpi import store as ocpi_store
from ocpi.models import OcpiCdr, OcpiSession
from ocpi.transport import json_dumps, parse_datetime
from payments.money import to_minor

if TYPE_CHECKING:
    from tariffs import LiveCost

log = logging.getLogger(__name__)


def cdr_total(cdr: OcpiCdr) -> Decimal:
    """The CDR's total as charged: incl. VAT, or excl. when the CPO gives no incl."""
    return cdr.total_cost_incl_vat if cdr.total_cost_incl_vat is not None \
        else cdr.total_cost_excl_vat


def estimate_cost(charge: Charge, session_pk: int) -> Decimal | None:
    """The cost so far incl. VAT, priced from the Session's charging periods: on from the
    state carried from its last update (charges.live_cost_state), so an update costs its
    new periods and not the whole session; from the first period when there is no state
    or it does not fit (another tariff version, the periods replaced, out of order)."""
    from tariffs import TariffError

    tariff = tariff_of(charge)
    row = db.session.get_one(OcpiSession, session_pk)
    session = row.data
    end = session.get("end_date_time") or session.get("last_updated")
    if tariff is None or not end:
        return None
    try:
        live = _price_on(charge, row, tariff, start=parse_datetime(session["start_date_time"]),
                         end=parse_datetime(end))
    except (TariffError, ValueError) as exc:
        charge.live_cost_state = None
        log.warning("charge %s: cost not estimated: %s", charge.public_id, exc)
        return None
    return live.breakdown.total.incl_vat if live is not None else None


def _price_on(charge: Charge, row: OcpiSession, tariff: dict[str, Any], *, start: datetime,
              end: datetime) -> LiveCost | None:
    from tariffs import price_live
    from tariffs.live import fed

    zone = time_zone_of(charge)
    carried = _carried(charge, row.pk)
    if carried is not None:
        done = fed(carried["engine"])
        # One period more than the new ones: the last already priced, to see it is still
        # the one priced (a PUT or a 2.1.1 PATCH can replace the periods).
        periods = ocpi_store.charging_periods(row, start=max(done - 1, 0))
        if done > 0 and (not periods or _fingerprint(periods[0]) != carried["boundary"]):
            periods = []
        new = periods[1:] if done > 0 else periods
        if new:
            live = price_live(tariff, new, time_zone=zone, session_start=start,
                              session_end=end, state=carried["engine"])
            if live is not None:
                _carry(charge, row.pk, live, new, done, carried["boundary"])
                return live
    periods = ocpi_store.charging_periods(row)
    if not periods:
        charge.live_cost_state = None
        return None
    live = price_live(tariff, periods, time_zone=zone, session_start=start, session_end=end)
    if live is not None:
        _carry(charge, row.pk, live, periods, 0, None)
    return live


def _carried(charge: Charge, session_pk: int) -> dict[str, Any] | None:
    """The state carried from this Session's last update, if any and for this Session."""
    if not charge.live_cost_state:
        return None
    try:
        carried = json.loads(charge.live_cost_state)
    except ValueError:
        return None
    if not isinstance(carried, dict) or carried.get("session_pk") != session_pk \
            or not isinstance(carried.get("engine"), dict):
        return None
    return carried


def _carry(charge: Charge, session_pk: int, live: LiveCost, periods: list[dict[str, Any]],
           first: int, boundary: str | None) -> None:
    """Keep the engine's state with a fingerprint of the last period it priced; `periods`
    are the Session's from index `first` on."""
    from tariffs.live import fed

    if live.state is None:
        charge.live_cost_state = None
        return
    last_closed = fed(live.state) - 1 - first
    if last_closed >= 0:
        boundary = _fingerprint(periods[last_closed])
    charge.live_cost_state = json.dumps(
        {"session_pk": session_pk, "boundary": boundary, "engine": live.state},
        separators=(",", ":"))


def _fingerprint(period: dict[str, Any]) -> str:
    return hashlib.sha256(json_dumps(period).encode()).hexdigest()[:32]


def near_the_hold(charge: Charge) -> bool:
    """Stop before the cost can pass what is held: nobody owes more than they agreed to."""
    if charge.cost_incl_vat is None:
        return False
    percent = Decimal(current_app.config["STOP_AT_PERCENT_OF_HOLD"])
    return to_minor(charge.cost_incl_vat, charge.currency) * 100 >= charge.hold_minor * percent


def check_cdr_price(charge: Charge, cdr: OcpiCdr) -> None:
    """Recompute the CDR's total from its own tariffs and periods; a difference of more
    than one minor unit is flagged for the operator with both figures."""
    from tariffs import TariffError, price_cdr

    data = cdr.data
    if not data.get("tariffs"):
        return
    try:
        ours = price_cdr(data, time_zone=time_zone_of(charge))
    except (TariffError, ValueError) as exc:
        note(charge, Cause("system", f"cdr {cdr.cdr_id}", f"CDR not checked: {exc}"))
        return
    theirs = cdr_total(cdr)
    mine = ours.total.incl_vat if cdr.total_cost_incl_vat is not None else ours.total.excl_vat
    theirs_minor, mine_minor = to_minor(theirs, cdr.currency), to_minor(mine, cdr.currency)
    if abs(mine_minor - theirs_minor) > 1:
        cdr_total_text = money(theirs_minor, cdr.currency)
        tariff_total = money(mine_minor, cdr.currency)
        if charge.failure_code is None:
            fail(charge, "CDR_PRICE_MISMATCH", f"CDR {cdr_total_text}, tariff {tariff_total}")
        note(charge, Cause("system", f"cdr {cdr.cdr_id}",
                           f"CDR total {cdr_total_text} differs from the tariff's {tariff_total}: "
                           f"{json_dumps(ours.to_json())[:1500]}"))
