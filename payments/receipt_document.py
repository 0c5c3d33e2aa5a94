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

from i18n import (
    LANGUAGES,
    Texts,
    format_clock,
    format_day,
    format_number,
    format_time_of_day,
    texts,
)
from payments.models import Receipt
from payments.money import Money
from payments.receipt_lines import UNITS, Line

BRANDS = {"visa": "Visa", "mastercard": "Mastercard", "amex": "American Express",
          "maestro": "Maestro", "discover": "Discover", "unionpay": "UnionPay", "jcb": "JCB",
          "diners": "Diners Club"}


def component_name(kind: str | None, t: Texts) -> tuple[str, str]:
    """A tariff component's name and the unit its price is per."""
    names = {
        "ENERGY": (t.gettext("Energy"), "/kWh"),
        "FLAT": (t.gettext("Start fee"), ""),
        "TIME": (t.gettext("Charging time"), "/h"),
        "PARKING_TIME": (t.gettext("Parking time"), "/h"),
    }
    return names.get(kind or "", (str(kind), ""))


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
    totals: list[tuple[str, str]]  # net, VAT per rate, total
    payment: list[tuple[str, str]]
    demo: bool
    credit_notes: list[CreditNoteLines] = field(default_factory=list)
    after_refunds: str | None = None  # the total less the credit notes, when there are any
    # What the amounts rest on when it is not a CDR ("based on the last Session update at
    # 17:05 ..."); None for an ordinary receipt.
    basis: str | None = None
    # (name, "10,000 kWh × 4,25 kr/kWh", "42,50 kr"): quantity × unit price incl. VAT = amount;
    # empty for a receipt issued before lines were kept (price_lines is printed then).
    lines: list[tuple[str, str, str]] = field(default_factory=list)
    # ("Capped at the amount held on your card", "-4,23 kr") when the lines' sum is not the
    # amount charged: lines + adjustment = total paid.
    adjustment: tuple[str, str] | None = None

    def gettext(self, msgid: str) -> str:
        """`msgid` in the document's language."""
        return texts(self.language).gettext(msgid)

    def note_rows(self, note: CreditNoteLines) -> list[tuple[str, str]]:
        """A credit note's facts, as the PDF, the e-mail and its text part list them."""
        _ = self.gettext
        return [(_("Date"), note.date), (_("Credits receipt"), self.number),
                (_("Reason"), note.reason), (_("Amount excl. VAT"), note.net),
                (_("VAT"), note.vat), (_("Refunded to the card"), note.total)]


def build(receipt: Receipt, language: str) -> ReceiptDocument:
    if receipt.is_credit_note:
        raise ValueError("a credit note is printed on its receipt, not on its own")
    lang = language if language in LANGUAGES else receipt.language
    t = texts(lang)
    details: dict[str, Any] = receipt.details or {}
    zone_name = details.get("time_zone") or "UTC"
    zone = _zone(zone_name)

    def money(minor: int) -> str:
        return Money(minor, receipt.currency).format(lang)

    notes = [
        CreditNoteLines(
            number=note.display_number,
            date=_local(note.issued_at, zone, lang),
            reason=str((note.details or {}).get("reason") or ""),
            net=money(note.net_minor),
            vat=money(note.vat_minor),
            total=money(note.total_minor),
        )
        for note in receipt.credit_notes
    ]
    return ReceiptDocument(
        language=lang,
        title=t.gettext("Receipt"),
        number=receipt.display_number,
        date=_local(receipt.issued_at, zone, lang),
        seller_name=str((receipt.seller or {}).get("name") or ""),
        seller_lines=_seller_lines(receipt.seller or {}, t),
        charging=_charging(details, zone, t),
        time_zone=zone_name if zone is not None else "UTC",
        price_lines=_price_lines(details, receipt.currency, t),
        totals=_totals(receipt, t),
        payment=_payment(receipt, t),
        demo=(receipt.payment_reference or "").startswith("pi_demo_"),
        credit_notes=notes,
        after_refunds=money(receipt.total_minor - receipt.credited_minor) if notes else None,
        basis=_basis(details.get("based_on"), zone, t),
        lines=_lines(details, receipt.currency, t),
        adjustment=_adjustment(details, receipt.currency, t),
    )


