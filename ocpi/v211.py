"""OCPI 2.1.1, translated at the edge: CPOs still on 2.1.1 are spoken to in their shapes,
and what they send is turned into the 2.2.1 objects the rest of ScanCharge knows.

What 2.1.1 lacks, and how the translation fills it:
- No owner in Locations, Tariffs, Sessions or CDRs: the country_code/party_id of the URL
  (receivers) or of the connection (pulls) is used.
- No VAT anywhere: Tariff prices and `total_cost` exclude VAT (mod_tariffs, mod_sessions,
  mod_cdrs), so the connection's VAT rate (OCPI_211_VAT_PERCENT) is added to every price
  component and `total_cost` becomes {excl_vat, incl_vat}.
- No `authorization_reference` and no AD_HOC_USER Token type: our Token goes out as type
  OTHER with `auth_id` equal to its uid, and Sessions and CDRs are matched by `auth_id`.
- No `timeout` in the CommandResponse: ScanCharge's own deadline applies.
- A Session PATCH replaces `charging_periods` (2.2.1 appends them).
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from flask import current_app

from ocpi.modules.commands import CommandResult, CommandResultType, CommandType
from ocpi.modules.common import MAX_AMOUNT
from ocpi.transport import OcpiError, StatusCode

VERSION = "2.1.1"

# Modules ScanCharge implements for 2.1.1 (no interface roles in 2.1.1).
OUR_ENDPOINTS = ("credentials", "locations", "tariffs", "sessions", "cdrs", "commands", "tokens")

# 2.1.1 CommandResponseType values, as the 2.2.1 CommandResultType the domain understands.
RESULT_211: dict[str, CommandResultType] = {
    "ACCEPTED": CommandResultType.ACCEPTED,
    "REJECTED": CommandResultType.REJECTED,
    "TIMEOUT": CommandResultType.TIMEOUT,
    "NOT_SUPPORTED": CommandResultType.NOT_SUPPORTED,
    "UNKNOWN_SESSION": CommandResultType.FAILED,
}


def vat_percent() -> Decimal:
    return Decimal(str(current_app.config["OCPI_211_VAT_PERCENT"]))


def _require(data: Any, what: str, *fields: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise OcpiError(StatusCode.INVALID_PARAMETERS, f"expected a 2.1.1 {what} object")
    missing = [f for f in fields if data.get(f) in (None, "")]
    if missing:
        raise OcpiError(
            StatusCode.INVALID_PARAMETERS,
            f"Invalid 2.1.1 {what}: missing " + ", ".join(missing),
        )
    return data


def _price(excl: Any) -> dict[str, Any] | None:
    if excl is None:
        return None
    if isinstance(excl, bool) or not isinstance(excl, int | Decimal):
        # A JSON number (json_body reads fractions as Decimal), never "12.5".
        raise OcpiError(StatusCode.INVALID_PARAMETERS,
                        f"Invalid 2.1.1 total_cost: expected a number, got {excl!r}"[:200])
    amount = Decimal(excl)
    if not amount.is_finite() or abs(amount) >= MAX_AMOUNT:
        raise OcpiError(StatusCode.INVALID_PARAMETERS, "Invalid 2.1.1 total_cost: out of range")
    incl = (amount * (100 + vat_percent()) / 100).quantize(Decimal("0.0001"), ROUND_HALF_UP)
    return {"excl_vat": amount, "incl_vat": incl.normalize() if incl else incl}


# --- Credentials ------------------------------------------------------------------------


def credentials_to_canonical(data: Any) -> dict[str, Any]:
    """A 2.1.1 Credentials object (one party, no roles) as 2.2.1 Credentials of a CPO."""
    body = _require(data, "Credentials", "token", "url", "party_id", "country_code",
                    "business_details")
    return {
        "token": body["token"],
        "url": body["url"],
        "roles": [{
            "role": "CPO",
            "business_details": body["business_details"],
            "party_id": body["party_id"],
            "country_code": body["country_code"],
        }],
    }


def credentials_from_canonical(credentials: dict[str, Any]) -> dict[str, Any]:
    """Our 2.2.1 Credentials in the 2.1.1 shape."""
    role = credentials["roles"][0]
    return {
        "token": credentials["token"],
        "url": credentials["url"],
        "business_details": role["business_details"],
        "party_id": role["party_id"],
        "country_code": role["country_code"],
    }


# --- Locations and Tariffs --------------------------------------------------------------


def location_to_canonical(data: Any, country_code: str, party_id: str) -> dict[str, Any]:
    body = _require(data, "Location", "id", "address", "city", "country", "coordinates",
                    "last_updated")
    location = {
        key: value for key, value in body.items()
        if key not in {"type", "evses", "related_locations", "opening_times", "images",
                       "energy_mix"}
    }
    location.update(country_code=country_code, party_id=party_id, publish=True)
    location.setdefault("time_zone", "UTC")
    if body.get("evses") is not None:
        if not isinstance(body["evses"], list):
            raise OcpiError(StatusCode.INVALID_PARAMETERS, "Invalid 2.1.1 Location: bad evses")
        location["evses"] = [evse_to_canonical(evse) for evse in body["evses"]]
    return location


def evse_to_canonical(data: Any) -> dict[str, Any]:
    evse = dict(_require(data, "EVSE", "uid", "status", "connectors", "last_updated"))
    if not isinstance(evse["connectors"], list):
        raise OcpiError(StatusCode.INVALID_PARAMETERS, "Invalid 2.1.1 EVSE: bad connectors")
    evse["connectors"] = [connector_to_canonical(c) for c in evse["connectors"]]
    return evse


def connector_to_canonical(data: Any) -> dict[str, Any]:
    body = _require(data, "Connector", "id", "standard", "format", "power_type", "voltage",
                    "amperage", "last_updated")
    connector = {k: v for k, v in body.items() if k not in {"voltage", "amperage", "tariff_id"}}
    connector["max_voltage"] = body["voltage"]
    connector["max_amperage"] = body["amperage"]
    if body.get("tariff_id"):
        connector["tariff_ids"] = [body["tariff_id"]]
    return connector


def tariff_to_canonical(data: Any, country_code: str, party_id: str, *,
                        strict: bool = True) -> dict[str, Any]:
    """A 2.1.1 Tariff as the stored 2.2.1 one. `strict=False` takes prices written as
    text (converted to numbers, so never stored as text): only for a CDR's copy of its
    tariffs, where the 2.1.1 spec's own CDR example writes "price": "2.00"."""
    from tariffs import TariffError, convert_211

    if strict:
        _numbers_are_numbers(data)
    try:
        tariff = convert_211(data, country_code=country_code, party_id=party_id,
                             vat=vat_percent())
    except TariffError as exc:
        raise OcpiError(StatusCode.INVALID_PARAMETERS, f"Invalid 2.1.1 Tariff: {exc}") from exc
    canonical = tariff.to_json()
    canonical["type"] = "AD_HOC_PAYMENT"  # 2.1.1 has one tariff per connector: the one to pay
    return canonical


