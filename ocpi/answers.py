"""What the protocol edge asks the domain and waits for, as callables handed in at start-up.

The edge announces what it stored through signals (ocpi.signals) and never waits for a
receiver. A CPO's real-time Token authorisation is different: the answer goes back in the
same response, and only the domain knows whether the charge the Token belongs to may
charge. So the domain's answer is injected (wiring.answers calls init_app) and the edge
calls it: one answerer, typed, required. An app without it refuses to register the /ocpi
blueprint (ocpi.endpoints.blueprint), so a missing answerer fails at start-up.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, NotRequired, Protocol, TypedDict

from flask import Flask, current_app
from flask.sansio.app import App

# mod_tokens AllowedType.
Allowed = Literal["ALLOWED", "BLOCKED", "EXPIRED", "NO_CREDIT", "NOT_ALLOWED"]


class TokenAuthorization(TypedDict):
    """The domain's answer about one Token: AllowedType and, when ALLOWED, the
    authorization_reference and the EVSEs it is allowed at."""

    allowed: Allowed
    authorization_reference: NotRequired[str | None]
    evse_uids: NotRequired[list[str]]


class AuthorizeToken(Protocol):
    """Real-time authorisation of a Token ScanCharge issued (POST tokens/{uid}/authorize).

    `location` is the LocationReferences the CPO sent ({"location_id", "evse_uids"?}) or
    None; `party_pk`, `country_code` and `party_id` say which connection asks, for which
    CPO. None: the domain knows no charge for the Token, and its own validity decides.
    Reads only.
    """

    def __call__(
        self,
        token_uid: str,
        location: dict[str, Any] | None,
        party_pk: int | None = None,
        country_code: str | None = None,
        party_id: str | None = None,
    ) -> TokenAuthorization | None: ...


@dataclass(frozen=True)
class Answers:
    authorize_token: AuthorizeToken


_KEY = "ocpi.answers"


def init_app(app: Flask, *, authorize_token: AuthorizeToken) -> None:
    """Give `app`'s OCPI edge the domain's answers; before the /ocpi blueprint registers."""
    app.extensions[_KEY] = Answers(authorize_token=authorize_token)


def of(app: App) -> Answers:
    """`app`'s answers, or a RuntimeError naming what is missing."""
    found = app.extensions.get(_KEY)
    if not isinstance(found, Answers):
        raise RuntimeError(
            "the OCPI edge has no answerer for real-time Token authorisation: call "
            "ocpi.answers.init_app(app, authorize_token=...) (wiring.answers) before "
            "registering the /ocpi blueprint"
        )
    return found


def current() -> Answers:
    """The answers of the app serving this request."""
    return of(current_app)
