"""People on the dashboard: roles and what each may do, invitations, disabling, the audit
log, lockout, the same work for unknown e-mails, session cookies, and TOTP sign-in."""

from __future__ import annotations

import os
import re
import time
from typing import Any

import pytest
from sqlalchemy import select

from charging.models import Charge
from dashboard import totp
from dashboard.models import LoginFailure, Operator, OperatorAction, set_operator
from dashboard.permissions import ROLES, allowed
from extensions import db
from ocpi.models import Party, PartyGrant

PASSWORD = "correct horse battery"


def csrf(client: Any, path: str = "/dashboard/login") -> str:
    page = client.get(path).get_data(as_text=True)
    return re.search(r'name="csrf" value="([^"]+)"', page).group(1)


def sign_in(client: Any, email: str, password: str = PASSWORD) -> Any:
    return client.post("/dashboard/login", data={"email": email, "password": password,
                                                 "csrf": csrf(client)})


def post(client: Any, path: str, **form: str) -> Any:
    return client.post(path, data={"csrf": csrf(client, "/dashboard/account"), **form})


def signed_in(app: Any, role: str, email: str | None = None) -> Any:
    email = email or f"{role}@example.com"
    set_operator(email, PASSWORD, role=role)
    client = app.test_client()
    assert sign_in(client, email).status_code == 302
    return client


def actions(name: str) -> list[OperatorAction]:
    return list(db.session.scalars(select(OperatorAction).where(OperatorAction.action == name)
                                   .order_by(OperatorAction.pk)))


@pytest.fixture
def charge(app: Any) -> Charge:
    party = Party(name="Sim CPO", status="CONNECTED", country_code="SE", party_id="SIM",
                  grants=[PartyGrant(role="CPO", country_code="SE", party_id="SIM")])
    db.session.add(party)
    db.session.flush()
    row = Charge(party_pk=party.pk, cpo_country_code="SE", cpo_party_id="SIM",
                 location_id="LOC1", evse_uid="EVSE1", evse_id="SE*SIM*E00001",
                 connector_id="1", currency="SEK", hold_minor=30000, gateway="demo",
                 hold_id="pi_demo_1", token_uid="TOK1", authorization_reference="REF1",
                 status="CHARGING")
    db.session.add(row)
    db.session.commit()
    return row


# --- Roles ------------------------------------------------------------------------------


def test_the_role_table_is_the_issue_s() -> None:
    assert ROLES["support"] == {"view", "stop", "unlock", "resend"}
    assert ROLES["accounting"] == {"view", "reports", "exports"}
    assert {"refund", "manage_cpos", "manage_people"} <= ROLES["admin"]
    assert not allowed("nobody", "view")


def test_every_dashboard_view_names_a_permission(app: Any) -> None:
    public = {"dashboard.login", "dashboard.login_code", "dashboard.logout",
              "dashboard.accept_invitation"}
    for endpoint, view in app.view_functions.items():
        if endpoint.startswith("dashboard.") and endpoint not in public:
            assert getattr(view, "permission", None), f"{endpoint} has no permission"


@pytest.mark.parametrize("role", ["support", "accounting", "admin"])
def test_every_role_sees_the_charges(app: Any, charge: Charge, role: str) -> None:
    client = signed_in(app, role)
    for path in ("/dashboard/", f"/dashboard/charges/{charge.public_id}",
                 "/dashboard/chargers", "/dashboard/cpos", "/dashboard/unmatched"):
        assert client.get(path).status_code == 200, path


def test_accounting_may_not_unlock_and_is_told_who_may(app: Any, charge: Charge) -> None:
    client = signed_in(app, "accounting")
    page = client.get(f"/dashboard/charges/{charge.public_id}").get_data(as_text=True)
    assert "/unlock" not in page  # no button it may not press
    refused = post(client, f"/dashboard/charges/{charge.public_id}/unlock")
    assert refused.status_code == 403
    text = refused.get_data(as_text=True)
    assert "Your role is <strong>accounting</strong>" in text
    assert "<strong>admin</strong> or <strong>support</strong>" in text


