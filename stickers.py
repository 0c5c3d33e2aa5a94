"""Print-ready sticker sheets (PDF) for a site's chargers: what the operator glues on them.

Each sticker carries what a driver standing at the charger needs, in Swedish and English:
"Skanna för att ladda / Scan to charge", the QR code of the charger page, the EVSE-ID large
enough to read at arm's length, a short address to type when the camera fails, the price in
words, the support phone, a tamper warning and the operator's name.

Two sizes (SIZES): "a4", eight 90 x 60 mm stickers on an A4 sheet (2 x 4, no gutter, with cut
marks in the margin), and "label", one 62 x 100 mm label per page for label printers
(Brother DK-11202 and the like, or 62 mm continuous rolls cut at 100 mm).

Choices that matter once the sticker is on a charger:

* The QR code is drawn as vector rectangles (one per run of dark modules, so no hairline gaps
  when a print shop rasterises it) from the same matrix as qrcodes.py: error correction Q and
  a quiet zone of 4 modules, for the reasons given there.
* The EVSE-ID is set with a cap height of at least MIN_CAP_HEIGHT_MM (6 mm: legible at about
  1.5-2 m for normal sight); a long ID is narrowed (horizontal scale), never made smaller.
* The short address is the public host and /c/ followed by the EVSE-ID without its
  separators ("scancharge.se/c/SESIME00001"): the charger page finds an EVSE-ID whatever its
  separators and case (OcpiEvse.normalise_evse_id), and a driver typing on a phone is spared
  the '*'. The scheme is left out when it is https (browsers try https first).
* The price is the tariff in words (tariffs.describe) in Swedish, VAT included, as it applies
  when the sheet is printed; the charger page shows the price that applies when paying.
* The tamper warning tells the driver to check that no other sticker covers the code: a
  pasted-over QR code leading to a look-alike payment page is the known attack on them.
"""

from __future__ import annotations

import io
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit
from xml.sax.saxutils import escape

import reportlab
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import Frame, KeepInFrame, Paragraph
from sqlalchemy import select

import qrcodes
from config import DEFAULT_PUBLIC_BASE_URL
from extensions import db
from i18n import Texts, texts
from ocpi.models import OcpiEvse, OcpiLocation, Party

__all__ = [
    "MIN_CAP_HEIGHT_MM", "SIZES", "Sticker", "UnknownEvse", "development_base_url",
    "price_text", "render_sheet", "short_address", "stickers_for_evse_ids", "stickers_for_location",
]

SIZES = ("a4", "label")
#: The least cap height of the EVSE-ID, in millimetres (see the module docstring).
MIN_CAP_HEIGHT_MM = 6.0
#: The sticker's two languages: the country's own first, then the one most visitors read.
LANGUAGES = ("sv", "en")

FONT, BOLD = "StickerVera", "StickerVera-Bold"
_fonts_lock = threading.Lock()

# A4: 2 columns x 4 rows of 90 x 60 mm, centred; the rest is margin for the cut marks.
_A4_CELL = (90 * mm, 60 * mm)
_A4_GRID = (2, 4)
_LABEL_PAGE = (62 * mm, 100 * mm)
_PAD = 3 * mm
_CUT_MARK = 5 * mm
_CUT_GAP = 1.5 * mm  # cut marks stop short of the sticker, so a slightly off cut hides them


class UnknownEvse(LookupError):
    """An EVSE-ID that no stored Location holds (or that another CPO also claims)."""


@dataclass(frozen=True)
class Sticker:
    evse_id: str  # as the CPO writes it, with its separators
    url: str  # what the QR code opens
    short_address: str  # what a driver types instead
    price: str
    support_phone: str
    operator: str


def development_base_url(base_url: str) -> bool:
    """True when stickers built from `base_url` would only work on the operator's machine."""
    if base_url.rstrip("/") == DEFAULT_PUBLIC_BASE_URL.rstrip("/"):
        return True
    host = (urlsplit(base_url).hostname or "").lower()
    return (host in {"", "localhost", "0.0.0.0", "::1"} or host.endswith(".localhost")
            or host.startswith("127."))


def short_address(base_url: str, evse_id: str) -> str:
    """The address printed for typing: host (and path) + /c/ + the EVSE-ID's characters."""
    base = base_url.rstrip("/")
    if base.startswith("https://"):
        base = base[len("https://"):]
    return f"{base}/c/{OcpiEvse.normalise_evse_id(evse_id)}"


# Restrictions under which a tariff's price depends on the clock or the calendar.
_CLOCK_RESTRICTIONS = frozenset({"start_time", "end_time", "start_date", "end_date",
                                 "day_of_week"})


