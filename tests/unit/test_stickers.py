"""stickers.py without a database: which base URLs count as development ones, the typed
address, and that a long EVSE-ID is narrowed rather than set smaller."""

from __future__ import annotations

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
