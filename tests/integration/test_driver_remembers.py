"""The phone remembers its charges (driver/remembered.py): the charger page of a running
charge leads back to it, the site and other chargers show it in a banner, a finished one
leads to its receipt for a day; the charge link is e-mailed once when charging starts."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from charge_factory import captured_charge
from test_receipt_pdf_mail import Inbox, inbox, run_queue  # noqa: F401 (fixture)

from charging.charge_link import mail_charge_link
from charging.models import Charge
from charging.states import ChargeStatus as S
from charging.states import Event
from charging.timeline import Cause, fire
from charging.unit_of_work import locked_charge
from cpo_simulator.demo_data import build_locations
from cpo_simulator.jsonio import plain
from driver import remembered
from extensions import db
from ocpi.models import OcpiEvse
from ocpi.store import upsert_location
from ocpi.transport import now_utc
from payments.models import Receipt
from tests.charge_factory import sim_party

EVSE = "SE*SIM*E00001"


def add_sites() -> None:
    party = sim_party()
    for location in build_locations()[:2]:
        upsert_location(party, plain(location.model_dump(mode="python", exclude_none=True)))
    db.session.commit()


@pytest.fixture
def sites(app: Any) -> None:
    add_sites()


def start_charge(client: Any, evse_id: str = EVSE, **body: Any) -> dict[str, Any]:
    created = client.post("/api/v1/charges", json={"evse_id": evse_id, "language": "en",
                                                    **body})
    assert created.status_code == 201, created.get_json()
    return created.get_json()


def set_status(public_id: str, status: S, **fields: Any) -> Charge:
    charge = db.session.scalar(db.select(Charge).where(Charge.public_id == public_id))
    charge.status = status.value
    for name, value in fields.items():
        setattr(charge, name, value)
    db.session.commit()
    return charge


def evse_busy(evse_id: str = EVSE) -> None:
    """The CPO reports the EVSE CHARGING, as it does while a car charges there."""
    row = db.session.scalar(db.select(OcpiEvse).where(
        OcpiEvse.evse_id == OcpiEvse.normalise_evse_id(evse_id)))
    row.status = "CHARGING"
    db.session.commit()


def words(response: Any) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.get_data(as_text=True)))


def test_a_new_charge_is_remembered_in_a_bounded_httponly_cookie(client: Any,
                                                                 sites: None) -> None:
    created = client.post("/api/v1/charges", json={"evse_id": EVSE},
                          base_url="https://localhost")
    cookie = created.headers["Set-Cookie"]
    assert cookie.startswith(f"charges={created.get_json()['id']};")
    for attribute in ("HttpOnly", "Secure", "SameSite=Lax", "Path=/",
                      f"Max-Age={remembered.COOKIE_DAYS * 86400}"):
        assert attribute in cookie
    plain_http = client.post("/api/v1/charges", json={"evse_id": "SE*SIM*E00002"})
    assert "Secure" not in plain_http.headers["Set-Cookie"]
    # The list keeps the newest MAX_CHARGES ids and drops what is not an id.
    client.set_cookie("charges", ".".join(["x" * 22 + str(i) for i in range(9)] + ["<bad>"]))
    third = start_charge(client, "SE*SIM*E00003")
    kept = client.get_cookie("charges").value.split(".")
    assert kept[0] == third["id"] and len(kept) == remembered.MAX_CHARGES
    assert "<bad>" not in kept


@pytest.mark.parametrize("scanned", [EVSE, "se*sim*e00001", "SE SIM E00001"])
def test_rescanning_while_charging_leads_to_the_charge(client: Any, sites: None,
                                                       scanned: str) -> None:
    charge = start_charge(client)
    set_status(charge["id"], S.CHARGING)
    evse_busy()
    back = client.get(f"/c/{scanned}?lang=sv")
    assert back.status_code == 302
    assert back.headers["Cache-Control"] == "private, no-store"  # it names the charge
    assert back.headers["Location"] == f"/charge/{charge['id']}?lang=sv"
    page = client.get(back.headers["Location"])
    assert "Stoppa laddningen" in page.get_data(as_text=True)
    assert "Telefonen kommer också ihåg den" in page.get_data(as_text=True)
    assert "Vi mejlar dig länken" not in page.get_data(as_text=True)  # no address given


def test_someone_else_still_reads_that_the_charger_is_in_use(app: Any, sites: None) -> None:
    mine, theirs = app.test_client(), app.test_client()
    charge = start_charge(mine)
    set_status(charge["id"], S.CHARGING)
    evse_busy()
    page = theirs.get(f"/c/{EVSE}?lang=en")
    assert page.status_code == 200
    assert "Nothing has been charged." in words(page)
    assert "Your charge at" not in words(page)


def test_the_site_and_other_chargers_show_the_running_charge(client: Any, sites: None) -> None:
    charge = start_charge(client)
    set_status(charge["id"], S.CHARGING)
    for path in ("/?lang=en", "/c/SE*SIM*E00002?lang=en", "/c/NOPE?lang=en"):
        page = client.get(path)
        shown = words(page)
        assert f"Your charge at {EVSE} – Charging" in shown, path
        assert f'href="/charge/{charge["id"]}"' in page.get_data(as_text=True), path
        assert "View or stop your charge" in shown
        # The banner's link is the driver's credential: no shared cache may keep it.
        assert page.headers["Cache-Control"] == "private, no-store", path
        assert "Cookie" in page.headers["Vary"], path
    # Another charger can still be started from its own page.
    assert 'id="pay-form"' in client.get("/c/SE*SIM*E00002").get_data(as_text=True)


def test_an_unpaid_charge_does_not_take_over_the_charger_page(client: Any,
                                                              sites: None) -> None:
    start_charge(client)  # CREATED: paying happens on the charger page itself
    page = client.get(f"/c/{EVSE}?lang=en")
    assert page.status_code == 200 and 'id="pay-form"' in page.get_data(as_text=True)


def test_an_ended_charge_never_reads_nothing_has_been_charged(client: Any,
                                                              sites: None) -> None:
    charge = start_charge(client)
    set_status(charge["id"], S.ENDED)
    evse_busy()  # the car is still plugged in
    page = client.get(f"/c/{EVSE}?lang=en")
    shown = words(page)
    assert page.status_code == 200
    assert "Nothing has been charged" not in shown and "in use" not in shown
    assert f"Your charge at {EVSE}" in shown
    assert "Other chargers at this site" in shown


def test_a_finished_charge_leads_to_its_receipt_for_a_day(client: Any, sites: None) -> None:
    done = captured_charge(email=None)
    token = db.session.get(Receipt, done.receipt_pk)
    client.get(f"/charge/{done.public_id}")  # the link opened on this phone
    set_status(done.public_id, S.CAPTURED, session_ended_at=now_utc() - timedelta(hours=2))
    page = client.get("/?lang=en")
    assert f'href="/r/{token.public_token}"' in page.get_data(as_text=True)
    assert f"Your charge at {done.evse_id} is done." in words(page)
    # Settled while the car is still plugged in: the charger reads busy, but not "nothing
    # has been charged" to the driver who was just charged there.
    with_evse = db.session.get(Charge, done.pk)
    with_evse.evse_id = EVSE
    db.session.commit()
    evse_busy()
    busy = words(client.get(f"/c/{EVSE}?lang=en"))
    assert "Nothing has been charged" not in busy
    assert f"Your charge at {EVSE} is done." in busy
    set_status(done.public_id, S.CAPTURED, session_ended_at=now_utc() - timedelta(hours=25))
    assert "/r/" not in client.get("/?lang=en").get_data(as_text=True)


# --- The link by e-mail ------------------------------------------------------------------


@pytest.fixture
def mail_app(make_app: Callable[..., Any], inbox: tuple[Inbox, int]) -> Iterator[Any]:  # noqa: F811
    application = make_app(SMTP_HOST="127.0.0.1", SMTP_PORT=inbox[1], SMTP_STARTTLS=False,
                           MAIL_FROM="ScanCharge <laddning@scancharge.example>",
                           PUBLIC_BASE_URL="https://pay.scancharge.example",
                           SUPPORT_PHONE="+46 8 123 45 67")
    with application.app_context():
        add_sites()
        yield application
        db.session.remove()
        db.engine.dispose()


def charging_now(public_id: str) -> None:
    """The CPO's Session says energy flows: the charge moves into CHARGING as it does live."""
    charge = set_status(public_id, S.STARTING)
    with locked_charge(charge.pk) as locked:
        fire(locked, Event.SESSION_ACTIVE, Cause("ocpi", "S1", "Session ACTIVE"))


