"""Money rules, written once: integer minor units with the currency beside them.

OCPI carries amounts as decimal numbers in major units (SEK 4.40); Stripe and ScanCharge's
storage carry integer minor units (440 öre). Conversion rounds half up to the currency's
minor unit, the way a till rounds.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from i18n import format_money

# ISO 4217 exponents that are not 2 (Stripe's zero-decimal currencies among them).
_EXPONENTS = {
    "BIF": 0, "CLP": 0, "DJF": 0, "GNF": 0, "ISK": 0, "JPY": 0, "KMF": 0, "KRW": 0,
    "PYG": 0, "RWF": 0, "UGX": 0, "VND": 0, "VUV": 0, "XAF": 0, "XOF": 0, "XPF": 0,
    "BHD": 3, "JOD": 3, "KWD": 3, "OMR": 3, "TND": 3,
}


def exponent(currency: str) -> int:
    return _EXPONENTS.get(currency.upper(), 2)


def to_minor(amount: Decimal | int | str, currency: str) -> int:
    """Major units (Decimal) to integer minor units, rounding half up."""
    if isinstance(amount, float):
        raise TypeError("money is never a float; pass a Decimal or a string")
    scaled = Decimal(amount).scaleb(exponent(currency))
    return int(scaled.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def from_minor(amount_minor: int, currency: str) -> Decimal:
    return Decimal(amount_minor).scaleb(-exponent(currency))


@dataclass(frozen=True)
class Money:
    amount_minor: int
    currency: str

    @classmethod
    def of(cls, amount: Decimal | int | str, currency: str) -> Money:
        return cls(to_minor(amount, currency), currency.upper())

    @property
    def amount(self) -> Decimal:
        return from_minor(self.amount_minor, self.currency)

    def format(self, language: str = "en") -> str:
        """'4,40 kr' in Swedish, 'SEK 4.40' in English (i18n.format_money)."""
        return format_money(self.amount, self.currency, language, exponent(self.currency))


def vat_split(total_incl_minor: int, net_minor: int) -> tuple[int, int]:
    """(net, vat) for a total incl. VAT when the net is known: VAT is what remains."""
    return net_minor, total_incl_minor - net_minor


def net_from_gross(total_incl_minor: int, vat_rate_percent: Decimal) -> int:
    """Net amount of a VAT-inclusive total at one rate, rounded half up to the minor unit."""
    net = Decimal(total_incl_minor) * 100 / (100 + Decimal(vat_rate_percent))
    return int(net.quantize(Decimal(1), rounding=ROUND_HALF_UP))
