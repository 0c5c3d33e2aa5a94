"""QR code stickers for chargers.

A driver scans the sticker on a public charger with the phone's camera app; it opens the
charger page ``{PUBLIC_BASE_URL}/c/{EVSE-ID}``. This module builds that URL and renders the
sticker artwork: a PNG for quick printing and an SVG for print shops (it scales without loss).

Choices that matter for a sticker glued to a charger outdoors:

* **Error correction Q (~25 % of codewords recoverable), not M (~15 %).** Stickers get
  scratched, smeared, faded by UV and photographed under glare or at an angle. For the short
  URLs we encode, Q costs at most one QR version (e.g. 33x33 -> 37x37 modules) compared with M,
  so modules stay well over 1 mm on a 4-5 cm sticker and any phone camera reads them from arm's
  length. H (~30 %) is only worth it when a logo covers part of the code; we have none.
* **A quiet zone of at least 4 modules** (the minimum the QR standard requires) on every side.
  The label goes *below* the quiet zone, never inside it, so it cannot confuse the finder.
* **The label is the EVSE ID in plain text** so a driver whose camera fails can still type it in,
  and support staff can match a photo of the sticker to a charger.
"""

from __future__ import annotations

import io
import re
import xml.etree.ElementTree as ET
from urllib.parse import quote

import qrcode
from PIL import Image, ImageDraw, ImageFont, features
from qrcode.constants import ERROR_CORRECT_Q
from qrcode.image.pil import PilImage
from qrcode.image.svg import SvgPathImage

__all__ = ["ERROR_CORRECTION", "MIN_BORDER", "charger_url", "make_qr", "qr_png", "qr_svg"]

#: See the module docstring for why Q rather than M.
ERROR_CORRECTION = ERROR_CORRECT_Q

#: Minimum quiet zone in modules, as required by ISO/IEC 18004.
MIN_BORDER = 4

# Label font size (em) relative to one QR module. 4 modules gives capitals about 2.8 modules
# tall: ~11 pt when printed at 1 mm per module, readable from arm's length. Long labels may
# shrink to 2.5 modules (capitals ~1.8 mm, ~7 pt); below that we widen the sticker instead.
_LABEL_EM_MODULES = 4.0
_LABEL_MIN_EM_MODULES = 2.5
# White space under the label and either side of it, in modules.
_LABEL_MARGIN_MODULES = 2

_SVG_NS = "http://www.w3.org/2000/svg"
# Monospace so the width of the label can be predicted without font metrics, and so 0/O and 1/I
# in EVSE IDs stay distinguishable.
_SVG_FONT_FAMILY = "DejaVu Sans Mono, Menlo, Consolas, Liberation Mono, monospace"
_SVG_MONO_ADVANCE = 0.6  # advance width of a monospace glyph, in em (0.6 for the fonts above)

# Characters that may not appear in an XML 1.0 document at all, even escaped.
_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def charger_url(base_url: str, evse_id: str) -> str:
    """Return the charger page URL printed in the QR code: ``{base_url}/c/{evse_id}``.

    Why ``*`` is left unescaped (``/c/SE*SIM*E00001``, not ``/c/SE%2ASIM%2AE00001``):

    * ``*`` is a sub-delimiter that RFC 3986 allows verbatim in a path segment, and the WHATWG
      URL standard that browsers follow does not percent-encode it either, so iOS Safari and
      Android Chrome open the URL exactly as written. The URL detectors of the camera apps
      (Apple's data detectors, ZXing / ML Kit on Android) accept ``*`` in URLs too.
    * Each ``%2A`` is three characters instead of one. A typical eMI3 EVSE ID has two ``*``, so
      escaping adds 4 bytes; with ``https://scancharge.example.org`` that pushes the code from
      version 4 to version 5 at error correction Q (33x33 -> 37x37 modules): smaller modules at
      the same print size and worse scanning from a distance or with a scratched sticker.
    * The server side does not care: the WSGI server percent-decodes the path, so ``*`` and
      ``%2A`` route to the same page, and stickers printed either way keep working.
    * The URL shown by the phone before opening it matches the label printed under the code.

    Every other character outside RFC 3986 "unreserved" (for example ``/``, ``?``, ``#``, ``&``,
    spaces, non-ASCII) is percent-encoded, so an odd ID can never change the path or add a query.

    The scheme and host are kept as configured (not upper-cased to squeeze them into QR
    alphanumeric mode): it would save at most one version and some scanner apps only recognise
    lower-case ``http(s)://`` as a link.
    """
    if not evse_id:
        raise ValueError("evse_id must not be empty")
    base = base_url.rstrip("/")
    if not base.startswith(("https://", "http://")):
        # Camera apps only offer to open absolute http(s) URLs; anything else is shown as text.
        raise ValueError(f"base_url must be an absolute http(s) URL, got {base_url!r}")
    return f"{base}/c/{quote(evse_id, safe='*')}"


