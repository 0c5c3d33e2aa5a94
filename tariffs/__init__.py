"""ScanCharge's OCPI tariff engine: prices sessions, plans, holds and the driver's price text.

Pure Python on Decimals; see tariffs.engine and docs/tariffs.md.
"""

from tariffs.engine import (
    DIMENSIONS,
    DimensionCost,
    Money2,
    PeriodLine,
    PriceBreakdown,
    TariffError,
    TariffText,
    convert_211,
    describe,
    hold_for,
    price_cdr,
    price_plan,
    price_session,
    round_money,
)

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
