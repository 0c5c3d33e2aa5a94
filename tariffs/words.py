"""The driver's price display: a tariff in plain words, VAT included, at one connector."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from functools import partial

from i18n import LANGUAGES, Texts, format_money, format_number, texts
from tariffs.clock import _aware, _zone
from tariffs.decimals import _CTX, _HOUR, _LINE_Q, _MICRO, _ONE, _ZERO, _exact, _q
from tariffs.model import (
    CHARGING,
    TariffError,
    TariffLike,
    _compile,
    _Compiled,
    _Component,
    _Restrictions,
)
from tariffs.pricing import price_plan
from tariffs.restrictions import _Context, _holds
from tariffs.vat import _vat_ratio


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


def _places(value: Decimal) -> int:
    """Whole amounts without decimals ("5"), else two, or up to four when a price has them
    (0.275 stays 0,275 rather than being misstated)."""
    value = value.quantize(_LINE_Q, rounding=ROUND_HALF_UP, context=_CTX)
    return 0 if value == value.to_integral_value() else 2


def _number_text(value: Decimal, language: str) -> str:
    """4.5 -> "4,50" (sv) / "4.50" (en), 5 -> "5"."""
    return format_number(value, language, _places(value), 4)


def _money_text(value: Decimal, currency: str, language: str) -> str:
    return format_money(value, currency, language, _places(value), 4)


def _unit_price(c: _Component, currency: str, t: Texts) -> str:
    gross = c.price * c.factor
    if c.dimension == "ENERGY":
        return _money_text(gross, currency, t.language) + "/kWh"
    if c.dimension == "FLAT":
        return t.gettext("%(price)s start fee", price=_money_text(gross, currency, t.language))
    per_minute = gross / 60
    # Per minute when that is a plain price (30 kr/h -> 0,50 kr/min), else per hour.
    if per_minute == per_minute.quantize(Decimal("0.01")):
        text = _money_text(per_minute, currency, t.language) + "/min"
    else:
        text = _money_text(gross, currency, t.language) + "/h"
    return t.gettext("parking %(price)s", price=text) if c.dimension == "PARKING_TIME" else text


def _minutes(seconds: Decimal) -> str:
    value = seconds / 60
    return format_number(value, "en", _places(value), 4, group=False)


def _qualifiers(r: _Restrictions | None, power_kw: Decimal, t: Texts
                ) -> list[str] | None:
    """Words for the session-bound restrictions, or None when the element cannot apply at
    this connector (min_power above its power)."""
    if r is None:
        return []
    n = partial(_number_text, language=t.language)
    out = []
    if r.min_duration is not None and r.min_duration > 0:
        out.append(t.gettext("after %(n)s min", n=_minutes(r.min_duration)))
    if r.max_duration is not None:
        out.append(t.gettext("first %(n)s min", n=_minutes(r.max_duration)))
    if r.min_kwh is not None and r.min_kwh > 0:
        out.append(t.gettext("after %(n)s kWh", n=n(r.min_kwh)))
    if r.max_kwh is not None:
        out.append(t.gettext("up to %(n)s kWh", n=n(r.max_kwh)))
    if r.min_power is not None and r.min_power > 0:
        if power_kw > 0 and r.min_power > power_kw:
            return None
        out.append(t.gettext("from %(n)s kW", n=n(r.min_power)))
    # A maximum the connector cannot reach always holds, so it needs no words.
    if r.max_power is not None and not (power_kw > 0 and r.max_power > power_kw):
        out.append(t.gettext("below %(n)s kW", n=n(r.max_power)))
    if r.min_current is not None and r.min_current > 0:
        out.append(t.gettext("from %(n)s A", n=n(r.min_current)))
    if r.max_current is not None:
        out.append(t.gettext("below %(n)s A", n=n(r.max_current)))
    return out


_MAX_CANDIDATES = 3


def _segments(t: _Compiled, local: datetime, power_kw: Decimal, words: Texts
              ) -> dict[str, str] | None:
    """Per dimension, the text of what applies at this local moment; None when too complex
    to say in a line."""
    free = words.gettext("free")
    free_parking = words.gettext("parking %(price)s", price=free)
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
            quals = _qualifiers(r, power_kw, words)
            if quals is None:
                continue
            if dim == "FLAT" and quals:
                return None  # a start fee that depends on the session: not for one line
            component = el.components[dim]
            text = _unit_price(component, t.currency, words)
            if component.price == 0:
                text = free if dim != "PARKING_TIME" else free_parking
            if quals:
                text = f"{text} {' '.join(quals)}"
            elif previous:
                # After a "first 30 min" or "up to 20 kWh" part, say when this one starts.
                assert previous_r is not None
                if previous_r.max_duration is not None and len(previous) == 1:
                    minutes = _minutes(previous_r.max_duration)
                    text = f"{text} {words.gettext('after %(n)s min', n=minutes)}"
                elif previous_r.max_kwh is not None and len(previous) == 1:
                    kwh = _number_text(previous_r.max_kwh, words.language)
                    text = f"{text} {words.gettext('after %(n)s kWh', n=kwh)}"
                else:
                    text = words.gettext("otherwise %(price)s", price=text)
            parts.append(text)
            previous, previous_r = quals, r
            if not quals:
                break
        if len(parts) > _MAX_CANDIDATES:
            return None
        # A dimension that is free throughout is not worth a word.
        if parts and not all(p in (free, free_parking) for p in parts):
            out[dim] = " · ".join(parts)
    return out


_DIMENSIONS = ("ENERGY", "TIME", "PARKING_TIME", "FLAT")


def _dimension_name(dimension: str, t: Texts) -> str:
    return {"ENERGY": t.gettext("energy"), "TIME": t.gettext("charging time"),
            "PARKING_TIME": t.gettext("parking"), "FLAT": t.gettext("start fee")}[dimension]


@_exact
def describe(
    tariff: TariffLike,
    *,
    language: str,
    at: datetime,
    time_zone: str,
    power_kw: Decimal,
    example_kwh: Decimal = Decimal(30),
) -> TariffText:
    """The driver's price display in plain words, VAT included, at `at` at this connector."""
    if language not in LANGUAGES:
        raise TariffError(f"language {language!r}: only {', '.join(LANGUAGES)} are written")
    words = texts(language)
    compiled = _compile(tariff)
    zone = _zone(time_zone)
    local = _aware(at).astimezone(zone)
    source = compiled.source

    alt = next((d.text for d in source.tariff_alt_text or [] if d.language.lower() == language),
               None)
    any_alt = alt or next((d.text for d in source.tariff_alt_text or []), None)

    now = _segments(compiled, local, Decimal(power_kw), words)
    structured = now is not None
    changes: list[str] = []
    if now is not None:
        summary = " · ".join(now[d] for d in _DIMENSIONS if d in now) \
            or words.gettext("Free charging")
        state = now
        for tod in compiled.times_of_day:
            if tod <= local.time().replace(tzinfo=None):
                continue
            moment = datetime.combine(local.date(), tod, tzinfo=zone)
            later = _segments(compiled, moment, Decimal(power_kw), words)
            if later is None:
                structured = False
                break
            changed = [later.get(d) or f"{_dimension_name(d, words)} {words.gettext('free')}"
                       for d in _DIMENSIONS if later.get(d) != state.get(d)]
            if changed:
                since = words.gettext("from %(time)s", time=tod.strftime("%H:%M"))
                changes.append(f"{since}: " + " · ".join(changed))
            state = later
    if not structured:
        summary = any_alt if any_alt else words.gettext(
            "The price depends on how and when you charge; see the operator's price "
            "information.")
        changes = []
    example, notes = _example(compiled, at, time_zone, Decimal(power_kw), example_kwh, words)
    return TariffText(
        language=language,
        summary=summary,
        changes=tuple(changes),
        alt_text=alt,
        example=example,
        limits=_limits(compiled, words),
        url=source.tariff_alt_url,
        structured=structured,
        notes=notes,
    )


