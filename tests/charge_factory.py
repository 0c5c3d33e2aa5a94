"""Captured charges for tests: a CDR, a charge that ended, a hold placed through the app's
gateway and authorised with a test card, then the real settle() (capture and receipt).
Nothing is written around the code under test: the hold, the capture, the receipt and its
number are the ones the gateway and settle() make."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from charging import settlement
from charging.models import Charge
from charging.states import ChargeStatus
from extensions import db
from ocpi.models import OcpiCdr, OcpiLocation, Party, PartyGrant, dump_json
from payments.setup import current_gateway

if TYPE_CHECKING:
    from stripe_standin import StripeStandin

# The Session the simulator's CPO sends for the charge of TOK1 / REF1, ACTIVE.
SESSION: dict[str, Any] = {
    "country_code": "SE", "party_id": "SIM", "id": "S1",
    "start_date_time": "2026-11-21T10:00:00Z", "kwh": 1.5,
    "cdr_token": {"country_code": "SE", "party_id": "SCN", "uid": "TOK1",
                  "type": "AD_HOC_USER", "contract_id": "SESCN1"},
    "auth_method": "COMMAND", "authorization_reference": "REF1",
    "location_id": "LOC1", "evse_uid": "EVSE1", "connector_id": "1", "currency": "SEK",
    "total_cost": {"excl_vat": 5.40, "incl_vat": 6.75},
    "status": "ACTIVE", "last_updated": "2026-11-21T10:05:00Z",
}


def sim_party() -> Party:
    """The simulator's CPO (SE*SIM) as a connected party with its one grant, added and
    flushed; the one already stored when there is one."""
    party = db.session.scalar(db.select(Party).where(Party.party_id == "SIM"))
    if party is None:
        party = Party(name="Sim", status="CONNECTED", country_code="SE", party_id="SIM",
                      grants=[PartyGrant(role="CPO", country_code="SE", party_id="SIM")])
        db.session.add(party)
        db.session.flush()
    return party


CDR: dict[str, Any] = {
    "country_code": "SE", "party_id": "SIM", "id": "CDR-1",
    "start_date_time": "2026-11-21T16:05:00Z", "end_date_time": "2026-11-21T16:50:00Z",
    "cdr_token": {"country_code": "SE", "party_id": "SCN", "uid": "TOK1",
                  "type": "AD_HOC_USER", "contract_id": "SESCN1"},
    "auth_method": "COMMAND", "authorization_reference": "REF1",
    "cdr_location": {"id": "LOC1", "name": "Sergels torg", "address": "Sergels torg 1",
                     "city": "Stockholm", "postal_code": "111 57", "country": "SWE",
                     "coordinates": {"latitude": "59.332", "longitude": "18.064"},
                     "evse_uid": "EVSE1", "evse_id": "SE*SIM*E00001", "connector_id": "1",
                     "connector_standard": "IEC_62196_T2", "connector_format": "SOCKET",
                     "connector_power_type": "AC_3_PHASE"},
    "currency": "SEK",
    "tariffs": [{"country_code": "SE", "party_id": "SIM", "id": "AC", "currency": "SEK",
                 "elements": [{"price_components": [
                     {"type": "FLAT", "price": 2.00, "vat": 25, "step_size": 1},
                     {"type": "ENERGY", "price": 3.40, "vat": 25, "step_size": 1}]}],
                 "last_updated": "2026-01-01T00:00:00Z"}],
    "charging_periods": [{"start_date_time": "2026-11-21T16:05:00Z",
                          "dimensions": [{"type": "ENERGY", "volume": 10}]}],
    "total_cost": {"excl_vat": 36.00, "incl_vat": 45.00},
    "total_energy": 10, "total_time": 0.75, "last_updated": "2026-11-21T16:50:00Z",
}


def ended_charge(
    *,
    n: int = 1,
    email: str | None = None,
    language: str = "sv",
    excl_vat: str = "36.00",
    incl_vat: str = "45.00",
    confirm: Callable[[str], Any] | None = None,
    kwh: int = 10,
) -> Charge:
    """The n-th charge of a test (n keeps identifiers apart), ENDED with its CDR linked and
    its hold authorised: the demo gateway's test card 4242..., or `confirm(payment_intent)`
    (e.g. the Stripe stand-in's Stripe.js) for another gateway."""
    party = db.session.scalar(db.select(Party).where(Party.party_id == "SIM"))
    if party is None:
        party = sim_party()
        db.session.add(OcpiLocation(
            party_pk=party.pk, country_code="SE", party_id="SIM", location_id="LOC1",
            time_zone="Europe/Stockholm", raw=json.dumps({"id": "LOC1"}),
            last_updated=datetime(2026, 1, 1, tzinfo=UTC),
        ))
    data = copy.deepcopy(CDR)
    data["id"] = f"CDR-{n}"
    data["authorization_reference"] = f"REF{n}"
    data["cdr_token"]["uid"] = f"TOK{n}"
    data["total_cost"] = {"excl_vat": float(excl_vat), "incl_vat": float(incl_vat)}
    data["total_energy"] = kwh
    data["charging_periods"][0]["dimensions"][0]["volume"] = kwh
    cdr = OcpiCdr(party_pk=party.pk, country_code="SE", party_id="SIM", cdr_id=f"CDR-{n}",
                  authorization_reference=f"REF{n}", token_uid=f"TOK{n}", currency="SEK",
                  total_cost_excl_vat=Decimal(excl_vat), total_cost_incl_vat=Decimal(incl_vat),
                  raw=dump_json(data))
    db.session.add(cdr)
    db.session.flush()
    gateway = current_gateway()
    charge = Charge(party_pk=party.pk, cpo_country_code="SE", cpo_party_id="SIM",
                    location_id="LOC1", evse_uid="EVSE1",
                    evse_id="SE*SIM*E00001", connector_id="1", currency="SEK",
                    hold_minor=30000, gateway=gateway.kind, token_uid=f"TOK{n}",
                    authorization_reference=f"REF{n}", status=ChargeStatus.ENDED.value,
                    cdr_pk=cdr.pk, email=email, language=language)
    db.session.add(charge)
    db.session.commit()
    hold = gateway.create_hold(30000, "SEK", description="EV charging at SE*SIM*E00001",
                               metadata={"charge": charge.public_id},
                               idempotency_key=f"charge-{charge.public_id}-hold")
    charge.hold_id = hold.id
    db.session.commit()
    if confirm is not None:
        confirm(hold.id)
    else:
        gateway.confirm(hold.id, hold.client_secret, "4242424242424242")  # type: ignore[attr-defined]
    return charge


def captured_charge(**kwargs: Any) -> Charge:
    """ended_charge(), then the real settle(): captured, with its receipt."""
    charge = ended_charge(**kwargs)
    settlement.settle(charge.pk)
    db.session.expire_all()
    charge = db.session.get(Charge, charge.pk)
    assert charge.status == "CAPTURED", charge.status
    return charge


def stripe_captured(standin: StripeStandin, **kwargs: Any) -> Charge:
    """captured_charge() through the Stripe gateway, its hold confirmed at the stand-in
    with the card that succeeds."""
    return captured_charge(confirm=lambda pi: standin.confirm(pi, "4242424242424242"), **kwargs)


def charging_under(tariff: dict[str, Any], hold_minor: int) -> Charge:
    """A charge CHARGING at the Sim CPO's LOC1 (Europe/Stockholm), EVSE1, priced by
    `tariff` (stored first, as if pushed by the CPO), with a demo hold of `hold_minor` SEK."""
    from ocpi import store
    from ocpi.transport import now_utc

    party = sim_party()
    db.session.add(OcpiLocation(party_pk=party.pk, country_code="SE", party_id="SIM",
                                location_id="LOC1", time_zone="Europe/Stockholm", raw="{}",
                                last_updated=now_utc()))
    store.upsert_tariff(party, tariff)
    charge = Charge(party_pk=party.pk, cpo_country_code="SE", cpo_party_id="SIM",
                    location_id="LOC1", evse_uid="EVSE1", evse_id="SE*SIM*E00001",
                    connector_id="1", tariff_id=tariff["id"], currency="SEK",
                    hold_minor=hold_minor, gateway="demo", hold_id="pi_demo_1",
                    token_uid="TOK1", authorization_reference="REF1",
                    status=ChargeStatus.CHARGING.value)
    db.session.add(charge)
    db.session.commit()
    return charge


# --- The in-memory queue, as tests drive it (no worker runs) ------------------------------


def pending(app: Any) -> list[str]:
    """The names of the tasks waiting in the queue."""
    return [t.name for t in app.extensions["queue"].huey.pending()]


def deliver_demo_events(app: Any) -> list[str]:
    """Deliver the demo gateway's queued events (its webhooks), as a worker would; other
    queued tasks are taken off the queue and their names returned, not run."""
    huey = app.extensions["queue"].huey
    others = []
    while (task := huey.dequeue()) is not None:
        if task.name == "payments.deliver_demo_event":
            huey.execute(task)
        else:
            others.append(task.name)
    return others


def drop_queue(app: Any) -> None:
    """The queued events are lost (a webhook that never arrives)."""
    huey = app.extensions["queue"].huey
    while huey.dequeue() is not None:
        pass


def seed_chargers() -> None:
    """The simulator's demo Locations and Tariffs, stored as if pulled from a CPO."""
    from cpo_simulator.demo_data import build_locations, build_tariffs
    from cpo_simulator.jsonio import plain
    from ocpi import store

    party = sim_party()
    for tariff in build_tariffs():
        store.upsert_tariff(party, plain(tariff.model_dump(mode="python", exclude_none=True)))
    for location in build_locations():
        store.upsert_location(party,
                              plain(location.model_dump(mode="python", exclude_none=True)))
    db.session.commit()
