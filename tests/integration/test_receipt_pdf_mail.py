"""The receipt as a PDF (GET /r/<token>.pdf) and by e-mail, sent to a real SMTP server
(aiosmtpd on 127.0.0.1) by the real task, after the real capture."""

from __future__ import annotations

import email
import email.policy
import io
import logging
import shutil
import subprocess
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from charge_factory import captured_charge
from pypdf import PdfReader

import payments.mail as mail
from charging import refunds
from extensions import db
from payments.models import Receipt


@pytest.fixture(autouse=True)
def _mail_log_on() -> None:
    # migrations/env.py's fileConfig() disables the loggers that exist when the test
    # database is migrated; these tests read what payments.mail logs.
    logging.getLogger("payments.mail").disabled = False


def pdf_text(data: bytes) -> str:
    reader = PdfReader(io.BytesIO(data))
    return "\n".join(page.extract_text() for page in reader.pages).replace("\u00a0", " ")


def run_queue(app: Any) -> int:
    huey = app.extensions["queue"].huey
    done = 0
    while (task := huey.dequeue()) is not None:
        huey.execute(task)
        done += 1
    return done


# --- PDF ----------------------------------------------------------------------------------------


def test_pdf_receipt_in_swedish(app: Any, client: Any) -> None:
    charge = captured_charge()
    receipt = db.session.get(Receipt, charge.receipt_pk)

    answer = client.get(f"/r/{receipt.public_token}.pdf")

    assert answer.status_code == 200
    assert answer.headers["Content-Type"] == "application/pdf"
    assert answer.headers["Content-Disposition"] == 'inline; filename="kvitto-SCN-000001.pdf"'
    assert answer.headers["Cache-Control"] == "private, no-cache"
    data = answer.get_data()
    assert data.startswith(b"%PDF-") and data.rstrip().endswith(b"%%EOF")
    reader = PdfReader(io.BytesIO(data))
    assert len(reader.pages) == 1
    assert reader.metadata.title == "Kvitto SCN-000001"
    text = pdf_text(data)
    for expected in (
        "Kvitto", "SCN-000001", "ScanCharge Demo AB", "Org.nr 559000-0000",
        "Momsreg.nr SE559000000001", "Storgatan 1, 111 22 Stockholm",
        "Sergels torg", "SE*SIM*E00001",
        # 16:05-16:50 UTC in the location's time zone (Stockholm, UTC+1 in November).
        "21 nov. 2026 17:05", "21 nov. 2026 17:50", "45 min", "10,000 kWh",
        # Each line: quantity × unit price incl. VAT = amount; they add up to the total.
        "Startavgift", "1 × 2,50 kr", "2,50 kr", "Energi", "10,000 kWh × 4,25 kr/kWh",
        "42,50 kr", "21 nov. 2026 17:05 CET",
        "Belopp exkl. moms", "36,00 kr", "Moms 25 % av 36,00 kr", "9,00 kr", "Totalt betalt",
        "45,00 kr",
        "Visa •••• 4242", charge.hold_id, "DEMO",
    ):
        assert expected in text, expected
    assert "Kreditnota" not in text


def test_pdf_in_english_with_credit_notes(app: Any, client: Any) -> None:
    charge = captured_charge()
    receipt = db.session.get(Receipt, charge.receipt_pk)
    refunds.refund(charge.public_id, 1000, "Cable was broken – refunded", "op@example.com")

    answer = client.get(f"/r/{receipt.public_token}.pdf?lang=en")

    assert answer.headers["Content-Disposition"] == 'inline; filename="receipt-SCN-000001.pdf"'
    text = pdf_text(answer.get_data())
    for expected in ("Receipt", "SCN-000001", "Amount excl. VAT", "SEK 36.00", "VAT 25 %",
                     "SEK 9.00", "Total paid", "SEK 45.00", "Credit note SCN-000002",
                     "Credits receipt", "Cable was broken – refunded", "SEK -8.00", "SEK -2.00",
                     "SEK -10.00", "Total after refunds: SEK 35.00", "17:05"):
        assert expected in text, expected


def test_pdf_of_an_unknown_receipt_is_404(app: Any, client: Any) -> None:
    assert client.get("/r/not-a-token.pdf").status_code == 404


