"""The receipt of a captured charge: the facts of the charge from its CDR, the money from
the capture, the seller from configuration."""

from __future__ import annotations

import json
import logging
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from flask import current_app
from sqlalchemy import select

from charging.cpo import location_of, tariff_of, time_zone_of
from charging.models import Charge
from extensions import db
from ocpi import store as ocpi_store
from ocpi.models import OcpiCdr, OcpiSession
from payments import receipt_lines
from payments.models import Receipt
from payments.money import to_minor
from payments.receipts import issue_receipt

log = logging.getLogger(__name__)


def vat_rate_of(cdr_data: dict[str, Any]) -> Decimal:
    """The VAT rate of the CDR: its tariffs' rate when they agree, else derived from the
    totals (excl → incl), to two decimals."""
    rates = {
        Decimal(str(component["vat"]))
        for tariff in cdr_data.get("tariffs") or []
        for element in tariff.get("elements") or []
        for component in element.get("price_components") or []
        if component.get("vat") is not None
    }
    if len(rates) == 1:
        return rates.pop()
    total = cdr_data["total_cost"]
    excl = Decimal(str(total["excl_vat"]))
    incl = Decimal(str(total.get("incl_vat", total["excl_vat"])))
    if excl == 0:
        return Decimal(0)
    return ((incl - excl) * 100 / excl).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def _priced(breakdown: Any, charge: Charge, captured: int) -> dict[str, Any]:
    """The receipt's lines (quantity × unit price = amount), the adjustment that makes them
    the amount charged, and VAT per rate (payments/receipt_lines.py), with the adjustment's
    reason: the hold or the driver's cap cut the price, a tariff minimum or maximum, or
    the rounding of the printed quantities."""
    currency = charge.currency
    lines = receipt_lines.group(
        ((x.dimension, x.billed_volume, x.price, x.vat if x.vat is not None else Decimal(0))
         for x in breakdown.lines if x.kind != "RESERVATION"), currency)
    adjustment = receipt_lines.adjustment(lines, captured)
    priced = to_minor(breakdown.total.incl_vat, currency)
    if adjustment and captured < priced:
        reason = "limit"  # captured no more than held: the hold or the driver's cap
    elif adjustment and breakdown.min_price_applied:
        reason = "min_price"
    elif adjustment and breakdown.max_price_applied:
        reason = "max_price"
    else:
        reason = "rounding"
    return {
        "lines": [x.to_json() for x in lines],
        "adjustment": {"reason": reason, "amount_minor": adjustment} if adjustment else None,
    }


def _vat(details: dict[str, Any], captured: int, rate: Decimal) -> tuple[int, Decimal]:
    """The receipt's net and main VAT rate from its VAT per rate (kept in the details)."""
    lines = [receipt_lines.Line.from_json(x) for x in details.get("lines") or []]
    rows = receipt_lines.vat_rows(lines, captured, rate)
    details["vat_rates"] = [row.to_json() for row in rows]
    main = max(rows, key=lambda row: row.gross_minor).rate
    return sum(row.net_minor for row in rows), main


def _lines_for_cdr(charge: Charge, cdr: OcpiCdr, captured: int) -> dict[str, Any]:
    from tariffs import TariffError, price_cdr

    if not cdr.data.get("tariffs"):
        return {}
    try:
        return _priced(price_cdr(cdr.data, time_zone=time_zone_of(charge)), charge, captured)
    except (TariffError, ValueError) as exc:
        log.warning("charge %s: receipt without lines: %s", charge.public_id, exc)
        return {}


def issue_for(charge: Charge, cdr: OcpiCdr) -> Receipt:
    data = cdr.data
    captured = charge.captured_minor or 0
    total = data["total_cost"]
    excl = Decimal(str(total["excl_vat"]))
    incl = Decimal(str(total.get("incl_vat", total["excl_vat"])))
    # The net share of what was captured: when the hold capped the capture, VAT shrinks with it.
    net = int((Decimal(captured) * excl / incl).quantize(Decimal(1), rounding=ROUND_HALF_UP)) \
        if incl else captured
    location = data["cdr_location"]
    details = {
        "location_name": location.get("name"),
        "address": f"{location['address']}, {location.get('postal_code', '')} {location['city']}"
        .replace(" ,", ","),
        "evse_id": location["evse_id"],
        "connector_id": location["connector_id"],
        "start": data["start_date_time"],
        "end": data["end_date_time"],
        "energy_kwh": str(data["total_energy"]),
        "duration_hours": str(data["total_time"]),
        "cdr_total_incl_vat": str(incl),
        "cdr_total_excl_vat": str(excl),
        # As the CPO sent them (exact numbers, JSON-ready), not as parsed Decimals.
        "tariffs": json.loads(cdr.raw).get("tariffs") or [],
        "time_zone": time_zone_of(charge),
        "cdr_id": data["id"],
        **_lines_for_cdr(charge, cdr, captured),
    }
    rate = vat_rate_of(data)
    if details.get("lines"):
        net, rate = _vat(details, captured, rate)
    return _issue(charge, captured, net, rate, details)


