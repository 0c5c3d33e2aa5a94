"""Settling a charge is exactly-once even when many workers try at the same moment (a CDR
delivered several times, a retry racing the sweeper): one capture, one receipt number."""

from __future__ import annotations

import threading
from decimal import Decimal
from typing import Any

from charging import settlement
from charging.models import Charge
from charging.states import ChargeStatus
from extensions import db
from ocpi.models import OcpiCdr, dump_json
from payments.demo import DemoGateway
from payments.models import DemoPaymentIntent, Receipt, ReceiptSequence
from tests.charge_factory import sim_party

CDR = {
    "country_code": "SE", "party_id": "SIM", "id": "CDR-1",
    "start_date_time": "2026-11-21T10:00:00Z", "end_date_time": "2026-11-21T10:30:00Z",
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
                     {"type": "ENERGY", "price": 3.60, "vat": 25, "step_size": 1}]}],
                 "last_updated": "2026-01-01T00:00:00Z"}],
    "charging_periods": [{"start_date_time": "2026-11-21T10:00:00Z",
                          "dimensions": [{"type": "ENERGY", "volume": 10}]}],
    "total_cost": {"excl_vat": 36.00, "incl_vat": 45.00},
    "total_energy": 10, "total_time": 0.5, "last_updated": "2026-11-21T10:30:00Z",
}


def ended_charge(app: Any) -> int:
    party = sim_party()
    cdr = OcpiCdr(party_pk=party.pk, country_code="SE", party_id="SIM", cdr_id="CDR-1",
                  authorization_reference="REF1", token_uid="TOK1", currency="SEK",
                  total_cost_excl_vat=Decimal("36.00"), total_cost_incl_vat=Decimal("45.00"),
                  raw=dump_json(CDR))
    db.session.add(cdr)
    db.session.flush()
    charge = Charge(party_pk=party.pk, cpo_country_code="SE", cpo_party_id="SIM",
                    location_id="LOC1", evse_uid="EVSE1",
                    evse_id="SE*SIM*E00001", connector_id="1", currency="SEK",
                    hold_minor=30000, gateway="demo", token_uid="TOK1",
                    authorization_reference="REF1", status=ChargeStatus.ENDED.value,
                    cdr_pk=cdr.pk)
    db.session.add(charge)
    db.session.flush()
    hold = DemoGateway().create_hold(30000, "SEK", description="test", metadata={},
                                     idempotency_key="k")
    intent = db.session.scalar(db.select(DemoPaymentIntent))
    intent.status = "requires_capture"
    intent.amount_capturable_minor = 30000
    charge.hold_id = hold.id
    db.session.commit()
    return charge.pk


def test_ten_concurrent_settles_capture_once_and_number_one_receipt(app: Any) -> None:
    charge_pk = ended_charge(app)
    barrier = threading.Barrier(10)
    errors: list[BaseException] = []

    def settle() -> None:
        with app.app_context():
            try:
                barrier.wait()
                settlement.settle(charge_pk)
            except BaseException as exc:
                errors.append(exc)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=settle) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    db.session.expire_all()
    charge = db.session.get(Charge, charge_pk)
    assert charge.status == "CAPTURED"
    assert charge.captured_minor == 4500
    intent = db.session.scalar(db.select(DemoPaymentIntent))
    assert (intent.status, intent.amount_received_minor) == ("succeeded", 4500)
    assert intent.applied_keys == [f"charge-{charge.public_id}-capture"]
    receipts = db.session.scalars(db.select(Receipt)).all()
    assert [r.number for r in receipts] == [1]
    assert (receipts[0].net_minor, receipts[0].vat_minor) == (3600, 900)
    assert db.session.get(ReceiptSequence, "SCN").next_number == 2
