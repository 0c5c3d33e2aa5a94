"""The simulated CPO's registration with one eMSP: tokens A, B and C, the credentials
exchange (POST, PUT, DELETE) and the eMSP's endpoints of the version it registered at.
"""

from __future__ import annotations

import hmac
import secrets
from typing import Any

from cpo_simulator.dialect import Dialect
from cpo_simulator.model import PeerCredentials
from cpo_simulator.pushing import Pushing
from cpo_simulator.records import BUSINESS_NAME, Peer
from ocpi.transport import OcpiError, StatusCode

_REGISTRATION_STATE = {
    False: "Already registered: use PUT to update or DELETE to unregister",
    True: "Not registered: use POST to register",
}


class Registration(Pushing):
    """Credentials, both ways."""

    def authenticate(self, candidates: list[str]) -> str | None:
        """'peer' for token C, 'token_a' for token A while unregistered, else None."""
        with self._lock:
            if self._peer is not None:
                expected, who = self._peer.token_c, "peer"
            else:
                # Token A is thrown away once registered and valid again after DELETE.
                expected, who = self.settings.token_a, "token_a"
        for candidate in candidates:
            if hmac.compare_digest(candidate.encode(), expected.encode()):
                return who
        return None

    def own_credentials(self, versions_url: str, dialect: Dialect) -> dict[str, Any]:
        with self._lock:
            token = self._peer.token_c if self._peer else self.settings.token_a
        return dialect.credentials(
            token, versions_url, self.settings.country_code, self.settings.party_id,
            BUSINESS_NAME,
        )

    def register(
        self, body: Any, versions_url: str, dialect: Dialect, *, update: bool
    ) -> dict[str, Any]:
        """POST (update=False) or PUT (update=True) of the eMSP's credentials at `dialect`'s
        credentials endpoint: fetch its endpoints of that version with its token B, then
        answer our credentials with a new token C. From then on we speak that version."""
        credentials = dialect.parse_credentials(body)
        with self._lock:
            if (self._peer is not None) != update:
                raise OcpiError(StatusCode.CLIENT_ERROR, _REGISTRATION_STATE[update], 405)
        endpoints = self._fetch_peer_endpoints(credentials.url, credentials.token, dialect)
        token_c = secrets.token_urlsafe(32)
        with self._lock:
            # A concurrent POST/DELETE may have won while we were fetching.
            if (self._peer is not None) != update:
                raise OcpiError(StatusCode.CLIENT_ERROR, _REGISTRATION_STATE[update], 405)
            self._peer = Peer(
                token_b=credentials.token,
                token_c=token_c,
                versions_url=credentials.url,
                endpoints=endpoints,
                country_code=credentials.country_code,
                party_id=credentials.party_id,
                dialect=dialect,
            )
        self._save()
        return self.own_credentials(versions_url, dialect)

    def unregister(self) -> None:
        with self._lock:
            if self._peer is None:
                raise OcpiError(StatusCode.CLIENT_ERROR, _REGISTRATION_STATE[True], 405)
            self._peer = None
        self._save()

    def peer_credentials(self) -> PeerCredentials | None:
        """The registered eMSP as the simulator knows it: the token the simulator calls it
        with (token B), its versions URL and party; None while unregistered. Lets the host of
        a persistent simulator check the registration still matches the eMSP's side."""
        with self._lock:
            peer = self._peer
            if peer is None:
                return None
            return PeerCredentials(peer.token_b, peer.versions_url, peer.country_code,
                                   peer.party_id)

    def _fetch_peer_endpoints(
        self, versions_url: str, token_b: str, dialect: Dialect
    ) -> dict[tuple[str, str], str]:
        versions = self._fetch_data(versions_url, token_b, dialect)
        version_url = dialect.pick_version(versions)
        if version_url is None:
            raise OcpiError(
                StatusCode.UNSUPPORTED_VERSION,
                f"The eMSP at {versions_url} offers no OCPI {dialect.version}",
            )
        details = self._fetch_data(version_url, token_b, dialect)
        try:
            endpoints = dialect.parse_version_details(details)
        except (OcpiError, ValueError) as exc:
            message = getattr(exc, "message", str(exc))
            raise OcpiError(
                StatusCode.UNABLE_TO_USE_CLIENT_API,
                f"Unusable version details at {version_url}: {message}",
            ) from exc
        missing = [f"{i} {r}".rstrip() for i, r in dialect.required_peer_endpoints
                   if (i, r) not in endpoints]
        if missing:
            raise OcpiError(
                StatusCode.NO_MATCHING_ENDPOINTS,
                "The eMSP lacks endpoints this CPO needs: " + ", ".join(missing),
            )
        return endpoints

    def _fetch_data(self, url: str, token: str, dialect: Dialect) -> Any:
        reply = self._send("GET", url, "versions", token=token, routing=False, dialect=dialect)
        body = reply.body if reply else None
        if (
            reply is None
            or reply.http_status != 200
            or not isinstance(body, dict)
            or body.get("status_code") != StatusCode.SUCCESS
        ):
            why = "no answer" if reply is None else f"HTTP {reply.http_status}"
            if isinstance(body, dict) and "status_code" in body:
                why += f", OCPI status {body.get('status_code')}"
            raise OcpiError(StatusCode.UNABLE_TO_USE_CLIENT_API, f"GET {url} failed: {why}")
        return body.get("data")
