"""Chargers and their health (dashboard/chargers.py): the EVSE status history the CPO's
pushes write (ocpi_evse_status_changes), failed starts counted from the charges' timelines,
time out of order from the history, and a page whose queries do not grow with the charges."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from charge_factory import seed_chargers
from sqlalchemy import event, select
from test_dashboard import sign_in

from charging.models import Charge, ChargeEvent
from charging.starting import result_cause, start_result
from charging.unit_of_work import locked_charge
from dashboard.models import set_operator
from extensions import db
from ocpi.models import OcpiEvseStatusChange, Party, token_hash
from ocpi.transport import format_datetime, json_dumps, now_utc

AUTH = {"Authorization": "Token " + base64.b64encode(b"tok-C").decode()}
STO1 = ("SIM-STO", "SIM-STO-1", "SE*SIM*E00001")
STO2 = ("SIM-STO", "SIM-STO-2", "SE*SIM*E00002")
MMO1 = ("SIM-MMO", "SIM-MMO-1", "SE*SIM*E00006")


@pytest.fixture
def sites(app: Any) -> Iterator[Any]:
    """The simulator's five sites stored, the CPO able to push, an operator signed in."""
    seed_chargers()
    party = db.session.scalars(select(Party)).one()
    party.incoming_token_hash = token_hash("tok-C")
    party.version = "2.2.1"
    set_operator("ops@example.com", "correct horse")
    db.session.commit()
    client = app.test_client()
    sign_in(client, "ops@example.com", "correct horse")
    yield client


def push_status(client: Any, evse: tuple[str, str, str], status: str, at: Any) -> None:
    location_id, uid, _ = evse
    response = client.patch(
        f"/ocpi/2.2.1/locations/SE/SIM/{location_id}/{uid}", headers=AUTH,
        data=json_dumps({"status": status, "last_updated": format_datetime(at)}),
        content_type="application/json")
    assert response.status_code == 200 and response.get_json()["status_code"] == 1000, \
        response.get_data(as_text=True)


def history(uid: str) -> list[tuple[str | None, str]]:
    db.session.expire_all()
    return [(r.previous_status, r.status) for r in db.session.scalars(
        select(OcpiEvseStatusChange).where(OcpiEvseStatusChange.evse_uid == uid)
        .order_by(OcpiEvseStatusChange.pk))]


def test_every_status_change_the_cpo_pushes_is_recorded(sites: Any) -> None:
    assert history("SIM-STO-1") == [(None, "AVAILABLE")]  # the first status seen
    now = now_utc()
    push_status(sites, STO1, "CHARGING", now - timedelta(minutes=30))
    push_status(sites, STO1, "CHARGING", now - timedelta(minutes=20))  # no change: no row
    push_status(sites, STO1, "OUTOFORDER", now - timedelta(minutes=10))
    assert history("SIM-STO-1") == [(None, "AVAILABLE"), ("AVAILABLE", "CHARGING"),
                                    ("CHARGING", "OUTOFORDER")]
    latest = db.session.scalars(select(OcpiEvseStatusChange).order_by(
        OcpiEvseStatusChange.pk.desc())).first()
    # On the CPO's clock: the EVSE's last_updated as sent.
    assert abs((latest.changed_at - (now - timedelta(minutes=10))).total_seconds()) < 1
    assert history("SIM-STO-2") == [(None, "AVAILABLE")]


def add_charge(evse: tuple[str, str, str], n: int, *, started: bool = False,
               failed: bool = False, minutes: int = 0, kwh: str = "0") -> Charge:
    party = db.session.scalars(select(Party)).one()
    location_id, uid, evse_id = evse
    now = now_utc()
    charge = Charge(
        party_pk=party.pk, cpo_country_code="SE", cpo_party_id="SIM", location_id=location_id,
        evse_uid=uid, evse_id=evse_id, connector_id="1", currency="SEK", hold_minor=30000,
        gateway="demo", token_uid=f"TOK{n}", authorization_reference=f"REF{n}",
        start_command_uid=f"CMD{n}", status="STARTING", energy_kwh=Decimal(kwh))
    if started:
        charge.status = "CAPTURED"
        charge.session_started_at = now - timedelta(hours=2)
        charge.session_ended_at = charge.session_started_at + timedelta(minutes=minutes)
    db.session.add(charge)
    db.session.commit()
    if failed:
        # Through the domain, as a CommandResult REJECTED is applied: the timeline says it.
        with locked_charge(charge.pk) as locked:
            start_result(locked, "REJECTED", "connector locked",
                         result_cause(f"CMD{n}", "START_SESSION", "REJECTED", None))
    return charge


