"""How the dashboard writes money and times: money as money in the operator's language
("150,00 kr"), times in the operator's time zone (OPERATOR_TIMEZONE), never raw minor units
or UTC stamps. Every dashboard page and export that a person reads goes through here."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask import current_app

import i18n
from payments.money import Money


def operator_zone() -> ZoneInfo:
    name = current_app.config.get("OPERATOR_TIMEZONE") or "UTC"
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        # A mistyped setting must not take the dashboard down: UTC, and the name says so.
        return ZoneInfo("UTC")


def local(when: datetime) -> datetime:
    """A stored time (naive means UTC, as every column here is) in the operator's zone."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(operator_zone())


def money(minor: int | None, currency: str | None) -> str:
    if minor is None or not currency:
        return "—"
    return Money(minor, currency).format(i18n.current_language())


def amount(value: Decimal, currency: str) -> str:
    return i18n.format_money(value, currency, i18n.current_language())


def clock(when: datetime | None) -> str:
    """Date and time in the operator's zone and language: '21 nov. 2026 17:05'."""
    if when is None:
        return "—"
    return i18n.format_clock(local(when), i18n.current_language())


def stamp(when: datetime | None) -> str:
    """To the second, in the operator's zone, for logs read side by side with a CPO's
    ('2026-12-04 03:15:22'): the same in every language, so it sorts and compares."""
    if when is None:
        return "—"
    return local(when).strftime("%Y-%m-%d %H:%M:%S")


def day(when: datetime | None) -> str:
    if when is None:
        return "—"
    return i18n.format_day(local(when), i18n.current_language())


def zone_name() -> str:
    return str(operator_zone())
