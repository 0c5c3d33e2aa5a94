"""ScanCharge's HTTP client toward CPOs: every request carries the credentials token, a new
X-Request-ID, an X-Correlation-ID and, for functional modules, the routing headers."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from typing import Any

import requests
from flask import current_app

from ocpi import messages
from ocpi.models import Party, dump_json
from ocpi.outgoing import Answer, OutgoingFailure, fetch, parse_allow_list
from ocpi.transport import (
    OcpiError,
    StatusCode,
    authorization_header,
    new_request_id,
    next_link,
    routing_headers,
    unwrap,
)

log = logging.getLogger(__name__)

CONFIGURATION_MODULES = {"versions", "credentials", "hubclientinfo"}


class PeerUnreachable(OcpiError):
    """The CPO could not be reached, or answered something that is not OCPI.

    `sent_unanswered`: the request was sent and no answer came (a timeout, a dropped
    connection): unlike a CPO that could not be reached, it may be acting on it.
    """

    def __init__(self, message: str, *, sent_unanswered: bool = False) -> None:
        super().__init__(StatusCode.UNABLE_TO_USE_CLIENT_API, message)
        self.sent_unanswered = sent_unanswered


def _full_url(url: str, params: dict[str, Any] | None) -> str:
    # What requests will send, query included: the log shows the URL as the peer saw it.
    if not params:
        return url
    prepared = requests.PreparedRequest()
    try:
        prepared.prepare_url(url, params)
    except (requests.RequestException, ValueError):
        return url  # the request itself will fail and say why
    return prepared.url or url


def _not_ocpi(http_status: int, content: bytes) -> str:
    try:
        json.loads(content)
        what = "not an OCPI response (no OCPI envelope)"
    except ValueError:
        what = "not an OCPI response (not JSON)"
    return what if 200 <= http_status < 300 else f"HTTP {http_status}, {what}"


class OcpiClient:
    def __init__(
        self,
        token: str,
        version: str = "2.2.1",
        *,
        to_party: tuple[str, str] | None = None,
        timeout: float | None = None,
        party_pk: int | None = None,
    ) -> None:
        self.token = token
        self.version = version
        self.to_party = to_party
        # For the message log; without it, the party whose request is being answered.
        self.party_pk = party_pk
        self.timeout = timeout or current_app.config["OCPI_HTTP_TIMEOUT"]

    @classmethod
    def for_party(cls, party: Party, to: tuple[str, str] | None = None) -> OcpiClient:
        """A client for a connected party; `to` names the party a request is for when that
        is not the connection itself (a CPO behind a hub)."""
        if not party.outgoing_token:
            raise OcpiError(StatusCode.CLIENT_ERROR, f"party {party.name!r} is not connected")
        if to is None and party.country_code and party.party_id:
            to = (party.country_code, party.party_id)
        return cls(party.outgoing_token, party.version or "2.2.1", to_party=to,
                   party_pk=party.pk)

    def _headers(self, module: str, correlation_id: str | None) -> dict[str, str]:
        headers = {
            "Authorization": authorization_header(self.token, self.version),
            "X-Request-ID": new_request_id(),
            "X-Correlation-ID": correlation_id or new_request_id(),
            "Accept": "application/json",
        }
        if module not in CONFIGURATION_MODULES and self.to_party:
            cfg = current_app.config
            headers.update(
                routing_headers(
                    cfg["OCPI_COUNTRY_CODE"], cfg["OCPI_PARTY_ID"], *self.to_party
                )
            )
        return headers

    def request(
        self,
        method: str,
        url: str,
        *,
        module: str,
        body: Any = None,
        params: dict[str, Any] | None = None,
        correlation_id: str | None = None,
    ) -> tuple[dict[str, Any], Answer]:
        """Send one request; return the envelope and the raw answer.

        Raises PeerUnreachable when the peer cannot be reached, is refused (ocpi.outgoing),
        or does not answer with an OCPI envelope, and OcpiError when the envelope carries an
        error status code. Every outcome is recorded in the message log. The messages
        raised may reach the peer (a registration answered 3001), so they name the URL,
        the method and what failed, never what the target answered: that is in the log.
        """
        headers = self._headers(module, correlation_id)
        data = None
        if body is not None:
            headers["Content-Type"] = "application/json"
            data = dump_json(body).encode("utf-8")
        message = messages.Outgoing(
            method=method,
            url=_full_url(url, params),
            module=module,
            party_pk=self.party_pk if self.party_pk is not None else messages.current_party_pk(),
            request_id=headers["X-Request-ID"],
            correlation_id=headers["X-Correlation-ID"],
            body=body,
            data=data,
        )
        started = time.monotonic()
        try:
            answer = fetch(
                method, url, data=data, params=params, headers=headers, budget=self.timeout,
                allow=parse_allow_list(current_app.config["OCPI_ALLOWED_PRIVATE_TARGETS"]),
            )
        except OutgoingFailure as exc:
            log.warning("OCPI %s %s failed: %s", method, url, exc.detail)
            message.record(http_status=exc.http_status, content=exc.content, error=exc.detail)
            raise PeerUnreachable(f"{method} {url}: {exc.reason}",
                                  sent_unanswered=exc.sent_unanswered) from exc
        elapsed_ms = int((time.monotonic() - started) * 1000)
        try:
            payload = unwrap(answer.content)
        except OcpiError as exc:
            message.record(http_status=answer.status_code, content=answer.content,
                           error=f"not an OCPI answer: {exc.message}")
            raise PeerUnreachable(
                f"{method} {url}: {_not_ocpi(answer.status_code, answer.content)}"
            ) from exc
        status = payload.get("status_code")
        message.record(http_status=answer.status_code, content=answer.content,
                       ocpi_status=status)
        log.info("OCPI %s %s -> HTTP %s, %s (%d ms)", method, url, answer.status_code,
                 status, elapsed_ms)
        if not isinstance(status, int) or not 1000 <= status < 2000:
            # The peer's status_message stays in the log: it is the target's text.
            raise OcpiError(
                status if isinstance(status, int) else StatusCode.SERVER_ERROR,
                f"{method} {url}: the peer answered OCPI status "
                f"{status if isinstance(status, int) else '(none valid)'} "
                f"(HTTP {answer.status_code})",
                http_status=answer.status_code,
            )
        return payload, answer

    def get(self, url: str, *, module: str, **kw: Any) -> Any:
        payload, _ = self.request("GET", url, module=module, **kw)
        return payload.get("data")

    def get_all(
        self, url: str, *, module: str, params: dict[str, Any] | None = None
    ) -> Iterator[dict[str, Any]]:
        """Every object of a paginated list, following Link rel="next" to the end."""
        next_url: str | None = url
        next_params = params
        pages = 0
        while next_url:
            payload, response = self.request("GET", next_url, module=module, params=next_params)
            data = payload.get("data") or []
            if not isinstance(data, list):
                raise PeerUnreachable(f"GET {next_url}: expected a list of objects")
            yield from data
            next_url = next_link(response.headers.get("Link"))
            next_params = None  # the Link carries the filters
            pages += 1
            if pages > 10_000:  # a peer whose Link never ends must not hang a worker
                raise PeerUnreachable(f"GET {url}: more than 10000 pages")
