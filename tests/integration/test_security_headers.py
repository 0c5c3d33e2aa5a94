"""Security headers on every kind of response (security_headers.py), JSON errors under /api
and /payments, no inline script or style in any template, and the charger page in a real
Chromium under its Content-Security-Policy."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT, LiveStack
from test_rate_limits import seed_chargers

from extensions import db

STRIPE_ORIGINS = ("https://js.stripe.com", "https://hooks.stripe.com", "https://api.stripe.com")


def csp_of(response: Any) -> dict[str, list[str]]:
    policy = response.headers["Content-Security-Policy"]
    directives = [part.split() for part in policy.split(";") if part.strip()]
    return {words[0]: words[1:] for words in directives}


def assert_page_headers(response: Any, referrer: str = "strict-origin-when-cross-origin") -> None:
    assert response.mimetype == "text/html"
    csp = csp_of(response)
    assert csp["default-src"] == ["'self'"]
    assert csp["script-src"][0] == "'self'"
    assert "https://js.stripe.com" in csp["script-src"]
    assert set(csp["frame-src"]) >= {"https://js.stripe.com", "https://hooks.stripe.com"}
    assert "https://api.stripe.com" in csp["connect-src"]
    assert csp["frame-ancestors"] == ["'none'"]
    assert csp["object-src"] == ["'none'"]
    assert csp["style-src"] == ["'self'"]
    policy = response.headers["Content-Security-Policy"]
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
    # Nothing admitted beyond ScanCharge and Stripe.
    for values in csp.values():
        for value in values:
            assert value.startswith(("'", "data:")) or value in (
                *STRIPE_ORIGINS, "https://*.js.stripe.com"), value
    assert_common_headers(response, referrer)


def assert_common_headers(response: Any, referrer: str = "strict-origin-when-cross-origin"
                          ) -> None:
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Referrer-Policy"] == referrer
    assert "Strict-Transport-Security" not in response.headers  # development


def assert_machine_headers(response: Any) -> None:
    csp = csp_of(response)
    assert csp["default-src"] == ["'none'"]
    assert csp["frame-ancestors"] == ["'none'"]
    assert_common_headers(response)


@pytest.fixture
def seeded(app: Any) -> Any:
    seed_chargers()
    return app


def test_driver_pages(seeded: Any) -> None:
    client = seeded.test_client()
    charger = client.get("/c/SE*SIM*E00001")
    assert charger.status_code == 200
    assert_page_headers(charger)
    created = client.post("/api/v1/charges", json={"evse_id": "SE*SIM*E00001"})
    assert_machine_headers(created)
    charge = client.get(f"/charge/{created.json['id']}")
    assert charge.status_code == 200
    # The charge id in the URL is the driver's credential: no Referer leaves this page.
    assert_page_headers(charge, referrer="no-referrer")
    assert_machine_headers(client.get(f"/api/v1/charges/{created.json['id']}"))
    assert_machine_headers(client.get("/api/v1/chargers/SE*SIM*E00001"))
    assert_machine_headers(client.post("/payments/demo/confirm", json={}))


def test_receipt_page_and_pdf(app: Any) -> None:
    from charge_factory import captured_charge

    from payments.models import Receipt

    charge = captured_charge()
    token = db.session.get(Receipt, charge.receipt_pk).public_token
    client = app.test_client()
    page = client.get(f"/r/{token}")
    assert page.status_code == 200
    assert_page_headers(page, referrer="no-referrer")
    pdf = client.get(f"/r/{token}.pdf")
    assert pdf.mimetype == "application/pdf"
    assert pdf.headers["Content-Security-Policy"] == "frame-ancestors 'none'"
    assert pdf.headers["X-Content-Type-Options"] == "nosniff"
    assert pdf.headers["Referrer-Policy"] == "no-referrer"


def test_dashboard_pages(app: Any) -> None:
    from test_dashboard import sign_in

    from dashboard.models import set_operator

    client = app.test_client()
    assert_page_headers(client.get("/dashboard/login"))
    redirect = client.get("/dashboard/")
    assert redirect.status_code == 302
    assert redirect.headers["X-Frame-Options"] == "DENY"
    set_operator("ops@example.com", "correct horse")
    assert sign_in(client, "ops@example.com", "correct horse").status_code == 302
    for path in ("/dashboard/", "/dashboard/chargers", "/dashboard/cpos",
                 "/dashboard/unmatched"):
        response = client.get(path)
        assert response.status_code == 200, path
        assert_page_headers(response)
    qr = client.get("/dashboard/qr/SE*SIM*E00001.svg")
    assert qr.headers["X-Content-Type-Options"] == "nosniff"
    assert csp_of(qr)["default-src"] == ["'none'"]


def test_ocpi_answers_are_never_sniffed(client: Any) -> None:
    for response in (client.get("/ocpi/versions"), client.get("/ocpi/nowhere"),
                     client.get("/ocpi/versions", headers={"Authorization": "Token nope"})):
        assert response.is_json
        assert response.json["status_code"] >= 2000
        assert_machine_headers(response)


def test_favicon(client: Any) -> None:
    icon = client.get("/favicon.ico")
    assert icon.status_code == 200
    assert icon.mimetype == "image/svg+xml"
    assert b"<svg" in icon.data and b"<script" not in icon.data
    assert icon.headers["X-Content-Type-Options"] == "nosniff"
    assert client.get("/static/favicon.svg").status_code == 200
    assert 'rel="icon"' in client.get("/dashboard/login").get_data(as_text=True)


OWN_SELLER = {"SELLER_NAME": "Laddbolaget AB", "SELLER_ORG_NUMBER": "556677-8899",
              "SELLER_VAT_NUMBER": "SE556677889901", "SELLER_ADDRESS": "Kyrkogatan 2, Umeå",
              "SUPPORT_PHONE": "+46 90 12 34 56", "SUPPORT_EMAIL": "hjalp@laddbolaget.se"}


def test_hsts_only_in_production(make_app: Callable[..., Any]) -> None:
    # A configuration production accepts (production.py refuses anything less).
    app = make_app(ENV="production", SECRET_KEY="kQ8v-Zr2Lx7pN4mWc9Ty1Hb6Jd3Fs5Ge0Ua",
                   STRIPE_SECRET_KEY="sk_live_x", STRIPE_PUBLISHABLE_KEY="pk_live_x",
                   STRIPE_WEBHOOK_SECRET="whsec_x", PUBLIC_BASE_URL="https://pay.example.com",
                   OCPI_ALLOWED_PRIVATE_TARGETS="", **OWN_SELLER)
    with app.app_context():
        for path in ("/dashboard/login", "/api/v1/charges/nope", "/ocpi/versions"):
            response = app.test_client().get(path)
            assert response.headers["Strict-Transport-Security"] == "max-age=31536000", path
        db.session.remove()
        db.engine.dispose()


def test_stripe_js_from_elsewhere_is_admitted_by_its_origin() -> None:
    from security_headers import page_policy

    policy = page_policy("http://127.0.0.1:12111/v3/")
    assert "script-src 'self' https://js.stripe.com https://*.js.stripe.com " \
           "http://127.0.0.1:12111;" in policy
    assert page_policy("https://js.stripe.com/v3/").count("https://js.stripe.com") == 2


# --- Errors: JSON under /api and /payments, whatever the status ---------------------------


@pytest.fixture
def failing_app(make_app: Callable[..., Any]) -> Iterator[Any]:
    """An app with routes that fail in each way, and 500s answered (not raised to pytest)."""
    from flask import abort, request

    app = make_app(PROPAGATE_EXCEPTIONS=False, MAX_CONTENT_LENGTH=1024)

    def bad_request() -> Any:
        request.get_data()  # a body too large is refused here, before the view's own 400
        abort(400)

    def broken() -> Any:
        raise RuntimeError("a bug")

    for prefix in ("/api/v1", "/payments", ""):
        app.add_url_rule(f"{prefix}/_test/bad", f"bad{prefix}", bad_request,
                         methods=["GET", "POST"])
        app.add_url_rule(f"{prefix}/_test/broken", f"broken{prefix}", broken)
    with app.app_context():
        yield app
        db.session.remove()
        db.engine.dispose()


@pytest.mark.parametrize("prefix", ["/api/v1", "/payments"])
def test_machine_paths_answer_every_error_in_json(failing_app: Any, prefix: str) -> None:
    client = failing_app.test_client()
    cases = [
        (client.get(f"{prefix}/_test/nowhere"), 404, "not_found"),
        (client.delete(f"{prefix}/_test/bad"), 405, "method_not_allowed"),
        (client.get(f"{prefix}/_test/bad"), 400, "invalid_request"),
        (client.get(f"{prefix}/_test/broken?lang=en"), 500, "server_error"),
        (client.post(f"{prefix}/_test/bad", data=b"x" * 2048,
                     content_type="application/json"), 413, "request_too_large"),
    ]
    for response, status, code in cases:
        assert response.status_code == status, (code, response.get_data(as_text=True)[:200])
        assert response.is_json, code
        assert response.json["error"]["code"] == code
        assert response.json["error"]["message"]
        assert_machine_headers(response)
    assert "Något gick fel" not in cases[3][0].json["error"]["message"]  # ?lang=en
    assert cases[1][0].headers["Allow"]


def test_real_endpoints_answer_413_in_json(failing_app: Any) -> None:
    client = failing_app.test_client()
    for path in ("/api/v1/charges", "/payments/demo/confirm"):
        response = client.post(path, data=b'{"evse_id": "' + b"x" * 2048 + b'"}',
                               content_type="application/json")
        assert response.status_code == 413, path
        assert response.json["error"]["code"] == "request_too_large"


def test_pages_answer_errors_with_a_page(failing_app: Any) -> None:
    client = failing_app.test_client()
    for path, status in (("/_test/nowhere", 404), ("/_test/broken", 500),
                         ("/c/NOPE*NOPE", 404)):
        response = client.get(path, headers={"Accept-Language": "en"})
        assert response.status_code == status
        assert response.mimetype == "text/html"
        assert_page_headers(response)


# --- No inline script, handler or style anywhere -----------------------------------------

INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*type=\"application/json\")[^>]*>",
                           re.I)
HANDLER = re.compile(r"<[^>]*\son[a-z]+\s*=", re.I)
STYLE = re.compile(r"<style\b|\sstyle\s*=", re.I)


def page_templates() -> list[Path]:
    # E-mail is read in mail clients, where inline style is the norm and no CSP applies.
    return [p for p in (ROOT / "templates").rglob("*.html") if "email" not in p.parts]


@pytest.mark.parametrize("template", page_templates(), ids=lambda p: p.name)
def test_templates_carry_no_inline_script_handler_or_style(template: Path) -> None:
    text = template.read_text()
    assert not INLINE_SCRIPT.search(text), INLINE_SCRIPT.search(text).group(0)
    assert not HANDLER.search(text), HANDLER.search(text).group(0)
    assert not STYLE.search(text), STYLE.search(text).group(0)


def test_rendered_pages_carry_only_data_blocks_and_our_scripts(seeded: Any) -> None:
    client = seeded.test_client()
    charge_id = client.post("/api/v1/charges", json={"evse_id": "SE*SIM*E00001"}).json["id"]
    for path in ("/c/SE*SIM*E00001", f"/charge/{charge_id}", "/dashboard/login"):
        html = client.get(path).get_data(as_text=True)
        scripts = re.findall(r"<script\b[^>]*>", html)
        for tag in scripts:
            assert 'type="application/json"' in tag or 'src="/static/' in tag, tag
        assert not HANDLER.search(html) and not STYLE.search(html), path


def test_static_javascript_uses_no_eval_or_inline_handlers() -> None:
    scripts = sorted((ROOT / "static").rglob("*.js"))
    assert ROOT / "static" / "driver" / "common.js" in scripts, scripts
    for script in scripts:
        source = script.read_text()
        for forbidden in ("eval(", "new Function", "innerHTML", ".setAttribute(\"style\"",
                          "setAttribute(\"on"):
            assert forbidden not in source, (script.name, forbidden)


# --- A real Chromium under the policy ---------------------------------------------------

CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is missing")
    sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is needed")
    from tests.e2e.test_driver_browser import CHROMIUM_ARGS

    try:
        playwright = sync_api.sync_playwright().start()
    except Exception as exc:
        pytest.skip(f"Playwright could not start: {exc}")
    try:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    except Exception as exc:
        playwright.stop()
        pytest.skip(f"Chromium at {CHROMIUM} could not be launched: {exc}")
    yield browser
    browser.close()
    playwright.stop()


REPORT_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (event) => {
  window.reportViolation(`${event.violatedDirective} ${event.blockedURI}`);
});
"""


