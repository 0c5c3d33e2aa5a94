"""The driver's price display: a tariff in plain words, VAT included, at one connector."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Literal

from tariffs.clock import _aware, _zone
from tariffs.decimals import _CTX, _HOUR, _LINE_Q, _MICRO, _ONE, _ZERO, _exact, _q
from tariffs.model import (
    CHARGING,
    Tariff,
    TariffError,
    _compile,
    _Compiled,
    _Component,
    _Restrictions,
)
from tariffs.pricing import price_plan
from tariffs.restrictions import _Context, _holds
from tariffs.vat import _vat_ratio

Language = Literal["sv", "en"]

_WORDS: dict[str, dict[str, str]] = {
    "sv": {
        "kwh": "/kWh", "min": "/min", "h": "/h", "start": "start", "parking": "parkering",
        "after_min": "efter {n} min", "first_min": "första {n} min",
        "after_kwh": "efter {n} kWh", "first_kwh": "upp till {n} kWh",
        "from_kw": "från {n} kW", "below_kw": "under {n} kW",
        "from_a": "från {n} A", "below_a": "under {n} A",
        "otherwise": "annars", "free": "gratis", "free_charging": "Gratis laddning",
        "from": "från {t}", "example": "ungefär {amount} för {kwh} kWh",
        "min_price": "minst {amount} per laddning", "max_price": "högst {amount} per laddning",
        "ENERGY": "el", "TIME": "laddtid", "PARKING_TIME": "parkering", "FLAT": "startavgift",
        "neutral": "Priset beror på hur och när du laddar; se operatörens prisinformation.",
        "incl_vat": "inkl. moms",
    },
    "en": {
        "kwh": "/kWh", "min": "/min", "h": "/h", "start": "start fee", "parking": "parking",
        "after_min": "after {n} min", "first_min": "first {n} min",
        "after_kwh": "after {n} kWh", "first_kwh": "up to {n} kWh",
        "from_kw": "from {n} kW", "below_kw": "below {n} kW",
        "from_a": "from {n} A", "below_a": "below {n} A",
        "otherwise": "otherwise", "free": "free", "free_charging": "Free charging",
        "from": "from {t}", "example": "about {amount} for {kwh} kWh",
        "min_price": "minimum {amount} per session", "max_price": "maximum {amount} per session",
        "ENERGY": "energy", "TIME": "charging time", "PARKING_TIME": "parking",
        "FLAT": "start fee",
        "neutral": "The price depends on how and when you charge; see the operator's price "
                   "information.",
        "incl_vat": "incl. VAT",
    },
}


@dataclass(frozen=True)
class TariffText:
    """The price as a driver reads it, VAT included.

    summary: what applies now ("4,50 kr/kWh · 0,50 kr/min efter 60 min · 5 kr start");
    changes: what changes later today ("från 17:00: 5,50 kr/kWh"); alt_text: the tariff's
    own text in this language; example: "ungefär 135 kr för 30 kWh"; limits: min/max price.
    structured is False when the tariff could not be summarised honestly and the summary is
    the alt text or a neutral sentence.
    """

    language: str
    summary: str
    changes: tuple[str, ...] = ()
    alt_text: str | None = None
    example: str | None = None
    limits: tuple[str, ...] = ()
    url: str | None = None
    structured: bool = True
    notes: tuple[str, ...] = field(default=(), compare=False)

    def lines(self) -> list[str]:
        out = [self.summary, *self.changes, *self.limits]
        if self.example:
            out.append(self.example)
        if self.alt_text and self.alt_text != self.summary:
            out.append(self.alt_text)
        return out


def _number_text(value: Decimal, language: str) -> str:
    """4.5 -> "4,50" (sv) / "4.50" (en); whole amounts without decimals ("5"); up to four
    decimals when a price has them (0.275 stays 0,275 rather than being misstated)."""
    value = value.quantize(_LINE_Q, rounding=ROUND_HALF_UP, context=_CTX).normalize(_CTX)
    if value == value.to_integral_value():
        text = f"{int(value):,}"
    else:
        places = max(2, -value.as_tuple().exponent)  # type: ignore[operator]
        text = f"{value:,.{places}f}"
    if language == "sv":
        return text.replace(",", "\u00a0").replace(".", ",")
    return text


def _money_text(value: Decimal, currency: str, language: str) -> str:
    number = _number_text(value, language)
    if language == "sv":
        return f"{number} kr" if currency == "SEK" else f"{number} {currency}"
    return f"{currency} {number}"


def _unit_price(c: _Component, currency: str, language: str) -> str:
    w = _WORDS[language]
    gross = c.price * c.factor
    if c.dimension == "ENERGY":
        return _money_text(gross, currency, language) + w["kwh"]
    if c.dimension == "FLAT":
        return f"{_money_text(gross, currency, language)} {w['start']}"
    per_minute = gross / 60
    # Per minute when that is a plain price (30 kr/h -> 0,50 kr/min), else per hour.
    if per_minute == per_minute.quantize(Decimal("0.01")):
        text = _money_text(per_minute, currency, language) + w["min"]
    else:
        text = _money_text(gross, currency, language) + w["h"]
    return f"{w['parking']} {text}" if c.dimension == "PARKING_TIME" else text


def _minutes(seconds: Decimal) -> str:
    return _number_text(seconds / 60, "en").replace(",", "")


def _qualifiers(r: _Restrictions | None, power_kw: Decimal, language: str
                ) -> list[str] | None:
    """Words for the session-bound restrictions, or None when the element cannot apply at
    this connector (min_power above its power)."""
    if r is None:
        return []
    w = _WORDS[language]
    out = []
    if r.min_duration is not None and r.min_duration > 0:
        out.append(w["after_min"].format(n=_minutes(r.min_duration)))
    if r.max_duration is not None:
        out.append(w["first_min"].format(n=_minutes(r.max_duration)))
    if r.min_kwh is not None and r.min_kwh > 0:
        out.append(w["after_kwh"].format(n=_number_text(r.min_kwh, language)))
    if r.max_kwh is not None:
        out.append(w["first_kwh"].format(n=_number_text(r.max_kwh, language)))
    if r.min_power is not None and r.min_power > 0:
        if power_kw > 0 and r.min_power > power_kw:
            return None
        out.append(w["from_kw"].format(n=_number_text(r.min_power, language)))
    # A maximum the connector cannot reach always holds, so it needs no words.
    if r.max_power is not None and not (power_kw > 0 and r.max_power > power_kw):
        out.append(w["below_kw"].format(n=_number_text(r.max_power, language)))
    if r.min_current is not None and r.min_current > 0:
        out.append(w["from_a"].format(n=_number_text(r.min_current, language)))
    if r.max_current is not None:
        out.append(w["below_a"].format(n=_number_text(r.max_current, language)))
    return out


_MAX_CANDIDATES = 3


def _segments(t: _Compiled, local: datetime, power_kw: Decimal, language: str
              ) -> dict[str, str] | None:
    """Per dimension, the text of what applies at this local moment; None when too complex
    to say in a line."""
    w = _WORDS[language]
    ctx = _Context(local=local, duration=_ZERO, kwh=_ZERO, power=None, current=None,
                   kind=CHARGING, expired=False, unknown=set())
    out: dict[str, str] = {}
    for dim in ("ENERGY", "TIME", "PARKING_TIME", "FLAT"):
        parts: list[str] = []
        previous: list[str] | None = None
        previous_r: _Restrictions | None = None
        for el in t.by_dimension[dim]:
            r = el.restrictions
            if r is not None and r.reservation is not None:
                continue  # reservations are not part of an ad-hoc session
            if r is not None and r.local:
                clock_only = _Restrictions(
                    r.start_time, r.end_time, r.start_date, r.end_date, None, None, None,
                    None, None, None, None, None, r.days, None)
                if not _holds(clock_only, ctx):
                    continue
            quals = _qualifiers(r, power_kw, language)
            if quals is None:
                continue
            if dim == "FLAT" and quals:
                return None  # a start fee that depends on the session: not for one line
            component = el.components[dim]
            text = _unit_price(component, t.currency, language)
            if component.price == 0:
                text = w["free"] if dim != "PARKING_TIME" else f"{w['parking']} {w['free']}"
            if quals:
                text = f"{text} {' '.join(quals)}"
            elif previous:
                # After a "first 30 min" or "up to 20 kWh" part, say when this one starts.
                assert previous_r is not None
                if previous_r.max_duration is not None and len(previous) == 1:
                    text = f"{text} {w['after_min'].format(n=_minutes(previous_r.max_duration))}"
                elif previous_r.max_kwh is not None and len(previous) == 1:
                    kwh = _number_text(previous_r.max_kwh, language)
                    text = f"{text} {w['after_kwh'].format(n=kwh)}"
                else:
                    text = f"{w['otherwise']} {text}"
            parts.append(text)
            previous, previous_r = quals, r
            if not quals:
                break
        if len(parts) > _MAX_CANDIDATES:
            return None
        # A dimension that is free throughout is not worth a word.
        if parts and not all(p in (w["free"], f"{w['parking']} {w['free']}") for p in parts):
            out[dim] = " · ".join(parts)
    return out


@_exact
def describe(
    tariff: Tariff | Mapping[str, Any],
    *,
    language: Language,
    at: datetime,
    time_zone: str,
    power_kw: Decimal,
    example_kwh: Decimal = Decimal(30),
) -> TariffText:
    """The driver's price display in plain words, VAT included, at `at` at this connector."""
    if language not in _WORDS:
        raise TariffError(f"language {language!r}: only 'sv' and 'en' are written")
    w = _WORDS[language]
    compiled = _compile(tariff)
    zone = _zone(time_zone)
    local = _aware(at).astimezone(zone)
    currency = compiled.currency
    source = compiled.source

    alt = next((d.text for d in source.tariff_alt_text or [] if d.language.lower() == language),
               None)
    any_alt = alt or next((d.text for d in source.tariff_alt_text or []), None)

    now = _segments(compiled, local, Decimal(power_kw), language)
    structured = now is not None
    changes: list[str] = []
    if now is not None:
        summary = " · ".join(now[d] for d in ("ENERGY", "TIME", "PARKING_TIME", "FLAT")
                             if d in now) or w["free_charging"]
        state = now
        for tod in compiled.times_of_day:
            if tod <= local.time().replace(tzinfo=None):
                continue
            moment = datetime.combine(local.date(), tod, tzinfo=zone)
            later = _segments(compiled, moment, Decimal(power_kw), language)
            if later is None:
                structured = False
                break
            changed = [later.get(d) or f"{w[d]} {w['free']}"
                       for d in ("ENERGY", "TIME", "PARKING_TIME", "FLAT")
                       if later.get(d) != state.get(d)]
            if changed:
                changes.append(f"{w['from'].format(t=tod.strftime('%H:%M'))}: "
                               + " · ".join(changed))
            state = later
    if not structured:
        summary = any_alt if any_alt else w["neutral"]
        changes = []

    limits = []
    ratio = _vat_ratio(compiled)
    uniform = len({c.factor for el in compiled.elements for c in el.components.values()}) <= 1
    for key, price in (("min_price", source.min_price), ("max_price", source.max_price)):
        if price is None:
            continue
        gross = price.incl_vat if price.incl_vat is not None else (
            price.excl_vat * ratio if uniform else None)
        if gross is not None:
            limits.append(w[key].format(amount=_money_text(gross, currency, language)))

    example = None
    notes: list[str] = []
    if power_kw and Decimal(power_kw) > 0 and example_kwh > 0:
        seconds = _q(Decimal(example_kwh) * _HOUR / Decimal(power_kw), _MICRO)
        plan = price_plan(compiled.source, start=_aware(at), energy_kwh=Decimal(example_kwh),
                          duration=timedelta(microseconds=int(seconds * 1_000_000)),
                          power_kw=Decimal(power_kw), time_zone=time_zone)
        whole = plan.total.incl_vat.quantize(_ONE, rounding=ROUND_HALF_UP)
        example = w["example"].format(amount=_money_text(whole, currency, language),
                                      kwh=_number_text(Decimal(example_kwh), language))
        notes.extend(plan.notes)
    return TariffText(
        language=language,
        summary=summary,
        changes=tuple(changes),
        alt_text=alt,
        example=example,
        limits=tuple(limits),
        url=source.tariff_alt_url,
        structured=structured,
        notes=tuple(notes),
    )
