"""Who sells and where to get help, as the driver's pages show it: the seller's name and
organisation number (the receipts' SELLER_* settings), the support phone and e-mail, and the
terms and privacy links (TERMS_URL, PRIVACY_URL, else the shipped /terms and /privacy).

Read from the configuration at each use, so a page, an e-mail or an error text in a task
say the same; the footer of every driver page (templates/driver/_footer.html), every error
that sends the driver for help (driver/messages.py) and the charge-link e-mail
(charging/charge_link.py) use it. Beside i18n.py, below both: it names the driver's pages
by endpoint only.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app, has_app_context, has_request_context, url_for

from i18n import texts


@dataclass(frozen=True)
class Seller:
    name: str
    org_number: str
    address: str
    phone: str
    email: str
    terms_url: str
    privacy_url: str

    @property
    def phone_uri(self) -> str:
        return "tel:" + "".join(ch for ch in self.phone if ch.isdigit() or ch == "+")

    def contact(self, joiner: str) -> str:
        """'+46 8 000 00 00 or support@example.com' (`joiner` is the language's 'or')."""
        return f" {joiner} ".join(part for part in (self.phone, self.email) if part)


def seller() -> Seller:
    cfg = current_app.config if has_app_context() else {}
    return Seller(
        name=cfg.get("SELLER_NAME", ""),
        org_number=cfg.get("SELLER_ORG_NUMBER", ""),
        address=cfg.get("SELLER_ADDRESS", ""),
        phone=(cfg.get("SUPPORT_PHONE") or "").strip(),
        email=(cfg.get("SUPPORT_EMAIL") or "").strip(),
        terms_url=cfg.get("TERMS_URL") or _own("driver.terms"),
        privacy_url=cfg.get("PRIVACY_URL") or _own("driver.privacy"),
    )


def _own(endpoint: str) -> str:
    if has_request_context():
        return url_for(endpoint)
    base = current_app.config["PUBLIC_BASE_URL"].rstrip("/") if has_app_context() else ""
    return base + "/" + endpoint.split(".")[-1]


def support_contact(language: str) -> str:
    """'+46 8 000 00 00 or support@example.com', in the language."""
    return seller().contact(texts(language).gettext("or"))
