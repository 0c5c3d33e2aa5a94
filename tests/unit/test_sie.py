"""SIE 4 (dashboard/sie.py): the header an import needs, code page 437, vouchers that
balance (an unbalanced one is refused), and text that cannot break out of its field."""

from __future__ import annotations

import shlex
from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from dashboard import sie

COMPANY = sie.Company(name="Laddbolaget Åre AB", org_number="559000-0000",
                      fiscal_year=(date(2026, 1, 1), date(2026, 12, 31)), currency="SEK",
                      generated=date(2026, 12, 4), generated_by="ekonomi@example.com")
ACCOUNTS = {"1580": "Fordran betalningsleverantör", "3001": "Försäljning 25 % moms",
            "2611": "Utgående moms 25 %"}


def parse(data: bytes) -> dict[str, Any]:
    """A small SIE reader for the tests: labels to their fields, vouchers with their rows."""
    found: dict[str, Any] = {"vouchers": []}
    current: dict[str, Any] | None = None
    for line in data.decode(sie.ENCODING).split("\r\n"):
        if not line.strip() or line.strip() in "{}":
            continue
        stripped = line.strip()
        if stripped.startswith("#TRANS"):
            stripped = stripped.replace(" {} ", " '' ", 1)
        fields = shlex.split(stripped, posix=True)
        label = fields[0]
        if label == "#VER":
            current = {"series": fields[1], "number": fields[2], "date": fields[3],
                       "text": fields[4], "rows": []}
            found["vouchers"].append(current)
        elif label == "#TRANS":
            assert current is not None
            current["rows"].append((fields[1], Decimal(fields[3])))
        else:
            found.setdefault(label, []).extend(fields[1:] if label != "#KONTO" else [fields[1:]])
    return found


def sample() -> list[sie.Voucher]:
    return [sie.voucher("A", 1, date(2026, 3, 30), "Laddning 2026-03-30", [
        sie.Row("1580", Decimal("90.00"), "Kortbetalningar"),
        sie.Row("3001", Decimal("-72.00"), "Försäljning 25 % moms"),
        sie.Row("2611", Decimal("-18.00"), "Utgående moms 25 %"),
        sie.Row("1580", Decimal("0"), "nothing"),
    ])]


def written(vouchers: list[sie.Voucher] | None = None, company: sie.Company = COMPANY) -> bytes:
    return b"".join(sie.document(company, ACCOUNTS, sample() if vouchers is None else vouchers))


def test_the_header_an_import_needs_in_order() -> None:
    lines = written().decode(sie.ENCODING).split("\r\n")
    labels = [line.split(" ")[0] for line in lines[:9]]
    assert labels == ["#FLAGGA", "#FORMAT", "#SIETYP", "#PROGRAM", "#GEN", "#FNAMN",
                      "#ORGNR", "#RAR", "#VALUTA"]
    assert lines[0] == "#FLAGGA 0" and lines[1] == "#FORMAT PC8" and lines[2] == "#SIETYP 4"
    assert lines[4] == '#GEN 20261204 "ekonomi@example.com"'
    assert lines[7] == "#RAR 0 20260101 20261231"
    parsed = parse(written())
    assert parsed["#FNAMN"] == ["Laddbolaget Åre AB"] and parsed["#ORGNR"] == ["559000-0000"]
    assert ["3001", "Försäljning 25 % moms"] in parsed["#KONTO"]


def test_text_is_code_page_437() -> None:
    data = written()
    assert "Åre".encode("cp437") in data and "Åre".encode() not in data
    assert data.endswith(b"}\r\n")
    # What CP437 lacks is written plainly, never as a byte the reader cannot place.
    note = sie.quoted("Kredit – 5 €")
    assert note == '"Kredit - 5 EUR"'


def test_vouchers_balance_and_zero_rows_are_left_out() -> None:
    (voucher,) = parse(written())["vouchers"]
    assert voucher["rows"] == [("1580", Decimal("90.00")), ("3001", Decimal("-72.00")),
                               ("2611", Decimal("-18.00"))]
    assert sum(amount for _, amount in voucher["rows"]) == 0
    assert voucher["date"] == "20260330" and voucher["series"] == "A"


def test_an_unbalanced_voucher_is_refused() -> None:
    with pytest.raises(sie.UnbalancedVoucher):
        sie.voucher("A", 1, date(2026, 3, 30), "off by one öre", [
            sie.Row("1580", Decimal("90.00")), sie.Row("3001", Decimal("-89.99"))])