def test_support_unlocks_and_the_audit_log_records_it(app: Any, charge: Charge,
                                                      monkeypatch: Any) -> None:
    import charging.operator_actions

    monkeypatch.setattr(charging.operator_actions, "unlock_connector",
                        lambda pk, who: "ACCEPTED")
    client = signed_in(app, "support")
    assert "/unlock" in client.get(f"/dashboard/charges/{charge.public_id}").get_data(
        as_text=True)
    assert post(client, f"/dashboard/charges/{charge.public_id}/unlock").status_code == 302
    [row] = actions("unlock")
    assert (row.actor, row.target) == ("support@example.com", charge.public_id)
    assert "ACCEPTED" in row.detail and len(row.client_key_hash) == 64


@pytest.mark.parametrize("role", ["support", "accounting"])
def test_only_admins_manage_people(app: Any, role: str) -> None:
    client = signed_in(app, role)
    for path in ("/dashboard/people", "/dashboard/audit"):
        answer = client.get(path)
        assert answer.status_code == 403 and "<strong>admin</strong>" in answer.get_data(
            as_text=True)
    assert post(client, "/dashboard/people/invite", email="x@example.com",
                role="admin").status_code == 403
    assert db.session.scalar(select(Operator).where(Operator.email == "x@example.com")) is None


def test_the_login_from_before_roles_is_an_admin(app: Any) -> None:
    db.session.execute(Operator.__table__.insert().values(
        email="old@example.com", password_hash="x", created_at=db.func.now()))
    db.session.commit()
    assert db.session.scalar(select(Operator.role).where(
        Operator.email == "old@example.com")) == "admin"


# --- Invitations, roles, disabling ------------------------------------------------------


def invite(client: Any, email: str, role: str) -> str:
    answer = post(client, "/dashboard/people/invite", email=email, role=role)
    assert answer.status_code == 200
    return re.search(r'id="invite-link">([^<]+)<', answer.get_data(as_text=True)).group(1)


def test_an_invited_operator_sets_a_password_once(app: Any) -> None:
    admin = signed_in(app, "admin")
    link = invite(admin, "new@example.com", "support")
    path = link.replace("http://localhost", "")
    invitee = app.test_client()
    assert sign_in(invitee, "new@example.com", "").status_code == 200  # no password yet
    weak = invitee.post(path, data={"password": "short", "repeat": "short",
                                    "csrf": csrf(invitee, path)})
    assert "at least 12" in weak.get_data(as_text=True)
    good = invitee.post(path, data={"password": PASSWORD, "repeat": PASSWORD,
                                    "csrf": csrf(invitee, path)})
    assert good.status_code == 302
    assert invitee.get(path).status_code == 404  # one use
    assert sign_in(invitee, "new@example.com").status_code == 302
    assert invitee.get("/dashboard/people").status_code == 403  # support
    assert [a.target for a in actions("invite")] == ["new@example.com"]
    assert actions("invitation_accepted")[0].actor == "new@example.com"


def test_an_invitation_expires(app: Any) -> None:
    from datetime import timedelta

    admin = signed_in(app, "admin")
    path = invite(admin, "late@example.com", "accounting").replace("http://localhost", "")
    operator = db.session.scalar(select(Operator).where(Operator.email == "late@example.com"))
    operator.invite_expires_at -= timedelta(hours=app.config["INVITATION_HOURS"] + 1)
    db.session.commit()
    assert app.test_client().get(path).status_code == 404


def test_role_change_and_disable_take_effect_at_once(app: Any) -> None:
    admin = signed_in(app, "admin")
    other = signed_in(app, "support", "other@example.com")
    pk = db.session.scalar(select(Operator.pk).where(Operator.email == "other@example.com"))
    assert post(admin, f"/dashboard/people/{pk}/role", role="accounting").status_code == 302
    assert actions("role_change")[0].detail == "support → accounting"
    assert post(admin, f"/dashboard/people/{pk}/disable").status_code == 302
    assert other.get("/dashboard/").status_code == 302  # signed out at the next request
    refused = sign_in(app.test_client(), "other@example.com")
    assert refused.status_code == 403 and "disabled" in refused.get_data(as_text=True)
    assert post(admin, f"/dashboard/people/{pk}/enable").status_code == 302
    assert sign_in(app.test_client(), "other@example.com").status_code == 302
    assert [a.action for a in db.session.scalars(select(OperatorAction).where(
        OperatorAction.target == "other@example.com"))] == ["role_change", "disable", "enable"]


