"""ScanCharge's OCPI tariff engine: prices sessions, plans, holds and the driver's price text.

Pure Python on Decimals, depending on nothing else of ScanCharge but payments.money; see
tariffs.pricing and docs/tariffs.md.
"""

from tariffs.hold import energy_for, hold_for, meaningful_minimum
from tariffs.live import LiveCost, price_live
from tariffs.model import DIMENSIONS, Tariff, TariffError, compile_tariff, read
from tariffs.periods import ChargingPeriod
from tariffs.pricing import Cdr, price_cdr, price_plan, price_session
from tariffs.results import DimensionCost, Money2, PeriodLine, PriceBreakdown, round_money
from tariffs.v211 import convert_211
from tariffs.words import TariffText, describe

__all__ = [
    "DIMENSIONS",
    "Cdr",
    "ChargingPeriod",
    "DimensionCost",
    "LiveCost",
    "Money2",
    "PeriodLine",
    "PriceBreakdown",
    "Tariff",
    "TariffError",
    "TariffText",
    "compile_tariff",
    "convert_211",
    "describe",
    "energy_for",
    "hold_for",
    "meaningful_minimum",
    "price_cdr",
    "price_live",
    "price_plan",
    "price_session",
    "read",
    "round_money",
]
