"""The JSON API behind the driver's pages, for scripts and native apps too (docs/api.md).

Errors are {"error": {"code": ..., "message": ...}} with an HTTP status; `code` is stable,
`message` is in the requested language and says what to do.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, url_for
from sqlalchemy import select

from charging import driver_actions, unpaid
from charging.connectors import (
    STARTABLE_EVSE_STATUSES,
    connector_power_kw,
    connector_tariff,
    evse_data,
    find_evse,
    hold_amount,
    minimum_price_minor,
    other_evses,
)
from charging.errors import DriverError
from charging.models import Charge
from charging.states import ChargeStatus as S
from driver.messages import ERROR_CODES, error_text, status_text
from extensions import db
from i18n import asked_language, pick_language
from input_guard import MAX_ARG_LENGTH, json_object, optional_string
from ocpi.models import OcpiEvse
from payments.models import Receipt
from payments.money import Money, to_minor
from payments.setup import current_gateway
from ratelimits import client_key, rate_limits

bp = Blueprint("api", __name__, url_prefix="/api/v1")


class ApiError(Exception):
    def __init__(self, code: str, http_status: int, detail: str | None = None) -> None:
        super().__init__(code)
        self.code = code
        self.http_status = http_status
        self.detail = detail


@bp.errorhandler(ApiError)
def _api_error(exc: ApiError) -> tuple[Response, int]:
    return _error(exc.code, exc.http_status, exc.detail)


@bp.errorhandler(DriverError)
def _driver_error(exc: DriverError) -> tuple[Response, int]:
    return _error(exc.code, exc.http_status, exc.detail)


def _error(code: str, status: int, detail: str | None) -> tuple[Response, int]:
    language = pick_language()
    body: dict[str, Any] = {"code": code, "message": error_text(code, language)}
    if detail:
        body["detail"] = detail
    return jsonify(error=body), status


# Failures the driver can act on; the rest (cost above hold, capture problems) are the
# operator's, shown on the dashboard.
DRIVER_FAILURES = {code for code in ERROR_CODES if code.isupper()}


def money_json(amount_minor: int | None, currency: str, language: str) -> dict[str, Any] | None:
    if amount_minor is None:
        return None
    money = Money(amount_minor, currency)
    return {"amount_minor": amount_minor, "currency": currency,
            "formatted": money.format(language)}


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


# --- Chargers ---------------------------------------------------------------------------


def charger_info(evse_id: str, language: str) -> dict[str, Any]:
    found = find_evse(evse_id)
    if found is None:
        raise ApiError("unknown_charger", 404)
    evse_row, location, party = found
    evse = evse_data(location, evse_row.evse_uid)
    data = location.data
    connectors = []
    for connector in evse.get("connectors") or []:
        tariff = connector_tariff(location, connector)
        currency = (tariff or {}).get("currency", "SEK").upper()
        power = connector_power_kw(connector)
        hold = hold_amount(tariff, currency, power_kw=power, time_zone=location.time_zone)
        connectors.append({
            "id": str(connector["id"]),
            "standard": connector["standard"],
            "format": connector["format"],
            "power_type": connector["power_type"],
            "max_power_kw": format(power.quantize(Decimal("0.1")).normalize(), "f"),
            "tariff": (tariff_summary(tariff, language, power, location.time_zone)
                       if tariff else None),
            "hold": money_json(hold, currency, language),
            "minimum_cap": money_json(max(minimum_price_minor(tariff, currency), 100),
                                      currency, language),
        })
    others = [{"evse_id": printed, "status": status, "status_text": status_text(status, language),
               "url": url_for("driver.charger_page", evse_id=printed)}
              for printed, status in other_evses(location, evse_row.evse_uid)]
    return {
        "evse_id": evse.get("evse_id") or evse_row.evse_uid,
        "status": evse_row.status,
        "status_text": status_text(evse_row.status, language),
        "available": evse_row.status in STARTABLE_EVSE_STATUSES,
        "location": {
            "name": data.get("name"),
            "address": data.get("address"),
            "postal_code": data.get("postal_code"),
            "city": data.get("city"),
            "time_zone": data.get("time_zone"),
            "operator": (data.get("operator") or {}).get("name") or party.name,
        },
        "connectors": connectors,
        # The site's other chargers that can be started now, for when this one cannot.
        "other_evses": others,
        "payment": current_gateway().page_config(),
    }


def tariff_summary(tariff: dict[str, Any], language: str, power_kw: Decimal,
                   time_zone: str) -> dict[str, Any]:
    """The tariff in the driver's words (the engine's `describe`: what applies now, what
    changes later today, an example total, VAT included) and its unrestricted components."""
    currency = tariff["currency"].upper()
    parts = []
    for element in tariff.get("elements") or []:
        if element.get("restrictions"):
            continue
        for component in element["price_components"]:
            price = Decimal(str(component["price"]))
            vat = Decimal(str(component.get("vat") or 0))
            incl = price * (100 + vat) / 100
            parts.append({
                "type": component["type"],
                "price_incl_vat": money_json(to_minor(incl, currency), currency, language),
                "vat_percent": str(vat.normalize()),
            })
        break
    alt = {t["language"]: t["text"] for t in tariff.get("tariff_alt_text") or []}
    from tariffs import TariffError, describe

    try:
        words = describe(tariff, language=language, at=datetime.now(UTC), time_zone=time_zone,
                         power_kw=power_kw)
        text: dict[str, Any] | None = {
            "summary": words.summary, "changes": list(words.changes),
            "example": words.example, "limits": list(words.limits),
            "structured": words.structured,
        }
    except (TariffError, ValueError):
        text = None
    return {
        "text": text,
        "id": tariff["id"],
        "currency": currency,
        "type": tariff.get("type"),
        "components": parts,
        "alt_text": alt.get(language) or alt.get("en") or next(iter(alt.values()), None),
    }


@bp.get("/chargers/<path:evse_id>")
def charger(evse_id: str) -> Response:
    return jsonify(charger_info(evse_id, pick_language()))


# --- Charges ----------------------------------------------------------------------------


def count_lookup() -> None:
    """A look-up by charge id or receipt link: counted per client, so links are not guessed
    (they are unguessable) nor polled without end by one client."""
    rate_limits().hit("lookups_per_client", client_key())


def _charge(public_id: str) -> Charge:
    count_lookup()
    charge = db.session.scalar(select(Charge).where(Charge.public_id == public_id))
    if charge is None:
        raise ApiError("unknown_charge", 404)
    return charge


def charge_json(charge: Charge, language: str | None = None) -> dict[str, Any]:
    language = language or charge.language
    elapsed = None
    if charge.session_started_at:
        end = charge.session_ended_at or datetime.now(charge.session_started_at.tzinfo)
        elapsed = max(0, int((end - charge.session_started_at).total_seconds()))
    cost = None
    if charge.cost_incl_vat is not None:
        cost = money_json(to_minor(charge.cost_incl_vat, charge.currency), charge.currency,
                          language)
    receipt_url = None
    if charge.receipt_pk:
        receipt = db.session.get(Receipt, charge.receipt_pk)
        if receipt is not None:
            receipt_url = url_for("driver.receipt", token=receipt.public_token, _external=True)
    return {
        "id": charge.public_id,
        "status": charge.status,
        "status_text": status_text(charge.status, language),
        "evse_id": charge.evse_id,
        "connector_id": charge.connector_id,
        "hold": money_json(charge.hold_minor, charge.currency, language),
        "captured": money_json(charge.captured_minor, charge.currency, language),
        "energy_kwh": format(charge.energy_kwh or Decimal(0), "f"),
        "elapsed_seconds": elapsed,
        "cost_so_far": cost,
        "can_stop": charge.state == S.CHARGING,
        "can_cancel": charge.state in {S.CREATED, S.AUTHORIZED},
        "failure": (
            {"code": charge.failure_code, "message": error_text(charge.failure_code, language),
             "detail": charge.failure_detail}
            if charge.failure_code
            and (charge.failure_code in DRIVER_FAILURES
                 or charge.failure_code.startswith(("START_", "STOP_")))
            else None
        ),
        "receipt_url": receipt_url,
        "page_url": url_for("driver.charge_page", public_id=charge.public_id, _external=True),
        "updated_at": _iso(charge.updated_at),
    }


@bp.post("/charges")
def create_charge() -> Response:
    # Every attempt counts per client, a bad one too: each could otherwise place a hold.
    key = client_key()
    rate_limits().hit("charges_per_client", key)
    body = json_object()
    evse_id = optional_string(body, "evse_id", MAX_ARG_LENGTH["evse_id"])
    if not evse_id:
        raise ApiError("invalid_request", 400, "JSON body with evse_id is required")
    connector_id = body.get("connector_id")
    if isinstance(connector_id, int) and not isinstance(connector_id, bool):
        connector_id = str(connector_id)  # OCPI connector ids are strings; apps send 1
    connector_id = optional_string({"connector_id": connector_id}, "connector_id", 36)
    language = pick_language(optional_string(body, "language", 8))
    email = body.get("email")
    if email is not None and (not isinstance(email, str) or "@" not in email or len(email) > 254):
        raise ApiError("invalid_email", 400)
    cap = body.get("max_amount_minor")
    if cap is not None and (not isinstance(cap, int) or isinstance(cap, bool) or cap <= 0):
        raise ApiError("invalid_request", 400, "max_amount_minor must be a positive integer")
    max_amount = body.get("max_amount")
    if isinstance(max_amount, bool) or not isinstance(max_amount, str | int | float | None):
        raise ApiError("invalid_request", 400, "max_amount must be a string such as '200 kr'")
    if cap is None and str(max_amount or "").strip():
        cap = _major_amount(str(max_amount)[:32])
    # Per EVSE only holds placed count (a refusal places none), so one client's errors
    # cannot use up a charger; checked here, counted once the hold exists.
    evse_key = OcpiEvse.normalise_evse_id(evse_id)[:64]
    rate_limits().check("charges_per_evse", evse_key)
    charge, hold, created = unpaid.create_or_resume(
        evse_id,
        connector_id,
        language,
        email,
        max_amount_minor=cap,
        client_key=key,
    )
    if created:
        rate_limits().count("charges_per_evse", evse_key)
    result = charge_json(charge, language)
    result["payment"] = {
        **current_gateway().page_config(),
        "payment_intent": hold.id,
        "client_secret": hold.client_secret,
        "return_url": url_for("driver.charge_page", public_id=charge.public_id, _external=True),
    }
    # 200: the client's open unpaid charge for the same request (charging/unpaid.py).
    response = jsonify(result)
    response.status_code = 201 if created else 200
    from driver import remembered

    remembered.remember(response, charge.public_id)
    return response


def charge_language(charge: Charge) -> str:
    """?lang= when given, else the language the driver chose when paying."""
    return asked_language(charge.language)


def _major_amount(text: str) -> int:
    """'200', '200 kr', '199,50' as minor units of SEK-like currencies (two decimals)."""
    cleaned = text.lower().replace("kr", "").replace("sek", "").replace("\u00a0", "")
    cleaned = cleaned.replace(" ", "").replace(",", ".")
    try:
        amount = Decimal(cleaned)
    except ArithmeticError as exc:
        raise ApiError("invalid_amount", 400, text) from exc
    if not amount.is_finite() or amount <= 0 or amount > 100000:
        raise ApiError("invalid_amount", 400, text)
    return to_minor(amount, "SEK")


@bp.get("/charges/<public_id>")
def get_charge(public_id: str) -> Response:
    charge = _charge(public_id)
    return jsonify(charge_json(charge, charge_language(charge)))


@bp.post("/charges/<public_id>/stop")
def stop_charge(public_id: str) -> tuple[Response, int]:
    charge = driver_actions.request_stop(_charge(public_id).pk)
    return jsonify(charge_json(charge, charge_language(charge))), 202


@bp.post("/charges/<public_id>/cancel")
def cancel_charge(public_id: str) -> Response:
    charge = driver_actions.cancel(_charge(public_id).pk)
    return jsonify(charge_json(charge, charge_language(charge)))


@bp.get("/charges/<public_id>/receipt")
def charge_receipt(public_id: str) -> Response:
    charge = _charge(public_id)
    if not charge.receipt_pk:
        raise ApiError("no_receipt_yet", 404)
    receipt = db.session.get(Receipt, charge.receipt_pk)
    if receipt is None:
        raise ApiError("no_receipt_yet", 404)
    language = pick_language()
    return jsonify(receipt_json(receipt, language))


def receipt_json(receipt: Receipt, language: str) -> dict[str, Any]:
    return {
        "number": receipt.display_number,
        "issued_at": _iso(receipt.issued_at),
        "total": money_json(receipt.total_minor, receipt.currency, language),
        "net": money_json(receipt.net_minor, receipt.currency, language),
        "vat": money_json(receipt.vat_minor, receipt.currency, language),
        "vat_rate_percent": str(receipt.vat_rate.normalize()),
        "payment_reference": receipt.payment_reference,
        "card": {"brand": receipt.card_brand, "last4": receipt.card_last4},
        "details": receipt.details,
        "seller": receipt.seller,
        "url": url_for("driver.receipt", token=receipt.public_token, _external=True),
    }


def evse_exists(evse_id: str) -> bool:
    return db.session.scalar(
        select(OcpiEvse.pk).where(OcpiEvse.evse_id == OcpiEvse.normalise_evse_id(evse_id))
    ) is not None


__all__ = ["bp", "current_app"]