def charger_rows(client: Any, **args: str) -> list[tuple[str, str]]:
    """(EVSE-ID, failed starts cell) of the chargers table, in its order."""
    query = "&".join(f"{k}={v}" for k, v in args.items())
    page = client.get(f"/dashboard/chargers?{query}").get_data(as_text=True)
    table = page.split('class="data chargers"', 1)[1]
    return re.findall(r'<code>(SE\*SIM\*E\d+)</code>.*?class="num failed-starts">([^<]+)<',
                      table, flags=re.S)


def test_failed_starts_are_counted_and_sort_first(sites: Any) -> None:
    for n in range(1, 4):
        add_charge(STO2, n, failed=True)
    add_charge(STO2, 4, started=True, minutes=45, kwh="12.5")
    add_charge(MMO1, 5, failed=True)
    for n in range(6, 9):
        add_charge(MMO1, n, started=True, minutes=30, kwh="10")
    assert db.session.scalar(select(ChargeEvent.to_status).where(
        ChargeEvent.charge_pk == 1).order_by(ChargeEvent.pk.desc())) == "START_FAILED"

    by_failed = charger_rows(sites, sort="failed")
    assert by_failed[0] == ("SE*SIM*E00002", "3 / 4")
    assert by_failed[1] == ("SE*SIM*E00006", "1 / 4")
    page = sites.get("/dashboard/chargers?sort=failed").get_data(as_text=True)
    row = page.split('id="evse-SESIME00002"', 1)[1].split("</tr>", 1)[0]
    assert 'class="attention"' in row and "one start in five or more failed" in row
    assert "45 min" in row and "12.5" in row
    # The site sums its chargers: Stockholm 3 failed of 4, 1 session.
    sto = page.split('class="data sites"', 1)[1].split("Stockholm Sergels torg", 1)[1]
    assert "3 / 4" in sto.split("</tr>", 1)[0]
    in_site_order = charger_rows(sites, sort="site")
    assert [e for e, _ in in_site_order][:3] == ["SE*SIM*E00004", "SE*SIM*E00005", "SE*SIM*E00009"]


def test_time_out_of_order_comes_from_the_status_history(sites: Any) -> None:
    now = now_utc()
    push_status(sites, STO1, "OUTOFORDER", now - timedelta(hours=5))
    push_status(sites, STO1, "AVAILABLE", now - timedelta(hours=3))
    push_status(sites, STO1, "OUTOFORDER", now - timedelta(minutes=90))
    push_status(sites, STO1, "AVAILABLE", now - timedelta(minutes=60))
    page = sites.get("/dashboard/chargers?sort=out_of_order").get_data(as_text=True)
    table = page.split('class="data chargers"', 1)[1]
    order = re.findall(r"<code>(SE\*SIM\*E\d+)</code>", table)
    # Göteborg's E00005 is OUTOFORDER since before the period: all 30 days of it.
    assert order[:2] == ["SE*SIM*E00005", "SE*SIM*E00001"]
    row = table.split('id="evse-SESIME00001"', 1)[1].split("</tr>", 1)[0]
    assert "2 h 30 min" in row and "2 times" in row
    assert "out of order an hour or more in the period" in row
    broken = table.split('id="evse-SESIME00005"', 1)[1].split("</tr>", 1)[0]
    assert "30 d 0 h" in broken and "out of order now" in broken
    # A shorter period clips the outage to it.
    week = sites.get("/dashboard/chargers?days=7").get_data(as_text=True)
    assert "7 d 0 h" in week and "30 d 0 h" not in week


def test_the_price_is_shown_in_words(sites: Any) -> None:
    page = sites.get("/dashboard/chargers").get_data(as_text=True)
    row = page.split('id="evse-SESIME00001"', 1)[1].split("</tr>", 1)[0]
    assert "/kWh" in row and "no tariff" not in row


def test_the_page_makes_as_many_queries_at_any_number_of_charges(app: Any, sites: Any) -> None:
    def queries() -> int:
        seen: list[str] = []

        def count(*args: Any) -> None:
            seen.append(args[2])

        event.listen(db.engine, "before_cursor_execute", count)
        try:
            assert sites.get("/dashboard/chargers?sort=failed").status_code == 200
        finally:
            event.remove(db.engine, "before_cursor_execute", count)
        return len(seen)

    add_charge(STO2, 1, failed=True)
    few = queries()
    for n in range(2, 60):
        add_charge((STO1, STO2, MMO1)[n % 3], n, started=n % 2 == 0, failed=n % 5 == 0,
                   minutes=n)
    assert queries() == few


def test_support_sees_chargers_and_nobody_signed_out_does(app: Any, sites: Any) -> None:
    assert app.test_client().get("/dashboard/chargers").status_code == 302
    set_operator("help@example.com", "correct horse", role="support")
    db.session.commit()
    support = app.test_client()
    sign_in(support, "help@example.com", "correct horse")
    assert support.get("/dashboard/chargers").status_code == 200