def test_no_admin_disables_themselves_nor_the_last_admin(app: Any) -> None:
    admin = signed_in(app, "admin")
    pk = db.session.scalar(select(Operator.pk).where(Operator.email == "admin@example.com"))
    assert post(admin, f"/dashboard/people/{pk}/disable").status_code == 409
    answer = post(admin, f"/dashboard/people/{pk}/role", role="support")
    assert answer.status_code == 409 and "last admin" in answer.get_data(as_text=True)
    signed_in(app, "admin", "second@example.com")
    assert post(admin, f"/dashboard/people/{pk}/role", role="support").status_code == 302
    assert db.session.get(Operator, pk).role == "support"


# --- The audit log ----------------------------------------------------------------------


def test_the_audit_page_is_newest_first_and_paginated(app: Any) -> None:
    from dashboard import PAGE_SIZE

    admin = signed_in(app, "admin")
    for n in range(PAGE_SIZE + 5):
        db.session.add(OperatorAction(actor="admin@example.com", action="test",
                                      target=f"t{n:03d}", detail="", client_key_hash=""))
    db.session.commit()
    first = admin.get("/dashboard/audit").get_data(as_text=True)
    assert first.index(f"t{PAGE_SIZE + 4:03d}") < first.index(f"t{PAGE_SIZE:03d}")
    assert "t000" not in first and "page=2" in first
    second = admin.get("/dashboard/audit?page=2").get_data(as_text=True)
    assert "t000" in second and ">login<" in second


def test_sign_in_failure_and_sign_out_are_logged(app: Any) -> None:
    set_operator("ops@example.com", PASSWORD)
    client = app.test_client()
    sign_in(client, "ops@example.com", "wrong password")
    sign_in(client, "nobody@example.com", "wrong password")
    sign_in(client, "ops@example.com")
    client.post("/dashboard/logout", data={"csrf": csrf(client, "/dashboard/")})
    rows = list(db.session.scalars(select(OperatorAction).order_by(OperatorAction.pk)))
    assert [(r.action, r.actor) for r in rows] == [
        ("login_failed", "ops@example.com"), ("login_failed", "unknown e-mail"),
        ("login", "ops@example.com"), ("logout", "ops@example.com")]
    assert "nobody" not in "".join(r.detail + r.target for r in rows)


# --- Lockout and the unknown e-mail -----------------------------------------------------


@pytest.mark.parametrize("email", ["ops@example.com", "nobody@example.com"])
def test_lockout_answers_known_and_unknown_alike(make_app: Any, email: str) -> None:
    app = make_app(LOGIN_LOCKOUT_ATTEMPTS=3, LOGIN_LOCKOUT_MINUTES=15)
    with app.app_context():
        set_operator("ops@example.com", PASSWORD)
        client = app.test_client()
        answers = [sign_in(client, email, "wrong password") for _ in range(3)]
        assert [a.status_code for a in answers] == [200, 200, 429]
        locked = sign_in(client, email, PASSWORD)  # even the right password now
        assert locked.status_code == 429 and int(locked.headers["Retry-After"]) > 800
        assert "locked for 15 more minute" in locked.get_data(as_text=True)
        assert db.session.get(Operator, 1) is not None
        assert [a.action for a in db.session.scalars(select(OperatorAction))] == [
            "login_failed", "login_failed", "login_locked"]
        db.session.remove()
        db.engine.dispose()


def test_a_lockout_ends_and_a_success_forgives(make_app: Any) -> None:
    from datetime import timedelta

    app = make_app(LOGIN_LOCKOUT_ATTEMPTS=2)
    with app.app_context():
        set_operator("ops@example.com", PASSWORD)
        client = app.test_client()
        sign_in(client, "ops@example.com", "wrong password")
        assert sign_in(client, "ops@example.com").status_code == 302
        assert db.session.scalar(select(LoginFailure)) is None  # forgiven
        sign_in(client, "ops@example.com", "wrong password")
        assert sign_in(client, "ops@example.com", "wrong password").status_code == 429
        row = db.session.scalar(select(LoginFailure))
        row.locked_until -= timedelta(minutes=app.config["LOGIN_LOCKOUT_MINUTES"])
        row.first_failed_at -= timedelta(minutes=app.config["LOGIN_LOCKOUT_MINUTES"] + 1)
        db.session.commit()
        assert sign_in(client, "ops@example.com").status_code == 302
        db.session.remove()
        db.engine.dispose()