def _seller_lines(seller: dict[str, Any], t: Texts) -> list[str]:
    return [line for line in (
        seller.get("address"),
        f"{t.gettext('Company reg. no.')} {seller['org_number']}"
        if seller.get("org_number") else None,
        f"{t.gettext('VAT no.')} {seller['vat_number']}" if seller.get("vat_number") else None,
    ) if line]


def _charging(details: dict[str, Any], zone: ZoneInfo | None, t: Texts) -> list[tuple[str, str]]:
    place = details.get("location_name") or ""
    if details.get("address"):
        place = f"{place}, {details['address']}" if place else details["address"]
    charger = str(details.get("evse_id") or "–")
    if details.get("connector_id"):
        charger += f" · {t.gettext('connector')} {details['connector_id']}"
    return [
        (t.gettext("Location"), place or "–"),
        (t.gettext("Charger"), charger),
        (t.gettext("Start"), _local(details.get("start"), zone, t.language)),
        (t.gettext("End"), _local(details.get("end"), zone, t.language)),
        (t.gettext("Duration"), _duration(details.get("duration_hours"))),
        (t.gettext("Energy"), _energy(details.get("energy_kwh"), t.language)),
    ]


def _price_lines(details: dict[str, Any], currency: str, t: Texts) -> list[tuple[str, str]]:
    lines = []
    for tariff in details.get("tariffs") or []:
        for element in tariff.get("elements") or []:
            for component in element.get("price_components") or []:
                name, unit = component_name(component.get("type"), t)
                price = _decimal(component.get("price"))
                vat = _decimal(component.get("vat")) or Decimal(0)
                if price is None:
                    continue
                incl = Money.of(price * (100 + vat) / 100, currency).format(t.language)
                excl = Money.of(price, currency).format(t.language)
                lines.append((name, t.gettext(
                    "%(incl)s%(unit)s incl. VAT (%(excl)s%(unit)s excl. VAT)",
                    incl=incl, excl=excl, unit=unit)))
    return lines


def _lines(details: dict[str, Any], currency: str, t: Texts) -> list[tuple[str, str, str]]:
    out = []
    for data in details.get("lines") or []:
        item = Line.from_json(data)
        name, per = component_name(item.kind, t)
        places = {"ENERGY": 3, "FLAT": 0}.get(item.kind, 4)
        quantity = format_number(item.quantity, t.language, places, group=False)
        unit = UNITS.get(item.kind, "")
        # The unit price exactly as multiplied: 2 decimals, more only when it has them.
        price = Money.of(item.unit_price, currency).format(t.language) \
            if item.unit_price == item.unit_price.quantize(Decimal("0.01")) \
            else f"{format_number(item.unit_price, t.language, 2, 6)} {currency}"
        what = f"{quantity} {unit} × {price}{per}".replace("  ", " ")
        out.append((name, what, Money(item.amount_minor, currency).format(t.language)))
    return out


def _adjustment(details: dict[str, Any], currency: str, t: Texts) -> tuple[str, str] | None:
    found = details.get("adjustment")
    if not isinstance(found, dict) or not found.get("amount_minor"):
        return None
    labels = {
        "limit": t.gettext("Capped at your limit (the amount held on your card)"),
        "min_price": t.gettext("The tariff's minimum price"),
        "max_price": t.gettext("The tariff's maximum price"),
        "rounding": t.gettext("Rounding"),
    }
    label = labels.get(str(found.get("reason")), labels["rounding"])
    return label, Money(int(found["amount_minor"]), currency).format(t.language)


def _totals(receipt: Receipt, t: Texts) -> list[tuple[str, str]]:
    def money(minor: int) -> str:
        return Money(minor, receipt.currency).format(t.language)

    def rate_text(rate: Decimal) -> str:
        return format_number(rate.normalize(), t.language, 0, 6, group=False)

    rows = (receipt.details or {}).get("vat_rates") or []
    if rows:  # VAT per rate, each on its own net amount
        vat = [(t.gettext("VAT %(rate)s %% of %(net)s", rate=rate_text(Decimal(row["rate"])),
                          net=money(int(row["net_minor"]))), money(int(row["vat_minor"])))
               for row in rows]
    else:
        vat = [(f"{t.gettext('VAT')} {rate_text(receipt.vat_rate)} %", money(receipt.vat_minor))]
    return [(t.gettext("Amount excl. VAT"), money(receipt.net_minor)), *vat,
            (t.gettext("Total paid"), money(receipt.total_minor))]