def _last_session(charge: Charge) -> OcpiSession | None:
    """The stored Session of the charge from its own CPO's connection, if any."""
    query = select(OcpiSession).where(
        OcpiSession.authorization_reference == charge.authorization_reference,
        OcpiSession.party_pk == charge.party_pk,
    )
    if charge.session_id:
        query = query.where(OcpiSession.session_id == charge.session_id)
    return db.session.scalar(query.order_by(OcpiSession.pk.desc()).limit(1))


def issue_without_cdr(charge: Charge) -> Receipt:
    """The receipt of a charge captured without a CDR (settle_without_cdr): the facts the
    Sessions showed, marked with what they are based on (`details.based_on`: the last
    Session update, and that the CPO sent no CDR), so the driver is never promised a
    receipt that does not exist and the operator sees what the amount rests on."""
    captured = charge.captured_minor or 0
    session = _last_session(charge)
    data: dict[str, Any] = ocpi_store.session_json(session) if session is not None else {}
    total = data.get("total_cost") or {}
    tariff = tariff_of(charge)
    rate: Decimal | None = None
    if total.get("excl_vat") is not None and total.get("incl_vat") is not None:
        rate = vat_rate_of({"total_cost": total})
    elif tariff is not None:
        rates = {Decimal(str(c["vat"])) for e in tariff.get("elements") or []
                 for c in e.get("price_components") or [] if c.get("vat") is not None}
        rate = rates.pop() if len(rates) == 1 else None
    if rate is None:
        rate = Decimal(current_app.config["OCPI_211_VAT_PERCENT"])
    net = int((Decimal(captured) * 100 / (100 + rate)).quantize(Decimal(1),
                                                                rounding=ROUND_HALF_UP))
    updated = charge.session_updated_at or (session.last_updated if session else None) \
        or charge.session_ended_at or charge.updated_at
    start, end = charge.session_started_at, charge.session_ended_at
    location = location_of(charge)
    place = location.data if location is not None else {}
    duration = None
    if start and end:
        duration = str((Decimal(int((end - start).total_seconds())) / 3600)
                       .quantize(Decimal("0.0001")))
    details = {
        "location_name": place.get("name"),
        "address": (f"{place['address']}, {place.get('postal_code', '')} "
                    f"{place.get('city', '')}".replace(" ,", ",").strip())
        if place.get("address") else None,
        "evse_id": charge.evse_id,
        "connector_id": charge.connector_id,
        "start": _iso(start),
        "end": _iso(end),
        "energy_kwh": str(charge.energy_kwh or 0),
        "duration_hours": duration,
        "tariffs": [tariff] if tariff else [],
        "time_zone": time_zone_of(charge),
        "cdr_id": None,
        "based_on": {"kind": "last_session", "session_updated_at": _iso(updated),
                     "session_id": charge.session_id},
        **_lines_for_session(charge, tariff, data, captured),
    }
    if details.get("lines"):
        net, rate = _vat(details, captured, rate)
    return _issue(charge, captured, net, rate, details)


def _lines_for_session(charge: Charge, tariff: dict[str, Any] | None, session: dict[str, Any],
                       captured: int) -> dict[str, Any]:
    """The lines from the last Session's charging periods, priced under the charge's tariff."""
    from ocpi.transport import parse_datetime
    from tariffs import TariffError, price_session

    periods = session.get("charging_periods") or []
    end = session.get("end_date_time") or session.get("last_updated")
    if tariff is None or not periods or not end or not session.get("start_date_time"):
        return {}
    try:
        breakdown = price_session(tariff, periods, time_zone=time_zone_of(charge),
                                  session_start=parse_datetime(session["start_date_time"]),
                                  session_end=parse_datetime(end))
    except (TariffError, ValueError) as exc:
        log.warning("charge %s: receipt without lines: %s", charge.public_id, exc)
        return {}
    return _priced(breakdown, charge, captured)


def _issue(charge: Charge, captured: int, net: int, rate: Decimal,
           details: dict[str, Any]) -> Receipt:
    """The charge's one receipt (issue_receipt gives back the existing one for its
    reference), sold by this deployment's seller."""
    cfg = current_app.config
    return issue_receipt(
        reference=f"charge:{charge.public_id}",
        series=cfg["OCPI_PARTY_ID"],
        language=charge.language,
        currency=charge.currency,
        total_minor=captured,
        net_minor=net,
        vat_rate=rate,
        payment_reference=charge.hold_id or "",
        card_brand=charge.card_brand,
        card_last4=charge.card_last4,
        details=details,
        seller={
            "name": cfg["SELLER_NAME"],
            "org_number": cfg["SELLER_ORG_NUMBER"],
            "vat_number": cfg["SELLER_VAT_NUMBER"],
            "address": cfg["SELLER_ADDRESS"],
        },
    )


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None
