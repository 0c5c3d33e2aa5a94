"""What the operator's browser tests share: a served ScanCharge with an admin and a CPO
party, a signed-in page, and screenshots for docs/operators.md.

Screenshots are written to docs/img/operators/ when SCANCHARGE_SCREENSHOTS=1 (`make
screenshots`), else to a temporary folder, so an ordinary test run leaves the tree clean.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from dashboard.models import set_operator
from extensions import db
from ocpi.models import Party, PartyGrant

ADMIN, PASSWORD = "admin@example.com", "correct horse battery"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
DOCS_IMAGES = Path(__file__).resolve().parents[2] / "docs" / "img" / "operators"


def screenshot_dir() -> Path:
    if os.environ.get("SCANCHARGE_SCREENSHOTS") == "1":
        DOCS_IMAGES.mkdir(parents=True, exist_ok=True)
        return DOCS_IMAGES
    folder = Path(tempfile.gettempdir()) / "scancharge-screenshots"
    folder.mkdir(exist_ok=True)
    return folder


def screenshot(page: Any, name: str) -> Path:
    """A full-page PNG named for the task it shows (docs/operators.md links to it)."""
    path = screenshot_dir() / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def add_cpo(name: str = "Sim CPO", party_id: str = "SIM") -> Party:
    party = Party(name=name, status="CONNECTED", country_code="SE", party_id=party_id,
                  grants=[PartyGrant(role="CPO", country_code="SE", party_id=party_id)])
    db.session.add(party)
    db.session.flush()
    return party


@pytest.fixture
def operator_site(make_app: Callable[..., Any]) -> Iterator[tuple[Any, str]]:
    """(app, base URL): ScanCharge over HTTP with the admin ADMIN/PASSWORD. Put what a test
    needs into the database with `with app.app_context():` before opening pages."""
    app = make_app(LOGIN_LOCKOUT_ATTEMPTS=3)
    with served(app) as base:
        yield app, base


@contextmanager
def served(app: Any, prepare: Callable[[], object] = lambda: None) -> Iterator[str]:
    """`app` over HTTP (its base URL), the admin ADMIN/PASSWORD and what `prepare()` adds
    stored first; the engine is disposed afterwards so no connection outlives the test."""
    from servers import ServerThread

    with app.app_context():
        set_operator(ADMIN, PASSWORD)
        prepare()
        db.session.commit()
        db.session.remove()
    with ServerThread(app) as server:
        yield server.url
    with app.app_context():
        db.engine.dispose()


def new_page(browser: Any, viewport: dict[str, int] | None = None,
             locale: str = "en-GB") -> Any:
    page = browser.new_context(viewport=viewport or DESKTOP, locale=locale).new_page()
    page.set_default_timeout(10_000)
    return page


def sign_in(page: Any, base: str, email: str = ADMIN, password: str = PASSWORD) -> None:
    page.goto(f"{base}/dashboard/login?lang=en")
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def signed_in(browser: Any, base: str, email: str = ADMIN, password: str = PASSWORD,
              viewport: dict[str, int] | None = None) -> Any:
    page = new_page(browser, viewport)
    sign_in(page, base, email, password)
    return page
