"""Bad input stops at the door: one before_request hook for every non-OCPI route.

PostgreSQL refuses a NUL byte in any text value, so `/c/%00` used to reach the database
and come back as a 500; other control characters have no business in an id or a query
argument either. The hook answers 400 with a message (JSON under /api and /payments, a page
otherwise) before any view runs, for the path, every query argument, form fields and
strings inside a JSON body. Ids longer than any real one answer 404 here as well, so no
view ever compares them with a column.

OCPI (/ocpi) is left alone: CPOs get the OCPI envelope and status codes from its own
blueprint, which validates what they send.

Views that read a JSON body use json_object() for the shape ("must be an object"), and
raise BadInput for a field of the wrong type; both end up in the same 400 answer.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from flask import Flask, Response, abort, current_app, jsonify, request
from werkzeug.exceptions import BadRequest

# C0 controls and DEL: never part of an id, a token, a language or a page number.
PATH_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# In submitted text (a refund reason, an e-mail) a tab or newline is fine; NUL and the
# other C0 controls are not, and NUL is what PostgreSQL cannot store.
TEXT_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")

# The longest value each URL argument can really have. An EVSE ID is at most 48
# characters in OCPI (with separators); charge ids are 22, receipt tokens 32.
MAX_ARG_LENGTH: dict[str, int] = {"evse_id": 64, "public_id": 64, "token": 64}
DEFAULT_MAX_ARG_LENGTH = 255
# Deeper than any body ScanCharge accepts; bounds the walk below, not json.loads.
MAX_JSON_DEPTH = 32

# Paths whose body is someone else's bytes: the Stripe webhook must be verified as sent.
RAW_BODY_PATHS = ("/payments/stripe/webhook",)


class BadInput(BadRequest):
    """A 400 with a message saying what is wrong; rendered for the route's audience."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def init_input_guard(app: Flask, *, error_text: Callable[[str, str], str]) -> None:
    """`error_text(code, language)`: the driver's words for an error code, which the JSON
    API answers with (passed in: the driver's pages import this module, not the reverse)."""
    app.extensions["input_guard.error_text"] = error_text
    app.before_request(_check_request)
    app.register_error_handler(BadInput, _bad_input)


def _is_ocpi(path: str) -> bool:
    return path == "/ocpi" or path.startswith("/ocpi/")


def _check_request() -> None:
    path = request.path
    if _is_ocpi(path):
        return
    if PATH_CONTROL.search(path):
        raise BadInput("The address contains a control character (such as a NUL byte); "
                       "remove it and try again.")
    for key, values in request.args.lists():
        for text in (key, *values):
            if PATH_CONTROL.search(text):
                raise BadInput(f"The query argument {_shown(key)} contains a control "
                               "character (such as a NUL byte).")
    for name, value in (request.view_args or {}).items():
        limit = MAX_ARG_LENGTH.get(name, DEFAULT_MAX_ARG_LENGTH)
        if isinstance(value, str) and len(value) > limit:
            abort(404)  # no real id is this long: nothing to find, nothing to look up
    if request.method in ("GET", "HEAD", "OPTIONS") or path.startswith(RAW_BODY_PATHS):
        return
    if request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data"):
        for key, values in request.form.lists():
            for text in (key, *values):
                if TEXT_CONTROL.search(text):
                    raise BadInput(f"The field {_shown(key)} contains a control character "
                                   "(such as a NUL byte).")
    elif request.get_data(cache=True):
        body = _parsed_json()
        if body is not None:
            _check_json_strings(body)


def _parsed_json() -> Any:
    """The body as JSON, or None when it is not JSON (the view decides if that is wrong)."""
    try:
        return json.loads(request.get_data(cache=True))
    except (ValueError, RecursionError):
        return None


def _check_json_strings(body: Any) -> None:
    """Every key and string in the body, without recursion (a body may nest deeply)."""
    pending: list[tuple[Any, int]] = [(body, 0)]
    while pending:
        value, depth = pending.pop()
        if depth > MAX_JSON_DEPTH:
            raise BadInput(f"The JSON body nests deeper than {MAX_JSON_DEPTH} levels.")
        if isinstance(value, str):
            if TEXT_CONTROL.search(value):
                raise BadInput("The JSON body contains a control character (such as a NUL "
                               "byte) in a string.")
        elif isinstance(value, dict):
            pending.extend((item, depth + 1) for pair in value.items() for item in pair)
        elif isinstance(value, list):
            pending.extend((item, depth + 1) for item in value)


def json_object() -> dict[str, Any]:
    """The request's JSON body when it is an object; BadInput saying what it is otherwise."""
    data = request.get_data(cache=True)
    if not data.strip():
        raise BadInput("A JSON object body is required (Content-Type: application/json).")
    body = _parsed_json()
    if body is None and data.strip() != b"null":
        raise BadInput("The body is not valid JSON.")
    if not isinstance(body, dict):
        raise BadInput(f"The JSON body must be an object ({{...}}), not {_kind(body)}.")
    return body


def optional_string(body: dict[str, Any], field: str, max_length: int = 255) -> str | None:
    """body[field] when absent, null or a string of at most max_length; BadInput otherwise."""
    value = body.get(field)
    if value is None:
        return None
    if not isinstance(value, str):
        raise BadInput(f"{field} must be a string, not {_kind(value)}.")
    if len(value) > max_length:
        raise BadInput(f"{field} is longer than {max_length} characters.")
    return value


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _shown(key: str) -> str:
    return repr(PATH_CONTROL.sub("?", key)[:40])


def _bad_input(exc: BadInput) -> tuple[Response, int] | tuple[str, int]:
    """The same 400 for every audience's way of reading errors."""
    path = request.path
    if path.startswith("/api/"):
        from i18n import pick_language

        error_text = current_app.extensions["input_guard.error_text"]
        return jsonify(error={"code": "invalid_request",
                              "message": error_text("invalid_request", pick_language()),
                              "detail": exc.message}), 400
    if path.startswith("/payments/"):
        return jsonify(error=exc.message), 400
    from i18n import pick_language, render_in

    return render_in(pick_language(), "error.html", message=exc.message), 400