def price_text(tariff: Mapping[str, Any], *, time_zone: str, power_kw: Decimal,
               at: datetime | None = None) -> str:
    """The tariff in Swedish words as it applies at `at` (now), and a note sending the driver
    to the page when the price depends on the time of day or the date: a sticker outlives
    the hour it was printed in."""
    from tariffs import describe

    words = describe(tariff, language=LANGUAGES[0], at=at or datetime.now(UTC),
                     time_zone=time_zone, power_kw=power_kw)
    clock = any(_CLOCK_RESTRICTIONS & set(element.get("restrictions") or {})
                for element in tariff.get("elements") or [])
    if not (clock or words.changes or not words.structured):
        return words.summary
    varies = texts(LANGUAGES[0]).gettext("varies with the time: see the page")
    return f"{words.summary} ({varies})"


def _price_words(location: OcpiLocation, evse: dict[str, Any]) -> str:
    """The price at the EVSE's connectors in Swedish words; the unique ones, joined."""
    from charging.connectors import connector_power_kw, connector_tariff
    from tariffs import TariffError

    found: list[str] = []
    for connector in evse.get("connectors") or []:
        tariff = connector_tariff(location, connector)
        if tariff is None:
            continue
        try:
            text = price_text(tariff, time_zone=location.time_zone,
                              power_kw=connector_power_kw(connector))
        except (TariffError, ValueError, KeyError):
            continue
        if text not in found:
            found.append(text)
    return " | ".join(found)


def _sticker(config: dict[str, Any], evse_id: str, price: str) -> Sticker:
    base = config["PUBLIC_BASE_URL"]
    return Sticker(
        evse_id=evse_id,
        url=qrcodes.charger_url(base, evse_id),
        short_address=short_address(base, evse_id),
        price=price,
        support_phone=config["SUPPORT_PHONE"],
        operator=config["SELLER_NAME"],
    )


def stickers_for_location(location: OcpiLocation, config: dict[str, Any]) -> list[Sticker]:
    """A sticker for every EVSE of the site that has an EVSE-ID and a charger page (not
    removed, not claimed by another CPO too, its CPO connected: as charging.find_evse)."""
    printable = {
        uid.upper() for uid in db.session.scalars(
            select(OcpiEvse.evse_uid)
            .join(OcpiLocation, OcpiEvse.location_pk == OcpiLocation.pk)
            .join(Party, OcpiLocation.party_pk == Party.pk)
            .where(OcpiEvse.location_pk == location.pk, OcpiEvse.evse_id.is_not(None),
                   OcpiEvse.clash.is_(False), OcpiEvse.status != "REMOVED",
                   Party.status == "CONNECTED"))
    }
    out = []
    for evse in location.data.get("evses") or []:
        if evse.get("evse_id") and str(evse.get("uid", "")).upper() in printable:
            out.append(_sticker(config, str(evse["evse_id"]),
                                _price_words(location, evse)))
    return sorted(out, key=lambda s: OcpiEvse.normalise_evse_id(s.evse_id))


def stickers_for_evse_ids(evse_ids: Sequence[str], config: dict[str, Any], *,
                          allow_unknown: bool = False) -> list[Sticker]:
    """A sticker for each EVSE-ID; an unknown one raises UnknownEvse unless allowed (its
    sticker then names no price)."""
    from charging.connectors import evse_data, find_evse

    out = []
    for evse_id in evse_ids:
        found = find_evse(evse_id)
        if found is None:
            if not allow_unknown:
                raise UnknownEvse(evse_id)
            out.append(_sticker(config, evse_id, ""))
            continue
        evse_row, location, _party = found
        evse = evse_data(location, evse_row.evse_uid)
        out.append(_sticker(config, str(evse.get("evse_id") or evse_id),
                            _price_words(location, evse)))
    return out


# --- Drawing --------------------------------------------------------------------------------


def _register_fonts() -> None:
    # Bitstream Vera ships inside reportlab: å, ä, ö print on every machine, embedded.
    with _fonts_lock:
        if FONT in pdfmetrics.getRegisteredFontNames():
            return
        folder = os.path.join(os.path.dirname(reportlab.__file__), "fonts")
        pdfmetrics.registerFont(TTFont(FONT, os.path.join(folder, "Vera.ttf")))
        pdfmetrics.registerFont(TTFont(BOLD, os.path.join(folder, "VeraBd.ttf")))
        pdfmetrics.registerFontFamily(FONT, normal=FONT, bold=BOLD, italic=FONT, boldItalic=BOLD)