def _numbers_are_numbers(tariff: Any) -> None:
    # convert_211 reads "0.25" as a number (it also serves the tariff CLI); on the wire a
    # price is a JSON number, as everywhere else (docs/ocpi.md).
    elements = tariff.get("elements") if isinstance(tariff, dict) else None
    for element in elements if isinstance(elements, list) else []:
        if not isinstance(element, dict):
            continue
        numbers = [pc.get("price") for pc in element.get("price_components") or []
                   if isinstance(pc, dict)]
        restrictions = element.get("restrictions")
        if isinstance(restrictions, dict):
            numbers += [restrictions.get(k) for k in ("min_kwh", "max_kwh", "min_power",
                                                      "max_power")]
        for value in numbers:
            if value is not None and (isinstance(value, bool)
                                      or not isinstance(value, int | float | Decimal)):
                raise OcpiError(StatusCode.INVALID_PARAMETERS,
                                f"Invalid 2.1.1 Tariff: {value!r} is not a number"[:200])


# --- Sessions and CDRs ------------------------------------------------------------------


def _cdr_token(auth_id: str, country_code: str, party_id: str) -> dict[str, Any]:
    # The eMSP's token as the CPO saw it; our 2.1.1 Tokens carry auth_id == uid.
    return {"country_code": country_code, "party_id": party_id, "uid": auth_id,
            "type": "OTHER", "contract_id": auth_id}


