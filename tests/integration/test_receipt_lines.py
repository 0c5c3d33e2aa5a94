"""The receipt a driver and a tax office can check (issue 11): each line quantity × unit
price = amount, the adjustment line when the hold or the cap cut the amount, VAT per rate,
start and end in local time with the zone, the card, the seller; the same on the page, the
PDF and the e-mail."""

from __future__ import annotations

import html as html_lib
import re
from decimal import Decimal
from typing import Any

from charge_factory import captured_charge
from test_receipt_pdf_mail import pdf_text

from extensions import db
from i18n import render_in
from payments.models import Receipt
from payments.receipt_document import build, plain_text


def page_text(client: Any, receipt: Receipt, lang: str) -> str:
    body = client.get(f"/r/{receipt.public_token}?lang={lang}").get_data(as_text=True)
    text = re.sub(r"<[^>]+>", " ", body)
    return re.sub(r"\s+", " ", html_lib.unescape(text).replace("\u00a0", " "))


def flat(text: str) -> str:
    return re.sub(r"\s+", " ", text.replace("\u00a0", " "))


def everywhere(client: Any, receipt: Receipt, lang: str) -> dict[str, str]:
    doc = build(receipt, lang)
    mail_html = render_in(lang, "email/receipt.html", doc=doc, intro="", link="")
    return {
        "page": page_text(client, receipt, lang),
        "pdf": flat(pdf_text(client.get(f"/r/{receipt.public_token}.pdf?lang={lang}")
                             .get_data())),
        "mail text": flat(plain_text(doc)),
        "mail html": flat(html_lib.unescape(re.sub(r"<[^>]+>", " ", mail_html))),
    }


def test_lines_add_up_to_the_total_on_the_page_the_pdf_and_the_mail(
    app: Any, client: Any
) -> None:
    charge = captured_charge()
    receipt = db.session.get(Receipt, charge.receipt_pk)
    lines = receipt.details["lines"]
    assert sum(x["amount_minor"] for x in lines) == receipt.total_minor == 4500
    assert receipt.details["adjustment"] is None
    assert receipt.details["vat_rates"] == [
        {"rate": "25", "gross_minor": 4500, "net_minor": 3600, "vat_minor": 900}]
    for where, text in everywhere(client, receipt, "en").items():
        for expected in ("Start fee", "1 × SEK 2.50", "SEK 2.50",
                         "Energy", "10.000 kWh × SEK 4.25/kWh", "SEK 42.50",
                         "VAT 25 % of SEK 36.00", "SEK 9.00", "SEK 45.00",
                         "21 Nov 2026, 17:05 CET", "21 Nov 2026, 17:50 CET",
                         "Visa •••• 4242", "ScanCharge Demo AB", "559000-0000",
                         "SE*SIM*E00001", "Sergels torg"):
            assert expected in text, (where, expected)
        assert "Capped" not in text, where


def test_a_capped_amount_shows_the_adjustment_line(app: Any, client: Any) -> None:
    # 80 kWh: 2.50 + 80 × 4.25 = 342.50 kr, but only 300 kr were held: 300 kr captured.
    charge = captured_charge(kwh=80, excl_vat="274.00", incl_vat="342.50")
    receipt = db.session.get(Receipt, charge.receipt_pk)
    assert receipt.total_minor == 30000
    lines = receipt.details["lines"]
    assert [x["amount_minor"] for x in lines] == [250, 34000]
    assert receipt.details["adjustment"] == {"reason": "limit", "amount_minor": -4250}
    assert sum(x["amount_minor"] for x in lines) - 4250 == receipt.total_minor
    assert (receipt.net_minor, receipt.vat_minor, receipt.vat_rate) == \
        (24000, 6000, Decimal(25))
    for where, text in everywhere(client, receipt, "sv").items():
        for expected in ("80,000 kWh × 4,25 kr/kWh", "340,00 kr",
                         "Begränsat till din gräns (beloppet som reserverades på ditt kort)",
                         "-42,50 kr", "Moms 25 % av 240,00 kr", "60,00 kr", "300,00 kr"):
            assert expected in text, (where, expected)
