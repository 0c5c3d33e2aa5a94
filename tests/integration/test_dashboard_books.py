"""The accountant's pages: the receipts series with its gap check, each document viewable,
reports per day, week and month in the operator's zone (across a clock change), VAT per
rate, the exports and who may have them."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from charge_factory import captured_charge
from sqlalchemy import text, update

import wiring
from charging import refunds
from dashboard import summaries
from dashboard.models import OperatorAction, set_operator
from extensions import db
from payments.models import Receipt

PASSWORD = "correct horse battery"


@pytest.fixture(autouse=True)
def _receivers() -> None:
    wiring.connect()


def signed_in(app: Any, role: str) -> Any:
    email = f"{role}@example.com"
    set_operator(email, PASSWORD, role=role)
    db.session.commit()
    client = app.test_client()
    login = client.get("/dashboard/login").get_data(as_text=True)
    token = re.search(r'name="csrf" value="([^"]+)"', login).group(1)  # type: ignore[union-attr]
    answer = client.post("/dashboard/login",
                         data={"email": email, "password": PASSWORD, "csrf": token})
    assert answer.status_code == 302, answer.get_data(as_text=True)
    return client


def issued_at(receipt_pk: int, when: datetime) -> None:
    db.session.execute(update(Receipt).where(Receipt.pk == receipt_pk).values(issued_at=when))
    db.session.commit()


def books() -> dict[str, Any]:
    """Three captured charges (45.00 SEK each, 25 % VAT) and a partial refund of one; the
    documents dated around the spring clock change in Stockholm (29 March 2026, 02:00 CET
    -> 03:00 CEST)."""
    charges = [captured_charge(n=n) for n in (1, 2, 3)]
    refunds.refund(charges[0].public_id, 1000, "Laddaren stannade", "anna@example.com")
    db.session.expire_all()
    receipts = db.session.scalars(db.select(Receipt).order_by(Receipt.number)).all()
    # 23:30 UTC on the 28th is 00:30 CET on the 29th; 22:30 UTC on the 29th is 00:30 CEST on
    # the 30th (a UTC day would put both on the day before).
    when = [datetime(2026, 3, 28, 23, 30, tzinfo=UTC), datetime(2026, 3, 29, 22, 30, tzinfo=UTC),
            datetime(2026, 3, 30, 10, 0, tzinfo=UTC), datetime(2026, 3, 31, 12, 0, tzinfo=UTC)]
    for receipt, moment in zip(receipts, when, strict=True):
        issued_at(receipt.pk, moment)
    return {"charges": charges, "receipts": receipts}


def drop_number_constraint() -> None:
    """Let the receipts table hold a number twice, as a restore or an import could: the
    gap check must find what the constraint would have refused."""
    if db.engine.dialect.name == "postgresql":
        db.session.execute(text("ALTER TABLE receipts DROP CONSTRAINT uq_receipts_series"))
        db.session.commit()
        return
    create = db.session.execute(text(
        "SELECT sql FROM sqlite_master WHERE type='table' AND name='receipts'")).scalar_one()
    without = create.replace("CONSTRAINT uq_receipts_series UNIQUE (series, number),", "")
    without = without.replace(", \n\tCONSTRAINT uq_receipts_series UNIQUE (series, number)", "")
    assert "uq_receipts_series" not in without, create
    db.session.commit()
    with db.engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
        conn.exec_driver_sql("PRAGMA legacy_alter_table=ON")
        conn.exec_driver_sql("ALTER TABLE receipts RENAME TO receipts_old")
        conn.exec_driver_sql(without)
        conn.exec_driver_sql("INSERT INTO receipts SELECT * FROM receipts_old")
        conn.exec_driver_sql("DROP TABLE receipts_old")
        conn.commit()


def restore_number_constraint() -> None:
    if db.engine.dialect.name == "postgresql":
        db.session.rollback()
        db.session.execute(text("DELETE FROM receipts WHERE reference LIKE 'copy:%'"))
        db.session.execute(text("ALTER TABLE receipts ADD CONSTRAINT uq_receipts_series "
                                "UNIQUE (series, number)"))
        db.session.commit()


def test_the_gap_check_lists_every_missing_number_and_every_duplicate(app: Any) -> None:
    client = signed_in(app, "accounting")
    drop_number_constraint()
    try:
        for n in range(1, 5):
            captured_charge(n=n)
        _first, second, third, fourth = db.session.scalars(
            db.select(Receipt).order_by(Receipt.number)).all()
        # A gap: 2 and 3 renumbered away (5, 6 never issued after them: the counter is at 5).
        db.session.execute(update(Receipt).where(Receipt.pk == third.pk).values(number=7))
        db.session.execute(update(Receipt).where(Receipt.pk == second.pk).values(number=9))
        # A duplicate: a copy of number 4.
        db.session.add(Receipt(series=fourth.series, number=4, reference="copy:4",
                               currency="SEK", total_minor=4500, net_minor=3600,
                               vat_minor=900, vat_rate=Decimal(25), payment_reference="x",
                               details={}, seller={}))
        db.session.commit()

        from dashboard.ledger import gap_check

        (check,) = gap_check()
        assert [(g.first, g.last) for g in check.gaps] == [(2, 3), (5, 6), (8, 8)]
        assert [(d.number, d.times) for d in check.duplicates] == [(4, 2)]
        assert check.counter_behind  # the counter gives 5: below 9, the highest

        page = client.get("/dashboard/receipts").get_data(as_text=True)
        assert "SCN-000002 – SCN-000003" in page and "SCN-000008" in page
        assert "Used more than once" in page and 'id="series-SCN-broken"' in page
    finally:
        restore_number_constraint()


def test_an_unbroken_series_says_so_and_lists_newest_first(app: Any) -> None:
    client = signed_in(app, "support")
    made = books()
    page = client.get("/dashboard/receipts").get_data(as_text=True)
    assert 'id="series-SCN-ok"' in page
    numbers = [f"SCN-00000{n}" for n in (4, 3, 2, 1)]
    positions = [page.index(f">{n}</a>") for n in numbers]
    assert positions == sorted(positions)
    assert "Credit note for SCN-000001" in page
    assert 'data-label="Total"' in page and "SEK 45.00" in page
    charge = made["charges"][0]
    assert f'href="/dashboard/charges/{charge.public_id}">Charge {charge.pk}</a>' in page

    # Days in Stockholm: the 30th holds only the receipt issued 22:30 UTC on the 29th
    # (00:30 CEST) and the 10:00 one; the credit note is on the 31st.
    only = client.get("/dashboard/receipts?from=2026-03-30&to=2026-03-30&kind=receipt")
    body = only.get_data(as_text=True)
    assert ">SCN-000002</a>" in body and ">SCN-000003</a>" in body
    assert ">SCN-000001</a>" not in body and ">SCN-000004</a>" not in body
    notes = client.get("/dashboard/receipts?kind=credit_note").get_data(as_text=True)
    assert ">SCN-000004</a>" in notes and ">SCN-000001</a>" not in notes

    receipt = made["receipts"][0]
    shown = client.get(f"/dashboard/receipts/{receipt.pk}").get_data(as_text=True)
    assert "Receipt SCN-000001" in shown and "Credit note SCN-000004" in shown
    pdf = client.get(f"/dashboard/receipts/{made['receipts'][3].pk}.pdf?download=1")
    assert pdf.status_code == 200 and pdf.data.startswith(b"%PDF")
    assert "attachment" in pdf.headers["Content-Disposition"]
    assert db.session.scalar(db.select(OperatorAction.action).where(
        OperatorAction.action == "receipt_pdf")) == "receipt_pdf"


def test_support_may_not_see_reports_or_exports(app: Any) -> None:
    client = signed_in(app, "support")
    for path in ("/dashboard/reports", "/dashboard/exports/charges.csv",
                 "/dashboard/exports/receipts.csv", "/dashboard/exports/vat.csv",
                 "/dashboard/exports/sie.se"):
        answer = client.get(path)
        assert answer.status_code == 403, path
        assert "accounting" in answer.get_data(as_text=True)
    assert "Reports</a>" not in client.get("/dashboard/receipts").get_data(as_text=True)


def _csv(answer: Any) -> list[dict[str, str]]:
    assert answer.status_code == 200
    assert answer.data.startswith("\ufeff".encode())
    assert b"\r\n" in answer.data
    return list(csv.DictReader(io.StringIO(answer.data.decode("utf-8-sig"))))


@pytest.mark.parametrize("period, expected", [
    ("day", {"2026-03-29": (1, "45.00"), "2026-03-30": (2, "90.00"), "2026-03-31": (0, "0.00")}),
    ("week", {"2026-W13": (1, "45.00"), "2026-W14": (2, "90.00")}),
    ("month", {"2026-03": (3, "135.00")}),
])
def test_reports_per_day_week_and_month_in_the_operators_zone(
        app: Any, period: str, expected: dict[str, tuple[int, str]]) -> None:
    client = signed_in(app, "accounting")
    books()
    page = client.get(f"/dashboard/reports?period={period}&from=2026-03-23&to=2026-03-31")
    body = page.get_data(as_text=True)
    assert page.status_code == 200
    assert body.count('class="bar"') >= len(expected)
    assert "<title" in body and "Revenue (captured)" in body

    rows = _csv(client.get(f"/dashboard/exports/vat.csv?period={period}"
                           "&from=2026-03-23&to=2026-03-31"))
    # A VAT row per period with documents, at 25 %: 45.00 incl. VAT is 36.00 + 9.00; the
    # credit note of 10.00 is 8.00 + 2.00.
    by_period = {row["period"]: row for row in rows}
    for label, (_sessions, gross) in expected.items():
        row = by_period[label]
        assert row["vat_rate"] == "25" and row["currency"] == "SEK"
        sales = Decimal(row["sales_excl_vat"]) + Decimal(row["sales_vat"])
        assert sales == Decimal(gross), (label, row)
        assert Decimal(row["sales_vat"]) == Decimal(gross) / 5
    report = summaries.for_range(period, date(2026, 3, 23), date(2026, 3, 31),
                                 ZoneInfo("Europe/Stockholm"))
    per = {report.label(start): t for start, t in report.periods("SEK")}
    for label, (sessions, _gross) in expected.items():
        assert (per[label].sessions, per[label].kwh) == (sessions, Decimal(10 * sessions))
    refunds_total = sum(Decimal(r["refunds_excl_vat"]) + Decimal(r["refunds_vat"]) for r in rows)
    assert refunds_total == Decimal("10.00")
    assert sum(Decimal(r["refunds_vat"]) for r in rows) == Decimal("2.00")


def test_vat_per_rate_keeps_each_rate_apart(app: Any) -> None:
    from dashboard import ledger

    lines = ledger.vat_lines(10000, 8340, 1660, Decimal(25), {"vat_rates": [
        {"rate": "25", "gross_minor": 7500, "net_minor": 6000, "vat_minor": 1500},
        {"rate": "6", "gross_minor": 2500, "net_minor": 2358, "vat_minor": 142}]})
    assert [(x.rate, x.net_minor, x.vat_minor) for x in lines] == [
        (Decimal(25), 6000, 1500), (Decimal(6), 2358, 142)]
    # Rows that do not add up to the total: the document's one rate, as issued.
    assert ledger.vat_lines(10000, 8000, 2000, Decimal(25), {"vat_rates": [
        {"rate": "25", "net_minor": 1, "vat_minor": 1}]}) == (
        ledger.VatLine(Decimal(25), 8000, 2000),)


def test_the_charges_and_receipts_exports_are_recorded(app: Any) -> None:
    client = signed_in(app, "accounting")
    made = books()
    answer = client.get("/dashboard/exports/receipts.csv?from=2026-03-01&to=2026-03-31")
    assert answer.is_streamed  # a year of documents is never one string in memory
    assert made["charges"][0].public_id.encode() not in answer.data  # the driver's credential
    rows = _csv(answer)
    assert [r["number"] for r in rows] == ["SCN-000001", "SCN-000002", "SCN-000003",
                                           "SCN-000004"]
    issued = "issued (Europe/Stockholm)"
    assert rows[0][issued] == "2026-03-29T00:30:00+01:00"
    assert rows[1][issued] == "2026-03-30T00:30:00+02:00"
    note = rows[3]
    assert (note["kind"], note["credits"], note["total_incl_vat"], note["vat"]) == (
        "credit_note", "SCN-000001", "-10.00", "-2.00")
    assert note["reason"] == "Laddaren stannade"

    charges = _csv(client.get("/dashboard/exports/charges.csv?from=2020-01-01&to=2030-12-31"))
    assert len(charges) == 3
    first = next(r for r in charges if r["charge"] == str(made["charges"][0].pk))
    assert (first["captured"], first["refunded"], first["net"], first["currency"]) == (
        "45.00", "10.00", "35.00", "SEK")
    assert made["charges"][0].public_id not in str(charges)  # the driver's credential
    exported = db.session.scalars(db.select(OperatorAction.target).where(
        OperatorAction.action == "export")).all()
    assert sorted(exported) == ["charges.csv", "receipts.csv"]


def test_the_sie_file_books_the_range_in_balanced_vouchers(app: Any) -> None:
    from tests.unit.test_sie import parse

    client = signed_in(app, "accounting")
    books()
    answer = client.get("/dashboard/exports/sie.se?from=2026-03-01&to=2026-03-31")
    assert answer.status_code == 200
    parsed = parse(answer.data)
    assert parsed["#SIETYP"] == ["4"] and parsed["#FORMAT"] == ["PC8"]
    vouchers = parsed["vouchers"]
    assert [v["date"] for v in vouchers] == ["20260329", "20260330", "20260331"]
    for v in vouchers:
        assert sum(amount for _, amount in v["rows"]) == 0, v
    sales = [a for v in vouchers for acct, a in v["rows"] if acct == "3001"]
    assert sum(sales) == Decimal("-108.00") + Decimal("8.00")
    vat = sum(a for v in vouchers for acct, a in v["rows"] if acct == "2611")
    assert vat == Decimal("-27.00") + Decimal("2.00")
    assert db.session.scalar(db.select(OperatorAction.target).where(
        OperatorAction.action == "export")) == "sie"


def test_the_sie_file_refuses_a_range_across_the_fiscal_year(app: Any) -> None:
    client = signed_in(app, "accounting")
    answer = client.get("/dashboard/exports/sie.se?from=2025-12-01&to=2026-01-31")
    assert answer.status_code == 422
    assert "fiscal year" in answer.get_data(as_text=True)


def test_the_gap_check_at_100000_documents(app: Any) -> None:
    """One window query: a year of a busy operator's documents is checked in moments, and
    the receipts page (its first page and the count) answers as fast."""
    import time

    from sqlalchemy import insert

    from dashboard.ledger import gap_check

    missing = {12_345, 67_890, 67_891}
    rows = [{"series": "SCN", "number": n, "reference": f"bulk:{n}", "currency": "SEK",
             "total_minor": 4500, "net_minor": 3600, "vat_minor": 900,
             "vat_rate": Decimal(25), "payment_reference": "pi_bulk", "details": {},
             "seller": {}, "public_token": f"t{n}",
             "issued_at": datetime(2026, 1, 1, tzinfo=UTC)}
            for n in range(1, 100_004) if n not in missing]
    db.session.execute(insert(Receipt), rows)
    db.session.commit()

    started = time.monotonic()
    (check,) = gap_check()
    took = time.monotonic() - started
    assert check.documents == 100_000
    assert [(g.first, g.last) for g in check.gaps] == [(12_345, 12_345), (67_890, 67_891)]
    assert check.duplicates == []
    assert took < 5, f"the gap check took {took:.1f} s"

    client = signed_in(app, "accounting")
    started = time.monotonic()
    page = client.get("/dashboard/receipts")
    assert page.status_code == 200 and ">SCN-100003</a>" in page.get_data(as_text=True)
    assert time.monotonic() - started < 5
