"""The charge's link e-mailed to the driver once charging has started ("follow or stop it
here"), when the driver gave an address: the link is the driver's only handle on the
charge, and a phone's browser may lose the page.

timeline.move() enqueues `charging.mail_charge_link` after the commit that brings a charge
into CHARGING (every way there: the CommandResult, a Session, a late Session, a CDR). The
task sends once per charge: it claims charges.link_mailed_at (UPDATE ... WHERE IS NULL)
before talking to the SMTP server, gives the claim back when the server refuses, and on a
temporary failure tries again through the queue with backoff (MAX_ATTEMPTS in all). Without
SMTP_HOST nothing is sent (receipts say so in the log, payments/mail.py). The e-mail is in
the language the driver paid in, through the catalogues.
"""

from __future__ import annotations

import logging
import smtplib
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from flask import current_app
from sqlalchemy import update

from charging.models import Charge
from charging.unit_of_work import network_step, unit_of_work
from extensions import db, rows_changed
from i18n import render_in, texts
from jobs import background_task
from ocpi.transport import now_utc

# The SMTP conversation is the receipts' own: one way of sending e-mail.
from payments.mail import _domain, _permanent, _send
from trust import seller, support_contact

log = logging.getLogger(__name__)

TASK = "charging.mail_charge_link"
MAX_ATTEMPTS = 6


def mail_after_commit(charge: Charge) -> None:
    """Queue the link's e-mail once this unit of work commits, if there is one to send."""
    if charge.email and charge.link_mailed_at is None:
        mail_charge_link.enqueue_after_commit(charge.pk)


@background_task(TASK)
def mail_charge_link(charge_pk: int, attempt: int = 1) -> None:
    with unit_of_work():
        charge = db.session.get(Charge, charge_pk)
        if (charge is None or not charge.email or charge.link_mailed_at is not None
                or not current_app.config.get("SMTP_HOST")):
            return
        message = link_message(charge)
        # updated_at kept: the sweeper reads it as "last touched by the charge's own work".
        claimed = rows_changed(
            update(Charge)
            .where(Charge.pk == charge_pk, Charge.link_mailed_at.is_(None))
            .values(link_mailed_at=now_utc(), updated_at=Charge.updated_at)
        )
    if not claimed:
        return  # another attempt sent it meanwhile
    try:
        with network_step():
            _send(message)
    except (smtplib.SMTPException, OSError) as exc:
        with unit_of_work():
            db.session.execute(update(Charge).where(Charge.pk == charge_pk)
                               .values(link_mailed_at=None, updated_at=Charge.updated_at))
        if _permanent(exc) or attempt >= MAX_ATTEMPTS:
            log.error("charge %s: link not e-mailed (attempt %d): %s", charge_pk, attempt, exc)
        else:
            delay = min(60 * 2 ** (attempt - 1), 3600)
            log.warning("charge %s: link e-mail attempt %d failed (%s); again in %d s",
                        charge_pk, attempt, exc, delay)
            mail_charge_link.enqueue(charge_pk, attempt + 1, delay=delay)
        return
    log.info("charge %s: link e-mailed", charge_pk)


def link_message(charge: Charge) -> EmailMessage:
    """The e-mail, plain text and HTML, in the charge's language."""
    cfg = current_app.config
    language = charge.language
    t = texts(language)
    link = f"{cfg['PUBLIC_BASE_URL'].rstrip('/')}/charge/{charge.public_id}"
    s = seller()
    words = {
        "subject": t.gettext("Your charge has started – follow or stop it here"),
        "intro": t.gettext("Charging has started at charger %(evse)s. Follow it, or stop it, "
                           "on this page:", evse=charge.evse_id),
        "keep": t.gettext("Keep this e-mail: the link is the only way to your charge. The "
                          "receipt follows when charging is done."),
        "seller": t.gettext("Sold by %(name)s, org. no. %(number)s", name=s.name,
                            number=s.org_number),
        "help": t.gettext("Help: %(contact)s", contact=support_contact(language)),
    }
    message = EmailMessage()
    message["Subject"] = words["subject"]
    message["From"] = cfg["MAIL_FROM"]
    message["To"] = charge.email
    message["Date"] = formatdate(usegmt=True)
    message["Message-ID"] = make_msgid(domain=_domain(cfg["MAIL_FROM"]))
    message["Auto-Submitted"] = "auto-generated"
    message["Content-Language"] = t.language
    message.set_content(f"{words['intro']}\n{link}\n\n{words['keep']}\n\n"
                        f"--\n{words['seller']}\n{words['help']}\n")
    message.add_alternative(
        render_in(t.language, "email/charge_link.html", words=words, link=link),
        subtype="html")
    return message