def test_an_unknown_e_mail_costs_the_same_password_check(app: Any, monkeypatch: Any) -> None:
    import dashboard.auth

    checked: list[str] = []
    real = dashboard.auth.check_password_hash

    def spy(stored: str, password: str) -> bool:
        checked.append(stored.split("$")[0])  # the method and its cost parameters
        return real(stored, password)

    monkeypatch.setattr(dashboard.auth, "check_password_hash", spy)
    set_operator("ops@example.com", PASSWORD)
    invited = Operator(email="invited@example.com", password_hash="")
    db.session.add(invited)
    db.session.commit()
    answers = [sign_in(app.test_client(), email, "wrong password").get_data(as_text=True)
               for email in ("ops@example.com", "nobody@example.com", "invited@example.com")]
    assert len(checked) == 3 and len(set(checked)) == 1, checked
    assert all("Wrong e-mail or password" in a for a in answers)


# --- Session cookies --------------------------------------------------------------------


def test_the_session_cookie_is_httponly_lax_and_bounded(app: Any) -> None:
    set_operator("ops@example.com", PASSWORD)
    answer = sign_in(app.test_client(), "ops@example.com")
    cookie = answer.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Expires=" in cookie
    assert "Secure" not in cookie  # development runs on plain http


def test_the_session_cookie_is_secure_in_production(make_app: Any) -> None:
    app = make_app(SESSION_COOKIE_SECURE=True)
    with app.app_context():
        set_operator("ops@example.com", PASSWORD)
        answer = sign_in(app.test_client(), "ops@example.com")
        assert "; Secure" in answer.headers["Set-Cookie"]
        db.session.remove()
        db.engine.dispose()


def test_config_makes_cookies_secure_in_production(make_app: Any) -> None:
    import config

    # Unset, the app decides by its ENV (tests/integration/test_production_config.py has
    # production's side, which needs a production-safe configuration to start).
    assert "SESSION_COOKIE_SECURE" in os.environ or config.Config.SESSION_COOKIE_SECURE is None
    app = make_app(ENV="development")
    assert app.config["SESSION_COOKIE_SECURE"] is False
    with app.app_context():
        db.engine.dispose()


def test_a_sign_in_ends_after_its_lifetime(app: Any) -> None:
    client = signed_in(app, "support")
    with client.session_transaction() as session:
        session["signed_in_at"] -= app.permanent_session_lifetime.total_seconds() + 1
    assert client.get("/dashboard/").status_code == 302


# --- TOTP -------------------------------------------------------------------------------


def test_enrol_totp_then_it_is_required(app: Any) -> None:
    client = signed_in(app, "support")
    enrol = post(client, "/dashboard/account/totp/begin").get_data(as_text=True)
    secret = re.search(r'id="totp-secret">([A-Z2-7]+)<', enrol).group(1)
    assert "otpauth://totp/ScanCharge%3Asupport%40example.com" in enrol and "<svg" in enrol
    now = time.time()
    wrong_code = str((int(totp.code_at(secret, now)) + 1) % 10 ** 6).zfill(6)
    assert "does not match" in post(client, "/dashboard/account/totp/confirm",
                                    code=wrong_code).get_data(as_text=True)
    # A code from the step before: accepted (drift), and it leaves the current one usable.
    assert post(client, "/dashboard/account/totp/confirm",
                code=totp.code_at(secret, now - 30)).status_code == 302
    assert actions("totp_enabled")

    fresh = app.test_client()
    answer = sign_in(fresh, "support@example.com")
    assert answer.status_code == 302 and answer.headers["Location"].endswith("/login/code")
    assert fresh.get("/dashboard/").status_code == 302  # the password alone: not signed in
    wrong = fresh.post("/dashboard/login/code", data={"code": wrong_code,
                                                      "csrf": csrf(fresh, "/dashboard/login")})
    assert "Wrong or used code" in wrong.get_data(as_text=True)
    right = fresh.post("/dashboard/login/code", data={"code": totp.code_at(secret, now),
                                                      "csrf": csrf(fresh, "/dashboard/login")})
    assert right.status_code == 302
    assert fresh.get("/dashboard/").status_code == 200
    assert actions("login")[-1].detail == "password and code"

    # The same code a second time (seen over a shoulder) does not sign anyone in.
    again = app.test_client()
    sign_in(again, "support@example.com")
    replay = again.post("/dashboard/login/code", data={"code": totp.code_at(secret, now),
                                                       "csrf": csrf(again, "/dashboard/login")})
    assert "Wrong or used code" in replay.get_data(as_text=True)


