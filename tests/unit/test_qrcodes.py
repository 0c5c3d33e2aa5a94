"""Tests for the charger QR code stickers (qrcodes.py).

The PNG is proven to carry the right URL twice: by decoding it with zbar (skipped when pyzbar or
the libzbar shared library is missing) and, always, by regenerating the QR matrix for the URL and
comparing it module by module with the PNG's pixels (and with the SVG's path).
"""

from __future__ import annotations

import importlib
import io
import re
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import qrcode
from PIL import Image

# qrcodes.py lives at the repository root; make it importable under plain `pytest` too.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
qrcodes = importlib.import_module("qrcodes")

SVG_NS = "{http://www.w3.org/2000/svg}"
BASE = "https://scancharge.example.org"
EVSE = "SE*SIM*E00001"
URL = f"{BASE}/c/{EVSE}"
LONG_EVSE = "DE*ABC*E1234567890ABCDEF1234567890ABCDEFGHIJ*12"


def _png(data: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(data))
    assert img.format == "PNG"
    return img.convert("L")


def _expected_matrix(url: str) -> list[list[bool]]:
    """The module matrix (without quiet zone) a fresh QR encoder produces for ``url``."""
    qr = qrcode.QRCode(error_correction=qrcodes.ERROR_CORRECTION, border=0)
    qr.add_data(url)
    qr.make(fit=True)
    return qr.get_matrix()


def _zbar_decode(img: Image.Image) -> list[str]:
    pyzbar = pytest.importorskip(
        "pyzbar.pyzbar",
        reason="QR decoding needs pyzbar and the zbar shared library (apt-get install libzbar0)",
        exc_type=ImportError,  # pyzbar raises plain ImportError when libzbar is missing
    )
    return [r.data.decode("utf-8") for r in pyzbar.decode(img) if r.type == "QRCODE"]


# --- charger_url -----------------------------------------------------------------------------


@pytest.mark.parametrize("base", [BASE, BASE + "/", BASE + "//"])
def test_charger_url_joins_with_and_without_trailing_slash(base: str) -> None:
    assert qrcodes.charger_url(base, EVSE) == URL


def test_charger_url_keeps_base_path() -> None:
    assert qrcodes.charger_url("https://example.org/scan/", "X1") == "https://example.org/scan/c/X1"


def test_charger_url_leaves_star_unescaped_and_escapes_the_rest() -> None:
    url = qrcodes.charger_url(BASE, "SE*A/B C&D#E?F%G")
    assert url == f"{BASE}/c/SE*A%2FB%20C%26D%23E%3FF%25G"


@pytest.mark.parametrize(
    ("base", "evse"), [(BASE, ""), ("scancharge.example.org", EVSE), ("", EVSE)]
)
def test_charger_url_rejects_bad_input(base: str, evse: str) -> None:
    with pytest.raises(ValueError):
        qrcodes.charger_url(base, evse)


# --- PNG -------------------------------------------------------------------------------------


def test_png_decodes_to_url() -> None:
    img = _png(qrcodes.qr_png(URL, EVSE))
    assert _zbar_decode(img) == [URL]


@pytest.mark.parametrize(("box_size", "label"), [(3, EVSE), (10, LONG_EVSE), (20, EVSE)])
def test_png_decodes_at_other_sizes_and_label_lengths(box_size: int, label: str) -> None:
    url = qrcodes.charger_url(BASE, label)
    img = _png(qrcodes.qr_png(url, label, box_size=box_size))
    assert _zbar_decode(img) == [url]


