"""The tariff engine's reference workload: 330 priced sessions (11 tariffs x 30 sessions).

One workload serves two purposes: bench/bench_tariffs.py times it (sessions priced per
second, today's engine against the one the benchmark was written for) and
tests/unit/test_tariff_reference.py checks that every case still comes to exactly the answer
recorded in tests/unit/tariff_reference_answers.json (a digest of the whole breakdown:
totals, dimensions, lines, notes), so a faster engine is never a different one.

The sessions are drawn from a seeded generator, so the workload is the same on every
machine: 1 to 24 periods of 5 to 30 minutes, starts across 2024 (both DST switches
included), energy, power and current varying per period, parking after charging in about a
third, reservation periods before charging for the reservation tariff. Tariffs and periods
are JSON-like dicts, as ScanCharge stores them and charging/pricing.py passes them.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

D = Decimal
WEEKDAYS = ["MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY"]
SESSIONS_PER_TARIFF = 30


def _pc(kind: str, price: str, vat: str | None = "25", step: int = 1) -> dict[str, Any]:
    out: dict[str, Any] = {"type": kind, "price": D(price), "step_size": step}
    if vat is not None:
        out["vat"] = D(vat)
    return out


def _tariff(tariff_id: str, currency: str, elements: list[dict[str, Any]],
            **extra: Any) -> dict[str, Any]:
    return {"country_code": "SE", "party_id": "REF", "id": tariff_id, "currency": currency,
            "last_updated": "2024-01-01T00:00:00Z", "elements": elements, **extra}


TARIFFS: list[tuple[dict[str, Any], str]] = [
    (_tariff("simple", "SEK", [{"price_components": [_pc("FLAT", "4"),
                                                     _pc("ENERGY", "3.60")]}]),
     "Europe/Stockholm"),
    (_tariff("complex", "SEK", [
        {"price_components": [_pc("TIME", "60", step=60)],
         "restrictions": {"reservation": "RESERVATION"}},
        {"price_components": [_pc("FLAT", "4")]},
        {"price_components": [_pc("ENERGY", "4.40", step=100)],
         "restrictions": {"start_time": "17:00", "end_time": "20:00",
                          "day_of_week": WEEKDAYS}},
        {"price_components": [_pc("ENERGY", "2.00", step=100)],
         "restrictions": {"start_time": "22:00", "end_time": "06:00"}},
        {"price_components": [_pc("ENERGY", "3.20", step=100)],
         "restrictions": {"min_kwh": D(40)}},
        {"price_components": [_pc("ENERGY", "3.00", step=100)],
         "restrictions": {"max_power": D(22)}},
        {"price_components": [_pc("ENERGY", "3.60", step=100)]},
        {"price_components": [_pc("TIME", "12", step=900)],
         "restrictions": {"max_current": D(32), "min_duration": 3600}},
        {"price_components": [_pc("TIME", "24", step=600)],
         "restrictions": {"min_current": D(32), "min_duration": 3600}},
        {"price_components": [_pc("PARKING_TIME", "60", step=300)],
         "restrictions": {"start_time": "09:00", "end_time": "18:00",
                          "day_of_week": WEEKDAYS}},
        {"price_components": [_pc("PARKING_TIME", "30", step=300)]},
    ], min_price={"excl_vat": D(10), "incl_vat": D("12.50")},
        max_price={"excl_vat": D(800), "incl_vat": D(1000)}), "Europe/Stockholm"),
    (_tariff("energy-wh", "EUR", [{"price_components": [_pc("ENERGY", "0.39", "19")]}]),
     "Europe/Berlin"),
    (_tariff("time-parking", "EUR", [
        {"price_components": [_pc("TIME", "2.40", "21", step=60),
                              _pc("PARKING_TIME", "6.00", "21", step=60)]}]),
     "Europe/Amsterdam"),
    (_tariff("day-night", "EUR", [
        {"price_components": [_pc("ENERGY", "0.25", "19", step=1000)],
         "restrictions": {"start_time": "23:00", "end_time": "07:00"}},
        {"price_components": [_pc("ENERGY", "0.45", "19", step=1000)]},
        {"price_components": [_pc("FLAT", "0.50", "19")]}]), "Europe/Berlin"),
    (_tariff("weekend", "SEK", [
        {"price_components": [_pc("ENERGY", "2.90")],
         "restrictions": {"day_of_week": ["SATURDAY", "SUNDAY"]}},
        {"price_components": [_pc("ENERGY", "4.10"), _pc("TIME", "6", step=300)],
         "restrictions": {"start_time": "08:00", "end_time": "18:00",
                          "day_of_week": WEEKDAYS}},
        {"price_components": [_pc("ENERGY", "3.50")]}]), "Europe/Stockholm"),
    (_tariff("kwh-tiers", "EUR", [
        {"price_components": [_pc("ENERGY", "0.30", "20", step=100)],
         "restrictions": {"max_kwh": D(10)}},
        {"price_components": [_pc("ENERGY", "0.40", "20", step=100)],
         "restrictions": {"min_kwh": D(10), "max_kwh": D("30.5")}},
        {"price_components": [_pc("ENERGY", "0.50", "20", step=100)]}]), "Europe/Paris"),
    (_tariff("power-tiers", "EUR", [
        {"price_components": [_pc("ENERGY", "0.35", "21"), _pc("TIME", "1.20", "21")],
         "restrictions": {"max_power": D(11)}},
        {"price_components": [_pc("ENERGY", "0.49", "21")],
         "restrictions": {"min_power": D(11), "max_power": D(50)}},
        {"price_components": [_pc("ENERGY", "0.69", "21"), _pc("TIME", "0.30", "21")]},
        {"price_components": [_pc("PARKING_TIME", "9.00", "21", step=900)],
         "restrictions": {"min_duration": 7200}}]), "Europe/Madrid"),
    (_tariff("reservation", "EUR", [
        {"price_components": [_pc("FLAT", "2.00", "20"), _pc("TIME", "3.00", "20", step=60)],
         "restrictions": {"reservation": "RESERVATION"}},
        {"price_components": [_pc("FLAT", "5.00", "20")],
         "restrictions": {"reservation": "RESERVATION_EXPIRES"}},
        {"price_components": [_pc("FLAT", "1.00", "20"), _pc("ENERGY", "0.42", "20")]}]),
     "Europe/Paris"),
    (_tariff("limits", "SEK", [
        {"price_components": [_pc("ENERGY", "4.25", None), _pc("TIME", "30", "25", step=60)],
         "restrictions": {"min_duration": 1800}},
        {"price_components": [_pc("ENERGY", "4.25", None)]}],
        min_price={"excl_vat": D(20)}, max_price={"excl_vat": D(150)}), "Europe/Stockholm"),
    (_tariff("jpy-first-hour", "JPY", [
        {"price_components": [_pc("ENERGY", "0", "10")],
         "restrictions": {"max_duration": 3600}},
        {"price_components": [_pc("ENERGY", "55", "10", step=10),
                              _pc("PARKING_TIME", "600", "10", step=600)]}]), "Asia/Tokyo"),
]

# Starts placed to cover the year, and both 2024 DST switches in Europe.
_ANCHORS = [datetime(2024, 3, 30, 22, 0, tzinfo=UTC), datetime(2024, 10, 26, 22, 30, tzinfo=UTC),
            datetime(2024, 6, 3, 14, 0, tzinfo=UTC), datetime(2024, 12, 31, 20, 0, tzinfo=UTC)]


@dataclass(frozen=True)
class Case:
    name: str
    tariff: dict[str, Any]
    periods: list[dict[str, Any]]
    time_zone: str
    session_start: datetime
    session_end: datetime

    def price(self) -> Any:
        from tariffs import price_session

        return price_session(self.tariff, self.periods, time_zone=self.time_zone,
                             session_start=self.session_start, session_end=self.session_end)


def _start(rng: random.Random, n: int) -> datetime:
    if n % 5 == 0:
        return _ANCHORS[(n // 5) % len(_ANCHORS)] + timedelta(minutes=rng.randint(0, 240))
    return (datetime(2024, 1, 1, tzinfo=UTC) + timedelta(days=rng.randint(0, 365))
            + timedelta(minutes=5 * rng.randint(0, 287)))


def _charging_period(rng: random.Random, at: datetime, minutes: int) -> dict[str, Any]:
    power = D(rng.choice([36, 72, 110, 220, 500, 1500])) / 10  # kW
    kwh = power * minutes / 60 * D(rng.randint(80, 100)) / 100
    amps = D(rng.choice([16, 32, 63, 125]))
    dims: list[dict[str, Any]] = [{"type": "ENERGY", "volume": kwh}]
    if rng.random() < 0.5:
        dims.append({"type": "TIME", "volume": D(minutes) / 60})
    if rng.random() < 0.6:
        dims += [{"type": "MAX_CURRENT", "volume": amps},
                 {"type": "MIN_CURRENT", "volume": amps / 2}]
    if rng.random() < 0.3:
        dims.append({"type": "MAX_POWER", "volume": power})
    return {"start_date_time": at.isoformat(), "dimensions": dims}


def _session(rng: random.Random, n: int, reservations: bool
             ) -> tuple[list[dict[str, Any]], datetime, datetime]:
    start = _start(rng, n)
    at = start
    periods = []
    if reservations and rng.random() < 0.7:
        minutes = rng.randint(5, 20)
        periods.append({"start_date_time": at.isoformat(), "dimensions": [
            {"type": "RESERVATION_TIME", "volume": D(minutes) / 60}]})
        at += timedelta(minutes=minutes)
    count = rng.choice([1, 1, 2, 3, 4, 6, 8, 12, 17, 24])
    if reservations and periods and rng.random() < 0.2:
        count = 0  # the reservation expired: nobody came
    for _ in range(count):
        minutes = rng.randint(5, 30)
        periods.append(_charging_period(rng, at, minutes))
        at += timedelta(minutes=minutes)
    if count and rng.random() < 0.35:
        minutes = rng.randint(10, 90)
        periods.append({"start_date_time": at.isoformat(), "dimensions": [
            {"type": "ENERGY", "volume": D(0)},
            {"type": "PARKING_TIME", "volume": D(minutes) / 60}]})
        at += timedelta(minutes=minutes)
    return periods, start, at


def cases() -> list[Case]:
    """The 330 cases, the same on every call and every machine."""
    rng = random.Random(330)
    out = []
    for tariff, zone in TARIFFS:
        for n in range(SESSIONS_PER_TARIFF):
            periods, start, end = _session(rng, n, tariff["id"] == "reservation")
            out.append(Case(f"{tariff['id']}-{n:02d}", tariff, periods, zone, start, end))
    return out


def _canonical(value: Any) -> str:
    """The breakdown's JSON as text with every Decimal written with exactly its digits."""
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, dict):
        return "{" + ",".join(f"{k!r}:{_canonical(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(_canonical(v) for v in value) + "]"
    if isinstance(value, datetime):
        return value.isoformat()
    return repr(value)


def digest(breakdown: Any) -> str:
    """A fingerprint of the whole answer: any digit of any figure, line or note changes it."""
    return hashlib.sha256(_canonical(breakdown.to_json()).encode()).hexdigest()[:24]