def _limits(compiled: _Compiled, words: Texts) -> tuple[str, ...]:
    """The tariff's minimum and maximum price per session, VAT included, when known."""
    limits = []
    ratio = _vat_ratio(compiled)
    uniform = len({c.factor for el in compiled.elements for c in el.components.values()}) <= 1
    source = compiled.source
    for minimum, price in ((True, source.min_price), (False, source.max_price)):
        if price is None:
            continue
        gross = price.incl_vat if price.incl_vat is not None else (
            price.excl_vat * ratio if uniform else None)
        if gross is None:
            continue
        amount = _money_text(gross, compiled.currency, words.language)
        limits.append(words.gettext("minimum %(amount)s per session", amount=amount) if minimum
                      else words.gettext("maximum %(amount)s per session", amount=amount))
    return tuple(limits)


def _example(compiled: _Compiled, at: datetime, time_zone: str, power_kw: Decimal,
             example_kwh: Decimal, words: Texts) -> tuple[str | None, tuple[str, ...]]:
    """"About 135 kr for 30 kWh" at this connector's power, and the pricing's notes."""
    if not (power_kw and power_kw > 0 and example_kwh > 0):
        return None, ()
    seconds = _q(Decimal(example_kwh) * _HOUR / power_kw, _MICRO)
    plan = price_plan(compiled, start=_aware(at), energy_kwh=Decimal(example_kwh),
                      duration=timedelta(microseconds=int(seconds * 1_000_000)),
                      power_kw=power_kw, time_zone=time_zone)
    whole = plan.total.incl_vat.quantize(_ONE, rounding=ROUND_HALF_UP)
    text = words.gettext("about %(amount)s for %(kwh)s kWh",
                         amount=_money_text(whole, compiled.currency, words.language),
                         kwh=_number_text(Decimal(example_kwh), words.language))
    return text, tuple(plan.notes)
