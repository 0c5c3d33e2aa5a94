"""The receipt of a captured charge: the facts of the charge from its CDR, the money from
the capture, the seller from configuration."""

from __future__ import annotations

import json
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from flask import current_app

from charging.models import Charge
from charging.service import time_zone_of
from ocpi.models import OcpiCdr
from payments.models import Receipt
from payments.receipts import issue_receipt


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
    cfg = current_app.config
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
    }
    return issue_receipt(
        reference=f"charge:{charge.public_id}",
        series=cfg["OCPI_PARTY_ID"],
        language=charge.language,
        currency=charge.currency,
        total_minor=captured,
        net_minor=net,
        vat_rate=vat_rate_of(data),
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
