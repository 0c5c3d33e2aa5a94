"""SIE 4 (the Swedish bookkeeping exchange format, type 4: vouchers) for the accountant's
program to import: the period's sales and refunds, booked with their VAT.

The file is what SIE 4B asks of an import file: #FLAGGA, #FORMAT PC8 (the text in code
page 437), #SIETYP 4, #PROGRAM, #GEN, #FNAMN, #ORGNR, #RAR (the fiscal year), #VALUTA, the
accounts used (#KONTO), then the vouchers (#VER with its #TRANS rows between braces).
Balances (#IB, #UB, #RES) are the bookkeeping's own and are not sent.

Every voucher balances: its rows sum to zero (debit positive, credit negative), which
voucher() checks before a row is written. Text is quoted, a quote inside it escaped, and
line breaks and other control characters removed, so no field can start a row of its own.
This module is pure: dashboard/exports.py gathers the vouchers.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

ENCODING = "cp437"
# Characters code page 437 lacks, written as it writes them (the rest become "?").
_PLAIN = str.maketrans({"–": "-", "—": "-", "’": "'", "‘": "'", "“": '"', "”": '"',
                        "€": "EUR", "\u00a0": " ", "\u202f": " "})
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


class UnbalancedVoucher(ValueError):
    pass


@dataclass(frozen=True)
class Row:
    account: str
    amount: Decimal  # debit positive, credit negative, in the accounting currency
    text: str = ""


@dataclass(frozen=True)
class Voucher:
    series: str
    number: int
    day: date
    text: str
    rows: tuple[Row, ...]

    def balance(self) -> Decimal:
        return sum((row.amount for row in self.rows), Decimal(0))


def voucher(series: str, number: int, day: date, text: str, rows: Sequence[Row]) -> Voucher:
    """A voucher whose rows balance, zero rows left out; an unbalanced one is refused."""
    kept = tuple(row for row in rows if row.amount)
    found = Voucher(series, number, day, text, kept)
    if found.balance() != 0:
        raise UnbalancedVoucher(f"voucher {series} {number} of {day} is off by {found.balance()}")
    return found


@dataclass(frozen=True)
class Company:
    name: str
    org_number: str
    fiscal_year: tuple[date, date]
    currency: str
    generated: date
    generated_by: str
    program: str = "ScanCharge"
    version: str = "1"


def quoted(text: str) -> str:
    """A field in quotes, as SIE writes text: control characters out, quotes escaped (a
    backslash, SIE's escape, becomes a slash so it cannot escape the closing quote)."""
    clean = _CONTROL.sub(" ", text.translate(_PLAIN)).strip()
    return '"' + clean.replace("\\", "/").replace('"', '\\"') + '"'


def _amount(value: Decimal) -> str:
    return format(value.quantize(Decimal("0.01")), "f")


def _day(value: date) -> str:
    return value.strftime("%Y%m%d")


def header(company: Company, accounts: dict[str, str]) -> list[str]:
    start, end = company.fiscal_year
    lines = [
        "#FLAGGA 0",
        "#FORMAT PC8",
        "#SIETYP 4",
        f"#PROGRAM {quoted(company.program)} {quoted(company.version)}",
        f"#GEN {_day(company.generated)} {quoted(company.generated_by)}",
        f"#FNAMN {quoted(company.name)}",
        f"#ORGNR {quoted(company.org_number)}",
        f"#RAR 0 {_day(start)} {_day(end)}",
        f"#VALUTA {quoted(company.currency)}",
    ]
    lines += [f"#KONTO {number} {quoted(name)}" for number, name in sorted(accounts.items())]
    return lines


def voucher_lines(v: Voucher) -> list[str]:
    lines = [f"#VER {quoted(v.series)} {v.number} {_day(v.day)} {quoted(v.text)}", "{"]
    lines += [f"   #TRANS {row.account} {{}} {_amount(row.amount)} {_day(v.day)} "
              f"{quoted(row.text)}" for row in v.rows]
    lines.append("}")
    return lines


def encode(lines: Iterable[str]) -> Iterator[bytes]:
    """The lines in code page 437 with CRLF, a chunk at a time."""
    chunk: list[str] = []
    for line in lines:
        chunk.append(line.translate(_PLAIN))
        if len(chunk) >= 500:
            yield ("\r\n".join(chunk) + "\r\n").encode(ENCODING, errors="replace")
            chunk = []
    if chunk:
        yield ("\r\n".join(chunk) + "\r\n").encode(ENCODING, errors="replace")


def document(company: Company, accounts: dict[str, str],
             vouchers: Iterable[Voucher]) -> Iterator[bytes]:
    def lines() -> Iterator[str]:
        yield from header(company, accounts)
        for v in vouchers:
            yield from voucher_lines(v)

    return encode(lines())