def _place(location: Any) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """The Location embedded in a 2.1.1 Session or CDR, with the one EVSE and Connector."""
    loc = _require(location, "Location", "id")
    evses = loc.get("evses") or []
    evse = evses[0] if isinstance(evses, list) and evses else {}
    if not isinstance(evse, dict):
        raise OcpiError(StatusCode.INVALID_PARAMETERS, "Invalid 2.1.1 Location: bad evses")
    connectors = evse.get("connectors") or []
    connector = connectors[0] if isinstance(connectors, list) and connectors else {}
    if not isinstance(connector, dict):
        raise OcpiError(StatusCode.INVALID_PARAMETERS, "Invalid 2.1.1 EVSE: bad connectors")
    return loc, evse, connector


def session_to_canonical(data: Any, country_code: str, party_id: str) -> dict[str, Any]:
    body = _require(data, "Session", "id", "start_datetime", "kwh", "auth_id", "location",
                    "currency", "status", "last_updated")
    loc, evse, connector = _place(body["location"])
    ours = current_app.config
    session = {
        "country_code": country_code,
        "party_id": party_id,
        "id": body["id"],
        "start_date_time": body["start_datetime"],
        "kwh": body["kwh"],
        "cdr_token": _cdr_token(body["auth_id"], ours["OCPI_COUNTRY_CODE"],
                                ours["OCPI_PARTY_ID"]),
        "auth_method": body.get("auth_method") or "AUTH_REQUEST",
        "location_id": loc["id"],
        "evse_uid": evse.get("uid", "#NA"),
        "connector_id": connector.get("id", "#NA"),
        "currency": body["currency"],
        "status": body["status"],
        "last_updated": body["last_updated"],
        "charging_periods": body.get("charging_periods") or [],
    }
    for source, target in (("end_datetime", "end_date_time"), ("meter_id", "meter_id")):
        if body.get(source) is not None:
            session[target] = body[source]
    if body.get("total_cost") is not None:
        session["total_cost"] = _price(body["total_cost"])
    return session


def session_patch_to_canonical(patch: Any) -> dict[str, Any]:
    body = _require(patch, "Session PATCH", "last_updated")
    renames = {"start_datetime": "start_date_time", "end_datetime": "end_date_time"}
    canonical: dict[str, Any] = {}
    for key, value in body.items():
        if key == "total_cost":
            canonical[key] = _price(value)
        elif key == "auth_id":
            ours = current_app.config
            canonical["cdr_token"] = _cdr_token(value, ours["OCPI_COUNTRY_CODE"],
                                                ours["OCPI_PARTY_ID"])
        elif key == "location":
            loc, evse, connector = _place(value)
            canonical.update(location_id=loc["id"], evse_uid=evse.get("uid", "#NA"),
                             connector_id=connector.get("id", "#NA"))
        else:
            canonical[renames.get(key, key)] = value
    return canonical


