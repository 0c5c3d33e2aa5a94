"""What a charge costs: the running estimate from its Session, the CDR checked against its
tariff, and when the cost comes near the hold."""

from __future__ import annotations

import logging
from decimal import Decimal

from flask import current_app

from charging.cpo import tariff_of, time_zone_of
from charging.models import Charge
from charging.timeline import Cause, fail, money, note
from extensions import db
from ocpi import store as ocpi_store
from ocpi.models import OcpiCdr, OcpiSession
from ocpi.transport import json_dumps, parse_datetime
from payments.money import to_minor

log = logging.getLogger(__name__)


def cdr_total(cdr: OcpiCdr) -> Decimal:
    """The CDR's total as charged: incl. VAT, or excl. when the CPO gives no incl."""
    return cdr.total_cost_incl_vat if cdr.total_cost_incl_vat is not None \
        else cdr.total_cost_excl_vat


def estimate_cost(charge: Charge, session_pk: int) -> Decimal | None:
    """The cost so far incl. VAT, priced from the Session's charging periods."""
    from tariffs import TariffError, price_session

    tariff = tariff_of(charge)
    row = db.session.get_one(OcpiSession, session_pk)
    session = row.data
    periods = ocpi_store.charging_periods(row)
    end = session.get("end_date_time") or session.get("last_updated")
    if tariff is None or not periods or not end:
        return None
    try:
        breakdown = price_session(tariff, periods, time_zone=time_zone_of(charge),
                                  session_start=parse_datetime(session["start_date_time"]),
                                  session_end=parse_datetime(end))
    except (TariffError, ValueError) as exc:
        log.warning("charge %s: cost not estimated: %s", charge.public_id, exc)
        return None
    return breakdown.total.incl_vat


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