@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="poppler-utils not installed")
def test_pdf_reads_the_same_with_poppler(app: Any, client: Any, tmp_path: Any) -> None:
    charge = captured_charge()
    receipt = db.session.get(Receipt, charge.receipt_pk)
    path = tmp_path / "receipt.pdf"
    path.write_bytes(client.get(f"/r/{receipt.public_token}.pdf").get_data())
    text = subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True,
                          text=True, check=True).stdout.replace("\u00a0", " ")
    assert "SCN-000001" in text and "45,00 kr" in text and "Moms 25 %" in text


# --- E-mail: a real SMTP server -----------------------------------------------------------------


class Inbox:
    """An aiosmtpd handler keeping what arrives; `refuse` answers the next DATA commands."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], email.message.EmailMessage]] = []
        self.refuse: list[str] = []
        self.logins: list[tuple[str, str]] = []
        self.arrived = threading.Event()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        if self.refuse:
            return self.refuse.pop(0)
        message = email.message_from_bytes(envelope.original_content,
                                           policy=email.policy.default)
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), message))
        self.arrived.set()
        return "250 Message accepted for delivery"


class LocalController(Controller):
    """aiosmtpd's Controller on port 0: the port is read back once the socket is bound."""

    def _trigger_server(self) -> None:
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


@pytest.fixture
def inbox() -> Iterator[tuple[Inbox, int]]:
    box = Inbox()

    def authenticate(server: Any, session: Any, envelope: Any, mechanism: str,
                     data: Any) -> AuthResult:
        login = (data.login.decode(), data.password.decode())
        box.logins.append(login)
        return AuthResult(success=login == ("scancharge", "s3cret"))

    controller = LocalController(box, hostname="127.0.0.1", port=0,
                                 authenticator=authenticate, auth_require_tls=False)
    controller.start()
    try:
        yield box, controller.port
    finally:
        controller.stop()


@pytest.fixture
def mail_app(make_app: Callable[..., Any], inbox: tuple[Inbox, int]) -> Iterator[Any]:
    application = make_app(SMTP_HOST="127.0.0.1", SMTP_PORT=inbox[1], SMTP_STARTTLS=False,
                           MAIL_FROM="ScanCharge <kvitto@scancharge.example>",
                           PUBLIC_BASE_URL="https://pay.scancharge.example")
    mail.init_mail(application, recipient_for=refunds.receipt_recipient)
    with application.app_context():
        yield application
        db.session.remove()
        db.engine.dispose()


def test_the_receipt_is_emailed_after_the_capture(mail_app: Any, inbox: tuple[Inbox, int]) -> None:
    box, _ = inbox
    charge = captured_charge(email="driver@example.se")
    receipt = db.session.get(Receipt, charge.receipt_pk)
    assert receipt.sent_at is None  # the capture did not wait for the e-mail

    run_queue(mail_app)

    assert len(box.messages) == 1
    mail_from, rcpt_tos, message = box.messages[0]
    assert (mail_from, rcpt_tos) == ("kvitto@scancharge.example", ["driver@example.se"])
    assert message["To"] == "driver@example.se"
    assert message["From"] == "ScanCharge <kvitto@scancharge.example>"
    assert message["Subject"] == "Kvitto SCN-000001 – laddning hos ScanCharge Demo AB"
    assert message["Message-ID"].endswith("@scancharge.example>")
    text = message.get_body(preferencelist=("plain",)).get_content()
    html = message.get_body(preferencelist=("html",)).get_content()
    link = f"https://pay.scancharge.example/r/{receipt.public_token}"
    assert link in text and link in html
    assert "Totalt betalt" in text and "45,00 kr" in text and "Moms 25 %" in text
    assert "<h1" in html and "SCN-000001" in html and "45,00 kr" in html
    attachments = list(message.iter_attachments())
    assert [(a.get_content_type(), a.get_filename()) for a in attachments] == [
        ("application/pdf", "kvitto-SCN-000001.pdf")]
    pdf = pdf_text(attachments[0].get_content())
    assert "SCN-000001" in pdf and "45,00 kr" in pdf and "9,00 kr" in pdf
    db.session.expire_all()
    assert db.session.get(Receipt, receipt.pk).sent_at is not None