def test_the_charge_link_is_emailed_once_in_the_drivers_language(
    mail_app: Any, inbox: tuple[Inbox, int]  # noqa: F811
) -> None:
    box, _ = inbox
    client = mail_app.test_client()
    charge = start_charge(client, email="forare@example.se", language="sv")
    run_queue(mail_app)
    assert box.messages == []  # paying is not charging yet
    page = client.get(f"/charge/{charge['id']}?lang=en").get_data(as_text=True)
    assert "We e-mail you the link when charging starts." in page
    charging_now(charge["id"])
    run_queue(mail_app)
    assert len(box.messages) == 1
    _, rcpt, message = box.messages[0]
    assert rcpt == ["forare@example.se"]
    assert message["Subject"] == "Din laddning har startat – följ eller stoppa den här"
    link = f"https://pay.scancharge.example/charge/{charge['id']}"
    text = message.get_body(preferencelist=("plain",)).get_content()
    html = message.get_body(preferencelist=("html",)).get_content()
    assert link in text and link in html
    assert "+46 8 123 45 67" in text and "ScanCharge Demo AB" in text
    # Delivered twice, re-queued by hand, a late Session again: still one e-mail.
    mail_charge_link(db.session.scalar(db.select(Charge.pk)))
    mail_app.extensions["queue"].enqueue("charging.mail_charge_link",
                                         db.session.scalar(db.select(Charge.pk)))
    run_queue(mail_app)
    assert len(box.messages) == 1


def test_no_address_no_link_email(mail_app: Any, inbox: tuple[Inbox, int]) -> None:  # noqa: F811
    box, _ = inbox
    charge = start_charge(mail_app.test_client())
    charging_now(charge["id"])
    run_queue(mail_app)
    assert box.messages == []


def test_a_refused_link_email_is_tried_again(mail_app: Any, inbox: tuple[Inbox, int]) -> None:  # noqa: F811
    box, _ = inbox
    box.refuse = ["451 try again later"]
    charge = start_charge(mail_app.test_client(), email="driver@example.com")
    charging_now(charge["id"])
    run_queue(mail_app)  # refused: the claim is given back, the retry is scheduled
    row = db.session.scalar(db.select(Charge).where(Charge.public_id == charge["id"]))
    db.session.refresh(row)
    assert row.link_mailed_at is None and box.messages == []
    mail_charge_link(row.pk, 2)  # the scheduled retry, run now
    assert len(box.messages) == 1
    assert box.messages[0][2]["Subject"] == "Your charge has started – follow or stop it here"