def test_the_charger_page_runs_the_driver_scripts_under_its_policy_without_violations(
    live_stack: LiveStack, chromium: Any
) -> None:
    from playwright.sync_api import expect

    context = chromium.new_context(viewport={"width": 390, "height": 844}, locale="sv-SE")
    context.route(re.compile(r"^https?://(?!127\.0\.0\.1[:/]).*"), lambda route: route.abort())
    violations: list[str] = []
    console: list[str] = []
    context.expose_function("reportViolation", lambda text: violations.append(text))
    context.add_init_script(REPORT_VIOLATIONS)
    page = context.new_page()
    page.on("console", lambda message: console.append(message.text))
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.set_default_timeout(15_000)
    try:
        response = page.goto(f"{live_stack.base_url}/c/{live_stack.evse_id}")
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
        # The driver scripts ran: the test card buttons fill the field, paying leads to the charge.
        page.get_by_role("button", name=re.compile("4242 4242 4242 4242")).click()
        expect(page.locator("#card-number")).to_have_value("4242 4242 4242 4242")
        page.locator("#pay-button").click()
        page.wait_for_url(re.compile(r"/charge/"), timeout=30_000)
        # The charge page's script polls the API and moves the status on.
        expect(page.locator("#status-text")).not_to_have_text("Väntar på betalning",
                                                             timeout=30_000)
        page.wait_for_timeout(500)
        csp_console = [text for text in console if "Content Security Policy" in text]
        assert violations == [] and csp_console == [], (violations, csp_console)
        assert errors == []

        # The watcher does see a violation: an inline handler is refused.
        page.evaluate("""() => {
          const probe = document.createElement("div");
          probe.setAttribute("onclick", "window.inlineRan = true");
          document.body.appendChild(probe);
          probe.click();
        }""")
        page.wait_for_timeout(300)  # the report is an event, dispatched soon after
        assert page.evaluate("() => window.inlineRan === undefined")
        assert any(v.startswith("script-src") for v in violations), violations
    finally:
        context.close()
