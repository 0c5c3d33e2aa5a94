"""Receipts by e-mail: HTML and plain text, the PDF attached, sent through SMTP.

When a receipt is issued, payments.receipts announces `receipt_issued` after the commit;
the receiver here only hands the receipt's pk to the queue, so e-mail never delays or
breaks a capture. The task `payments.send_receipt_email`:
- sends nothing without SMTP_HOST (said once in the log) or without an address (the
  address is the driver's, which the domain knows: init_mail's `recipient_for`);
- sends a receipt once: it claims `receipts.sent_at` (UPDATE ... WHERE sent_at IS NULL)
  before talking to the SMTP server and gives the claim back if the server refuses;
- on a temporary failure (connection, timeout, 4xx) schedules its next attempt through the
  queue with exponential backoff (1, 2, 4 ... 60 minutes, MAX_ATTEMPTS in all), since the
  queue registers every task with retries=0; a permanent refusal (5xx) is logged, not
  retried.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
from collections.abc import Callable
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate, getaddresses, make_msgid
from typing import Any

from flask import Flask, current_app
from sqlalchemy import update

from extensions import db, now_utc, rows_changed
from i18n import render_in, texts
from jobs import background_task
from payments import signals
from payments.models import Receipt
from payments.receipt_document import build, plain_text
from payments.receipt_pdf import render_document

log = logging.getLogger(__name__)

TASK = "payments.send_receipt_email"
MAX_ATTEMPTS = 8
SMTP_TIMEOUT_SECONDS = 30
_said_disabled = False


def init_mail(app: Flask, recipient_for: Callable[[Receipt], str | None]) -> None:
    """E-mail receipts for `app`; `recipient_for(receipt)` names the address (or None)."""
    app.extensions["receipt_mail"] = {"recipient_for": recipient_for}
    signals.receipt_issued.connect(on_receipt_issued, weak=False)


def on_receipt_issued(sender: str, *, receipt_pk: int, **_: Any) -> None:
    # After the commit, in the issuer's thread: no database work here, only the queue.
    if "receipt_mail" not in current_app.extensions:
        return
    if not current_app.config.get("SMTP_HOST"):
        _say_disabled()
        return
    send_receipt_email.enqueue(receipt_pk)


def enabled() -> bool:
    """Whether receipts are e-mailed at all (SMTP_HOST set)."""
    return bool(current_app.config.get("SMTP_HOST"))


def resend_after_commit(receipt: Receipt) -> None:
    """E-mail `receipt` again (an operator's resend): its "sent" mark is lifted in the
    caller's transaction and the e-mail queued once that commits, so the claim in
    send_receipt_email still lets exactly one attempt send it."""
    receipt.sent_at = None
    send_receipt_email.enqueue_after_commit(receipt.pk)


def _say_disabled() -> None:
    global _said_disabled
    if not _said_disabled:
        _said_disabled = True
        log.info("SMTP_HOST is not set: receipts are not e-mailed (said once)")


@background_task(TASK)
def send_receipt_email(receipt_pk: int, attempt: int = 1) -> None:
    cfg = current_app.config
    receipt = db.session.get(Receipt, receipt_pk)
    if receipt is None or receipt.is_credit_note or receipt.sent_at is not None:
        db.session.rollback()
        return
    if not cfg.get("SMTP_HOST"):
        db.session.rollback()
        _say_disabled()
        return
    settings = current_app.extensions.get("receipt_mail") or {}
    recipient_for = settings.get("recipient_for")
    to = recipient_for(receipt) if recipient_for else None
    if not to:
        db.session.rollback()
        log.debug("receipt %s: no e-mail address given", receipt.display_number)
        return
    message = receipt_message(receipt, to)
    number = receipt.display_number

    claimed = rows_changed(
        update(Receipt)
        .where(Receipt.pk == receipt_pk, Receipt.sent_at.is_(None))
        .values(sent_at=now_utc())
    )
    db.session.commit()
    if not claimed:
        return  # another attempt sent it meanwhile
    try:
        _send(message)
    except (smtplib.SMTPException, OSError) as exc:
        db.session.execute(
            update(Receipt).where(Receipt.pk == receipt_pk).values(sent_at=None)
        )
        db.session.commit()
        if _permanent(exc):
            log.error("receipt %s not e-mailed to %s: the SMTP server refused it (%s); "
                      "not retried", number, to, exc)
        elif attempt >= MAX_ATTEMPTS:
            log.error("receipt %s not e-mailed to %s after %d attempts: %s",
                      number, to, attempt, exc)
        else:
            delay = min(60 * 2 ** (attempt - 1), 3600)
            log.warning("receipt %s: e-mail attempt %d failed (%s); trying again in %d s",
                        number, attempt, exc, delay)
            send_receipt_email.enqueue(receipt_pk, attempt + 1, delay=delay)
        return
    log.info("receipt %s e-mailed to %s", number, to)


def receipt_message(receipt: Receipt, to: str) -> EmailMessage:
    """The e-mail: plain text and HTML alternatives, the PDF attached, in the receipt's
    language."""
    cfg = current_app.config
    doc = build(receipt, receipt.language)
    t = texts(doc.language)
    link = f"{cfg['PUBLIC_BASE_URL'].rstrip('/')}/r/{receipt.public_token}"
    subject = t.gettext("Receipt %(number)s – charging with %(seller)s", number=doc.number,
                        seller=doc.seller_name)
    intro = t.gettext("Thank you for charging! Here is your receipt. It is also attached as a "
                      "PDF and on the web:")

    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = cfg["MAIL_FROM"]
    message["To"] = to
    message["Date"] = formatdate(usegmt=True)
    message["Message-ID"] = make_msgid(domain=_domain(cfg["MAIL_FROM"]))
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(f"{intro}\n{link}\n\n{plain_text(doc)}")
    message.add_alternative(
        render_in(doc.language, "email/receipt.html", doc=doc, intro=intro, link=link),
        subtype="html",
    )
    message.add_attachment(
        render_document(doc), maintype="application", subtype="pdf",
        filename=t.gettext("receipt-%(number)s.pdf", number=doc.number),
    )
    # Last: set_content() and add_alternative() drop the Content-* headers set before them.
    message["Content-Language"] = doc.language
    return message


def _send(message: EmailMessage) -> None:
    cfg = current_app.config
    with smtplib.SMTP(cfg["SMTP_HOST"], int(cfg["SMTP_PORT"]),
                      timeout=SMTP_TIMEOUT_SECONDS) as smtp:
        if cfg.get("SMTP_STARTTLS"):
            smtp.starttls(context=ssl.create_default_context())
        if cfg.get("SMTP_USERNAME"):
            smtp.login(cfg["SMTP_USERNAME"], cfg.get("SMTP_PASSWORD") or "")
        smtp.send_message(message)


def _permanent(exc: Exception) -> bool:
    """A 5xx answer: the server will not take this message, whenever we try."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in exc.recipients.values()]
        return bool(codes) and all(500 <= code < 600 for code in codes)
    if isinstance(exc, smtplib.SMTPResponseException):
        return 500 <= exc.smtp_code < 600
    return False


def _domain(mail_from: str) -> str | None:
    addresses = getaddresses([mail_from])
    if addresses and "@" in addresses[0][1]:
        try:
            return Address(addr_spec=addresses[0][1]).domain or None
        except (ValueError, IndexError):
            return None
    return None
