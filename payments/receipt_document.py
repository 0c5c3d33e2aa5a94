"""A receipt's content in one language, as text: what the PDF and the e-mail print.

The same facts as the HTML page (templates/driver/receipt.html), taken from the receipt as
it was issued (never recomputed from the charge): the seller, the number and date, the
charging facts with start and end in the location's local time, the tariff's components,
net, VAT and total, the payment, and the credit notes issued against it since.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from payments.models import Receipt
from payments.money import Money

# (Swedish, English)
TEXTS: dict[str, tuple[str, str]] = {
    "receipt": ("Kvitto", "Receipt"),
    "credit_note": ("Kreditnota", "Credit note"),
    "org_number": ("Org.nr", "Company reg. no."),
    "vat_number": ("Momsreg.nr", "VAT no."),
    "number": ("Kvittonummer", "Receipt number"),
    "credit_number": ("Nummer", "Number"),
    "date": ("Datum", "Date"),
    "charging": ("Laddning", "Charging"),
    "location": ("Plats", "Location"),
    "charger": ("Laddare", "Charger"),
    "connector": ("uttag", "connector"),
    "start": ("Start", "Start"),
    "end": ("Slut", "End"),
    "duration": ("Tid", "Duration"),
    "energy": ("Energi", "Energy"),
    "price": ("Pris", "Price"),
    "incl_vat": ("inkl. moms", "incl. VAT"),
    "excl_vat": ("exkl. moms", "excl. VAT"),
    "net": ("Belopp exkl. moms", "Amount excl. VAT"),
    "vat": ("Moms", "VAT"),
    "total": ("Totalt betalt", "Total paid"),
    "payment": ("Betalning", "Payment"),
    "method": ("Betalsätt", "Payment method"),
    "card": ("Kort", "Card"),
    "reference": ("Betalningsreferens", "Payment reference"),
    "released": ("Resten av reservationen på kortet har släppts.",
                 "The rest of the card hold has been released."),
    "credits": ("Krediterar kvitto", "Credits receipt"),
    "reason": ("Anledning", "Reason"),
    "refunded": ("Återbetalt till kortet", "Refunded to the card"),
    "credit_notes": ("Kreditnotor", "Credit notes"),
    "after_refunds": ("Totalt efter återbetalning", "Total after refunds"),
    "local_time": ("Tider i platsens lokala tid", "Times in the location's local time"),
    # A receipt with no CDR behind it (captured before the card authorisation lapsed).
    "based_on_session": (
        "Baserat på den senaste uppdateringen av laddsessionen kl. {time} den {date}; "
        "laddoperatören skickade ingen slutlig debitering (CDR).",
        "Based on the last Session update at {time} on {date}; the CPO sent no CDR."),
    "based_on_session_unknown": (
        "Baserat på laddsessionens senaste uppdatering; laddoperatören skickade ingen "
        "slutlig debitering (CDR).",
        "Based on the last Session update; the CPO sent no CDR."),
    "demo": ("Testkvitto: betalningen gjordes i testläge, inga riktiga pengar drogs.",
             "Test receipt: paid in test mode, no real money was taken."),
}

COMPONENTS: dict[str, tuple[tuple[str, str], str]] = {
    "ENERGY": (("Energi", "Energy"), "/kWh"),
    "FLAT": (("Startavgift", "Start fee"), ""),
    "TIME": (("Laddtid", "Charging time"), "/h"),
    "PARKING_TIME": (("Parkering", "Parking time"), "/h"),
}

BRANDS = {"visa": "Visa", "mastercard": "Mastercard", "amex": "American Express",
          "maestro": "Maestro", "discover": "Discover", "unionpay": "UnionPay", "jcb": "JCB",
          "diners": "Diners Club"}


def text(key: str, language: str) -> str:
    pair = TEXTS[key]
    return pair[0] if language == "sv" else pair[1]


@dataclass(frozen=True)
class CreditNoteLines:
    number: str
    date: str
    reason: str
    net: str
    vat: str
    total: str


@dataclass(frozen=True)
class ReceiptDocument:
    language: str
    title: str
    number: str
    date: str
    seller_name: str
    seller_lines: list[str]  # address, org no, VAT no
    charging: list[tuple[str, str]]
    time_zone: str
    price_lines: list[tuple[str, str]]  # (component, "4,25 kr/kWh inkl. moms (3,40 kr exkl.)")
    totals: list[tuple[str, str]]  # net, VAT, total
    payment: list[tuple[str, str]]
    demo: bool
    credit_notes: list[CreditNoteLines] = field(default_factory=list)
    after_refunds: str | None = None  # the total less the credit notes, when there are any
    # What the amounts rest on when it is not a CDR ("based on the last Session update at
    # 17:05 ..."); None for an ordinary receipt.
    basis: str | None = None

    def heading(self, key: str) -> str:
        return text(key, self.language)


def build(receipt: Receipt, language: str) -> ReceiptDocument:
    if receipt.is_credit_note:
        raise ValueError("a credit note is printed on its receipt, not on its own")
    lang = language if language in ("sv", "en") else receipt.language
    details: dict[str, Any] = receipt.details or {}
    seller: dict[str, Any] = receipt.seller or {}
    zone_name = details.get("time_zone") or "UTC"
    zone = _zone(zone_name)

    def money(minor: int) -> str:
        return Money(minor, receipt.currency).format(lang)

    def t(key: str) -> str:
        return text(key, lang)

    seller_lines = [line for line in (
        seller.get("address"),
        f"{t('org_number')} {seller['org_number']}" if seller.get("org_number") else None,
        f"{t('vat_number')} {seller['vat_number']}" if seller.get("vat_number") else None,
    ) if line]

    place = details.get("location_name") or ""
    if details.get("address"):
        place = f"{place}, {details['address']}" if place else details["address"]
    charger = str(details.get("evse_id") or "–")
    if details.get("connector_id"):
        charger += f" · {t('connector')} {details['connector_id']}"
    charging = [
        (t("location"), place or "–"),
        (t("charger"), charger),
        (t("start"), _local(details.get("start"), zone)),
        (t("end"), _local(details.get("end"), zone)),
        (t("duration"), _duration(details.get("duration_hours"))),
        (t("energy"), _energy(details.get("energy_kwh"), lang)),
    ]

    price_lines = []
    for tariff in details.get("tariffs") or []:
        for element in tariff.get("elements") or []:
            for component in element.get("price_components") or []:
                names, unit = COMPONENTS.get(component.get("type"),
                                             ((component.get("type"),) * 2, ""))
                price = _decimal(component.get("price"))
                vat = _decimal(component.get("vat")) or Decimal(0)
                if price is None:
                    continue
                incl = Money.of(price * (100 + vat) / 100, receipt.currency).format(lang)
                excl = Money.of(price, receipt.currency).format(lang)
                price_lines.append((
                    names[0] if lang == "sv" else names[1],
                    f"{incl}{unit} {t('incl_vat')} ({excl}{unit} {t('excl_vat')})",
                ))

    rate = receipt.vat_rate.normalize()
    rate_text = f"{rate:f}".replace(".", ",") if lang == "sv" else f"{rate:f}"
    totals = [
        (t("net"), money(receipt.net_minor)),
        (f"{t('vat')} {rate_text} %", money(receipt.vat_minor)),
        (t("total"), money(receipt.total_minor)),
    ]

    if receipt.card_last4:
        brand = receipt.card_brand or ""
        method = f"{BRANDS.get(brand, brand.capitalize() or t('card'))} •••• {receipt.card_last4}"
    else:
        method = t("card")
    payment = [(t("method"), method), (t("reference"), receipt.payment_reference)]

    notes = [
        CreditNoteLines(
            number=note.display_number,
            date=_local(note.issued_at, zone),
            reason=str((note.details or {}).get("reason") or ""),
            net=money(note.net_minor),
            vat=money(note.vat_minor),
            total=money(note.total_minor),
        )
        for note in receipt.credit_notes
    ]
    return ReceiptDocument(
        language=lang,
        title=t("receipt"),
        number=receipt.display_number,
        date=_local(receipt.issued_at, zone),
        seller_name=str(seller.get("name") or ""),
        seller_lines=seller_lines,
        charging=charging,
        time_zone=zone_name if zone is not None else "UTC",
        price_lines=price_lines,
        totals=totals,
        payment=payment,
        demo=(receipt.payment_reference or "").startswith("pi_demo_"),
        credit_notes=notes,
        after_refunds=money(receipt.total_minor - receipt.credited_minor) if notes else None,
        basis=_basis(details.get("based_on"), zone, lang),
    )


def _basis(based_on: Any, zone: ZoneInfo | None, language: str) -> str | None:
    if not isinstance(based_on, dict) or based_on.get("kind") != "last_session":
        return None
    when = based_on.get("session_updated_at")
    if not when:
        return text("based_on_session_unknown", language)
    local = _local(when, zone)  # "2026-11-21 17:05" (or "... UTC")
    date, _, time = local.partition(" ")
    return text("based_on_session", language).format(time=time, date=date)


def plain_text(doc: ReceiptDocument) -> str:
    """The receipt as plain text (the e-mail's text part)."""
    lines: list[str] = []

    def section(title: str, rows: list[tuple[str, str]]) -> None:
        lines.extend(["", title, "-" * len(title)])
        width = max((len(label) for label, _ in rows), default=0)
        lines.extend(f"{label.ljust(width)}  {value}" for label, value in rows)

    lines.append(f"{doc.title} {doc.number}")
    lines.append(f"{doc.heading('date')}: {doc.date}")
    if doc.demo:
        lines.extend(["", doc.heading("demo")])
    if doc.basis:
        lines.extend(["", doc.basis])
    lines.extend(["", doc.seller_name, *doc.seller_lines])
    section(doc.heading("charging"), doc.charging)
    lines.append(f"({doc.heading('local_time')}: {doc.time_zone})")
    if doc.price_lines:
        section(doc.heading("price"), doc.price_lines)
    section(doc.heading("payment"), [*doc.totals, *doc.payment])
    lines.append(doc.heading("released"))
    for note in doc.credit_notes:
        section(f"{doc.heading('credit_note')} {note.number}", [
            (doc.heading("date"), note.date),
            (doc.heading("credits"), doc.number),
            (doc.heading("reason"), note.reason),
            (doc.heading("net"), note.net),
            (doc.heading("vat"), note.vat),
            (doc.heading("refunded"), note.total),
        ])
    if doc.after_refunds is not None:
        lines.extend(["", f"{doc.heading('after_refunds')}: {doc.after_refunds}"])
    return "\n".join(lines).replace("\u00a0", " ") + "\n"


# --- formatting ----------------------------------------------------------------------------


def _zone(name: str) -> ZoneInfo | None:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def _local(value: str | datetime | None, zone: ZoneInfo | None) -> str:
    """'2026-11-21 17:05' in the location's time zone ('... UTC' when it is unknown)."""
    if not value:
        return "–"
    when = value if isinstance(value, datetime) else datetime.fromisoformat(
        str(value).replace("Z", "+00:00"))
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    if zone is None:
        return f"{when.astimezone(UTC):%Y-%m-%d %H:%M} UTC"
    return f"{when.astimezone(zone):%Y-%m-%d %H:%M}"


def _decimal(value: Any) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def _duration(hours: Any) -> str:
    value = _decimal(hours)
    if value is None:
        return "–"
    minutes = int((value * 60).quantize(Decimal(1), rounding=ROUND_HALF_UP))
    return f"{minutes // 60} h {minutes % 60:02d} min" if minutes >= 60 else f"{minutes} min"


def _energy(kwh: Any, language: str) -> str:
    value = _decimal(kwh)
    if value is None:
        return "–"
    digits = f"{value.quantize(Decimal('0.001'), rounding=ROUND_HALF_UP):f}"
    return (digits.replace(".", ",") if language == "sv" else digits) + " kWh"
