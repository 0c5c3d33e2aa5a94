"""A CDR the CPO never pushes: pulled from its CDRs interface, and, when none comes before
the card authorisation lapses, the last Session cost captured (or the hold released) and
flagged for the operator."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from conftest import running_stack

from charging import settlement, sweeper
from charging.models import Charge
from charging.states import ChargeStatus as S
from extensions import db
from payments.demo import DemoGateway
from payments.models import DemoPaymentIntent
from tests.charge_factory import sim_party


def test_a_cdr_never_pushed_is_pulled_and_settled(make_app: Any) -> None:
    with running_stack(make_app, CDR_WAIT_SECONDS=0, SWEEP_GRACE_SECONDS=0) as stack:
        stack.simulator.set_behaviour(cdr="never")
        charge = stack.api("POST", "/api/v1/charges", json={"evse_id": stack.evse_id}).json()
        stack.api("POST", "/payments/demo/confirm", json={
            "payment_intent": charge["payment"]["payment_intent"],
            "client_secret": charge["payment"]["client_secret"],
            "card_number": "4242424242424242"})
        stack.wait_status(charge["id"], "CHARGING")
        stack.api("POST", f"/api/v1/charges/{charge['id']}/stop")
        stack.wait_status(charge["id"], "ENDED")
        assert not [m for m in stack.simulator.log if m["module"] == "cdrs"]

        with stack.app.app_context():
            counts = sweeper.sweep()  # what the periodic sweep does
            db.session.remove()
        assert counts["cdr_pulls"] == 1
        done = stack.wait_status(charge["id"], "CAPTURED", timeout=20)
        pulled = [m for m in stack.simulator.log if m["module"] == "cdrs"]
        assert [(m["direction"], m["method"]) for m in pulled] == [("in", "GET")]
        cdr = stack.simulator.cdrs[-1]
        assert done["captured"]["amount_minor"] == int(cdr["total_cost"]["incl_vat"] * 100)


def _ended(app: Any, cost: str | None) -> Charge:

    party = sim_party()
    hold = DemoGateway().create_hold(30000, "SEK", description="t", metadata={},
                                     idempotency_key="k1")
    intent = db.session.scalar(db.select(DemoPaymentIntent))
    intent.status, intent.amount_capturable_minor = "requires_capture", 30000
    charge = Charge(party_pk=party.pk, cpo_country_code="SE", cpo_party_id="SIM",
                    location_id="L", evse_uid="E", evse_id="SE*SIM*E1",
                    connector_id="1", currency="SEK", hold_minor=30000, gateway="demo",
                    hold_id=hold.id, token_uid="T", authorization_reference="R",
                    status=S.ENDED.value,
                    cost_incl_vat=Decimal(cost) if cost else None)
    db.session.add(charge)
    db.session.commit()
    return charge


def test_no_cdr_before_the_hold_lapses_captures_the_last_session_cost(app: Any) -> None:
    charge = _ended(app, "23.50")
    settlement.settle_without_cdr(charge.pk)
    db.session.expire_all()
    charge = db.session.get(Charge, charge.pk)
    assert (charge.status, charge.captured_minor, charge.failure_code) == (
        "CAPTURED", 2350, "CAPTURED_WITHOUT_CDR")
    intent = db.session.scalar(db.select(DemoPaymentIntent))
    assert (intent.status, intent.amount_received_minor) == ("succeeded", 2350)


def test_no_cdr_and_no_cost_releases_the_hold(app: Any) -> None:
    charge = _ended(app, None)
    settlement.settle_without_cdr(charge.pk)
    db.session.expire_all()
    charge = db.session.get(Charge, charge.pk)
    assert (charge.status, charge.failure_code) == ("RELEASED", "RELEASED_WITHOUT_CDR")
    assert db.session.scalar(db.select(DemoPaymentIntent)).status == "canceled"


def test_the_sweeper_acts_when_the_deadline_has_come(app: Any) -> None:
    charge = _ended(app, "10.00")
    app.config.update(HOLD_CAPTURE_DEADLINE_HOURS=0, SWEEP_GRACE_SECONDS=0)
    sweeper.sweep()
    names = [t.name for t in app.extensions["queue"].huey.pending()]
    assert "charging.settle_without_cdr" in names
    assert db.session.get(Charge, charge.pk).status == "ENDED"
