"""A worker killed between the gateway's capture and our commit: the next settle (the
sweeper's retry) makes the money and the records agree, with one capture only, whether
Stripe still replays the idempotency key or has forgotten it (after 24 hours)."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
import stripe
from stripe_standin import create_stripe_standin
from test_settle_concurrency import CDR

from charging import settlement
from charging.models import Charge
from charging.states import ChargeStatus as S
from extensions import db
from ocpi.models import OcpiCdr, dump_json
from payments.models import Receipt
from servers import ServerThread
from tests.charge_factory import sim_party


@pytest.fixture
def standin(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setattr(stripe.HTTPClient, "INITIAL_DELAY", 0)
    monkeypatch.setattr(stripe.HTTPClient, "MAX_DELAY", 0)
    stand = create_stripe_standin()
    server = ServerThread(stand.app).start()
    stand.url = server.url
    yield stand
    server.stop()


@pytest.fixture
def stripe_app(make_app: Any, standin: Any) -> Iterator[Any]:
    app = make_app(STRIPE_SECRET_KEY="sk_test_x", STRIPE_PUBLISHABLE_KEY="pk_test_x",
                   STRIPE_WEBHOOK_SECRET="whsec_x", STRIPE_API_BASE=standin.url)
    with app.app_context():
        yield app
        db.session.remove()


def ended_stripe_charge(standin: Any) -> Charge:
    from payments.setup import current_gateway

    party = sim_party()
    cdr = OcpiCdr(party_pk=party.pk, country_code="SE", party_id="SIM", cdr_id="CDR-1",
                  authorization_reference="REF1", token_uid="TOK1", currency="SEK",
                  total_cost_excl_vat=Decimal("36.00"), total_cost_incl_vat=Decimal("45.00"),
                  raw=dump_json(CDR))
    db.session.add(cdr)
    db.session.flush()
    hold = current_gateway().create_hold(30000, "SEK", description="test", metadata={},
                                         idempotency_key="hold-1")
    standin.confirm(hold.id, "4242424242424242")
    charge = Charge(party_pk=party.pk, cpo_country_code="SE", cpo_party_id="SIM",
                    location_id="LOC1", evse_uid="EVSE1",
                    evse_id="SE*SIM*E00001", connector_id="1", currency="SEK",
                    hold_minor=30000, gateway="stripe", hold_id=hold.id, token_uid="TOK1",
                    authorization_reference="REF1", status=S.ENDED.value, cdr_pk=cdr.pk)
    db.session.add(charge)
    db.session.commit()
    return charge


def crash_after_capture(monkeypatch: pytest.MonkeyPatch) -> None:
    import charging.receipts

    def die(*_a: Any, **_k: Any) -> None:
        raise SystemExit("worker killed")

    monkeypatch.setattr(charging.receipts, "issue_for", die)


@pytest.mark.parametrize("key_forgotten", [False, True])
def test_a_crash_between_capture_and_commit_is_reconciled(
    stripe_app: Any, standin: Any, monkeypatch: pytest.MonkeyPatch, key_forgotten: bool
) -> None:
    charge = ended_stripe_charge(standin)
    with monkeypatch.context() as crash:
        crash_after_capture(crash)
        with pytest.raises(SystemExit):
            settlement.settle(charge.pk)
    db.session.rollback()
    assert db.session.get(Charge, charge.pk).status == "ENDED"
    assert standin.payment_intents[charge.hold_id]["status"] == "succeeded"
    if key_forgotten:
        standin._saved.clear()  # Stripe forgets idempotency keys after 24 hours

    settlement.settle(charge.pk)  # what the sweeper does on its next round

    db.session.expire_all()
    settled = db.session.get(Charge, charge.pk)
    assert (settled.status, settled.captured_minor) == ("CAPTURED", 4500)
    intent = standin.payment_intents[charge.hold_id]
    assert intent["amount_received"] == 4500
    captures = standin.requests_to("POST", f"/v1/payment_intents/{charge.hold_id}/capture")
    real = [r for r in captures if r.status == 200 and not r.replayed]
    assert len(real) == 1
    assert [r.number for r in db.session.scalars(db.select(Receipt))] == [1]