def cap_height(font: str) -> float:
    """The font's cap height as a fraction of its size."""
    face = pdfmetrics.getFont(font).face
    return float(getattr(face, "capHeight", 730)) / 1000


def evse_id_font_size(evse_id: str, width: float) -> tuple[float, float]:
    """(font size in points, horizontal scale in %) to set the EVSE-ID across `width` points:
    a cap height of MIN_CAP_HEIGHT_MM up to 1.4 times that, narrowed when it is too wide."""
    least = MIN_CAP_HEIGHT_MM * mm / cap_height(BOLD)
    natural = pdfmetrics.stringWidth(evse_id, BOLD, 1)
    size = max(least, min(least * 1.4, width / natural))
    scale = min(100.0, 100 * width / (natural * size))
    return size, scale


def _draw_qr(canvas: Canvas, url: str, x: float, y: float, side: float) -> None:
    """The code with its quiet zone in the square (x, y, side): white ground, black runs."""
    qr = qrcodes.make_qr(url, box_size=1, border=qrcodes.MIN_BORDER)
    matrix = qr.get_matrix()  # includes the quiet zone
    module = side / len(matrix)
    canvas.setFillColorRGB(1, 1, 1)
    canvas.rect(x, y, side, side, stroke=0, fill=1)
    canvas.setFillColorRGB(0, 0, 0)
    path = canvas.beginPath()
    for r, row in enumerate(matrix):
        top = y + side - (r + 1) * module
        c = 0
        while c < len(row):
            if not row[c]:
                c += 1
                continue
            start = c
            while c < len(row) and row[c]:
                c += 1
            path.rect(x + start * module, top, (c - start) * module, module)
    canvas.drawPath(path, stroke=0, fill=1)


def _both(text: Callable[[Texts], str]) -> tuple[str, str]:
    """A text in both of the sticker's languages (the call names the msgid for pybabel)."""
    first, second = (text(texts(language)) for language in LANGUAGES)
    return first, second


def _line(text: Callable[[Texts], str]) -> str:
    first, second = _both(text)
    return first if first == second else f"{first} / {second}"


def _details(sticker: Sticker, font_size: float, width: float) -> list[Paragraph]:
    """The small print beside or under the code."""
    base = ParagraphStyle("sticker", fontName=FONT, fontSize=font_size,
                          leading=font_size * 1.22, spaceAfter=font_size * 0.35)
    sv = texts(LANGUAGES[0])
    price = sticker.price or sv.gettext("The price is shown on the charger's page.")
    type_it = escape(_line(lambda t: t.gettext("Or type:")))
    price_is = escape(_line(lambda t: t.gettext("Price:")))
    support = escape(_line(lambda t: t.gettext("Support:")))
    # The address never wraps (a driver would type the break): narrower type instead.
    room = pdfmetrics.stringWidth(sticker.short_address, BOLD, font_size)
    fits = font_size if room <= width * 0.96 else max(4.5, font_size * width * 0.96 / room)
    rows = [
        f'{type_it}<br/><font size="{fits:.2f}"><b>{escape(sticker.short_address)}</b></font>',
        f"{price_is} <b>{escape(price)}</b>",
        f"{support} <b>{escape(sticker.support_phone)}</b>",
        escape(sticker.operator),
    ]
    return [Paragraph(row, base) for row in rows]


def _warning(font_size: float) -> list[Paragraph]:
    style = ParagraphStyle("warning", fontName=FONT, fontSize=font_size,
                           leading=font_size * 1.2)
    first, second = _both(
        lambda t: t.gettext("Check that this code is not covered by another sticker."))
    return [Paragraph(f"<b>{escape(first)}</b>", style),
            Paragraph(escape(second), style)]


def _fit(canvas: Canvas, flowables: list[Any], x: float, y: float, w: float, h: float) -> None:
    # Shrinks the text to fit rather than dropping any of it (a long price, a long name).
    frame = Frame(x, y, w, h, leftPadding=0, rightPadding=0, topPadding=0, bottomPadding=0)
    frame.addFromList([KeepInFrame(w, h, flowables, mode="shrink")], canvas)


