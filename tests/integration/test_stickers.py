"""Sticker sheets (stickers.py): printed as PDF, rasterised as a printer would (poppler's
pdftoppm, else Ghostscript) and every QR code on them decoded with zbar; the CLI's refusals
(`flask qr` for unknown EVSE-IDs and development base URLs); the dashboard's sheet per site."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pypdf
import pytest
from pdf_codes import decode, rasterise
from test_dashboard import sign_in
from test_rate_limits import seed_chargers

import stickers
from dashboard.models import set_operator
from extensions import db
from ocpi.models import OcpiLocation

BASE = "https://scancharge.example.org"
STOCKHOLM = ["SE*SIM*E00001", "SE*SIM*E00002", "SE*SIM*E00003"]
ALL_EVSES = [f"SE*SIM*E{n:05d}" for n in range(1, 12)]


@pytest.fixture
def public(make_app: Any) -> Iterator[Any]:
    """An app with a public base URL and the simulator's five sites stored."""
    application = make_app(PUBLIC_BASE_URL=BASE)
    with application.app_context():
        seed_chargers()
        yield application
        db.session.remove()
        db.engine.dispose()


def site(location_id: str) -> OcpiLocation:
    return db.session.scalars(
        db.select(OcpiLocation).where(OcpiLocation.location_id == location_id)).one()


def urls(evse_ids: list[str]) -> list[str]:
    return sorted(f"{BASE}/c/{evse_id}" for evse_id in evse_ids)


def page_texts(pdf: bytes) -> list[str]:
    return [page.extract_text() for page in pypdf.PdfReader(io.BytesIO(pdf)).pages]


def test_an_a4_sheet_of_a_site_scans_to_each_of_its_chargers(public: Any) -> None:
    made = stickers.stickers_for_location(site("SIM-STO"), public.config)
    pdf = stickers.render_sheet(made, "a4")
    pages = rasterise(pdf)
    assert len(pages) == 1
    assert pages[0].size == (1654, 2339)  # A4 at 200 dpi
    assert decode(pages[0]) == urls(STOCKHOLM)
    text = page_texts(pdf)[0]
    for evse_id in STOCKHOLM:
        assert evse_id in text
        assert f"scancharge.example.org/c/{evse_id.replace('*', '')}" in text
    assert text.count("Skanna för att ladda / Scan to charge") == 3
    assert text.count("Kontrollera att koden inte är övertejpad.") == 3
    assert text.count("Check that this code is not covered by another sticker.") == 3
    assert text.count(public.config["SUPPORT_PHONE"]) == 3
    assert text.count(public.config["SELLER_NAME"]) == 3
    # The price in Swedish words, VAT included, as the charger page says it.
    assert "kr/kWh" in text and "Pris: / Price:" in text
    # The codes are vector paths, not embedded bitmaps a print shop would blur.
    resources = pypdf.PdfReader(io.BytesIO(pdf)).pages[0]["/Resources"]
    xobjects = resources.get("/XObject") or {}
    assert not [n for n, x in xobjects.items() if x.get_object().get("/Subtype") == "/Image"]


def test_a4_sheets_run_on_to_more_pages_and_keep_every_code(public: Any) -> None:
    made = stickers.stickers_for_evse_ids(ALL_EVSES, public.config)
    pages = rasterise(stickers.render_sheet(made, "a4"))
    assert len(pages) == 2
    first, second = decode(pages[0]), decode(pages[1])
    assert len(first) == 8 and len(second) == 3
    assert sorted(first + second) == urls(ALL_EVSES)


def test_labels_are_one_sticker_a_page_at_62_by_100_mm(public: Any) -> None:
    made = stickers.stickers_for_location(site("SIM-JKG"), public.config)
    pdf = stickers.render_sheet(made, "label")
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    for page in reader.pages:
        width_mm, height_mm = (float(v) * 25.4 / 72 for v in page.mediabox.upper_right)
        assert (round(width_mm), round(height_mm)) == (62, 100)
    pages = rasterise(pdf, dpi=300)
    evse_ids = ["SE*SIM*E00009", "SE*SIM*E00010", "SE*SIM*E00011"]
    assert [decode(page) for page in pages] == [urls([e]) for e in evse_ids]


@pytest.mark.parametrize("size", stickers.SIZES)
def test_the_evse_id_is_printed_at_least_6_mm_tall(public: Any, size: str) -> None:
    long_id = "SE*SIM*E00001"
    made = stickers.stickers_for_evse_ids([long_id], public.config)
    sizes: list[float] = []

    def visit(text: str, cm: list[float], tm: list[float], font: Any, size_pt: float) -> None:
        if text.strip() == long_id:
            sizes.append(size_pt * tm[3] * cm[3])

    pypdf.PdfReader(io.BytesIO(stickers.render_sheet(made, size))).pages[0].extract_text(
        visitor_text=visit)
    assert len(sizes) == 1
    cap_mm = sizes[0] * stickers.cap_height(stickers.BOLD) * 25.4 / 72
    assert cap_mm >= stickers.MIN_CAP_HEIGHT_MM - 0.01


def test_a_charger_another_cpo_claims_gets_no_sticker(public: Any) -> None:
    from ocpi.models import OcpiEvse

    location = site("SIM-STO")
    row = db.session.scalars(db.select(OcpiEvse).where(
        OcpiEvse.location_pk == location.pk, OcpiEvse.evse_id == "SESIME00002")).one()
    row.clash = True
    db.session.commit()
    made = stickers.stickers_for_location(location, public.config)
    assert [s.evse_id for s in made] == ["SE*SIM*E00001", "SE*SIM*E00003"]
    with pytest.raises(stickers.UnknownEvse):
        stickers.stickers_for_evse_ids(["SE*SIM*E00002"], public.config)


