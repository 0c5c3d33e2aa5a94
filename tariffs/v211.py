"""An OCPI 2.1.1 Tariff read as a 2.2.1 one, so the same engine prices it."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from tariffs.model import Tariff, TariffError, read

_RESTRICTIONS_211 = ("start_time", "end_time", "start_date", "end_date", "min_kwh", "max_kwh",
                     "min_power", "max_power", "min_duration", "max_duration", "day_of_week")


def _number(value: Any, where: str) -> Decimal:
    if isinstance(value, bool) or value is None:
        raise TariffError(f"{where}: expected a number, got {value!r}")
    if isinstance(value, float):
        return Decimal(repr(value))  # the shortest text that reads back as this float
    try:
        return Decimal(value)
    except Exception:
        raise TariffError(f"{where}: expected a number, got {value!r}") from None


def convert_211(
    tariff_211: Mapping[str, Any],
    *,
    country_code: str | None = None,
    party_id: str | None = None,
    vat: Decimal | None = None,
) -> Tariff:
    """An OCPI 2.1.1 Tariff as a 2.2.1 Tariff, so the same engine prices it.

    2.1.1 has no owner fields (country_code/party_id: given here, else kept from the object,
    else "ZZ"/"ZZZ"), no VAT (give `vat` to set it on every component; absent means no
    VAT, as in 2.2.1), no min/max price, no tariff type, no current or reservation
    restrictions. Its "first element with matching restrictions is used" is read per
    dimension as 2.2.1 clarified, else its own complex example would charge only the start
    fee. Unknown fields are dropped.
    """
    if not isinstance(tariff_211, Mapping):
        raise TariffError("expected a 2.1.1 Tariff object")
    for required in ("id", "currency", "elements", "last_updated"):
        if tariff_211.get(required) in (None, "", []):
            raise TariffError(f"2.1.1 Tariff: {required} is required (mod_tariffs 3.1)")
    elements = []
    raw_elements = tariff_211["elements"]
    if not isinstance(raw_elements, list):
        raise TariffError("2.1.1 Tariff: elements must be a list")
    for i, el in enumerate(raw_elements):
        if not isinstance(el, Mapping) or not isinstance(el.get("price_components"), list):
            raise TariffError(f"2.1.1 Tariff element {i}: price_components must be a list")
        components = []
        for j, pc in enumerate(el["price_components"]):
            where = f"2.1.1 Tariff element {i} component {j}"
            if not isinstance(pc, Mapping):
                raise TariffError(f"{where}: expected an object")
            out: dict[str, Any] = {
                "type": pc.get("type"),
                "price": _number(pc.get("price"), f"{where} price"),
                "step_size": pc.get("step_size"),
            }
            if vat is not None:
                out["vat"] = Decimal(vat)
            components.append(out)
        element: dict[str, Any] = {"price_components": components}
        restrictions = el.get("restrictions")
        if isinstance(restrictions, Mapping):
            kept = {k: restrictions[k] for k in _RESTRICTIONS_211
                    if restrictions.get(k) is not None}
            for k in ("min_kwh", "max_kwh", "min_power", "max_power"):
                if k in kept:
                    kept[k] = _number(kept[k], f"2.1.1 Tariff element {i} {k}")
            if kept:
                element["restrictions"] = kept
        elements.append(element)
    data: dict[str, Any] = {
        "country_code": country_code or tariff_211.get("country_code") or "ZZ",
        "party_id": party_id or tariff_211.get("party_id") or "ZZZ",
        "id": tariff_211["id"],
        "currency": tariff_211["currency"],
        "elements": elements,
        "last_updated": tariff_211["last_updated"],
    }
    for key in ("tariff_alt_text", "tariff_alt_url", "energy_mix"):
        if tariff_211.get(key) is not None:
            data[key] = tariff_211[key]
    # Pre-2.2 drafts spelled these without the underscore.
    for old, new in (("start_datetime", "start_date_time"), ("end_datetime", "end_date_time"),
                     ("start_date_time", "start_date_time"), ("end_date_time", "end_date_time")):
        if tariff_211.get(old) is not None:
            data[new] = tariff_211[old]
    try:
        return read(Tariff, data)
    except TariffError as exc:
        raise TariffError(f"2.1.1 Tariff: {exc}") from exc