def _heading_and_id(canvas: Canvas, sticker: Sticker, x: float, top: float, w: float,
                    heading_size: float) -> float:
    """Draw the bilingual heading and the EVSE-ID from `top` down; return the y under them."""
    canvas.setFillColorRGB(0, 0, 0)
    heading = _line(lambda t: t.gettext("Scan to charge"))
    size = min(heading_size, heading_size * w / pdfmetrics.stringWidth(heading, BOLD,
                                                                      heading_size))
    canvas.setFont(BOLD, size)
    baseline = top - size * cap_height(BOLD)
    canvas.drawCentredString(x + w / 2, baseline, heading)
    id_size, scale = evse_id_font_size(sticker.evse_id, w)
    baseline -= size * 0.45 + id_size * cap_height(BOLD) + 1.5 * mm
    text = canvas.beginText()
    text.setFont(BOLD, id_size)
    text.setHorizScale(scale)
    width = pdfmetrics.stringWidth(sticker.evse_id, BOLD, id_size) * scale / 100
    text.setTextOrigin(x + (w - width) / 2, baseline)
    text.textOut(sticker.evse_id)
    canvas.drawText(text)
    return baseline - 2.5 * mm


def _draw_landscape(canvas: Canvas, sticker: Sticker, x: float, y: float) -> None:
    """A 90 x 60 mm sticker: heading and EVSE-ID across, the code left, the details right,
    the tamper warning along the bottom."""
    w, h = _A4_CELL
    inner_x, inner_w = x + _PAD, w - 2 * _PAD
    below = _heading_and_id(canvas, sticker, inner_x, y + h - _PAD, inner_w, 9.5)
    warning_h = 7.5 * mm
    side = below - (y + _PAD + warning_h + 1 * mm)
    _draw_qr(canvas, sticker.url, inner_x - 1 * mm, below - side, side)
    text_x = inner_x + side + 1 * mm
    text_w = inner_x + inner_w - text_x
    _fit(canvas, _details(sticker, 6.8, text_w), text_x, below - side, text_w, side)
    _fit(canvas, _warning(7), inner_x, y + _PAD, inner_w, warning_h)


def _draw_portrait(canvas: Canvas, sticker: Sticker, x: float, y: float) -> None:
    """A 62 x 100 mm label: heading and EVSE-ID, the code, then the details and warning."""
    w, h = _LABEL_PAGE
    inner_x, inner_w = x + _PAD, w - 2 * _PAD
    below = _heading_and_id(canvas, sticker, inner_x, y + h - _PAD, inner_w, 9)
    side = 47 * mm
    _draw_qr(canvas, sticker.url, x + (w - side) / 2, below - side, side)
    _fit(canvas, _details(sticker, 7, inner_w) + _warning(6.5), inner_x, y + _PAD, inner_w,
         below - side - 1 * mm - (y + _PAD))


def _cut_marks(canvas: Canvas, left: float, bottom: float) -> None:
    """Short lines in the margin along every edge of the grid, pointing at the cuts."""
    (cw, ch), (cols, rows) = _A4_CELL, _A4_GRID
    right, top = left + cols * cw, bottom + rows * ch
    canvas.setLineWidth(0.25)
    canvas.setStrokeColorRGB(0, 0, 0)
    for i in range(cols + 1):
        gx = left + i * cw
        canvas.line(gx, top + _CUT_GAP, gx, top + _CUT_GAP + _CUT_MARK)
        canvas.line(gx, bottom - _CUT_GAP, gx, bottom - _CUT_GAP - _CUT_MARK)
    for j in range(rows + 1):
        gy = bottom + j * ch
        canvas.line(left - _CUT_GAP, gy, left - _CUT_GAP - _CUT_MARK, gy)
        canvas.line(right + _CUT_GAP, gy, right + _CUT_GAP + _CUT_MARK, gy)


def render_sheet(stickers: Sequence[Sticker], size: str, *, title: str = "") -> bytes:
    """The PDF: for "a4" pages of eight stickers with cut marks, for "label" one per page."""
    if size not in SIZES:
        raise ValueError(f"size must be one of {', '.join(SIZES)}")
    if not stickers:
        raise ValueError("no stickers to print")
    _register_fonts()
    out = io.BytesIO()
    page = A4 if size == "a4" else _LABEL_PAGE
    canvas = Canvas(out, pagesize=page, pageCompression=1)
    canvas.setTitle(title or "ScanCharge stickers")
    canvas.setCreator("ScanCharge")
    if size == "label":
        for sticker in stickers:
            _draw_portrait(canvas, sticker, 0, 0)
            canvas.showPage()
    else:
        (cw, ch), (cols, rows) = _A4_CELL, _A4_GRID
        left, bottom = (A4[0] - cols * cw) / 2, (A4[1] - rows * ch) / 2
        per_page = cols * rows
        for start in range(0, len(stickers), per_page):
            _cut_marks(canvas, left, bottom)
            for n, sticker in enumerate(stickers[start:start + per_page]):
                col, row = n % cols, n // cols
                _draw_landscape(canvas, sticker, left + col * cw,
                                bottom + (rows - 1 - row) * ch)
            canvas.showPage()
    canvas.save()
    return out.getvalue()
