"""stickers.py without a database: which base URLs count as development ones, the typed
address, and that a long EVSE-ID is narrowed rather than set smaller."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from reportlab.lib.units import mm

import stickers


@pytest.mark.parametrize("base", ["http://127.0.0.1:5000", "http://127.0.0.1:5000/",
                                  "http://localhost", "https://LOCALHOST:8443",
                                  "http://127.8.9.1", "http://[::1]:5000", "http://0.0.0.0",
                                  "http://app.localhost"])
def test_development_base_urls(base: str) -> None:
    assert stickers.development_base_url(base)


@pytest.mark.parametrize("base", ["https://scancharge.se", "http://charge.example.org",
                                  "https://127x.example.org"])
def test_public_base_urls(base: str) -> None:
    assert not stickers.development_base_url(base)


def test_the_typed_address_drops_https_and_the_separators() -> None:
    assert stickers.short_address("https://scancharge.se/", "SE*ABC*E1-2") \
        == "scancharge.se/c/SEABCE12"
    assert stickers.short_address("http://x.example/app", "se*abc*e1") \
        == "http://x.example/app/c/SEABCE1"


def test_a_long_evse_id_is_narrowed_not_shrunk() -> None:
    stickers._register_fonts()
    cap = stickers.cap_height(stickers.BOLD)
    short_size, short_scale = stickers.evse_id_font_size("SE*A*1", 84 * mm)
    long_size, long_scale = stickers.evse_id_font_size("DE*ABCDEF*E1234567890ABCDEF", 56 * mm)
    assert short_scale == 100 and short_size * cap >= stickers.MIN_CAP_HEIGHT_MM * mm
    assert long_scale < 70
    assert long_size * cap == pytest.approx(stickers.MIN_CAP_HEIGHT_MM * mm)


def _tariff(*elements: dict) -> dict:
    return {"country_code": "SE", "party_id": "SCA", "id": "T1", "currency": "SEK",
            "elements": list(elements), "last_updated": "2024-01-01T00:00:00Z"}


def _energy(price: str, **restrictions: str) -> dict:
    out: dict = {"price_components": [{"type": "ENERGY", "price": Decimal(price),
                                       "vat": Decimal(25), "step_size": 1}]}
    if restrictions:
        out["restrictions"] = restrictions
    return out


def test_the_price_is_the_tariff_in_swedish_words() -> None:
    text = stickers.price_text(_tariff(_energy("3.60")), time_zone="Europe/Stockholm",
                               power_kw=Decimal(11))
    assert text == "4,50 kr/kWh"


@pytest.mark.parametrize("hour", [12, 18, 22])
def test_a_price_that_changes_with_the_clock_sends_the_driver_to_the_page(hour: int) -> None:
    # 22:00 is past the evening window: nothing changes later today, the tariff still varies.
    evening = _tariff(_energy("4.40", start_time="17:00", end_time="20:00"), _energy("3.60"))
    at = datetime(2024, 6, 3, hour, tzinfo=ZoneInfo("Europe/Stockholm"))
    text = stickers.price_text(evening, time_zone="Europe/Stockholm", power_kw=Decimal(11),
                               at=at)
    assert text.endswith("kr/kWh (varierar med tiden: se sidan)")