def make_qr(url: str, box_size: int, border: int) -> qrcode.QRCode:
    """Build the smallest QR code (version chosen by ``fit``) for ``url`` at our EC level."""
    if not url:
        raise ValueError("url must not be empty")
    if border < MIN_BORDER:
        raise ValueError(f"border must be at least {MIN_BORDER} modules (QR quiet zone)")
    if box_size < 1:
        raise ValueError("box_size must be at least 1 pixel")
    qr = qrcode.QRCode(error_correction=ERROR_CORRECTION, box_size=box_size, border=border)
    qr.add_data(url)
    qr.make(fit=True)
    return qr


def _scalable_font(size: int) -> ImageFont.FreeTypeFont:
    # With FreeType, load_default(size=...) is always the scalable font.
    font = ImageFont.load_default(size=size)
    assert isinstance(font, ImageFont.FreeTypeFont)
    return font


def _label_image(label: str, em_px: int, min_em_px: int, max_width: int) -> Image.Image:
    """Render ``label`` black on white, shrinking the font (not below ``min_em_px``) to fit.

    The image is exactly as tall as the font's ascent + descent, independent of which glyphs
    the label uses, so every sticker of a batch has the same layout.
    """
    if features.check("freetype2"):
        font = _scalable_font(em_px)
        if font.getlength(label) > max_width:
            # Text width scales about linearly with the size; step down from the estimate to
            # absorb hinting and rounding.
            size = max(min_em_px, int(em_px * max_width / font.getlength(label)))
            font = _scalable_font(size)
            while size > min_em_px and font.getlength(label) > max_width:
                size -= 1
                font = _scalable_font(size)
        ascent, descent = font.getmetrics()
        width = max(1, int(font.getlength(label) + 0.5))
        img = Image.new("L", (width, ascent + descent), 255)
        ImageDraw.Draw(img).text((0, 0), label, font=font, fill=0, anchor="la")
        return img

    # Pillow built without FreeType: only the fixed-size bitmap font exists. Render it at its
    # native size and scale up by an integer factor with NEAREST so the strokes stay crisp.
    bitmap_font = ImageFont.load_default_imagefont()
    # "Ag" makes the height cover ascenders and descenders whatever the label contains.
    height = bitmap_font.getbbox("Ag" + label)[3]
    width = max(1, int(bitmap_font.getlength(label) + 0.5))
    small = Image.new("L", (width, height), 255)
    ImageDraw.Draw(small).text((0, 0), label, font=bitmap_font, fill=0)
    factor = max(1, round(em_px / max(1, height)))
    while factor > 1 and width * factor > max_width and height * (factor - 1) >= min_em_px:
        factor -= 1
    return small.resize((width * factor, height * factor), Image.Resampling.NEAREST)