def test_text_cannot_break_out_of_its_field() -> None:
    hostile = sie.Company(
        name='Evil" \r\n#TRANS 1910 {} 1000000\n{', org_number="1\n#VER",
        fiscal_year=COMPANY.fiscal_year, currency="SEK", generated=COMPANY.generated,
        generated_by="x")
    data = written(company=hostile)
    lines = data.decode(sie.ENCODING).split("\r\n")
    assert not any(line.lstrip().startswith("#TRANS 1910") for line in lines)
    assert sum(1 for line in lines if line.startswith("#VER")) == 1
    parsed = parse(data)
    assert parsed["#FNAMN"] == ['Evil"  #TRANS 1910 {} 1000000 {']
    assert parsed["#ORGNR"] == ["1 #VER"]


def test_amounts_have_two_decimals_and_a_point() -> None:
    text = written([sie.voucher("A", 7, date(2026, 1, 2), "x", [
        sie.Row("1580", Decimal("1234567.5")), sie.Row("3001", Decimal("-1234567.50"))])])
    assert b"#TRANS 1580 {} 1234567.50 20260102" in text
    assert b"#TRANS 3001 {} -1234567.50 20260102" in text


# --- The day's voucher (dashboard/bookkeeping.py) -------------------------------------------


def document(number: int, total: int, lines: list[tuple[str, int, int]],
             credits: str | None = None) -> Any:
    from datetime import UTC, datetime

    from dashboard.ledger import Document, VatLine

    return Document(
        pk=number, series="SCN", number=number, issued_at=datetime(2026, 3, 30, tzinfo=UTC),
        currency="SEK", total_minor=total, net_minor=sum(n for _, n, _ in lines),
        vat_minor=sum(v for _, _, v in lines), vat_rate=Decimal(lines[0][0]),
        credits_number=credits, reason="", payment_reference="pi_1",
        vat_lines=tuple(VatLine(Decimal(r), n, v) for r, n, v in lines),
        energy_kwh=Decimal(10), charge_pk=number, charge_public_id=None, cpo="Sim", site="LOC1")


def book() -> Any:
    from dashboard.bookkeeping import Book

    roles = {"receivable": "1580", "sales 25": "3001", "sales 12": "3002", "sales 6": "3003",
             "sales 0": "3004", "vat 25": "2611", "vat 12": "2621", "vat 6": "2631"}
    return Book(date(2026, 3, 1), date(2026, 3, 31), roles, "A",
                (date(2026, 1, 1), date(2026, 12, 31)))


def test_a_day_of_several_rates_and_a_refund_is_one_balanced_voucher() -> None:
    from dashboard.bookkeeping import Day

    day = Day(date(2026, 3, 30))
    # 100.00 at two rates (75.00 at 25 %, 25.00 at 6 %), 45.00 at 25 %, a credit of 10.00.
    day.add(document(1, 10000, [("25", 6000, 1500), ("6", 2358, 142)]))
    day.add(document(2, 4500, [("25", 3600, 900)]))
    day.add(document(3, -1000, [("25", -800, -200)], credits="SCN-000002"))
    voucher = book()._voucher(1, day)

    assert voucher.balance() == 0
    rows = [(row.account, row.amount) for row in voucher.rows]
    assert rows == [
        ("1580", Decimal("145.00")), ("1580", Decimal("-10.00")),
        ("3001", Decimal("-96.00")), ("2611", Decimal("-24.00")),
        ("3003", Decimal("-23.58")), ("2631", Decimal("-1.42")),
        ("3001", Decimal("8.00")), ("2611", Decimal("2.00")),
    ]
    assert "SCN-000001-SCN-000003" in voucher.text
    assert parse(written([voucher]))["vouchers"][0]["rows"] == rows


def test_a_rate_without_an_account_is_refused_not_booked_wrong() -> None:
    from dashboard.bookkeeping import CannotBook, Day

    day = Day(date(2026, 3, 30))
    day.add(document(1, 11900, [("19", 10000, 1900)]))
    with pytest.raises(CannotBook):
        book()._voucher(1, day)


@pytest.mark.parametrize("start, day, expected", [
    ("01-01", date(2026, 3, 30), (date(2026, 1, 1), date(2026, 12, 31))),
    ("05-01", date(2026, 3, 30), (date(2025, 5, 1), date(2026, 4, 30))),
    ("05-01", date(2026, 5, 1), (date(2026, 5, 1), date(2027, 4, 30))),
])
def test_the_fiscal_year_a_day_is_in(start: str, day: date, expected: tuple[date, date]) -> None:
    from dashboard.bookkeeping import fiscal_year

    assert fiscal_year(day, start) == expected