def test_a_receipt_is_emailed_once(mail_app: Any, inbox: tuple[Inbox, int]) -> None:
    box, _ = inbox
    charge = captured_charge(email="driver@example.se", language="en")
    run_queue(mail_app)
    mail.send_receipt_email(charge.receipt_pk)  # delivered twice, or a sweep's retry
    mail_app.extensions["queue"].enqueue(mail.TASK, charge.receipt_pk)
    run_queue(mail_app)
    assert len(box.messages) == 1
    assert box.messages[0][2]["Subject"] == "Receipt SCN-000001 – charging with ScanCharge Demo AB"


def test_no_address_no_email(mail_app: Any, inbox: tuple[Inbox, int]) -> None:
    captured_charge(email=None)
    run_queue(mail_app)
    assert inbox[0].messages == []


def test_smtp_auth_is_used_when_configured(mail_app: Any, inbox: tuple[Inbox, int]) -> None:
    mail_app.config.update(SMTP_USERNAME="scancharge", SMTP_PASSWORD="s3cret")
    captured_charge(email="driver@example.se")
    run_queue(mail_app)
    assert inbox[0].logins == [("scancharge", "s3cret")] and len(inbox[0].messages) == 1


def test_a_temporary_smtp_failure_is_retried_later(
    mail_app: Any, inbox: tuple[Inbox, int], caplog: pytest.LogCaptureFixture
) -> None:
    box, _ = inbox
    box.refuse = ["451 4.3.0 Try again later"]
    charge = captured_charge(email="driver@example.se")

    run_queue(mail_app)

    huey = mail_app.extensions["queue"].huey
    assert box.messages == []
    assert db.session.get(Receipt, charge.receipt_pk).sent_at is None
    scheduled = huey.scheduled()
    assert [(t.name, t.args) for t in scheduled] == [(mail.TASK, (charge.receipt_pk, 2))]
    assert "attempt 1 failed" in caplog.text and "trying again in 60 s" in caplog.text
    waits = (scheduled[0].eta - datetime.now(UTC).replace(tzinfo=None)).total_seconds()
    assert 55 < waits <= 60
    # The worker runs it when it is due.
    huey.execute(scheduled[0], timestamp=scheduled[0].eta)
    assert len(box.messages) == 1
    db.session.expire_all()
    assert db.session.get(Receipt, charge.receipt_pk).sent_at is not None


def test_a_permanent_refusal_is_not_retried(
    mail_app: Any, inbox: tuple[Inbox, int], caplog: pytest.LogCaptureFixture
) -> None:
    box, _ = inbox
    box.refuse = ["554 5.7.1 Rejected"]
    captured_charge(email="driver@example.se")
    with caplog.at_level(logging.ERROR, logger="payments.mail"):
        run_queue(mail_app)
    assert mail_app.extensions["queue"].huey.scheduled() == []
    assert "not retried" in caplog.text


def test_an_unreachable_smtp_server_never_blocks_the_capture(
    make_app: Callable[..., Any], unused_port: int
) -> None:
    application = make_app(SMTP_HOST="127.0.0.1", SMTP_PORT=unused_port, SMTP_STARTTLS=False)
    mail.init_mail(application, recipient_for=refunds.receipt_recipient)
    with application.app_context():
        charge = captured_charge(email="driver@example.se")
        assert charge.status == "CAPTURED"
        run_queue(application)
        scheduled = application.extensions["queue"].huey.scheduled()
        assert [t.args for t in scheduled] == [(charge.receipt_pk, 2)]
        # The last attempt gives up and says so.
        mail.send_receipt_email(charge.receipt_pk, mail.MAX_ATTEMPTS)
        assert len(application.extensions["queue"].huey.scheduled()) == 1
        db.session.remove()
        db.engine.dispose()


def test_without_smtp_host_nothing_is_sent_and_that_is_logged_once(
    make_app: Callable[..., Any], caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(mail, "_said_disabled", False)
    application = make_app()
    mail.init_mail(application, recipient_for=refunds.receipt_recipient)
    with application.app_context(), caplog.at_level(logging.INFO, logger="payments.mail"):
        captured_charge(n=1, email="driver@example.se")
        captured_charge(n=2, email="other@example.se")
        assert run_queue(application) == 4  # the captures' demo events; no e-mail task
        db.session.remove()
        db.engine.dispose()
    said = [r for r in caplog.records if "SMTP_HOST is not set" in r.getMessage()]
    assert len(said) == 1


@pytest.fixture
def unused_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
