"""CSV for spreadsheets (dashboard/spreadsheet.py): BOM, CRLF, header, plain decimals,
ISO times with their offset, and text that a spreadsheet would run as a formula guarded."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from dashboard import spreadsheet

STOCKHOLM = ZoneInfo("Europe/Stockholm")


def written(header: list[str], rows: list[list[spreadsheet.Cell]]) -> bytes:
    return b"".join(spreadsheet.rows_to_csv(header, rows))


def test_utf8_with_bom_crlf_and_a_header_row() -> None:
    data = written(["site", "total"], [["Sergels torg, Göteborg", Decimal("45.00")]])
    assert data.startswith(b"\xef\xbb\xbf")
    assert data.decode("utf-8-sig") == 'site,total\r\n"Sergels torg, Göteborg",45.00\r\n'


@pytest.mark.parametrize("text", ["=HYPERLINK(\"http://x\")", "+1", "-1+2", "@SUM(A1)",
                                  "\t=1", "\r=1"])
def test_text_a_spreadsheet_would_run_is_prefixed(text: str) -> None:
    data = written(["reason"], [[text]])
    (row,) = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))
    assert row["reason"] == "'" + text


def test_numbers_stay_numbers_even_when_negative() -> None:
    data = written(["total", "count"], [[Decimal("-45.00"), -3], [Decimal("1E+3"), 0]])
    assert data.decode("utf-8-sig").splitlines()[1:] == ["-45.00,-3", "1000,0"]


def test_safe_text_and_empty_cells_are_left_as_they_are() -> None:
    assert spreadsheet.cell("Laddaren stannade") == "Laddaren stannade"
    assert spreadsheet.cell(None) == ""
    assert spreadsheet.cell("a=b") == "a=b"


def test_amounts_from_minor_units_with_the_currencys_exponent() -> None:
    assert spreadsheet.cell(spreadsheet.amount(4500, "SEK")) == "45.00"
    assert spreadsheet.cell(spreadsheet.amount(-1000, "SEK")) == "-10.00"
    assert spreadsheet.cell(spreadsheet.amount(500, "JPY")) == "500"
    assert spreadsheet.amount(None, "SEK") is None


def test_times_in_the_zone_with_the_offset_of_that_moment() -> None:
    winter = datetime(2026, 3, 28, 23, 30, tzinfo=UTC)
    summer = datetime(2026, 3, 29, 22, 30, 15, 999, tzinfo=UTC)
    assert spreadsheet.stamp(winter, STOCKHOLM) == "2026-03-29T00:30:00+01:00"
    assert spreadsheet.stamp(summer, STOCKHOLM) == "2026-03-30T00:30:15+02:00"
    # The hour repeated when clocks go back: two moments, two offsets.
    first = spreadsheet.stamp(datetime(2026, 10, 25, 0, 30, tzinfo=UTC), STOCKHOLM)
    second = spreadsheet.stamp(datetime(2026, 10, 25, 1, 30, tzinfo=UTC), STOCKHOLM)
    assert (first, second) == ("2026-10-25T02:30:00+02:00", "2026-10-25T02:30:00+01:00")


def test_a_large_file_comes_in_chunks_and_reads_back_whole() -> None:
    rows = ([n, Decimal(n).scaleb(-2)] for n in range(2000))
    chunks = list(spreadsheet.rows_to_csv(["n", "amount"], rows))
    assert len(chunks) > 2
    read = list(csv.reader(io.StringIO(b"".join(chunks).decode("utf-8-sig"))))
    assert len(read) == 2001 and read[-1] == ["1999", "19.99"]
