"""Property: whatever a phone, a script or an attacker sends to the driver's side, the
answer is never a 5xx. Generated paths (real ids, mutations of them, any text), query
strings and bodies against the JSON API, the driver pages, /payments/demo/confirm and the
Stripe webhook (correctly signed with the test secret, and unsigned).

TESTING propagates exceptions, so a crash fails the property as surely as a 500 would.
Sized to run in about 45 s on SQLite in the thorough profile, a third of that in the
default `ci` one (tests/fuzz_profiles.py; FUZZ_SCALE=2 doubles either); it also runs on
PostgreSQL (TEST_DATABASE_URL), where NUL bytes and over-long strings matter.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from extensions import db
from tests import fuzz_profiles
from tests.charge_factory import captured_charge
from tests.stripe_standin import sign_webhook

WEBHOOK_SECRET = "whsec_fuzz_tests"
SCALE = float(os.environ.get("FUZZ_SCALE", "1"))


def examples(n: int) -> Any:
    """`n` examples in the thorough profile (tests/fuzz_profiles.py), a third in `ci`."""
    return settings(max_examples=max(1, int(fuzz_profiles.examples(n) * SCALE)),
                    deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@pytest.fixture
def fuzz_app(make_app: Any) -> Any:
    """The app with a real charger, a captured charge and its receipt to aim at."""
    from cpo_simulator.demo_data import build_locations
    from cpo_simulator.jsonio import plain
    from ocpi.models import Party
    from ocpi.store import upsert_location

    app = make_app(STRIPE_WEBHOOK_SECRET=WEBHOOK_SECRET)
    with app.app_context():
        charge = captured_charge()
        party = db.session.get(Party, charge.party_pk)
        location = plain(build_locations()[0].model_dump(mode="python", exclude_none=True))
        upsert_location(party, location)
        db.session.commit()
        from payments.models import Receipt

        receipt = db.session.get(Receipt, charge.receipt_pk)
        app.config["FUZZ_IDS"] = [location["evses"][0]["evse_id"], charge.public_id,
                                  receipt.public_token, charge.hold_id]
        db.session.remove()
    client = app.test_client()
    evse_id, public_id, token, _ = app.config["FUZZ_IDS"]
    for path in (f"/c/{evse_id}", f"/api/v1/chargers/{evse_id}", f"/charge/{public_id}",
                 f"/api/v1/charges/{public_id}", f"/r/{token}"):
        # The generated requests aim at these: they must be real to begin with.
        assert client.get(path).status_code == 200, path
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def no_5xx(response: Any, what: str) -> None:
    assert response.status_code < 500, f"{what}: {response.status_code} " \
                                       f"{response.get_data()[:300]!r}"


# -- strategies -----------------------------------------------------------------------------

TEXT = st.text(max_size=80)
NASTY = st.sampled_from(["\x00", "%00", "\x7f", "\n", "../", "..%2f", "*", "'", '"', "\\",
                         "%", "%ff", "\ufffd", "\u202e", "A" * 70, "A" * 300, " ", ".pdf",
                         "0", "-1", "null", "{}", "<script>"])


def mutated(ids: list[str]) -> st.SearchStrategy[str]:
    real = st.sampled_from(ids)
    return st.one_of(
        real,
        st.builds(lambda a, b: a + b, real, NASTY),
        st.builds(lambda a, b: a + b, NASTY, real),
        st.builds(lambda a, n: a[:n], real, st.integers(0, 40)),
        st.builds(lambda a: a.lower(), real),
        TEXT,
        NASTY,
    )


PATH_TEMPLATES = [
    ("GET", "/api/v1/chargers/{}"), ("GET", "/api/v1/charges/{}"),
    ("GET", "/api/v1/charges/{}/receipt"), ("POST", "/api/v1/charges/{}/stop"),
    ("POST", "/api/v1/charges/{}/cancel"), ("GET", "/c/{}"), ("GET", "/charge/{}"),
    ("GET", "/r/{}"), ("GET", "/r/{}.pdf"), ("GET", "/api/v1/{}"), ("GET", "/{}"),
    ("GET", "/dashboard/charges/{}"), ("GET", "/dashboard/qr/{}.svg"),
    ("POST", "/payments/demo/{}"), ("GET", "/static/{}"),
]

QUERY = st.dictionaries(st.sampled_from(["lang", "page", "status", "next", "download"])
                        | TEXT, TEXT | NASTY, max_size=3)

JSON_LEAF = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | TEXT
JSON = st.recursive(JSON_LEAF, lambda children: st.lists(children, max_size=4)
                    | st.dictionaries(TEXT, children, max_size=4), max_leaves=12)
ANY_VALUE = JSON | NASTY | st.integers(min_value=-(2**70), max_value=2**70)


def body_for(fields: dict[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[bytes]:
    """Objects with the endpoint's fields (each maybe a wrong type), any JSON, or bytes."""
    shaped = st.fixed_dictionaries({}, optional={k: v | ANY_VALUE for k, v in fields.items()})
    return st.one_of(
        shaped.map(lambda d: json.dumps(d).encode()),
        JSON.map(lambda v: json.dumps(v).encode()),
        st.binary(max_size=200),
        st.sampled_from([b"913", b"[0]", b"{", b"", b"null", b"[" * 200, b'{"a":' * 50]),
    )


def encoded(text: str) -> str:
    return quote(text, safe="*")