def test_a_disconnected_cpos_site_gets_no_stickers(public: Any, tmp_path: Path) -> None:
    from ocpi.models import Party

    db.session.scalars(db.select(Party)).one().status = "DISCONNECTED"
    db.session.commit()
    assert stickers.stickers_for_location(site("SIM-STO"), public.config) == []
    refused = public.test_cli_runner().invoke(
        args=["qr", "sheet", "--location", "SIM-STO", "-o", str(tmp_path / "x.pdf")])
    assert refused.exit_code != 0 and "its CPO is not connected" in refused.output


# --- flask qr ------------------------------------------------------------------------------


def test_qr_refuses_an_unknown_evse_id_unless_allowed(public: Any, tmp_path: Path) -> None:
    runner = public.test_cli_runner()
    out = tmp_path / "x.png"
    refused = runner.invoke(args=["qr", "SE*SIM*E99999", "--out", str(out)])
    assert refused.exit_code != 0
    assert "no stored Location has the EVSE-ID 'SE*SIM*E99999'" in refused.output
    assert "--allow-unknown" in refused.output
    assert not out.exists()
    allowed = runner.invoke(args=["qr", "SE*SIM*E99999", "--out", str(out), "--allow-unknown"])
    assert allowed.exit_code == 0, allowed.output
    assert out.read_bytes().startswith(b"\x89PNG")
    known = runner.invoke(args=["qr", "se*sim*e00001", "--out", str(out)])
    assert known.exit_code == 0, known.output


@pytest.mark.parametrize("base", ["http://127.0.0.1:5000", "http://localhost:8000/",
                                  "https://127.0.1.1", "http://[::1]:5000"])
def test_qr_refuses_a_development_base_url_unless_allowed(make_app: Any, tmp_path: Path,
                                                          base: str) -> None:
    application = make_app(PUBLIC_BASE_URL=base)
    with application.app_context():
        seed_chargers()
        runner = application.test_cli_runner()
        out = tmp_path / "x.svg"
        for args in (["qr", "SE*SIM*E00001", "--format", "svg", "--out", str(out)],
                     ["qr", "sheet", "--location", "SIM-STO", "-o", str(out)]):
            refused = runner.invoke(args=args)
            assert refused.exit_code != 0
            assert "a development address" in refused.output
            assert "--allow-development-url" in refused.output
            assert not out.exists()
        allowed = runner.invoke(args=["qr", "SE*SIM*E00001", "--format", "svg", "--out",
                                      str(out), "--allow-development-url"])
        assert allowed.exit_code == 0, allowed.output
        db.session.remove()
        db.engine.dispose()


def test_qr_sheet_writes_a_site_and_refuses_unknown_evses(public: Any, tmp_path: Path) -> None:
    runner = public.test_cli_runner()
    pdf = tmp_path / "sto.pdf"
    result = runner.invoke(args=["qr", "sheet", "--location", "sim-sto", "--size", "label",
                                 "-o", str(pdf)])
    assert result.exit_code == 0, result.output
    assert "3 stickers (label)" in result.output
    codes = [url for page in rasterise(pdf.read_bytes()) for url in decode(page)]
    assert sorted(codes) == urls(STOCKHOLM)

    listed = tmp_path / "two.pdf"
    refused = runner.invoke(args=["qr", "sheet", "--evse", "SE*SIM*E00001", "--evse",
                                  "SE*XXX*E1", "-o", str(listed)])
    assert refused.exit_code != 0 and "'SE*XXX*E1'" in refused.output
    assert not listed.exists()
    allowed = runner.invoke(args=["qr", "sheet", "--evse", "SE*SIM*E00001", "--evse",
                                  "SE*XXX*E1", "--allow-unknown", "-o", str(listed)])
    assert allowed.exit_code == 0, allowed.output
    assert decode(rasterise(listed.read_bytes())[0]) == sorted(
        [f"{BASE}/c/SE*SIM*E00001", f"{BASE}/c/SE*XXX*E1"])

    missing = runner.invoke(args=["qr", "sheet", "--location", "NOPE", "-o", str(pdf)])
    assert missing.exit_code != 0 and "no stored location 'NOPE'" in missing.output
    both = runner.invoke(args=["qr", "sheet", "-o", str(pdf)])
    assert both.exit_code != 0 and "--location" in both.output


# --- the dashboard --------------------------------------------------------------------------


def test_the_dashboard_prints_a_sites_sheet(public: Any) -> None:
    client = public.test_client()
    location = site("SIM-GBG")
    path = f"/dashboard/sites/{location.pk}/stickers.pdf"
    assert client.get(path).status_code == 302  # signed in only

    set_operator("ops@example.com", "correct horse")
    sign_in(client, "ops@example.com", "correct horse")
    page = client.get("/dashboard/chargers").get_data(as_text=True)
    links = re.findall(r'href="(/dashboard/sites/\d+/stickers\.pdf\?size=a4)"', page)
    assert len(links) == 5  # one per site, not one per charger
    assert f"{path}?size=a4" in links
    assert f"{path}?size=label" in page

    response = client.get(f"{path}?size=a4")
    assert response.status_code == 200
    assert response.mimetype == "application/pdf"
    assert "stickers-sim-gbg-a4.pdf" in response.headers["Content-Disposition"]
    assert decode(rasterise(response.data)[0]) == urls(["SE*SIM*E00004", "SE*SIM*E00005"])
    label = client.get(f"{path}?size=label")
    assert len(pypdf.PdfReader(io.BytesIO(label.data)).pages) == 2

    assert client.get(f"{path}?size=a3").status_code == 404
    assert client.get("/dashboard/sites/99999/stickers.pdf").status_code == 404
