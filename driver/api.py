"""The JSON API behind the driver's pages, for scripts and native apps too (docs/api.md).

Errors are {"error": {"code": ..., "message": ...}} with an HTTP status; `code` is stable,
`message` is in the requested language and says what to do.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import ROUND_FLOOR, Decimal
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request, url_for
from sqlalchemy import select

from charging import driver_actions, unpaid
from charging.connectors import (
    STARTABLE_EVSE_STATUSES,
    Limits,
    connector_limits,
    connector_power_kw,
    connector_tariff,
    evse_data,
    find_evse,
    other_evses,
    stop_at_minor,
)
from charging.errors import DriverError
from charging.models import Charge
from charging.states import ChargeStatus as S
from driver.messages import ERROR_CODES, error_text, status_text
from extensions import db
from i18n import asked_language, format_number, parse_amount, pick_language, texts
from input_guard import MAX_ARG_LENGTH, json_object, optional_string
from ocpi.models import OcpiEvse
from payments.models import Receipt
from payments.money import Money, to_minor
from payments.setup import current_gateway
from ratelimits import client_key, count_lookup, rate_limits

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
    return _error(exc.code, exc.http_status, exc.detail, exc.amount)


def _error(code: str, status: int, detail: str | None,
           amount: tuple[int, str] | None = None) -> tuple[Response, int]:
    language = pick_language()
    body: dict[str, Any] = {"code": code, "message": error_text(code, language)}
    if amount is not None:
        named = money_json(amount[0], amount[1], language)
        body["amount"] = named
        body["message"] = error_text(code, language, amount=named["formatted"] if named else "")
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
        limits = connector_limits(tariff, currency, power_kw=power, time_zone=location.time_zone)
        connectors.append({
            "id": str(connector["id"]),
            "standard": connector["standard"],
            "format": connector["format"],
            "power_type": connector["power_type"],
            "max_power_kw": format(power.quantize(Decimal("0.1")).normalize(), "f"),
            "tariff": (tariff_summary(tariff, language, power, location.time_zone,
                                      example_kwh=example_kwh(limits.stop_kwh))
                       if tariff else None),
            "hold": money_json(limits.hold_minor, currency, language),
            "minimum_cap": money_json(limits.min_cap_minor, currency, language),
            "limit": limit_json(limits, currency, language),
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


# The example total's energy when the hold allows it ("about 140 kr for 30 kWh").
EXAMPLE_KWH = Decimal(30)


def example_kwh(stop_kwh: Decimal | None) -> Decimal:
    """The example never promises more than charging stops at: 30 kWh, or the whole kWh
    the hold's stop point buys when that is less."""
    if stop_kwh is None or stop_kwh >= EXAMPLE_KWH:
        return EXAMPLE_KWH
    return max(stop_kwh.to_integral_value(rounding=ROUND_FLOOR), Decimal(1))


def limit_json(limits: Limits, currency: str, language: str,
               cap_minor: int | None = None) -> dict[str, Any]:
    """The hold, where charging stops by itself, and the caps a driver may type, with the
    sentences the charger page shows (also as the driver types a cap)."""
    t = texts(language)
    hold = Money(limits.hold_minor, currency).format(language)
    stop = Money(limits.stop_at_minor, currency).format(language)
    if limits.stop_kwh is not None and limits.stop_kwh > 0:
        stops = t.gettext("Charging stops by itself at %(stop)s (about %(kwh)s kWh at this "
                          "charger).", stop=stop,
                          kwh=format_number(limits.stop_kwh.to_integral_value(
                              rounding=ROUND_FLOOR), language))
    else:
        stops = t.gettext("Charging stops by itself at %(stop)s.", stop=stop)
    cap_state, cap_message = "none", None
    if cap_minor is not None and cap_minor < limits.min_cap_minor:
        cap_state = "too_low"
        cap_message = error_text("cap_too_low", language, amount=Money(
            limits.min_cap_minor, currency).format(language))
    elif cap_minor is not None and cap_minor > limits.max_cap_minor:
        cap_state = "above_max"
        cap_message = t.gettext("We never hold more than %(amount)s here, so that is your "
                                "limit.", amount=hold)
    elif cap_minor is not None:
        cap_state = "ok"
    return {
        "hold": money_json(limits.hold_minor, currency, language),
        "stop_at": money_json(limits.stop_at_minor, currency, language),
        "stop_kwh": format(limits.stop_kwh, "f") if limits.stop_kwh is not None else None,
        "min_cap": money_json(limits.min_cap_minor, currency, language),
        "max_cap": money_json(limits.max_cap_minor, currency, language),
        "hold_sentence": t.gettext("We hold %(amount)s on your card.", amount=hold),
        "stop_sentence": stops,
        "cap": {"state": cap_state, "message": cap_message},
    }


def tariff_summary(tariff: dict[str, Any], language: str, power_kw: Decimal,
                   time_zone: str, example_kwh: Decimal = EXAMPLE_KWH) -> dict[str, Any]:
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
                         power_kw=power_kw, example_kwh=example_kwh)
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


