"""VAT on a session's totals, and the tariff's min_price and max_price."""

from __future__ import annotations

from decimal import Decimal

from tariffs.decimals import _ONE
from tariffs.model import _Compiled


def _vat_ratio(tariff: _Compiled) -> Decimal:
    """incl/excl for a price limit given without incl_vat: the tariff's VAT when its
    components agree on one, else the lowest of them (the driver is not charged VAT the
    tariff may not mean). One figure per tariff, not the session's own mix, so that a
    bigger session never meets a lower limit."""
    if tariff.vat_ratio is None:
        factors = {c.factor for el in tariff.elements for c in el.components.values()}
        tariff.vat_ratio = min(factors) if factors else _ONE
    return tariff.vat_ratio


def _apply_limits(tariff: _Compiled, excl: Decimal, incl: Decimal, notes: list[str]
                  ) -> tuple[Decimal, Decimal, bool, bool]:
    """min_price then max_price, each on excl. and incl. VAT separately (mod_tariffs: "they
    both apply"). max_price is applied last, so a cap always holds: a driver never pays more
    than the maximum, even in a tariff whose minimum is above its maximum."""
    source = tariff.source
    ratio = _vat_ratio(tariff)
    min_applied = max_applied = False
    if source.min_price is not None:
        low_excl = source.min_price.excl_vat
        low_incl = (source.min_price.incl_vat if source.min_price.incl_vat is not None
                    else low_excl * ratio)
        if excl < low_excl:
            excl, min_applied = low_excl, True
        if incl < low_incl:
            incl, min_applied = low_incl, True
    if source.max_price is not None:
        high_excl = source.max_price.excl_vat
        high_incl = (source.max_price.incl_vat if source.max_price.incl_vat is not None
                     else high_excl * ratio)
        if excl > high_excl:
            excl, max_applied = high_excl, True
        if incl > high_incl:
            incl, max_applied = high_incl, True
    if (source.min_price is not None and source.max_price is not None
            and source.min_price.excl_vat > source.max_price.excl_vat):
        notes.append("the tariff's min_price is above its max_price; max_price wins")
    return excl, incl, min_applied, max_applied
