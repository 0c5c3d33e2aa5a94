"""Every open charge waits for something known, until a known moment (charging.deadlines),
and the dashboard says what: the invariant the sweeper enforces."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from charging.deadlines import capture_deadline, waiting_for
from charging.models import Charge
from charging.states import FINAL_STATES
from charging.states import ChargeStatus as S
from extensions import db
from ocpi.models import OcpiCommand, Party
from ocpi.transport import now_utc

NOW = now_utc().replace(microsecond=0)


def charge(party: Party, status: S, **fields: Any) -> Charge:
    n = db.session.scalar(db.select(db.func.count()).select_from(Charge))
    values = {"hold_id": f"pi_{n}", "token_uid": f"T{n}", "authorization_reference": f"R{n}",
              "created_at": NOW, "updated_at": NOW, **fields}
    row = Charge(party_pk=party.pk, cpo_country_code="SE", cpo_party_id="SIM",
                 location_id="L", evse_uid="E", evse_id="SE*SIM*E1", connector_id="1",
                 currency="SEK", hold_minor=10000, gateway="demo", status=status.value,
                 **values)
    db.session.add(row)
    db.session.commit()
    return row


def test_every_open_state_waits_for_something_until_a_known_moment(
    app: Any, party: Party
) -> None:
    cfg = app.config
    seconds = lambda name: timedelta(seconds=cfg[name])  # noqa: E731
    grace = seconds("SWEEP_GRACE_SECONDS")
    expected = {
        S.CREATED: ("payment", NOW + seconds("UNPAID_CHARGE_TTL")),
        S.AUTHORIZED: ("START_SESSION", NOW + grace),
        S.STARTING: ("answer to START_SESSION",
                     NOW + seconds("OCPI_DEFAULT_COMMAND_TIMEOUT") + grace),
        S.CHARGING: ("Session update", NOW + seconds("SESSION_SILENCE_SECONDS")),
        S.STOPPING: ("first Session", NOW + seconds("SESSION_SILENCE_SECONDS")),
        S.ENDED: ("the CDR", NOW + seconds("CDR_WAIT_SECONDS")),
        S.START_FAILED: ("release", NOW + seconds("LATE_SESSION_GRACE") + grace),
        S.CANCELLED: ("confirm the release", NOW + grace),
        S.EXPIRED: ("confirm the release", NOW + grace),
    }
    for status, (words, until) in expected.items():
        waiting = waiting_for(charge(party, status))
        assert waiting is not None and words in waiting.what, status
        assert waiting.until == until, status
    for status in FINAL_STATES - {S.CANCELLED, S.EXPIRED}:
        assert waiting_for(charge(party, status)) is None
    assert waiting_for(charge(party, S.CAPTURED)) is None


def test_the_next_step_of_a_started_or_stopping_charge_is_its_own_deadline(
    app: Any, party: Party
) -> None:
    db.session.add(OcpiCommand(uid="c1", party_pk=party.pk, command="START_SESSION",
                               request="{}", response_result="ACCEPTED",
                               deadline=NOW + timedelta(seconds=42)))
    starting = charge(party, S.STARTING, start_command_uid="c1")
    assert waiting_for(starting).until == NOW + timedelta(seconds=42)
    stopping = charge(party, S.STOPPING, session_id="S1", stop_next_at=NOW + timedelta(seconds=7))
    assert "confirm the stop" in waiting_for(stopping).what
    assert waiting_for(stopping).until == NOW + timedelta(seconds=7)
    released = charge(party, S.EXPIRED, hold_released_at=NOW)
    assert waiting_for(released) is None


def test_a_flagged_charge_waits_for_a_person(app: Any, party: Party) -> None:
    for flag in ("CAPTURE_FAILED", "STOP_UNCONFIRMED"):
        row = charge(party, S.STOPPING, failure_code=flag)
        waiting = waiting_for(row)
        assert (waiting.by_person, waiting.until) == (True, None)


def test_the_capture_deadline_follows_the_authorisations_own_end(app: Any, party: Party) -> None:
    plain = charge(party, S.ENDED)
    assert capture_deadline(plain) == NOW + timedelta(
        hours=app.config["HOLD_CAPTURE_DEADLINE_HOURS"])
    told = charge(party, S.CHARGING, capture_before=NOW + timedelta(days=2))
    assert capture_deadline(told) < NOW + timedelta(days=2)
    # A charging charge waits no longer than its capture deadline.
    soon = charge(party, S.STOPPING, stop_next_at=None, session_updated_at=NOW,
                  capture_before=NOW + timedelta(hours=1))
    assert waiting_for(soon).until <= NOW + timedelta(seconds=app.config[
        "SESSION_SILENCE_SECONDS"])


def test_the_dashboard_shows_what_a_charge_waits_for(client: Any, party: Party) -> None:
    from dashboard.models import set_operator

    set_operator("op@example.com", "a long enough password")
    db.session.commit()
    row = charge(party, S.ENDED, updated_at=NOW - timedelta(days=1))
    login = client.get("/dashboard/login").get_data(as_text=True)
    import re

    token = re.search(r'name="csrf" value="([^"]+)"', login).group(1)
    client.post("/dashboard/login", data={"email": "op@example.com",
                                          "password": "a long enough password", "csrf": token})
    page = client.get(f"/dashboard/charges/{row.public_id}").get_data(as_text=True)
    assert "Waiting for" in page and "the CDR" in page and "overdue" in page
    listing = client.get("/dashboard/").get_data(as_text=True)
    assert "Waiting for" in listing and "the CDR" in listing and "overdue" in listing
