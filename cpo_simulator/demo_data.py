"""The simulated CPO's charging network: five Swedish locations and two ad-hoc tariffs.

Everything is built fresh per simulator (the simulator mutates EVSE statuses) and validated
through the wire models, so a typo here fails at start-up rather than at the eMSP.

last_updated values are fixed dates in the past, distinct and ascending in creation order, so
date_from/date_to filtering can be tested against known boundaries:
locations 2025-01-10, 2025-02-10, 2025-03-10, 2025-04-10, 2025-05-10 (08:00Z);
tariffs 2024-12-01 (AC) and 2025-01-15 (DC).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from ocpi.modules.common import parse
from ocpi.modules.locations import Location
from ocpi.modules.tariffs import Tariff

AC_TARIFF_ID = "AC-ADHOC"
DC_TARIFF_ID = "DC-ADHOC"
OPERATOR = {"name": "ScanCharge CPO Simulator", "website": "https://www.example.com/laddsim"}

_AC = {
    "standard": "IEC_62196_T2",
    "format": "SOCKET",
    "power_type": "AC_3_PHASE",
    "max_voltage": 230,
    "max_amperage": 32,
    "max_electric_power": 22000,
    "tariff_ids": [AC_TARIFF_ID],
}
_DC = {
    "standard": "IEC_62196_T2_COMBO",
    "format": "CABLE",
    "power_type": "DC",
    "max_voltage": 920,
    "max_amperage": 200,
    "max_electric_power": 150000,
    "tariff_ids": [DC_TARIFF_ID],
}
_CAPABILITIES = ["REMOTE_START_STOP_CAPABLE", "UNLOCK_CAPABLE", "RFID_READER"]

# (id, name, address, postal code, city, lat, lon, parking, facilities, EVSEs, last_updated)
# EVSEs: (uid suffix, kind, status). Addresses stay within CdrLocation's 45 characters.
_SITES: list[tuple[Any, ...]] = [
    (
        "STO", "Stockholm Sergels torg", "Sergels torg 12", "111 57", "Stockholm",
        "59.332580", "18.064900", "PARKING_GARAGE", ["MALL", "METRO_STATION"],
        [("1", "AC", "AVAILABLE"), ("2", "AC", "AVAILABLE"), ("3", "DC", "AVAILABLE")],
        "2025-01-10T08:00:00Z",
    ),
    (
        "GBG", "Göteborg Lindholmen", "Lindholmspiren 7", "417 56", "Göteborg",
        "57.706930", "11.938650", "PARKING_LOT", ["CAFE", "WIFI"],
        [("1", "DC", "AVAILABLE"), ("2", "AC", "OUTOFORDER")],
        "2025-02-10T08:00:00Z",
    ),
    (
        "MMO", "Malmö Västra Hamnen", "Stora Varvsgatan 11", "211 19", "Malmö",
        "55.613620", "12.976450", "ON_STREET", ["RESTAURANT"],
        [("1", "AC", "AVAILABLE"), ("2", "AC", "AVAILABLE")],
        "2025-03-10T08:00:00Z",
    ),
    (
        "UPP", "Uppsala Resecentrum", "Kungsgatan 41", "753 21", "Uppsala",
        "59.858560", "17.646300", "PARKING_LOT", ["TRAIN_STATION", "BUS_STOP"],
        [("1", "AC", "AVAILABLE")],
        "2025-04-10T08:00:00Z",
    ),
    (
        "JKG", "Jönköping Västra Torp", "Ekhagsringen 2", "554 54", "Jönköping",
        "57.772410", "14.097790", "PARKING_LOT", ["SUPERMARKET", "MALL"],
        [("1", "DC", "AVAILABLE"), ("2", "DC", "AVAILABLE"), ("3", "AC", "AVAILABLE")],
        "2025-05-10T08:00:00Z",
    ),
]


def location_id(site: str, prefix: str = "SIM") -> str:
    return f"{prefix}-{site}"


def build_locations(
    country_code: str = "SE", party_id: str = "SIM", prefix: str | None = None
) -> list[Location]:
    """The five demo Locations, oldest first; EVSE ids number through the network.

    Location ids and EVSE uids start with `prefix` (default: the party_id), EVSE ids carry
    the country code and party id, so two simulated CPOs behind one hub never collide.
    """
    prefix = party_id if prefix is None else prefix
    locations: list[Location] = []
    evse_number = 0
    for (site, name, address, postal_code, city, lat, lon, parking, facilities, evses,
         updated) in _SITES:
        evse_objects = []
        for suffix, kind, status in evses:
            evse_number += 1
            connector = {"id": "1", **(_AC if kind == "AC" else _DC), "last_updated": updated}
            evse_objects.append({
                "uid": f"{location_id(site, prefix)}-{suffix}",
                "evse_id": f"{country_code}*{party_id}*E{evse_number:05d}",
                "status": status,
                "capabilities": _CAPABILITIES,
                "connectors": [connector],
                "physical_reference": suffix,
                "last_updated": updated,
            })
        data = {
            "country_code": country_code,
            "party_id": party_id,
            "id": location_id(site, prefix),
            "publish": True,
            "name": name,
            "address": address,
            "city": city,
            "postal_code": postal_code,
            "country": "SWE",
            "coordinates": {"latitude": lat, "longitude": lon},
            "parking_type": parking,
            "evses": evse_objects,
            "operator": OPERATOR,
            "facilities": facilities,
            "time_zone": "Europe/Stockholm",
            "charging_when_closed": True,
            "last_updated": updated,
        }
        locations.append(parse(Location, data))
    return locations


def _adhoc_tariff(
    country_code: str, party_id: str, tariff_id: str, energy_price: str, sv: str, en: str,
    updated: str,
) -> Tariff:
    data = {
        "country_code": country_code,
        "party_id": party_id,
        "id": tariff_id,
        "currency": "SEK",
        "type": "AD_HOC_PAYMENT",
        "tariff_alt_text": [{"language": "sv", "text": sv}, {"language": "en", "text": en}],
        "elements": [{
            "price_components": [
                # Prices excl. VAT, as the spec requires; 25 % is Swedish standard VAT.
                # Decimals: OCPI numbers are JSON numbers, and ocpi.modules takes no strings.
                {"type": "FLAT", "price": Decimal("4.00"), "vat": Decimal(25), "step_size": 1},
                {"type": "ENERGY", "price": Decimal(energy_price), "vat": Decimal(25),
                 "step_size": 1},
            ],
        }],
        "last_updated": updated,
    }
    return parse(Tariff, data)


def build_tariffs(country_code: str = "SE", party_id: str = "SIM") -> list[Tariff]:
    """AC 3.60 and DC 5.20 SEK/kWh excl. VAT, each with a 4.00 SEK start fee; oldest first."""
    return [
        _adhoc_tariff(
            country_code, party_id, AC_TARIFF_ID, "3.60",
            "Startavgift 5,00 kr och 4,50 kr/kWh, inklusive moms.",
            "Start fee SEK 5.00 and SEK 4.50 per kWh, including VAT.",
            "2024-12-01T08:00:00Z",
        ),
        _adhoc_tariff(
            country_code, party_id, DC_TARIFF_ID, "5.20",
            "Startavgift 5,00 kr och 6,50 kr/kWh, inklusive moms.",
            "Start fee SEK 5.00 and SEK 6.50 per kWh, including VAT.",
            "2025-01-15T08:00:00Z",
        ),
    ]