def qr_png(url: str, label: str, *, box_size: int = 10, border: int = 4) -> bytes:
    """Return a PNG sticker: the QR code for ``url`` with ``label`` centred underneath.

    ``box_size`` is the size of one module in pixels and ``border`` the quiet zone in modules
    (at least 4, see :data:`MIN_BORDER`). The label sits below the quiet zone, its font scaled
    with ``box_size`` (about 4 modules em size) so it prints at a readable size whatever the
    resolution. A long label is shrunk down to 2.5 modules and, if it still does not fit, the
    canvas is widened (the code stays centred) rather than the text becoming unreadable.

    The image is 8-bit greyscale: pure black and white in the code, anti-aliased text.
    """
    qr = make_qr(url, box_size, border)
    code = qr.make_image(image_factory=PilImage).get_image().convert("L")
    margin = _LABEL_MARGIN_MODULES * box_size

    if not label:
        return _png_bytes(code)

    text = _label_image(
        label,
        em_px=max(1, round(_LABEL_EM_MODULES * box_size)),
        min_em_px=max(1, round(_LABEL_MIN_EM_MODULES * box_size)),
        max_width=code.width - 2 * margin,
    )
    width = max(code.width, text.width + 2 * margin)
    height = code.height + text.height + margin
    sticker = Image.new("L", (width, height), 255)
    sticker.paste(code, ((width - code.width) // 2, 0))
    sticker.paste(text, ((width - text.width) // 2, code.height))
    return _png_bytes(sticker)


def _png_bytes(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def _num(value: float) -> str:
    """Format an SVG coordinate compactly: 41 rather than 41.0, at most 3 decimals."""
    return f"{round(value, 3):g}"


def qr_svg(url: str, label: str) -> bytes:
    """Return a standalone SVG sticker: the QR code for ``url`` with ``label`` centred below.

    One user unit is one QR module, and ``width``/``height`` are given in millimetres, so the
    natural print size is 1 mm per module (e.g. 41 x 47 mm for a version 4 code); the
    ``viewBox`` lets a print shop scale it to any sticker size without loss. The code is a
    single ``<path>`` from qrcode's :class:`~qrcode.image.svg.SvgPathImage` (no hairline gaps
    between modules when rasterised), on an explicit white background so it also works on
    coloured or transparent sticker stock. The label is a real ``<text>`` element (searchable,
    editable in Inkscape/Illustrator), XML-escaped by ElementTree, in a monospace font.
    """
    if _XML_INVALID.search(label):
        raise ValueError("label contains characters that cannot appear in XML")
    # box_size=10 makes qrcode's SVG factory emit exactly 1 user unit per module.
    qr = make_qr(url, box_size=10, border=MIN_BORDER)
    path = qr.make_image(image_factory=SvgPathImage).path
    assert path is not None  # SvgPathImage.process() always sets it

    size = qr.modules_count + 2 * MIN_BORDER
    font_size = 0.0
    height = float(size)
    if label:
        fit = (size - 2 * _LABEL_MARGIN_MODULES) / (_SVG_MONO_ADVANCE * len(label))
        font_size = max(min(_LABEL_EM_MODULES, fit), _LABEL_MIN_EM_MODULES)
        height = size + font_size + _LABEL_MARGIN_MODULES
    # Like the PNG: widen rather than shrink the text below the minimum size.
    width = max(size, _SVG_MONO_ADVANCE * font_size * len(label) + 2 * _LABEL_MARGIN_MODULES)
    x_offset = (width - size) / 2

    svg = ET.Element(
        "svg",
        {
            "xmlns": _SVG_NS,
            "version": "1.1",
            "width": f"{_num(width)}mm",
            "height": f"{_num(height)}mm",
            "viewBox": f"0 0 {_num(width)} {_num(height)}",
        },
    )
    ET.SubElement(svg, "title").text = label or url
    ET.SubElement(
        svg,
        "rect",
        {"x": "0", "y": "0", "width": _num(width), "height": _num(height), "fill": "#ffffff"},
    )
    code = ET.SubElement(svg, "path", {"d": path.get("d", ""), "fill": "#000000"})
    if x_offset:
        code.set("transform", f"translate({_num(x_offset)} 0)")
    if label:
        text = ET.SubElement(
            svg,
            "text",
            {
                "x": _num(width / 2),
                # Baseline ~0.8 em below the quiet zone: the ascent of typical monospace fonts.
                "y": _num(size + 0.8 * font_size),
                "text-anchor": "middle",
                "font-family": _SVG_FONT_FAMILY,
                "font-size": _num(font_size),
                "fill": "#000000",
            },
        )
        text.text = label
    return ET.tostring(svg, encoding="utf-8", xml_declaration=True)
