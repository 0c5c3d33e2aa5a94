"""No dead ends and someone to call: the front page and the unknown-charger page take a typed
charger ID forgivingly, a charger that cannot start lists the site's free ones, every driver
page and error names the seller and the support contact, terms and privacy are shipped."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from cpo_simulator.demo_data import build_locations
from cpo_simulator.jsonio import plain
from extensions import db
from ocpi.store import upsert_location
from tests.charge_factory import sim_party


@pytest.fixture
def sites(app: Any) -> Iterator[list[dict[str, Any]]]:
    """The simulator's demo sites, stored as a connected CPO sent them: Göteborg has
    SE*SIM*E00004 free and SE*SIM*E00005 out of order."""
    party = sim_party()
    locations = [plain(loc.model_dump(mode="python", exclude_none=True))
                 for loc in build_locations()[:2]]
    for location in locations:
        upsert_location(party, location)
    db.session.commit()
    yield locations


def text_of(response: Any) -> str:
    html = response.get_data(as_text=True)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_the_front_page_is_a_landing_page_with_the_charger_form(client: Any) -> None:
    response = client.get("/?lang=en")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "Scan the QR code on the charger, or type its ID." in text_of(response)
    assert 'action="/find"' in page and 'name="evse"' in page
    assert client.get("/?lang=sv").get_data(as_text=True).count("Skanna QR-koden") == 1


@pytest.mark.parametrize("typed", ["SE*SIM*E00004", "se*sim*e00004", " SE SIM E00004 ",
                                   "SE SIM E 00004", "sesime00004", "SE-SIM-E00004"])
def test_a_typed_charger_id_is_taken_forgivingly(client: Any, sites: Any, typed: str) -> None:
    found = client.get("/find", query_string={"evse": typed, "lang": "en"})
    assert found.status_code == 302
    assert "lang=en" in found.headers["Location"]
    page = client.get(found.headers["Location"])
    assert page.status_code == 200
    assert "SE*SIM*E00004" in text_of(page)
    assert 'id="pay-form"' in page.get_data(as_text=True)


def test_nothing_typed_says_what_to_type(client: Any) -> None:
    response = client.get("/find?evse=+&lang=en")
    assert response.status_code == 400
    assert "Type the charger's ID, as printed on it." in text_of(response).replace("&#39;", "'")


def test_an_unknown_charger_offers_the_form_with_what_was_typed(client: Any, sites: Any) -> None:
    response = client.get("/c/SE*XYZ*NOPE?lang=en")
    assert response.status_code == 404
    page = response.get_data(as_text=True)
    assert "We can&#39;t find this charger." in page
    assert 'name="evse" value="SE*XYZ*NOPE"' in page


def test_a_charger_out_of_order_lists_the_free_ones_at_its_site(client: Any, sites: Any) -> None:
    response = client.get("/c/SE*SIM*E00005?lang=en")
    assert response.status_code == 200
    shown = text_of(response)
    assert "It is out of service." in shown
    assert "Other chargers at this site" in shown
    page = response.get_data(as_text=True)
    links = re.findall(r'<ul class="other-evses">(.*?)</ul>', page, re.S)
    assert links and re.findall(r'href="([^"]+)"', links[0]) == ["/c/SE*SIM*E00004"]
    info = client.get("/api/v1/chargers/SE*SIM*E00005?lang=en").get_json()
    assert [o["evse_id"] for o in info["other_evses"]] == ["SE*SIM*E00004"]
    # A free charger lists its free neighbours in the API too, not on the page.
    free = client.get("/api/v1/chargers/SE*SIM*E00001").get_json()
    assert [o["evse_id"] for o in free["other_evses"]] == ["SE*SIM*E00002", "SE*SIM*E00003"]


# --- Trust before paying ------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/", "/c/SE*SIM*E00001", "/c/SE*SIM*E00005", "/c/NOPE",
                                  "/terms", "/privacy", "/no-such-page"])
def test_every_driver_page_names_the_seller_and_the_support(make_app: Any, path: str) -> None:
    app = make_app(SELLER_NAME="Laddbolaget AB", SELLER_ORG_NUMBER="556677-8899",
                   SUPPORT_PHONE="+46 8 123 45 67", SUPPORT_EMAIL="hjalp@laddbolaget.se",
                   TERMS_URL="https://laddbolaget.se/villkor")
    with app.app_context():
        party = sim_party()
        for loc in build_locations()[:2]:
            upsert_location(party, plain(loc.model_dump(mode="python", exclude_none=True)))
        db.session.commit()
        response = app.test_client().get(path + "?lang=en")
        db.session.remove()
        db.engine.dispose()
    page = response.get_data(as_text=True)
    footer = re.search(r"<footer class=\"site-footer\">(.*?)</footer>", page, re.S)
    assert footer, f"{path}: no footer"
    words = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", footer.group(1)))
    assert "Sold by Laddbolaget AB, org. no. 556677-8899" in words
    assert 'href="tel:+4681234567"' in footer.group(1)
    assert 'href="mailto:hjalp@laddbolaget.se"' in footer.group(1)
    assert 'href="https://laddbolaget.se/villkor"' in footer.group(1)
    assert 'href="/privacy"' in footer.group(1)  # no PRIVACY_URL: the shipped page


def test_the_generic_error_page_names_the_contact(client: Any) -> None:
    page = text_of(client.get("/no-such-page?lang=en"))
    assert "Need help? Contact ScanCharge Demo AB: +46 8 000 00 00 or support@example.com." in page
    swedish = text_of(client.get("/no-such-page?lang=sv"))
    assert "+46 8 000 00 00 eller support@example.com" in swedish


def test_the_dashboard_keeps_its_own_pages(client: Any) -> None:
    assert "site-footer" not in client.get("/dashboard/login").get_data(as_text=True)


@pytest.mark.parametrize("lang", ["en", "sv"])
def test_terms_and_privacy_are_shipped_in_both_languages(client: Any, lang: str) -> None:
    terms = text_of(client.get(f"/terms?lang={lang}"))
    privacy = text_of(client.get(f"/privacy?lang={lang}"))
    assert "559000-0000" in terms and "support@example.com" in terms
    if lang == "en":
        assert "never more than the hold" in terms
        assert "card number never reaches us" in privacy
        assert "7 days" in privacy  # the phone's charges cookie
    else:
        assert "aldrig mer än reservationen" in terms
        assert "kortnummer når aldrig oss" in privacy
        assert "7 dagar" in privacy
