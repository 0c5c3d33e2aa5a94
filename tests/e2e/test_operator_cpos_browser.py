"""The operator's CPO and charger tasks in a real headless Chromium: invite and connect a CPO
(the simulator, over HTTP), find the charger with the most failed starts, and print a
sticker sheet (the PDF downloaded, rendered with pdftoppm and every QR code on it decoded).

Screenshots for docs/operators.md: cpo-connections, chargers, sticker-sheet.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from charge_factory import seed_chargers
from conftest import simulator_beside
from operator_browser import PASSWORD, screenshot, screenshot_dir, served, signed_in
from pdf_codes import decode, rasterise
from test_driver_browser import CHROMIUM, browser  # noqa: F401 (the browser fixture)

from charging.models import Charge
from charging.starting import result_cause, start_result
from charging.unit_of_work import locked_charge
from dashboard.models import set_operator
from extensions import db
from ocpi.models import Party

sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is needed")
expect = sync_api.expect

pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} is missing")
ADMIN = "admin@example.com"
PUBLIC = "https://scancharge.example.org"


@pytest.fixture
def with_simulator(make_app: Callable[..., Any]) -> Iterator[tuple[Any, str, str, str]]:
    """(app, base URL, simulator URL, the simulator's token A): ScanCharge served at its
    PUBLIC_BASE_URL (the CPO calls it back during the handshake) with a queue worker, the
    simulator beside it, not connected."""
    with simulator_beside(make_app) as beside:
        with beside.app.app_context():
            set_operator(ADMIN, PASSWORD)
            db.session.commit()
            db.session.remove()
        yield beside.app, beside.base, beside.simulator_url, beside.token_a


def test_invite_and_connect_a_cpo(browser: Any, with_simulator: Any) -> None:  # noqa: F811
    _app, base, simulator_url, token_a = with_simulator
    page = signed_in(browser, base)
    page.get_by_role("link", name="CPO connections").click()

    page.get_by_label("CPO's name").fill("Laddbolaget")
    page.get_by_label("May register as").fill("CPO:SE*LAD")
    page.get_by_role("button", name="Make token A").click()
    expect(page.locator("[role=alert]")).to_contain_text(
        "Invitation for Laddbolaget made: it may register as CPO SE*LAD.")
    expect(page.locator("#invite-versions-url")).to_have_text(f"{base}/ocpi/versions")
    assert len(page.locator("#invite-token").inner_text()) >= 32
    expect(page.locator("#cpo-1")).to_contain_text("invited, not registered yet")

    page.get_by_label("CPO's versions URL").fill(f"{simulator_url}/ocpi/versions")
    page.get_by_label("Token A").fill(token_a)
    page.get_by_label("Name on the dashboard").fill("Sim CPO")
    page.get_by_role("button", name="Connect", exact=True).click()
    expect(page.locator("[role=alert]")).to_contain_text(
        "Connected to Sim CPO (SE*SIM), OCPI 2.2.1; granted CPO SE*SIM.")
    row = page.locator("tr", has_text="Sim CPO")
    expect(row).to_contain_text("connected")
    expect(row).to_contain_text("CPO SE*SIM")

    # The import runs in the background: its last pull appears once it is done.
    for _ in range(50):
        page.reload()
        if "—" not in page.locator("tr", has_text="Sim CPO").locator(
                "td[data-label='Last pull']").inner_text():
            break
        page.wait_for_timeout(200)
    expect(page.locator("tr", has_text="Sim CPO").locator("td[data-label='Last pull']")) \
        .not_to_have_text("—")
    page.locator("tr", has_text="Sim CPO").get_by_role("button", name="Sync now").click()
    expect(page.locator("[role=alert]")).to_contain_text(
        "Pulling the Locations and Tariffs of Sim CPO now.")
    screenshot(page, "cpo-connections")

    page.get_by_role("link", name="Chargers").click()
    expect(page.locator("table.chargers tbody tr")).to_have_count(11)

    page.goto(f"{base}/dashboard/audit")
    expect(page.locator("table")).to_contain_text("cpo_connect")
    expect(page.locator("table")).to_contain_text("cpo_invite")


@pytest.fixture
def chargers_site(make_app: Callable[..., Any]) -> Iterator[tuple[Any, str]]:
    """ScanCharge served with the simulator's sites stored and a public base URL."""
    app = make_app(PUBLIC_BASE_URL=PUBLIC)
    with served(app, seed_chargers) as base:
        yield app, base


def failed_start(evse: tuple[str, str, str], n: int) -> None:
    """A charge whose START_SESSION the charger rejected, through the domain."""
    location_id, uid, evse_id = evse
    party = db.session.scalars(db.select(Party)).one()
    charge = Charge(party_pk=party.pk, cpo_country_code="SE", cpo_party_id="SIM",
                    location_id=location_id, evse_uid=uid, evse_id=evse_id, connector_id="1",
                    currency="SEK", hold_minor=30000, gateway="demo", token_uid=f"TOK{n}",
                    authorization_reference=f"REF{n}", start_command_uid=f"CMD{n}",
                    status="STARTING")
    db.session.add(charge)
    db.session.commit()
    with locked_charge(charge.pk) as locked:
        start_result(locked, "FAILED", "ground fault",
                     result_cause(f"CMD{n}", "START_SESSION", "FAILED", "ground fault"))


def test_find_the_charger_with_the_most_failed_starts(browser: Any,  # noqa: F811
                                                      chargers_site: Any) -> None:
    app, base = chargers_site
    with app.app_context():
        for n in range(4):
            failed_start(("SIM-MMO", "SIM-MMO-2", "SE*SIM*E00007"), n)
        failed_start(("SIM-STO", "SIM-STO-1", "SE*SIM*E00001"), 9)
        db.session.remove()
    page = signed_in(browser, base)
    page.get_by_role("link", name="Chargers").click()
    page.get_by_role("link", name="failed starts").click()
    first = page.locator("table.chargers tbody tr").first
    expect(first).to_contain_text("SE*SIM*E00007")
    expect(first.locator("td[data-label='Failed starts']")).to_have_text("4 / 4")
    expect(first).to_have_class("attention")
    expect(first).to_contain_text("one start in five or more failed")
    second = page.locator("table.chargers tbody tr").nth(1)
    expect(second.locator("td[data-label='Failed starts']")).to_have_text("1 / 1")
    # The site with it stands out too.
    expect(page.locator("table.sites tr", has_text="Malmö")).to_have_class("attention")
    # The price in words, as the driver reads it.
    expect(first.locator("td[data-label='Price']")).to_contain_text("/kWh")
    screenshot(page, "chargers")


def test_print_a_sticker_sheet(browser: Any, chargers_site: Any,  # noqa: F811
                               tmp_path: Path) -> None:
    _app, base = chargers_site
    page = signed_in(browser, base)
    page.get_by_role("link", name="Chargers").click()
    with page.expect_download() as download:
        page.get_by_role("link", name="Download the A4 sheet of Stockholm Sergels torg").click()
    saved = tmp_path / download.value.suggested_filename
    download.value.save_as(saved)
    assert saved.name == "stickers-sim-sto-a4.pdf"
    pages = rasterise(saved.read_bytes())
    assert len(pages) == 1
    assert decode(pages[0]) == [f"{PUBLIC}/c/SE*SIM*E0000{n}" for n in (1, 2, 3)]
    # For docs/operators.md: the sheet as the renderer drew it (a PDF viewer is no page).
    pages[0].convert("RGB").resize((827, 1170)).save(screenshot_dir() / "sticker-sheet.png")


def test_the_cpo_and_charger_pages_have_no_serious_axe_violations(
        browser: Any, chargers_site: Any) -> None:  # noqa: F811
    from operator_browser import DESKTOP, sign_in
    from test_accessibility import AXE, axe_violations, describe

    if not AXE.exists():
        pytest.skip(f"axe-core is not installed ({AXE} is missing): run `npm ci`")
    app, base = chargers_site
    with app.app_context():
        failed_start(("SIM-STO", "SIM-STO-1", "SE*SIM*E00001"), 1)
        pk = db.session.scalars(db.select(Party)).one().pk
        db.session.remove()
    # Only so that axe's own script may run (the pages' CSP refuses inline scripts).
    page = browser.new_context(viewport=DESKTOP, bypass_csp=True).new_page()
    sign_in(page, base)
    found = {}
    for path in ("/dashboard/cpos", f"/dashboard/cpos/{pk}/disconnect",
                 "/dashboard/chargers?sort=failed", "/dashboard/chargers?days=7"):
        page.goto(base + path)
        serious = [v for v in axe_violations(page) if v["impact"] in ("serious", "critical")]
        if serious:
            found[path] = serious
    assert not found, describe(found)