# -- properties -----------------------------------------------------------------------------


def test_generated_paths_and_queries_never_answer_5xx(fuzz_app: Any) -> None:
    client = fuzz_app.test_client()
    ids = fuzz_app.config["FUZZ_IDS"]

    @examples(4000)
    @given(template=st.sampled_from(PATH_TEMPLATES), value=mutated(ids), query=QUERY,
           raw_query=st.booleans())
    def check(template: tuple[str, str], value: str, query: dict[str, str],
              raw_query: bool) -> None:
        method, pattern = template
        path = pattern.format(encoded(value))
        if query:
            # Raw: characters as typed (the server decodes what it can); else urlencoded.
            path += "?" + ("&".join(f"{k}={v}" for k, v in query.items()) if raw_query
                           else urlencode(query))
        no_5xx(client.open(path, method=method), f"{method} {path!r}")

    check()


def test_generated_charge_bodies_never_answer_5xx(fuzz_app: Any) -> None:
    client = fuzz_app.test_client()
    ids = fuzz_app.config["FUZZ_IDS"]
    fields = {"evse_id": mutated(ids), "connector_id": st.sampled_from(["1", "2", 1]) | TEXT,
              "language": st.sampled_from(["sv", "en"]) | TEXT,
              "email": st.emails() | TEXT, "max_amount": TEXT | st.sampled_from(
                  ["200", "200 kr", "199,50", "1e9", "NaN", "-1", "Infinity"]),
              "max_amount_minor": st.integers(min_value=-(2**70), max_value=2**70)}

    @examples(2800)
    @given(body=body_for(fields), content_type=st.sampled_from(
        ["application/json", "text/plain", "application/x-www-form-urlencoded"]))
    def check(body: bytes, content_type: str) -> None:
        no_5xx(client.post("/api/v1/charges", data=body, content_type=content_type),
               f"POST /api/v1/charges {body[:200]!r}")

    check()


def test_generated_demo_confirm_bodies_never_answer_5xx(fuzz_app: Any) -> None:
    client = fuzz_app.test_client()
    ids = fuzz_app.config["FUZZ_IDS"]
    fields = {"payment_intent": mutated(ids), "client_secret": TEXT,
              "card_number": st.sampled_from(["4242424242424242", "4000000000000002",
                                              "4000002500003155"]) | TEXT,
              "action": st.sampled_from(["authenticate", "confirm"]) | TEXT,
              "approve": st.booleans()}

    @examples(2200)
    @given(body=body_for(fields))
    def check(body: bytes) -> None:
        no_5xx(client.post("/payments/demo/confirm", data=body,
                           content_type="application/json"),
               f"POST /payments/demo/confirm {body[:200]!r}")

    check()


EVENT_TYPES = st.sampled_from([
    "payment_intent.amount_capturable_updated", "payment_intent.succeeded",
    "payment_intent.canceled", "payment_intent.payment_failed", "charge.refunded",
    "charge.dispute.created", "customer.created"]) | TEXT
OBJECT_FIELDS = {"object": st.sampled_from(["payment_intent", "charge", "dispute"]) | TEXT,
                 "id": TEXT, "status": st.sampled_from(["requires_capture", "succeeded",
                                                        "canceled"]) | TEXT,
                 "amount": st.integers(-5, 10**6), "amount_capturable": st.integers(0, 10**6),
                 "amount_received": st.integers(0, 10**6),
                 "amount_captured": st.integers(0, 10**6),
                 "amount_refunded": st.integers(0, 10**6), "currency": st.just("sek") | TEXT,
                 "payment_intent": TEXT, "charge": TEXT, "metadata": JSON,
                 "refunds": JSON, "evidence_details": JSON, "last_payment_error": JSON}


def test_generated_webhooks_signed_or_not_never_answer_5xx(fuzz_app: Any) -> None:
    client = fuzz_app.test_client()
    ids = fuzz_app.config["FUZZ_IDS"]
    fields = dict(OBJECT_FIELDS, id=mutated(ids) | TEXT, payment_intent=mutated(ids))
    obj = st.fixed_dictionaries({}, optional={k: v | ANY_VALUE for k, v in fields.items()})
    event = st.fixed_dictionaries(
        {"object": st.just("event")},
        optional={"id": st.text(min_size=1, max_size=30) | ANY_VALUE, "type": EVENT_TYPES,
                  "data": st.fixed_dictionaries({}, optional={"object": obj}) | ANY_VALUE},
    ).map(lambda d: json.dumps(d).encode())
    payload = event | body_for({})

    @examples(3300)
    @given(payload=payload, signed=st.sampled_from(["good", "good", "none", "wrong"]),
           header=TEXT)
    def check(payload: bytes, signed: str, header: str) -> None:
        headers = {}
        if signed == "good":
            headers["Stripe-Signature"] = sign_webhook(payload, WEBHOOK_SECRET,
                                                       int(time.time()))
        elif signed == "wrong":
            # Any text a header can carry (no line breaks: HTTP cannot send them).
            text = header.replace("\r", "").replace("\n", "")
            headers["Stripe-Signature"] = text.encode("utf-8", "replace").decode("latin-1")
        response = client.post("/payments/stripe/webhook", data=payload, headers=headers,
                               content_type="application/json")
        no_5xx(response, f"webhook ({signed}) {payload[:200]!r}")
        if signed != "good":
            assert response.status_code == 400

    check()
