"""The charger page is light on a phone's connection: its HTML, CSS and JS are gzipped,
the static files are named by their content's hash and cached for a year, and together
they stay under 20 KB on the wire before Stripe.js."""

from __future__ import annotations

import gzip
import re
from pathlib import Path
from typing import Any

import pytest
from test_rate_limits import seed_chargers

from static_assets import YEAR

GZIP = {"Accept-Encoding": "gzip, deflate, br"}
BUDGET_BYTES = 20 * 1024
STATIC = Path(__file__).resolve().parents[2] / "static"
EVSE = "SE*SIM*E00001"


@pytest.fixture
def seeded_charger(app: Any) -> str:
    seed_chargers()
    return EVSE


def _same_origin_assets(html: str) -> list[str]:
    found = re.findall(r'<(?:script|link)[^>]+(?:src|href)="(/static/[^"]+)"', html)
    assert found, "the page links no static files"
    return found


def test_a_static_url_names_the_file_by_its_content_and_is_cached_for_a_year(
        client: Any) -> None:
    html = client.get("/", headers=GZIP)
    page = gzip.decompress(html.data).decode()
    css = next(url for url in _same_origin_assets(page) if url.endswith(".css"))
    named = re.fullmatch(r"/static/(?P<stem>[\w/-]+)\.[0-9a-f]{10}\.css", css)
    assert named, css
    answer = client.get(css)
    assert answer.status_code == 200
    assert answer.data == (STATIC / f"{named['stem']}.css").read_bytes()
    cache = answer.headers["Cache-Control"]
    assert "immutable" in cache and f"max-age={YEAR}" in cache and "public" in cache
    assert "X-Static-Hash" not in answer.headers


def test_a_name_with_another_hash_is_not_found_and_the_plain_name_still_works(
        client: Any) -> None:
    assert client.get("/static/driver.0123456789.css").status_code == 404
    plain = client.get("/static/driver.css")
    assert plain.status_code == 200 and "immutable" not in plain.headers.get(
        "Cache-Control", "")


def test_text_is_gzipped_for_clients_that_accept_it_and_plain_for_others(
        client: Any) -> None:
    zipped = client.get("/static/driver.css", headers=GZIP)
    assert zipped.headers["Content-Encoding"] == "gzip"
    assert "Accept-Encoding" in zipped.headers["Vary"]
    assert gzip.decompress(zipped.data) == (STATIC / "driver.css").read_bytes()
    assert int(zipped.headers["Content-Length"]) == len(zipped.data)
    plain = client.get("/static/driver.css")
    assert "Content-Encoding" not in plain.headers
    # The OCPI edge answers plain whatever the client accepts.
    assert "Content-Encoding" not in client.get("/ocpi/versions", headers=GZIP).headers


def test_the_charger_page_with_its_css_and_js_is_under_20_kb_on_the_wire(
        client: Any, seeded_charger: str) -> None:
    page = client.get(f"/c/{seeded_charger}", headers=GZIP)
    assert page.status_code == 200 and page.headers["Content-Encoding"] == "gzip"
    sizes = {f"/c/{seeded_charger}": len(page.data)}
    for url in _same_origin_assets(gzip.decompress(page.data).decode()):
        answer = client.get(url, headers=GZIP)
        assert answer.status_code == 200, url
        sizes[url] = len(answer.data)
    print("charger page on the wire (bytes):", sizes, "total", sum(sizes.values()))
    assert sum(sizes.values()) < BUDGET_BYTES, sizes


def test_a_streamed_response_is_sent_as_it_is_made_not_gzipped(app: Any) -> None:
    from flask import Response

    @app.get("/stream-test")
    def stream() -> Response:
        return Response((f"line {n}\n" * 40 for n in range(50)), mimetype="text/csv")

    answer = app.test_client().get("/stream-test", headers=GZIP)
    assert answer.is_streamed and "Content-Encoding" not in answer.headers
    assert answer.get_data(as_text=True).count("line 49") == 40
