"""CSV that opens cleanly in a spreadsheet: UTF-8 with a byte-order mark (so Excel reads
å, ä, ö), CRLF line ends, a header row, one column per fact, amounts as plain decimals with
a point (the currency in a column of its own), times in ISO 8601 with their offset.

Text is guarded against CSV injection: a spreadsheet runs a cell that starts with = + - @
(or a tab or CR before them) as a formula, so such a text cell is written with a leading
apostrophe. Numbers are written by this module from Decimals and ints, never from text, so
a credit note's -45.00 stays a number.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from payments.money import from_minor

BOM = "\ufeff"
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

Cell = str | int | Decimal | None


def guarded(text: str) -> str:
    """A text cell a spreadsheet shows as text, never runs."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def cell(value: Cell) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Decimal):
        return format(value, "f")  # never 1E+3
    return guarded(str(value))


def amount(minor: int | None, currency: str) -> Decimal | None:
    """Minor units as the decimal a spreadsheet sums: 4500 SEK -> 45.00."""
    return None if minor is None else from_minor(minor, currency)


def stamp(when: datetime | None, zone: ZoneInfo) -> str | None:
    """'2026-11-21T17:05:00+01:00': the operator's wall clock, and the offset that makes it
    one moment (the hour repeated when clocks go back is two different offsets)."""
    if when is None:
        return None
    return when.astimezone(zone).replace(microsecond=0).isoformat()


def rows_to_csv(header: Sequence[str], rows: Iterable[Sequence[Cell]]) -> Iterator[bytes]:
    """The file, a chunk of rows at a time (for a streamed response)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    buffer.write(BOM)
    writer.writerow([guarded(name) for name in header])
    for index, row in enumerate(rows, 1):
        writer.writerow([cell(value) for value in row])
        if index % 500 == 0:
            yield buffer.getvalue().encode("utf-8")
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode("utf-8")
