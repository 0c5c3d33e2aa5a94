"""A receipt's lines, checkable by hand: quantity × unit price = amount for each line, the
adjustment when the amount charged differs from their sum, and VAT per rate.

Pure arithmetic on Decimals and integer minor units, written once for the page, the PDF
and the e-mail (payments/receipt_document.py prints what this computes; the receipt keeps
the result in its details, so it is never recomputed later).

- A line's quantity is rounded to what is printed (kWh to 3 decimals, hours to 4), and its
  amount is that quantity × the printed unit price incl. VAT, rounded half up to the minor
  unit: anyone with a calculator gets the same amount.
- The lines add up to the CDR's price up to that rounding; the amount charged may be less
  (the card hold or the driver's cap cut it) or more (a tariff minimum). The difference is
  one adjustment line, so lines + adjustment = the total charged, exactly.
- VAT per rate: each rate's gross (its lines, and its share of the adjustment) split into
  net and VAT, the net rounded half up, the VAT what remains; the rates add up to the total.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from payments.money import exponent

# How a quantity is printed (and so rounded before it is multiplied).
QUANTITY_PLACES = {"ENERGY": 3, "TIME": 4, "PARKING_TIME": 4, "FLAT": 0}
UNITS = {"ENERGY": "kWh", "TIME": "h", "PARKING_TIME": "h", "FLAT": ""}
# Printed order: the start fee first, as a driver reads a price.
ORDER = ("FLAT", "ENERGY", "TIME", "PARKING_TIME")


def _half_up(value: Decimal, places: int) -> Decimal:
    return value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class Line:
    kind: str  # ENERGY, TIME, PARKING_TIME or FLAT
    quantity: Decimal  # as printed
    unit_price: Decimal  # incl. VAT, per kWh / per hour / per fee, exact
    vat_rate: Decimal  # percent
    amount_minor: int  # quantity × unit_price, half up to the minor unit

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "quantity": str(self.quantity),
                "unit_price": str(self.unit_price), "vat_rate": str(self.vat_rate),
                "amount_minor": self.amount_minor}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Line:
        return cls(kind=str(data["kind"]), quantity=Decimal(str(data["quantity"])),
                   unit_price=Decimal(str(data["unit_price"])),
                   vat_rate=Decimal(str(data["vat_rate"])), amount_minor=int(data["amount_minor"]))


def line(kind: str, quantity: Decimal, price_excl_vat: Decimal, vat_rate: Decimal,
         currency: str) -> Line:
    """One line from the tariff's price (excl. VAT, as OCPI gives it) and the billed volume."""
    shown = _half_up(Decimal(quantity), QUANTITY_PLACES.get(kind, 4))
    unit = Decimal(price_excl_vat) * (100 + Decimal(vat_rate)) / 100
    amount = _half_up(shown * unit, exponent(currency)).scaleb(exponent(currency))
    return Line(kind, shown, unit.normalize() if unit else Decimal(0), Decimal(vat_rate),
                int(amount))


def group(parts: Iterable[tuple[str, Decimal, Decimal, Decimal]], currency: str) -> list[Line]:
    """Lines from priced slices (kind, billed volume, price excl. VAT, VAT rate): slices of
    one kind at one price and rate are one line; lines with nothing in them are left out."""
    totals: dict[tuple[str, Decimal, Decimal], Decimal] = {}
    for kind, volume, price, rate in parts:
        key = (kind, Decimal(price), Decimal(rate))
        totals[key] = totals.get(key, Decimal(0)) + Decimal(volume)
    lines = [line(kind, volume, price, rate, currency)
             for (kind, price, rate), volume in totals.items()]
    lines = [x for x in lines if x.quantity and x.unit_price]
    return sorted(lines, key=lambda x: (ORDER.index(x.kind) if x.kind in ORDER else 9,
                                        x.unit_price))


@dataclass(frozen=True)
class VatRow:
    rate: Decimal
    gross_minor: int
    net_minor: int
    vat_minor: int

    def to_json(self) -> dict[str, Any]:
        return {"rate": str(self.rate), "gross_minor": self.gross_minor,
                "net_minor": self.net_minor, "vat_minor": self.vat_minor}


def adjustment(lines: Sequence[Line], total_minor: int) -> int:
    """What the amount charged differs from the lines' sum by (negative: less charged)."""
    return total_minor - sum(x.amount_minor for x in lines)


def vat_rows(lines: Sequence[Line], total_minor: int, fallback_rate: Decimal) -> list[VatRow]:
    """VAT per rate for `total_minor`: each rate's lines plus its share of the adjustment
    (in proportion to its gross, the remainder on the largest), split into net and VAT."""
    gross: dict[Decimal, int] = {}
    for x in lines:
        gross[x.vat_rate] = gross.get(x.vat_rate, 0) + x.amount_minor
    if not gross:
        gross = {Decimal(fallback_rate): 0}
    rates = sorted(gross, key=lambda r: (-gross[r], r))
    base = sum(gross.values())
    rest = total_minor - base
    shares = {r: (rest * gross[r] // base if base else 0) for r in rates}
    shares[rates[0]] += rest - sum(shares.values())
    rows = []
    for rate in sorted(rates):
        amount = gross[rate] + shares[rate]
        net = int(_half_up(Decimal(amount) * 100 / (100 + rate), 0))
        rows.append(VatRow(rate, amount, net, amount - net))
    return rows