def _payment(receipt: Receipt, t: Texts) -> list[tuple[str, str]]:
    if receipt.card_last4:
        brand = receipt.card_brand or ""
        name = BRANDS.get(brand, brand.capitalize() or t.gettext("Card"))
        method = f"{name} •••• {receipt.card_last4}"
    else:
        method = t.gettext("Card")
    return [(t.gettext("Payment method"), method),
            (t.gettext("Payment reference"), receipt.payment_reference)]


def _basis(based_on: Any, zone: ZoneInfo | None, t: Texts) -> str | None:
    if not isinstance(based_on, dict) or based_on.get("kind") != "last_session":
        return None
    when = based_on.get("session_updated_at")
    if not when:
        return t.gettext("Based on the last Session update; the CPO sent no CDR.")
    moment = _moment(when, zone)
    date = format_day(moment, t.language)
    time = f"{format_time_of_day(moment, t.language)} {_zone_name(moment, zone)}"
    return t.gettext("Based on the last Session update at %(time)s on %(date)s; the CPO sent "
                     "no CDR.", time=time, date=date)


def plain_text(doc: ReceiptDocument) -> str:
    """The receipt as plain text (the e-mail's text part)."""
    _ = doc.gettext
    lines: list[str] = []

    def section(title: str, rows: list[tuple[str, str]]) -> None:
        lines.extend(["", title, "-" * len(title)])
        width = max((len(label) for label, _ in rows), default=0)
        lines.extend(f"{label.ljust(width)}  {value}" for label, value in rows)

    lines.append(f"{doc.title} {doc.number}")
    lines.append(f"{_('Date')}: {doc.date}")
    if doc.demo:
        lines.extend(["", _("Test receipt: paid in test mode, no real money was taken.")])
    if doc.basis:
        lines.extend(["", doc.basis])
    lines.extend(["", doc.seller_name, *doc.seller_lines])
    section(_("Charging"), doc.charging)
    local_time = _("Times in the location's local time")
    lines.append(f"({local_time}: {doc.time_zone})")
    if doc.lines:
        section(_("Price"), [(name, f"{what} = {amount}") for name, what, amount in doc.lines])
        if doc.adjustment:
            lines.append(f"{doc.adjustment[0]}: {doc.adjustment[1]}")
    elif doc.price_lines:
        section(_("Price"), doc.price_lines)
    section(_("Payment"), [*doc.totals, *doc.payment])
    lines.append(_("The rest of the card hold has been released."))
    for note in doc.credit_notes:
        section(f"{_('Credit note')} {note.number}", doc.note_rows(note))
    if doc.after_refunds is not None:
        lines.extend(["", f"{_('Total after refunds')}: {doc.after_refunds}"])
    return "\n".join(lines).replace("\u00a0", " ") + "\n"


# --- formatting ----------------------------------------------------------------------------


def local_time(value: str | datetime | None, time_zone: str, language: str) -> str:
    """A moment as the receipt prints it: in the location's time zone, with its name."""
    return _local(value, _zone(time_zone), language)


def _zone(name: str) -> ZoneInfo | None:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def _moment(value: str | datetime, zone: ZoneInfo | None) -> datetime:
    when = value if isinstance(value, datetime) else datetime.fromisoformat(
        str(value).replace("Z", "+00:00"))
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    # In the location's zone, whose name at that moment (CET, CEST) is printed beside it.
    return when.astimezone(zone or UTC)


def _zone_name(moment: datetime, zone: ZoneInfo | None) -> str:
    return moment.strftime("%Z") if zone is not None else "UTC"


def _local(value: str | datetime | None, zone: ZoneInfo | None, language: str) -> str:
    """'21 nov. 2026 17:05 CET' in the location's time zone, in the language's own date and
    time forms ('... UTC' when the zone is unknown)."""
    if not value:
        return "–"
    moment = _moment(value, zone)
    return f"{format_clock(moment, language)} {_zone_name(moment, zone)}"


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
    return f"{format_number(value, language, 3, group=False)} kWh"
