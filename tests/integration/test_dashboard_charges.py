"""The charges list as the operator's search tool (dashboard/charges.py): a charge found by
each id a driver, CPO or payment provider may quote; each filter; totals of the whole match
per currency; dates as days in the operator's time zone; pages that keep the filters."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from conftest import operator_client
from sqlalchemy import select

from charging import refunds
from charging.models import Charge
from extensions import db
from ocpi.models import OcpiLocation, Party, PartyGrant
from payments.models import DemoPaymentIntent, Receipt
from payments.setup import current_gateway
from tests.charge_factory import captured_charge, deliver_demo_events

PASSWORD = "correct horse battery"


def signed_in(app: Any, role: str = "admin") -> Any:
    return operator_client(app, f"{role}@example.com", role, PASSWORD)


def listing(client: Any, **args: Any) -> str:
    response = client.get("/dashboard/", query_string=args)
    assert response.status_code == 200
    return response.get_data(as_text=True)


def shown(page: str) -> set[str]:
    """The public ids of the charges listed on a page."""
    return set(re.findall(r'<tr id="charge-([^"]+)"', page))


def totals_row(page: str, currency: str) -> list[str]:
    row = re.search(rf'<tr id="totals-{currency}">(.*?)</tr>', page, re.S)
    assert row, f"no {currency} totals in the page"
    return [re.sub(r"\s+", " ", cell).strip()
            for cell in re.findall(r"<td[^>]*>(.*?)</td>", row.group(1), re.S)]


def _mastercard(hold_id: str) -> None:
    intent = db.session.scalar(
        select(DemoPaymentIntent).where(DemoPaymentIntent.intent_id == hold_id))
    current_gateway().confirm(hold_id, intent.client_secret,  # type: ignore[attr-defined]
                              "5555555555554444")


def other_cpo() -> tuple[Party, OcpiLocation]:
    party = Party(name="Other CPO", status="CONNECTED", country_code="SE", party_id="OTH",
                  grants=[PartyGrant(role="CPO", country_code="SE", party_id="OTH")])
    db.session.add(party)
    db.session.flush()
    location = OcpiLocation(party_pk=party.pk, country_code="SE", party_id="OTH",
                            location_id="LOC9", time_zone="Europe/Stockholm",
                            raw='{"id": "LOC9", "name": "Hamngatan"}',
                            last_updated=datetime(2026, 1, 1, tzinfo=UTC))
    db.session.add(location)
    db.session.flush()
    return party, location


def plain_charge(party: Party, n: int, **values: Any) -> Charge:
    """A charge row as the domain leaves it, without the gateway (for filters and dates)."""
    fields: dict[str, Any] = {
        "party_pk": party.pk, "cpo_country_code": "SE", "cpo_party_id": party.party_id,
        "location_id": "LOC9", "evse_uid": f"E{n}", "evse_id": f"SE*OTH*E{n:05d}",
        "connector_id": "1", "currency": "SEK", "hold_minor": 30000, "gateway": "demo",
        "token_uid": f"PTOK{n}", "authorization_reference": f"PREF{n}", "status": "CAPTURED",
        **values,
    }
    charge = Charge(**fields)
    db.session.add(charge)
    db.session.commit()
    return charge


@pytest.fixture
def seeded(app: Any) -> dict[str, Charge]:
    """Two SEK charges captured through the demo gateway (one partly refunded) and one EUR
    charge of another CPO and site, flagged."""
    first = captured_charge(n=1, email="Driver@Example.com", kwh=10)
    second = captured_charge(n=2, email="other@example.com", excl_vat="70.00",
                             incl_vat="87.50", kwh=20, confirm=_mastercard)
    refunds.refund(second.public_id, 1000, "kulans", "ops@example.com")
    first.session_id, second.session_id = "Sess-A1", "SESS-B2"
    # What the Session pushes would have said (the factory makes only the CDR).
    first.energy_kwh, second.energy_kwh = Decimal(10), Decimal(20)
    db.session.commit()
    party, _location = other_cpo()
    euro = plain_charge(party, 9, currency="EUR", captured_minor=1234,
                        energy_kwh=Decimal("5.5"), failure_code="CAPTURED_WITHOUT_CDR",
                        hold_id="pi_Euro_9", email="euro@example.com")
    return {"first": first, "second": second, "euro": euro}


def _receipt_number(charge: Charge) -> str:
    return db.session.get(Receipt, charge.receipt_pk).display_number


def _credit_note_number(charge: Charge) -> str:
    note = db.session.scalar(select(Receipt).where(Receipt.credits_pk == charge.receipt_pk))
    return note.display_number


# Each id an operator may be given, and how it may be typed (case, spaces, a prefix).
SEARCHES = {
    "receipt number": ("first", lambda c: _receipt_number(c)),
    "receipt number in lower case": ("first", lambda c: f"  {_receipt_number(c).lower()} "),
    "credit note number": ("second", _credit_note_number),
    "public id": ("first", lambda c: c.public_id),
    "public id prefix": ("second", lambda c: c.public_id[:8]),
    "EVSE-ID": ("euro", lambda c: c.evse_id.lower()),
    "e-mail": ("first", lambda c: " DRIVER@example.COM "),
    "last four card digits": ("second", lambda c: "4444"),
    "card digits as printed": ("second", lambda c: "•••• 4444"),
    "PaymentIntent id": ("second", lambda c: c.hold_id.upper()),
    "Session id": ("first", lambda c: "sess-a1"),
    "CDR id": ("second", lambda c: "cdr-2"),
}


@pytest.mark.parametrize("kind", SEARCHES)
def test_a_charge_is_found_by_each_id(app: Any, seeded: dict[str, Charge], kind: str) -> None:
    which, term = SEARCHES[kind]
    wanted = seeded[which]
    client = signed_in(app)
    page = listing(client, q=term(wanted))
    assert shown(page) == {wanted.public_id}, kind
    # The search box keeps what was typed, so the next search starts from it.
    assert 'name="q" value="' in page


def test_an_id_is_matched_whole_not_as_a_part(app: Any, seeded: dict[str, Charge]) -> None:
    client = signed_in(app)
    assert shown(listing(client, q="cdr")) == set()
    assert shown(listing(client, q="example.com")) == set()
    assert shown(listing(client, q="424")) == set()
    # The card both SEK charges were not paid with, and one both were: all its charges.
    assert shown(listing(client, q="4242")) == {seeded["first"].public_id}


def test_a_declined_card_is_its_own_status(app: Any, seeded: dict[str, Charge]) -> None:
    party = db.session.scalar(select(Party).where(Party.party_id == "SIM"))
    gateway = current_gateway()
    declined = plain_charge(party, 20, status="CREATED", location_id="LOC1")
    hold = gateway.create_hold(30000, "SEK", description="EV charging",
                               metadata={"charge": declined.public_id},
                               idempotency_key=f"charge-{declined.public_id}-hold")
    declined.hold_id = hold.id
    db.session.commit()
    gateway.confirm(hold.id, hold.client_secret, "4000000000000002")  # type: ignore[attr-defined]
    deliver_demo_events(app)
    waiting = plain_charge(party, 21, status="CREATED", location_id="LOC1")
    client = signed_in(app)

    row = re.search(rf'<tr id="charge-{declined.public_id}">(.*?)</tr>', listing(client), re.S)
    assert "Card declined" in row.group(1) and ">CREATED<" not in row.group(1)
    assert shown(listing(client, status="DECLINED")) == {declined.public_id}
    assert shown(listing(client, status="CREATED")) == {waiting.public_id}
    assert "Card declined (1)" in listing(client)


def test_each_filter(app: Any, seeded: dict[str, Charge]) -> None:
    first, second, euro = seeded["first"], seeded["second"], seeded["euro"]
    client = signed_in(app)
    sim = db.session.scalar(select(Party).where(Party.party_id == "SIM"))
    hamngatan = db.session.scalar(select(OcpiLocation).where(OcpiLocation.location_id == "LOC9"))

    assert shown(listing(client)) == {first.public_id, second.public_id, euro.public_id}
    # A partial refund moves a charge to REFUNDED too (charging/states.py).
    assert shown(listing(client, status="REFUNDED")) == {second.public_id}
    assert shown(listing(client, status="CAPTURED")) == {first.public_id, euro.public_id}
    assert shown(listing(client, status="CHARGING")) == set()
    assert shown(listing(client, flag="any")) == {euro.public_id}
    assert shown(listing(client, flag="CAPTURED_WITHOUT_CDR")) == {euro.public_id}
    assert shown(listing(client, flag="CAPTURE_FAILED")) == set()
    assert shown(listing(client, party=sim.pk)) == {first.public_id, second.public_id}
    assert shown(listing(client, site=hamngatan.pk)) == {euro.public_id}
    # Filters combine: the search and the CPO must both match.
    assert shown(listing(client, q="euro@example.com", party=sim.pk)) == set()
    # What does not parse is dropped with a word, never a failed page.
    page = listing(client, status="NOPE", party="x", site="-1", page="0", **{"from": "21/11"})
    assert shown(page) == {first.public_id, second.public_id, euro.public_id}
    assert "is not a date" in page
    assert "not stored any more" in listing(client, site=99999)


def test_sorts(app: Any, seeded: dict[str, Charge]) -> None:
    client = signed_in(app)

    def order(sort: str) -> list[str]:
        return re.findall(r'<tr id="charge-([^"]+)"', listing(client, sort=sort))

    first, second, euro = (seeded[k].public_id for k in ("first", "second", "euro"))
    assert order("newest") == [euro, second, first]
    assert order("oldest") == [first, second, euro]
    assert order("amount") == [second, first, euro]
    assert order("kwh") == [second, first, euro]


def test_totals_cover_every_match_per_currency(app: Any, seeded: dict[str, Charge],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("dashboard.charges.PAGE_SIZE", 1)
    client = signed_in(app)
    page = listing(client)
    assert len(shown(page)) == 1
    # Count, kWh, captured 45 + 87.50, refunded 10, net, VAT 9 + 17.50 less the credit
    # note's 2.
    assert totals_row(page, "SEK") == ["SEK", "2", "30.000", "SEK 132.50", "SEK 10.00",
                                       "SEK 122.50", "SEK 24.50"]
    assert totals_row(page, "EUR") == ["EUR", "1", "5.500", "EUR 12.34", "EUR 0.00", "EUR 12.34",
                                       "EUR 0.00"]
    only_second = listing(client, q="4444")
    assert totals_row(only_second, "SEK")[1:] == ["1", "20.000", "SEK 87.50", "SEK 10.00",
                                                  "SEK 77.50", "SEK 15.50"]
    assert 'id="totals-EUR"' not in only_second


def test_dates_are_days_in_the_operators_time_zone(app: Any) -> None:
    app.config["OPERATOR_TIMEZONE"] = "Europe/Stockholm"
    party, _location = other_cpo()
    # 23:30 UTC on the 20th is 00:30 on the 21st in Stockholm (UTC+1 in November).
    early = plain_charge(party, 1, created_at=datetime(2026, 11, 20, 23, 30, tzinfo=UTC))
    late = plain_charge(party, 2, created_at=datetime(2026, 11, 21, 22, 59, tzinfo=UTC))
    next_day = plain_charge(party, 3, created_at=datetime(2026, 11, 21, 23, 0, tzinfo=UTC))
    client = signed_in(app)

    on_21st = listing(client, **{"from": "2026-11-21", "to": "2026-11-21"})
    assert shown(on_21st) == {early.public_id, late.public_id}
    assert shown(listing(client, to="2026-11-20")) == set()
    assert shown(listing(client, **{"from": "2026-11-22"})) == {next_day.public_id}
    assert "Created (Europe/Stockholm)" in on_21st
    assert "21 Nov 2026, 00:30" in on_21st and "23:30" not in on_21st


def test_pages_keep_every_filter(app: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("dashboard.charges.PAGE_SIZE", 2)
    party, location = other_cpo()
    kept = [plain_charge(party, n, failure_code="CAPTURE_FAILED",
                         created_at=datetime(2026, 11, 21, 12, n, tzinfo=UTC))
            for n in range(1, 6)]
    plain_charge(party, 9, created_at=datetime(2026, 11, 21, 12, 9, tzinfo=UTC))
    client = signed_in(app)
    args = {"flag": "CAPTURE_FAILED", "site": location.pk, "from": "2026-11-21",
            "to": "2026-11-21", "sort": "oldest", "status": "CAPTURED"}

    seen: list[str] = []
    page = listing(client, **args)
    while True:
        seen += re.findall(r'<tr id="charge-([^"]+)"', page)
        following = re.search(r'href="([^"]+)" rel="next"', page)
        if not following:
            break
        link = following.group(1).replace("&amp;", "&")
        for name, value in args.items():
            assert f"{name}={value}" in link
        page = client.get(link).get_data(as_text=True)
    assert seen == [c.public_id for c in kept]
    assert "Page 3 of 3" in page and 'rel="prev"' in page


def test_no_match_tells_the_operator_what_to_do(app: Any, seeded: dict[str, Charge]) -> None:
    client = signed_in(app)
    page = listing(client, q="SCN-999999")
    assert "No charge matches “SCN-999999” with these filters." in page
    assert re.search(r'<a href="/dashboard/">Clear the filters</a>', page)
    assert "Nothing to add up." in page


def test_who_may_search(app: Any, seeded: dict[str, Charge]) -> None:
    signed_out = app.test_client().get("/dashboard/?q=4444")
    assert signed_out.status_code == 302 and "/dashboard/login" in signed_out.headers["Location"]
    for role in ("support", "accounting"):
        assert shown(listing(signed_in(app, role), q="4444")) == {seeded["second"].public_id}


def test_every_cell_is_labelled_for_phones(app: Any, seeded: dict[str, Charge]) -> None:
    page = listing(signed_in(app))
    cells = re.findall(r"<td(?: [^>]*)?>", page)
    assert cells and all("data-label=" in cell for cell in cells)
