"""The receipt as a PDF (A4): the same content as the HTML page, in the receipt's language.

Rendered with ReportLab. The font is Bitstream Vera, which ships inside the reportlab
package, embedded as a TrueType subset: å, ä, ö, æ, ø, ß, é, –, • and € print on every machine and
the text can be copied or extracted, with no system fonts needed.
"""

from __future__ import annotations

import io
import os
import threading
from collections.abc import Callable
from xml.sax.saxutils import escape

import reportlab
from reportlab.lib import colors
from reportlab.lib.enums import TA_RIGHT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.platypus import KeepTogether, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from payments.models import Receipt
from payments.receipt_document import ReceiptDocument, build

FONT, BOLD = "ScanChargeVera", "ScanChargeVera-Bold"
_fonts_lock = threading.Lock()
GREY = colors.HexColor("#5f6b76")
LINE = colors.HexColor("#c9d1d9")
WIDTH = A4[0] - 40 * mm - 12  # the page less its margins and the frame's 6 pt paddings


def _register_fonts() -> None:
    with _fonts_lock:
        if FONT in pdfmetrics.getRegisteredFontNames():
            return
        folder = os.path.join(os.path.dirname(reportlab.__file__), "fonts")
        pdfmetrics.registerFont(TTFont(FONT, os.path.join(folder, "Vera.ttf")))
        pdfmetrics.registerFont(TTFont(BOLD, os.path.join(folder, "VeraBd.ttf")))
        pdfmetrics.registerFontFamily(FONT, normal=FONT, bold=BOLD, italic=FONT, boldItalic=BOLD)


def _styles() -> dict[str, ParagraphStyle]:
    base = ParagraphStyle("base", fontName=FONT, fontSize=9.5, leading=13)
    return {
        "base": base,
        "title": ParagraphStyle("title", parent=base, fontName=BOLD, fontSize=20, leading=24),
        "h2": ParagraphStyle("h2", parent=base, fontName=BOLD, fontSize=11.5, leading=15,
                             spaceBefore=9, spaceAfter=3),
        "muted": ParagraphStyle("muted", parent=base, textColor=GREY, fontSize=8.5, leading=11),
        "right": ParagraphStyle("right", parent=base, alignment=TA_RIGHT),
        "seller": ParagraphStyle("seller", parent=base, alignment=TA_RIGHT, leading=12),
        "demo": ParagraphStyle("demo", parent=base, fontName=BOLD, textColor=colors.white,
                               backColor=colors.HexColor("#b45309"), borderPadding=(4, 6, 4, 6),
                               spaceAfter=8),
    }


def render_pdf(receipt: Receipt, language: str) -> bytes:
    """The PDF of `receipt` (with its credit notes) in `language` (one of i18n.LANGUAGES)."""
    return render_document(build(receipt, language))


def _paragraphs(s: dict[str, ParagraphStyle]) -> tuple[
    Callable[..., Paragraph], Callable[..., Paragraph], Callable[..., Table]
]:
    def p(value: str, style: str = "base") -> Paragraph:
        return Paragraph(escape(str(value)), s[style])

    def bold(value: str, style: str = "base") -> Paragraph:
        return Paragraph(f"<b>{escape(str(value))}</b>", s[style])

    def facts(rows: list[tuple[str, str]], label_width: float = 48 * mm) -> Table:
        table = Table([[p(label, "muted"), p(value)] for label, value in rows],
                      colWidths=[label_width, WIDTH - label_width])
        table.setStyle(TableStyle([
            ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ("LEFTPADDING", (0, 0), (-1, -1), 0),
            ("BOTTOMPADDING", (0, 0), (-1, -1), 2.5),
            ("TOPPADDING", (0, 0), (-1, -1), 2.5),
        ]))
        return table

    return p, bold, facts


def _lines_table(doc: ReceiptDocument, p: Callable[..., Paragraph]) -> Table:
    """name | quantity × unit price | amount, then the adjustment when there is one."""
    rows = [[p(name), p(what), p(amount, "right")] for name, what, amount in doc.lines]
    if doc.adjustment:
        rows.append([p(doc.adjustment[0]), p(""), p(doc.adjustment[1], "right")])
    table = Table(rows, colWidths=[40 * mm, WIDTH - 70 * mm, 30 * mm])
    table.setStyle(TableStyle([
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("LEFTPADDING", (0, 0), (-1, -1), 0),
        ("RIGHTPADDING", (0, 0), (-1, -1), 0),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 2.5),
        ("TOPPADDING", (0, 0), (-1, -1), 2.5),
    ]))
    return table


def render_document(doc: ReceiptDocument) -> bytes:
    _register_fonts()
    s = _styles()
    p, bold, facts = _paragraphs(s)
    _ = doc.gettext

    story: list = []
    if doc.demo:
        story.append(p("DEMO – " + _("Test receipt: paid in test mode, no real money was taken."),
                       "demo"))
    seller = "<br/>".join([f"<b>{escape(doc.seller_name)}</b>",
                           *(escape(line) for line in doc.seller_lines)])
    head = Table([[p(doc.title, "title"), Paragraph(seller, s["seller"])]],
                 colWidths=[WIDTH * 0.45, WIDTH * 0.55])
    head.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP"),
                              ("LEFTPADDING", (0, 0), (-1, -1), 0),
                              ("RIGHTPADDING", (0, 0), (-1, -1), 0)]))
    story += [head, Spacer(1, 6 * mm),
              facts([(_("Receipt number"), doc.number), (_("Date"), doc.date)])]

    if doc.basis:
        story.append(p(doc.basis))
    local_time = _("Times in the location's local time")
    story += [p(_("Charging"), "h2"), facts(doc.charging),
              p(f"{local_time} ({doc.time_zone}).", "muted")]
    if doc.lines:
        story += [p(_("Price"), "h2"), _lines_table(doc, p)]
    elif doc.price_lines:
        story += [p(_("Price"), "h2"), facts(doc.price_lines)]

    *amounts, (total_label, total_value) = doc.totals
    totals = Table(
        [[p(label), p(value, "right")] for label, value in amounts]
        + [[bold(total_label), bold(total_value, "right")]],
        colWidths=[WIDTH - 45 * mm, 45 * mm],
    )
    totals.setStyle(TableStyle([
        ("LINEABOVE", (0, 0), (-1, 0), 0.6, LINE),
        ("LINEABOVE", (0, -1), (-1, -1), 0.9, colors.black),
        ("LEFTPADDING", (0, 0), (-1, -1), 0),
        ("RIGHTPADDING", (0, 0), (-1, -1), 0),
    ]))
    story += [Spacer(1, 4 * mm), totals]

    story += [p(_("Payment"), "h2"), facts(doc.payment),
              p(_("The rest of the card hold has been released."), "muted")]

    if doc.credit_notes:
        story.append(p(_("Credit notes"), "h2"))
        for note in doc.credit_notes:
            story.append(KeepTogether([bold(f"{_('Credit note')} {note.number}"),
                                       facts(doc.note_rows(note)), Spacer(1, 2 * mm)]))
        story.append(bold(f"{_('Total after refunds')}: {doc.after_refunds or ''}"))

    out = io.BytesIO()
    title = f"{doc.title} {doc.number}"
    SimpleDocTemplate(
        out, pagesize=A4, leftMargin=20 * mm, rightMargin=20 * mm, topMargin=18 * mm,
        bottomMargin=18 * mm, title=title, author=doc.seller_name, subject=title,
        creator="ScanCharge", lang=doc.language,
    ).build(story)
    return out.getvalue()