def cdr_to_canonical(data: Any, country_code: str, party_id: str,
                     party_pk: int | None = None) -> dict[str, Any]:
    body = _require(data, "CDR", "id", "start_date_time", "stop_date_time", "auth_id",
                    "location", "currency", "charging_periods", "total_cost", "total_energy",
                    "total_time", "last_updated")
    loc, evse, connector = _place(body["location"])
    ours = current_app.config
    cdr = {
        "country_code": country_code,
        "party_id": party_id,
        "id": body["id"],
        "start_date_time": body["start_date_time"],
        "end_date_time": body["stop_date_time"],
        "cdr_token": _cdr_token(body["auth_id"], ours["OCPI_COUNTRY_CODE"],
                                ours["OCPI_PARTY_ID"]),
        "auth_method": body.get("auth_method") or "AUTH_REQUEST",
        "cdr_location": {
            "id": loc["id"],
            "name": loc.get("name"),
            "address": loc.get("address", ""),
            "city": loc.get("city", ""),
            "postal_code": loc.get("postal_code"),
            "country": loc.get("country", ""),
            "coordinates": loc.get("coordinates"),
            "evse_uid": evse.get("uid", "#NA"),
            "evse_id": evse.get("evse_id") or evse.get("uid", "#NA"),
            "connector_id": connector.get("id", "#NA"),
            "connector_standard": connector.get("standard", "IEC_62196_T2"),
            "connector_format": connector.get("format", "SOCKET"),
            "connector_power_type": connector.get("power_type", "AC_3_PHASE"),
        },
        "currency": body["currency"],
        "charging_periods": body["charging_periods"],
        "total_cost": _price(body["total_cost"]),
        "total_energy": body["total_energy"],
        "total_time": body["total_time"],
        "last_updated": body["last_updated"],
    }
    cdr["cdr_location"] = {k: v for k, v in cdr["cdr_location"].items() if v is not None}
    for field in ("meter_id", "total_parking_time", "remark"):
        if body.get(field) is not None:
            cdr[field] = body[field]
    if body.get("tariffs"):
        if not isinstance(body["tariffs"], list):
            raise OcpiError(StatusCode.INVALID_PARAMETERS, "Invalid 2.1.1 CDR: bad tariffs")
        try:
            for tariff in body["tariffs"]:
                _numbers_are_numbers(tariff)
        except OcpiError:
            from ocpi import notices

            notices.deviation(party_pk, "CDR_TARIFF_NUMBER_AS_TEXT",
                              f"CDR {str(body['id'])[:39]}: a tariff price is text, not a "
                              "JSON number (as in the 2.1.1 spec's example); read as a number")
        cdr["tariffs"] = [tariff_to_canonical(t, country_code, party_id, strict=False)
                          for t in body["tariffs"]]
    return cdr


# --- What we send -----------------------------------------------------------------------


def token_from_canonical(token: dict[str, Any]) -> dict[str, Any]:
    """Our Token in 2.1.1: type OTHER (2.1.1 has no AD_HOC_USER), auth_id = uid."""
    converted = {
        "uid": token["uid"],
        "type": "OTHER" if token["type"] not in {"RFID", "OTHER"} else token["type"],
        "auth_id": token["uid"],
        "issuer": token["issuer"],
        "valid": token["valid"],
        "whitelist": token["whitelist"],
        "last_updated": token["last_updated"],
    }
    if token.get("language"):
        converted["language"] = token["language"]
    return converted


def command_body(command: CommandType, body: dict[str, Any]) -> dict[str, Any]:
    """A 2.2.1 command body in the 2.1.1 shape (no authorization_reference, no connector)."""
    if command == CommandType.START_SESSION:
        converted = {"response_url": body["response_url"],
                     "token": token_from_canonical(body["token"]),
                     "location_id": body["location_id"]}
        if body.get("evse_uid"):
            converted["evse_uid"] = body["evse_uid"]
        return converted
    return body


def command_response(data: Any) -> tuple[str, str | None]:
    """(result, message) of a 2.1.1 CommandResponse."""
    body = _require(data, "CommandResponse", "result")
    return str(body["result"]), None


def command_result(data: Any) -> CommandResult:
    """The asynchronous result: in 2.1.1 a CommandResponse object."""
    body = _require(data, "CommandResult", "result")
    result = RESULT_211.get(str(body["result"]).upper())
    if result is None:
        raise OcpiError(StatusCode.INVALID_PARAMETERS,
                        f"Invalid 2.1.1 CommandResponse: result {body['result']!r}")
    return CommandResult(result=result)
