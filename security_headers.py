"""Security headers on every response ScanCharge sends.

Pages may run only ScanCharge's own scripts and Stripe.js, may be framed by nobody (the stop
button and the dashboard must not be clickjacked), and pages whose URL holds a driver's
credential (a charge id, a receipt link) send no Referer at all. Machine answers (the JSON
API, OCPI, PDFs, images) get a policy that lets them load nothing, and nosniff so a browser
never reads one as a page.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Flask, Response, request

# What Stripe.js needs besides its own script (Stripe's CSP guidance): its frames (the
# Payment Element, 3-D Secure) from js.stripe.com and hooks.stripe.com, its API calls to
# api.stripe.com. *.js.stripe.com: Stripe serves parts of Stripe.js from subdomains.
STRIPE_SCRIPT = ("https://js.stripe.com", "https://*.js.stripe.com")
STRIPE_FRAMES = ("https://js.stripe.com", "https://*.js.stripe.com", "https://hooks.stripe.com")
STRIPE_CONNECT = ("https://api.stripe.com",)

# Paths whose URL is a driver's credential: the charge page and the receipt (and its PDF).
CREDENTIAL_PATHS = ("/charge/", "/r/")

# For everything that is not a page: load nothing, be framed by nobody.
MACHINE_POLICY = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"


def origin_of(url: str) -> str | None:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else None


def page_policy(stripe_js_url: str) -> str:
    """The pages' Content-Security-Policy: no inline script or style, no plugins, no framing.

    STRIPE_JS_URL's origin is admitted beside Stripe's own, so a Stripe.js served from
    elsewhere (a test stand-in, a mirror) keeps working; JSON data blocks
    (<script type="application/json">) are not scripts and need nothing."""
    own = origin_of(stripe_js_url)
    extra = (own,) if own and own not in STRIPE_SCRIPT else ()
    directives = {
        "default-src": ("'self'",),
        "script-src": ("'self'", *STRIPE_SCRIPT, *extra),
        "style-src": ("'self'",),
        "img-src": ("'self'", "data:"),
        "font-src": ("'self'",),
        "connect-src": ("'self'", *STRIPE_CONNECT, *extra),
        "frame-src": (*STRIPE_FRAMES, *extra),
        "object-src": ("'none'",),
        "base-uri": ("'self'",),
        "form-action": ("'self'",),
        "frame-ancestors": ("'none'",),
    }
    return "; ".join(f"{name} {' '.join(values)}" for name, values in directives.items())


def init_security_headers(app: Flask) -> None:
    policy = page_policy(app.config["STRIPE_JS_URL"])
    production = app.config["ENV"] == "production"

    @app.after_request
    def _security_headers(response: Response) -> Response:
        headers = response.headers
        headers["X-Content-Type-Options"] = "nosniff"
        headers["X-Frame-Options"] = "DENY"  # for browsers without frame-ancestors
        if response.mimetype == "text/html":
            headers["Content-Security-Policy"] = policy
        elif response.mimetype == "application/pdf":
            # The browser's PDF viewer runs inside the document: only keep it unframed.
            headers["Content-Security-Policy"] = "frame-ancestors 'none'"
        else:
            headers["Content-Security-Policy"] = MACHINE_POLICY
        # The charge id and receipt token are the driver's credential: with no-referrer the
        # page's URL reaches no one, not even our own logs through its assets' requests.
        # Elsewhere other sites get our origin only.
        credential = request.path.startswith(CREDENTIAL_PATHS)
        headers["Referrer-Policy"] = (
            "no-referrer" if credential else "strict-origin-when-cross-origin"
        )
        if production:
            # Only where HTTPS is certain. No includeSubDomains: the operator's other hosts
            # under the same domain are not ours to promise.
            headers["Strict-Transport-Security"] = "max-age=31536000"
        return response