@pytest.mark.parametrize(("url", "label"), [(URL, EVSE), (f"{BASE}/c/{LONG_EVSE}", LONG_EVSE)])
def test_png_modules_match_regenerated_matrix(url: str, label: str) -> None:
    box, border = 10, 4
    img = _png(qrcodes.qr_png(url, label, box_size=box, border=border))
    matrix = _expected_matrix(url)
    n = len(matrix)
    code_px = (n + 2 * border) * box
    x0 = (img.width - code_px) // 2  # the code is centred if a long label widened the canvas
    px = img.load()
    for r in range(-border, n + border):
        for c in range(-border, n + border):
            # Sample the centre of each module; the quiet zone must be white.
            value = px[x0 + (border + c) * box + box // 2, (border + r) * box + box // 2]
            dark = 0 <= r < n and 0 <= c < n and matrix[r][c]
            assert value == (0 if dark else 255), f"module ({r}, {c})"


def test_png_uses_error_correction_q_and_quiet_zone() -> None:
    assert qrcodes.ERROR_CORRECTION == qrcode.constants.ERROR_CORRECT_Q
    with pytest.raises(ValueError):
        qrcodes.qr_png(URL, EVSE, border=2)


def test_png_has_label_band_below_code() -> None:
    box, border = 10, 4
    img = _png(qrcodes.qr_png(URL, EVSE, box_size=box, border=border))
    code_px = (len(_expected_matrix(URL)) + 2 * border) * box
    assert img.height > img.width == code_px

    band = img.crop((0, code_px, img.width, img.height))
    bbox = band.point(lambda v: 255 if v < 128 else 0).getbbox()
    assert bbox is not None, "no label pixels under the code"
    left, top, right, bottom = bbox
    # Legible: capitals at least ~2.5 modules tall (2.5 mm at 1 mm/module), centred.
    assert bottom - top >= 2.5 * box
    assert abs((left + right) / 2 - img.width / 2) <= box
    # Black on white, with white space around it.
    assert band.getextrema() == (0, 255) and top > 0 and bottom < band.height


def test_png_long_label_stays_legible() -> None:
    box = 10
    img = _png(qrcodes.qr_png(f"{BASE}/c/{LONG_EVSE}", LONG_EVSE, box_size=box))
    code_px = (len(_expected_matrix(f"{BASE}/c/{LONG_EVSE}")) + 8) * box
    band = img.crop((0, code_px, img.width, img.height))
    bbox = band.point(lambda v: 255 if v < 128 else 0).getbbox()
    assert bbox is not None
    left, top, right, bottom = bbox
    assert left > 0 and right < img.width  # not clipped
    # Shrunk to fit, but not below the minimum: capitals still ~1.7 modules tall.
    assert bottom - top >= 1.7 * box


def test_png_label_without_freetype(monkeypatch: pytest.MonkeyPatch) -> None:
    real_check = qrcodes.features.check
    monkeypatch.setattr(
        qrcodes.features, "check", lambda f: False if f == "freetype2" else real_check(f)
    )
    img = _png(qrcodes.qr_png(URL, EVSE))
    code_px = (len(_expected_matrix(URL)) + 8) * 10
    band = img.crop((0, code_px, img.width, img.height))
    assert band.point(lambda v: 255 if v < 128 else 0).getbbox() is not None


# --- SVG -------------------------------------------------------------------------------------


def _svg_root(data: bytes) -> ET.Element:
    root = ET.fromstring(data)
    assert root.tag == f"{SVG_NS}svg"
    return root


def test_svg_is_xml_with_viewbox_and_label() -> None:
    data = qrcodes.qr_svg(URL, EVSE)
    assert data.startswith(b"<?xml")
    root = _svg_root(data)
    _, _, w, h = (float(v) for v in root.get("viewBox", "").split())
    assert root.get("width") == f"{w:g}mm" and root.get("height") == f"{h:g}mm"
    size = len(_expected_matrix(URL)) + 8
    assert w == size and h > w

    texts = root.findall(f"{SVG_NS}text")
    assert [t.text for t in texts] == [EVSE]
    text = texts[0]
    assert text.get("text-anchor") == "middle"
    assert float(text.get("x", "nan")) == pytest.approx(w / 2)
    assert size < float(text.get("y", "nan")) < h  # below the quiet zone, inside the viewBox


def test_svg_path_matches_regenerated_matrix() -> None:
    root = _svg_root(qrcodes.qr_svg(URL, EVSE))
    (path,) = root.findall(f"{SVG_NS}path")
    d = path.get("d", "")
    squares = re.findall(r"M(\d+),(\d+)H(\d+)V(\d+)H\d+z", d)
    assert len(squares) == d.count("M")
    dark = set()
    for x, y, x2, y2 in squares:
        assert (int(x2) - int(x), int(y2) - int(y)) == (1, 1)  # one user unit per module
        dark.add((int(y) - 4, int(x) - 4))
    matrix = _expected_matrix(URL)
    expected = {(r, c) for r, row in enumerate(matrix) for c, v in enumerate(row) if v}
    assert dark == expected


@pytest.mark.parametrize("label", ["A&B", "SE*<SIM>*E1", "x\"y'z&amp;"])
def test_svg_escapes_label(label: str) -> None:
    data = qrcodes.qr_svg(URL, label)
    root = _svg_root(data)  # would raise ParseError if not escaped
    assert [t.text for t in root.findall(f"{SVG_NS}text")] == [label]
    assert b"&amp;" in data or b"&lt;" in data


def test_svg_long_label_fits_viewbox() -> None:
    root = _svg_root(qrcodes.qr_svg(f"{BASE}/c/{LONG_EVSE}", LONG_EVSE))
    _, _, w, _ = (float(v) for v in root.get("viewBox", "").split())
    (text,) = root.findall(f"{SVG_NS}text")
    # Monospace estimate: 0.6 em per glyph must fit the width.
    assert 0.6 * float(text.get("font-size", "nan")) * len(LONG_EVSE) <= w


def test_svg_rejects_label_that_xml_cannot_hold() -> None:
    with pytest.raises(ValueError):
        qrcodes.qr_svg(URL, "SE\x00SIM")
