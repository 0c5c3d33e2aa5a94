"""ScanCharge's OCPI tariff engine: prices sessions, plans, holds and the driver's price text.

Pure Python on Decimals; see tariffs.pricing and docs/tariffs.md.
"""

from tariffs.model import DIMENSIONS, TariffError
from tariffs.pricing import (
    DimensionCost,
    Money2,
    PeriodLine,
    PriceBreakdown,
    convert_211,
    hold_for,
    price_cdr,
    price_plan,
    price_session,
    round_money,
)
from tariffs.words import TariffText, describe

__all__ = [
    "DIMENSIONS",
    "DimensionCost",
    "Money2",
    "PeriodLine",
    "PriceBreakdown",
    "TariffError",
    "TariffText",
    "convert_211",
    "describe",
    "hold_for",
    "price_cdr",
    "price_plan",
    "price_session",
    "round_money",
]
