"""The accountant in a real headless Chromium: export each CSV (and the SIE file) from the
reports page and read it back; see a chart with its bars; the receipts and the gap check.
Screenshots "receipts" and "reports" for docs/operators.md; axe-core on both pages when it
is installed. Skipped, saying why, when Chromium or Playwright is not available.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from operator_browser import DESKTOP, operator_site, screenshot, sign_in, signed_in  # noqa: F401
from test_driver_browser import CHROMIUM, browser  # noqa: F401 (the browser fixture)

import wiring
from extensions import db

sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is needed")
expect = sync_api.expect

pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} is missing")
AXE = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"


@pytest.fixture
def books_site(operator_site: Any) -> Iterator[tuple[Any, str]]:  # noqa: F811
    """The served site with two captured charges (45.00 SEK each) and a refund of 10.00."""
    from charge_factory import captured_charge

    from charging import refunds

    app, base = operator_site
    wiring.connect()
    with app.app_context():
        first = captured_charge(n=1)
        captured_charge(n=2)
        refunds.refund(first.public_id, 1000, "=cmd|' /C calc'!A0", "admin@example.com")
        db.session.remove()
    yield app, base


def serious_violations(page: Any) -> list[str]:
    if not AXE.exists():
        return []
    page.add_script_tag(path=str(AXE))
    found = page.evaluate("""async () => (await axe.run(document)).violations
        .filter((v) => v.impact === 'serious' || v.impact === 'critical')
        .map((v) => v.id + ': ' + v.nodes.map((n) => n.target.join(' ')).join(', '))""")
    return list(found)


def download(page: Any, link_id: str) -> bytes:
    with page.expect_download() as caught:
        page.locator(f"#{link_id}").click()
    path = caught.value.path()
    assert path is not None
    return Path(path).read_bytes()


def read_csv(data: bytes) -> list[dict[str, str]]:
    assert data.startswith(b"\xef\xbb\xbf") and b"\r\n" in data
    return list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))


def test_export_each_csv_and_read_it_back(browser: Any, books_site: Any) -> None:  # noqa: F811
    _app, base = books_site
    page = signed_in(browser, base)
    page.get_by_role("link", name="Reports").click()
    expect(page.get_by_role("heading", name="Reports", exact=True)).to_be_visible()

    charges = read_csv(download(page, "export-charges"))
    assert len(charges) == 2
    assert sorted(r["captured"] for r in charges) == ["45.00", "45.00"]
    assert sorted(r["refunded"] for r in charges) == ["0.00", "10.00"]
    assert {r["currency"] for r in charges} == {"SEK"}

    documents = read_csv(download(page, "export-receipts"))
    assert [r["kind"] for r in documents] == ["receipt", "receipt", "credit_note"]
    note = documents[-1]
    assert note["total_incl_vat"] == "-10.00" and note["credits"] == "SCN-000001"
    # The operator's words began with "=": a spreadsheet shows them, it does not run them.
    assert note["reason"] == "'=cmd|' /C calc'!A0"

    vat = read_csv(download(page, "export-vat"))
    assert {r["vat_rate"] for r in vat} == {"25"}
    assert sum(Decimal(r["balance_excl_vat"]) + Decimal(r["balance_vat"]) for r in vat) == \
        Decimal("80.00")

    sie = download(page, "export-sie").decode("cp437")
    assert sie.startswith("#FLAGGA 0\r\n#FORMAT PC8\r\n#SIETYP 4\r\n")
    assert "#VER " in sie and "#TRANS 1580 {} 90.00" in sie


def test_see_a_chart(browser: Any, books_site: Any) -> None:  # noqa: F811
    _app, base = books_site
    # CSP bypassed only so that axe's script can be injected; the pages are as served.
    page = browser.new_context(viewport=DESKTOP, bypass_csp=True, locale="en-GB").new_page()
    page.set_default_timeout(10_000)
    sign_in(page, base)
    page.goto(f"{base}/dashboard/reports?period=day")
    chart = page.locator("svg#chart-revenue-SEK")
    expect(chart).to_be_visible()
    assert "Revenue (captured)" in (chart.locator("title").first.text_content() or "")
    bars = chart.locator("rect.bar")
    assert bars.count() >= 28  # a month of days, the quiet ones too
    heights = [float(bars.nth(i).get_attribute("height") or 0) for i in range(bars.count())]
    assert max(heights) > 100 and heights.count(0.0) == len(heights) - 1
    # The same figures in a table beside the chart.
    expect(page.locator("#chart-table-SEK")).to_contain_text("SEK 90.00")
    expect(page.locator("svg#chart-kwh rect.bar").first).to_be_attached()
    screenshot(page, "reports")
    assert serious_violations(page) == []

    page.get_by_role("link", name="Receipts", exact=True).click()
    expect(page.locator("#series-SCN-ok")).to_contain_text("none missing")
    expect(page.locator("#documents tr.document")).to_have_count(3)
    screenshot(page, "receipts")
    assert serious_violations(page) == []
    page.get_by_role("link", name="SCN-000003", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Credit note SCN-000003")
    expect(page.locator("#credit-note-SCN-000003")).to_be_visible()
