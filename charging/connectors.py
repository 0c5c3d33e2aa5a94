"""What a driver is offered at a connector: the EVSE, its tariff, its power and the hold.

Read models: they change nothing. The driver's charger page shows them, and a new charge
(charging/driver_actions.py) is made from them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

from flask import current_app
from sqlalchemy import select

from charging.errors import DriverError
from extensions import db
from ocpi import store as ocpi_store
from ocpi.models import OcpiEvse, OcpiLocation, Party
from ocpi.transport import now_utc
from payments.money import to_minor

log = logging.getLogger(__name__)

# EVSE statuses a driver may start on. UNKNOWN is allowed: many CPOs never push status.
STARTABLE_EVSE_STATUSES = {"AVAILABLE", "UNKNOWN"}


def find_evse(evse_id: str) -> tuple[OcpiEvse, OcpiLocation, Party] | None:
    row = db.session.execute(
        select(OcpiEvse, OcpiLocation, Party)
        .join(OcpiLocation, OcpiEvse.location_pk == OcpiLocation.pk)
        .join(Party, OcpiLocation.party_pk == Party.pk)
        .where(OcpiEvse.evse_id == OcpiEvse.normalise_evse_id(evse_id),
               OcpiEvse.clash.is_(False))
        .where(Party.status == "CONNECTED")
        .order_by(OcpiEvse.last_updated.desc())
    ).first()
    return (row[0], row[1], row[2]) if row else None


def other_evses(location: OcpiLocation, evse_uid: str) -> list[tuple[str, str]]:
    """The location's other EVSEs a driver can start now: (EVSE-ID as printed, status)."""
    printed = {str(e.get("uid", "")).upper(): e.get("evse_id")
               for e in location.data.get("evses") or []}
    rows = db.session.scalars(
        select(OcpiEvse).where(OcpiEvse.location_pk == location.pk,
                               OcpiEvse.evse_uid != evse_uid, OcpiEvse.clash.is_(False),
                               OcpiEvse.evse_id.is_not(None),
                               OcpiEvse.status.in_(STARTABLE_EVSE_STATUSES))
        .order_by(OcpiEvse.evse_id))
    return [(printed.get(row.evse_uid.upper()) or row.evse_id or row.evse_uid, row.status)
            for row in rows]


def evse_data(location: OcpiLocation, evse_uid: str) -> dict[str, Any]:
    for evse in location.data.get("evses") or []:
        if str(evse.get("uid", "")).upper() == evse_uid.upper():
            return evse
    raise DriverError("unknown_charger", 404)


def connector_tariff(location: OcpiLocation, connector: dict[str, Any]) -> dict[str, Any] | None:
    """The tariff for an ad-hoc charge at this connector: AD_HOC_PAYMENT first."""
    tariffs = []
    for tariff_id in connector.get("tariff_ids") or []:
        row = ocpi_store.find_tariff(location.country_code, location.party_id, tariff_id)
        if row is not None:
            tariffs.append(row.data)
    tariffs.sort(key=lambda t: t.get("type") != "AD_HOC_PAYMENT")
    return tariffs[0] if tariffs else None


def connector_power_kw(connector: dict[str, Any]) -> Decimal:
    watts = connector.get("max_electric_power")
    if not watts:
        phases = 3 if connector.get("power_type") == "AC_3_PHASE" else 1
        watts = connector["max_voltage"] * connector["max_amperage"] * phases
    return Decimal(watts) / 1000


def hold_amount(
    tariff: dict[str, Any] | None,
    currency: str,
    *,
    power_kw: Decimal,
    time_zone: str,
    driver_cap_minor: int | None = None,
) -> int:
    """The card hold: what a plausible longest session at this connector would cost under
    its tariff (or the tariff's own preauthorize_amount), never below its minimum price,
    capped by HOLD_CAP_MINOR and by the driver's own cap."""
    cfg = current_app.config
    caps = [c for c in (cfg["HOLD_CAP_MINOR"], driver_cap_minor) if c]
    if tariff is None:
        return min([cfg["DEFAULT_HOLD_MINOR"], *caps])
    from tariffs import TariffError, hold_for

    try:
        return hold_for(
            tariff, power_kw=power_kw,
            max_session=timedelta(minutes=cfg["HOLD_MAX_SESSION_MINUTES"]),
            cap_minor=min(caps) if caps else None, currency=currency, at=now_utc(),
            time_zone=time_zone,
        )
    except TariffError as exc:
        log.warning("tariff %s cannot size a hold (%s): the default hold applies",
                    tariff.get("id"), exc)
        return min([cfg["DEFAULT_HOLD_MINOR"], *caps])


def minimum_price_minor(tariff: dict[str, Any] | None, currency: str) -> int:
    if not tariff or not tariff.get("min_price"):
        return 0
    minimum = tariff["min_price"].get("incl_vat") or tariff["min_price"]["excl_vat"]
    return to_minor(Decimal(str(minimum)), currency)


@dataclass(frozen=True)
class Limits:
    """What the driver is told before paying: the hold, where charging stops by itself
    (charging/sessions.py stops at STOP_AT_PERCENT_OF_HOLD of it), about how much energy
    that is at this connector, and the caps the driver may type."""

    hold_minor: int
    stop_at_minor: int
    stop_kwh: Decimal | None  # None: unknown (no tariff) or no energy limit (a max_price)
    min_cap_minor: int  # the smallest cap worth a charge: its stop buys a start and 1 kWh
    max_cap_minor: int  # the hold with no cap of the driver's own: a higher cap changes nothing


def stop_at_minor(hold_minor: int) -> int:
    """The cost at which charging stops by itself (as charging.pricing.near_the_hold)."""
    percent = int(current_app.config["STOP_AT_PERCENT_OF_HOLD"])
    return -(-hold_minor * percent // 100)


def connector_limits(
    tariff: dict[str, Any] | None,
    currency: str,
    *,
    power_kw: Decimal,
    time_zone: str,
    driver_cap_minor: int | None = None,
) -> Limits:
    from tariffs import TariffError, energy_for, meaningful_minimum

    most = hold_amount(tariff, currency, power_kw=power_kw, time_zone=time_zone)
    hold = hold_amount(tariff, currency, power_kw=power_kw, time_zone=time_zone,
                       driver_cap_minor=driver_cap_minor)
    stop = stop_at_minor(hold)
    unit = to_minor(Decimal(1), currency)
    floor = max(minimum_price_minor(tariff, currency), unit)
    kwh = None
    if tariff is not None and power_kw > 0:
        try:
            percent = int(current_app.config["STOP_AT_PERCENT_OF_HOLD"])
            meaningful = meaningful_minimum(tariff, power_kw=power_kw, currency=currency,
                                            at=now_utc(), time_zone=time_zone)
            # The cap whose stop point still pays for that: minimum / percent, whole units.
            needed = -(-meaningful * 100 // percent)
            floor = max(floor, -(-needed // unit) * unit)
            kwh = energy_for(tariff, stop, power_kw=power_kw, currency=currency, at=now_utc(),
                             time_zone=time_zone)
        except TariffError as exc:
            log.warning("tariff %s: no limits in energy (%s)", tariff.get("id"), exc)
    return Limits(hold_minor=hold, stop_at_minor=stop, stop_kwh=kwh,
                  min_cap_minor=min(floor, most), max_cap_minor=most)