def test_an_admin_resets_a_lost_second_factor(app: Any) -> None:
    admin = signed_in(app, "admin")
    set_operator("phone@example.com", PASSWORD, role="support")
    operator = db.session.scalar(select(Operator).where(Operator.email == "phone@example.com"))
    operator.totp_secret = totp.new_secret()
    db.session.commit()
    assert sign_in(app.test_client(), "phone@example.com").headers["Location"].endswith(
        "/login/code")
    assert post(admin, f"/dashboard/people/{operator.pk}/reset-two-factor").status_code == 302
    assert sign_in(app.test_client(), "phone@example.com").headers["Location"].endswith(
        "/dashboard/")
    assert actions("totp_reset")[0].target == "phone@example.com"


def test_the_cli_gives_a_role_and_ends_a_lockout(make_app: Any) -> None:
    app = make_app(LOGIN_LOCKOUT_ATTEMPTS=1)
    with app.app_context():
        runner = app.test_cli_runner()
        args = ["operator", "--email", "books@example.com", "--password", PASSWORD]
        assert runner.invoke(args=[*args, "--role", "accounting"]).exit_code == 0
        client = app.test_client()
        assert sign_in(client, "books@example.com", "wrong password").status_code == 429
        assert sign_in(client, "books@example.com").status_code == 429
        assert runner.invoke(args=args).exit_code == 0
        assert sign_in(client, "books@example.com").status_code == 302
        assert db.session.scalar(select(Operator.role)) == "accounting"
        db.session.remove()
        db.engine.dispose()


def test_old_failures_are_forgiven_and_dropped(make_app: Any) -> None:
    from datetime import timedelta

    app = make_app(LOGIN_LOCKOUT_ATTEMPTS=2)
    with app.app_context():
        client = app.test_client()
        sign_in(client, "nobody@example.com", "wrong password")
        row = db.session.scalar(select(LoginFailure))
        row.first_failed_at -= timedelta(minutes=app.config["LOGIN_LOCKOUT_MINUTES"] + 1)
        db.session.commit()
        # The old failure no longer counts: this one is the first again, not the locking one.
        assert sign_in(client, "other@example.com", "wrong password").status_code == 200
        assert sign_in(client, "nobody@example.com", "wrong password").status_code == 200
        assert [r.failures for r in db.session.scalars(
            select(LoginFailure).execution_options(populate_existing=True))] == [1, 1]
        db.session.remove()
        db.engine.dispose()


def test_the_invitation_is_e_mailed_when_smtp_is_set(make_app: Any) -> None:
    from test_receipt_pdf_mail import Inbox, LocalController

    box = Inbox()
    controller = LocalController(box, hostname="127.0.0.1", port=0)
    controller.start()
    try:
        app = make_app(SMTP_HOST="127.0.0.1", SMTP_PORT=controller.port, SMTP_STARTTLS=False)
        with app.app_context():
            admin = signed_in(app, "admin")
            link = invite(admin, "mailed@example.com", "accounting")
            assert box.arrived.wait(5)
            _sender, recipients, message = box.messages[0]
            assert recipients == ["mailed@example.com"]
            assert link in message.get_content() and "as accounting" in message.get_content()
            controller.stop()
            answer = post(admin, "/dashboard/people/invite", email="later@example.com",
                          role="support").get_data(as_text=True)
            assert "could not be e-mailed" in answer and 'id="invite-link"' in answer
            db.session.remove()
            db.engine.dispose()
    finally:
        if controller.loop.is_running():
            controller.stop()