@bp.get("/limits")
def limits() -> Response:
    """The limits at a connector for the cap the driver is typing (?evse_id=&connector_id=
    &max_amount=): what will be held, where charging stops, and whether the cap is taken."""
    args = request.args
    location, connector = _connector_at(args.get("evse_id", "")[:MAX_ARG_LENGTH["evse_id"]],
                                        args.get("connector_id"))
    tariff = connector_tariff(location, connector)
    currency = (tariff or {}).get("currency", "SEK").upper()
    typed = args.get("max_amount", "").strip()[:32]
    cap = _major_amount(typed, currency, pick_language()) if typed else None
    found_limits = connector_limits(tariff, currency, power_kw=connector_power_kw(connector),
                                    time_zone=location.time_zone, driver_cap_minor=cap)
    return jsonify(limit_json(found_limits, currency, pick_language(), cap))


# --- Charges ----------------------------------------------------------------------------


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
        "limit": charge_limit_json(charge, language),
        "end": end_json(charge, language),
        "receipt_url": receipt_url,
        "page_url": url_for("driver.charge_page", public_id=charge.public_id, _external=True),
        "updated_at": _iso(charge.updated_at),
    }


def charge_limit_json(charge: Charge, language: str) -> dict[str, Any] | None:
    """How close the cost is to where charging stops by itself, while it can still run."""
    if charge.state not in {S.AUTHORIZED, S.STARTING, S.CHARGING, S.STOPPING}:
        return None
    stop = stop_at_minor(charge.hold_minor)
    cost = to_minor(charge.cost_incl_vat, charge.currency) if charge.cost_incl_vat else 0
    percent = min(100, cost * 100 // stop) if stop > 0 else 100
    t = texts(language)
    return {
        "stop_at": money_json(stop, charge.currency, language),
        "percent": percent,
        "text": t.gettext("Charging stops by itself at %(stop)s: %(percent)s %% of it used.",
                          stop=Money(stop, charge.currency).format(language),
                          percent=format_number(percent, language)),
    }


# Why charging ended (charge.end_reason, set from the timeline when the session ends) as
# the driver's reason code: who or what ended it.
END_REASONS = {
    "DRIVER_STOPPED": "driver", "LIMIT_REACHED": "limit", "OPERATOR_STOPPED": "operator",
    "CPO_ENDED": "car", "SESSION_INVALID": "charger", "CPO_SILENT": "charger",
    "CAPTURE_DEADLINE": "time",
}


def end_json(charge: Charge, language: str) -> dict[str, Any] | None:
    """Why it ended and what was charged, once it has: the driver stopped, the car was full
    (the CPO ended the session by itself), the limit near the hold, the operator, the
    charger failed (an invalid or silent session, or a start that failed)."""
    t = texts(language)
    never_started = charge.end_reason is None and (charge.failure_code or "").startswith("START")
    if charge.state == S.START_FAILED or (charge.state == S.RELEASED and never_started):
        code = "start_failed"
    elif charge.end_reason and charge.state in {S.ENDED, S.CAPTURED, S.REFUNDED, S.RELEASED}:
        code = END_REASONS.get(charge.end_reason, "charger")
    else:
        return None
    held = Money(charge.hold_minor, charge.currency).format(language)
    messages = {
        "driver": t.gettext("You stopped charging."),
        "limit": t.gettext("Charging stopped by itself: the cost reached the limit of the "
                           "%(amount)s held on your card.", amount=held),
        "operator": t.gettext("The operator stopped charging."),
        "car": t.gettext("The car or the charger ended charging, usually because the "
                         "battery was full or the cable was unplugged."),
        "charger": t.gettext("The charger stopped reporting or reported an error, so the "
                             "charge was ended. You pay only for what it measured."),
        "time": t.gettext("Charging was ended because a card hold lasts only so long."),
        "start_failed": t.gettext("The charger did not start. Nothing was charged."),
    }
    charged = None
    if charge.captured_minor is not None:
        charged = t.gettext("Charged: %(amount)s for %(kwh)s kWh.",
                            amount=Money(charge.captured_minor, charge.currency).format(language),
                            kwh=format_number(charge.energy_kwh or Decimal(0), language, 2))
    elif charge.state == S.RELEASED:
        charged = t.gettext("Nothing was charged.")
    return {"reason": code, "message": messages[code], "charged": charged}


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
        cap = _major_amount(str(max_amount)[:32], _cap_currency(evse_id, connector_id),
                            language)
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


def _connector_at(evse_id: str, wanted: str | None) -> tuple[Any, dict[str, Any]]:
    """The location and connector (the first, when none is named) of an EVSE."""
    found = find_evse(evse_id) if evse_id else None
    if found is None:
        raise ApiError("unknown_charger", 404)
    evse_row, location, _party = found
    evse = evse_data(location, evse_row.evse_uid)
    connector = next((c for c in evse.get("connectors") or []
                      if not wanted or str(c["id"]) == wanted), None)
    if connector is None:
        raise ApiError("unknown_connector", 404)
    return location, connector


def _cap_currency(evse_id: str, connector_id: str | None) -> str:
    location, connector = _connector_at(evse_id, connector_id)
    return str((connector_tariff(location, connector) or {}).get("currency", "SEK")).upper()


def _major_amount(text: str, currency: str, language: str) -> int:
    """A typed cap ('200', '200 kr', '1.000,50' in German, '1,000.50' in English) as minor
    units of the tariff's currency."""
    amount = parse_amount(text, currency, language)
    if amount is None or not amount.is_finite() or amount <= 0 or amount > 100000:
        raise ApiError("invalid_amount", 400, text)
    return to_minor(amount, currency)


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
