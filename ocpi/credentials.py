"""The credentials handshake, both ways (credentials.asciidoc).

- We register with a CPO (`connect`): its versions URL and token A, given to an operator
  out of band; we send token B, it answers token C, which we use from then on.
- A CPO registers with us (`register_incoming`): it uses a token A we issued (`invite`),
  sends its token B, we answer a new token C.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterable
from typing import Any

from flask import current_app
from sqlalchemy import select

from extensions import db
from ocpi.client import OcpiClient, PeerUnreachable
from ocpi.models import Party, PartyGrant, token_hash
from ocpi.modules.common import Role, parse
from ocpi.modules.credentials import Credentials
from ocpi.modules.versions import Version, VersionDetails
from ocpi.transport import OcpiError, StatusCode

log = logging.getLogger(__name__)

# An identity the operator grants a connection: (role, country_code, party_id), role CPO or
# HUB. Written "CPO:SE*ABC" on the command line.
Identity = tuple[str, str, str]
GRANTABLE_ROLES = ("CPO", "HUB")

SUPPORTED_VERSIONS = ("2.2.1", "2.1.1")

# Modules ScanCharge implements for OCPI 2.2.1 in the eMSP role, with their interface role.
OUR_ENDPOINTS_221 = (
    ("credentials", "SENDER", "credentials"),
    ("locations", "RECEIVER", "locations"),
    ("tariffs", "RECEIVER", "tariffs"),
    ("sessions", "RECEIVER", "sessions"),
    ("cdrs", "RECEIVER", "cdrs"),
    ("commands", "SENDER", "commands"),
    ("tokens", "SENDER", "tokens"),
    # A hub tells us which of the CPOs it acts for it still serves (ocpi/hubclientinfo.py).
    ("hubclientinfo", "RECEIVER", "hubclientinfo"),
)

# What a CPO must offer for the ad-hoc flow to work at all.
REQUIRED_CPO_ENDPOINTS = (("commands", "RECEIVER"), ("locations", "SENDER"))


def new_token() -> str:
    return secrets.token_urlsafe(32)


def ocpi_base_url() -> str:
    return current_app.config["PUBLIC_BASE_URL"].rstrip("/") + "/ocpi"


def our_versions_url() -> str:
    return f"{ocpi_base_url()}/versions"


def our_credentials(token: str) -> dict[str, Any]:
    cfg = current_app.config
    return {
        "token": token,
        "url": our_versions_url(),
        "roles": [
            {
                "role": "EMSP",
                "business_details": {"name": cfg["OCPI_BUSINESS_NAME"]},
                "party_id": cfg["OCPI_PARTY_ID"],
                "country_code": cfg["OCPI_COUNTRY_CODE"],
            }
        ],
    }


def parse_identity(text: str, default_role: str = "CPO") -> Identity:
    """'CPO:SE*ABC', 'HUB:DE*HUB' or 'SE*ABC' (default_role) as an Identity."""
    role, _, rest = text.strip().rpartition(":")
    role = (role or default_role).upper()
    country_code, sep, party_id = rest.replace("/", "*").partition("*")
    if (role not in GRANTABLE_ROLES or not sep or len(country_code) != 2
            or not 1 <= len(party_id) <= 3 or not (country_code + party_id).isalnum()
            or not (country_code + party_id).isascii()):
        raise ValueError(
            f"{text!r} is not an identity: write ROLE:CC*PID, e.g. CPO:SE*ABC or HUB:DE*HUB"
        )
    return role, country_code.upper(), party_id.upper()


def grant(party: Party, identities: Iterable[Identity]) -> None:
    """Give the party these identities; refused (nothing changed) if another connection
    holds any of them. Does not commit."""
    for role, country_code, party_id in identities:
        holder = db.session.scalar(select(PartyGrant).where(
            PartyGrant.role == role, PartyGrant.country_code == country_code,
            PartyGrant.party_id == party_id))
        if holder is not None and holder.party_pk != party.pk and \
                holder.party.status == "DISCONNECTED":
            # A connection that was disconnected holds nothing: the identity moves over.
            holder.party = party
            continue
        if holder is not None and holder.party_pk != party.pk:
            raise OcpiError(
                StatusCode.INVALID_PARAMETERS,
                f"{role} {country_code}*{party_id} belongs to another connection "
                f"({holder.party.name}); an operator must disconnect it first",
                http_status=400,
            )
        if holder is None:
            party.grants.append(PartyGrant(role=role, country_code=country_code,
                                           party_id=party_id))


def invite(name: str, identities: Iterable[Identity]) -> tuple[Party, str]:
    """A new party that may register with token A as exactly `identities` (CPO roles it
    may push as, or a HUB role plus the CPOs the hub may act for); returns it and the token
    (shown once)."""
    wanted = list(identities)
    if not wanted:
        raise ValueError("an invitation names at least one identity (CPO:CC*PID or HUB:CC*PID)")
    token_a = new_token()
    party = Party(name=name, status="PENDING", incoming_token_hash=token_hash(token_a))
    db.session.add(party)
    try:
        grant(party, wanted)
        db.session.flush()
    except Exception:
        db.session.rollback()
        raise
    db.session.commit()
    return party, token_a


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


def _negotiate(
    client: OcpiClient, versions_url: str, only: str | None = None
) -> tuple[str, list[dict[str, Any]]]:
    """The highest version both support (or `only`), and the peer's endpoints for it."""
    try:
        versions = client.get(versions_url, module="versions")
    except OcpiError as exc:
        if exc.http_status != 401:
            raise
        # 2.1.1 peers (and many 2.2 ones) expect the token unencoded: try it that way.
        client.version = "2.1.1"
        versions = client.get(versions_url, module="versions")
    if not isinstance(versions, list):
        raise PeerUnreachable(f"{versions_url} did not answer a list of versions")
    offered = {}
    for item in versions:
        version = parse(Version, item)
        offered[version.version] = version.url
    common = [v for v in SUPPORTED_VERSIONS if v in offered and (only is None or v == only)]
    if not common:
        raise OcpiError(
            StatusCode.UNSUPPORTED_VERSION,
            f"no common OCPI version: peer offers {sorted(offered)}, we speak "
            f"{list(SUPPORTED_VERSIONS)}",
        )
    chosen = max(common, key=_version_key)
    details = parse(VersionDetails, client.get(offered[chosen], module="versions"))
    endpoints = [e.to_json() for e in details.endpoints]
    return chosen, endpoints


def _check_endpoints(endpoints: list[dict[str, Any]]) -> None:
    have = {(e["identifier"], e.get("role")) for e in endpoints}
    # 2.1.1 endpoints carry no role: the module is enough.
    missing = [f"{i} ({r})" for i, r in REQUIRED_CPO_ENDPOINTS
               if (i, r) not in have and (i, None) not in have]
    if missing:
        raise OcpiError(
            StatusCode.NO_MATCHING_ENDPOINTS, "CPO does not offer " + ", ".join(missing)
        )


def _declared(credentials: Credentials) -> list[Identity]:
    """The CPO and HUB roles a credentials object claims; other roles grant nothing here."""
    return [(r.role.value, r.country_code.upper(), r.party_id.upper())
            for r in credentials.roles if r.role.value in GRANTABLE_ROLES]


def _check_claims(party: Party, credentials: Credentials) -> None:
    """A registering party may claim only the identities the operator granted it."""
    granted = {(g.role, g.country_code, g.party_id) for g in party.grants}
    claimed = _declared(credentials)
    if not claimed:
        raise OcpiError(StatusCode.INVALID_PARAMETERS,
                        "credentials claim no CPO or HUB role", http_status=400)
    refused = [f"{role} {cc}*{pid}" for role, cc, pid in claimed
               if (role, cc, pid) not in granted]
    if refused:
        allowed = ", ".join(g.label for g in party.grants) or "nothing"
        raise OcpiError(
            StatusCode.INVALID_PARAMETERS,
            f"this connection may not claim {', '.join(refused)} (it was granted {allowed}); "
            "ask the eMSP's operator",
            http_status=400,
        )


def _apply_roles(party: Party, credentials: Credentials) -> None:
    roles = [role.to_json() for role in credentials.roles]
    party.roles = roles
    cpo = next((r for r in credentials.roles if r.role == Role.CPO), None)
    cpo = cpo or next((r for r in credentials.roles if r.role == Role.HUB),
                      credentials.roles[0])
    party.country_code = cpo.country_code.upper()
    party.party_id = cpo.party_id.upper()
    if not party.name or party.name.startswith("pending"):
        party.name = cpo.business_details.name


def connect(
    versions_url: str, token_a: str, name: str | None = None,
    acting_for: Iterable[Identity] = (),
) -> Party:
    """Register ScanCharge with a CPO or a hub (we are the Sender of credentials).

    The connection is granted the CPO and HUB roles the peer declares, unless another
    connection holds one (then the registration is undone and refused); a hub is also
    granted `acting_for`, the CPOs the operator allows it to act for.
    """
    acting_for = list(acting_for)
    client = OcpiClient(token_a)
    version, endpoints = _negotiate(client, versions_url)
    _check_endpoints(endpoints)
    credentials_url = next(
        (e["url"] for e in endpoints if e["identifier"] == "credentials"), None
    )
    if not credentials_url:
        raise OcpiError(StatusCode.NO_MATCHING_ENDPOINTS, "CPO offers no credentials endpoint")
    token_b = new_token()
    # The CPO calls our versions endpoint with token B while answering our POST, so token B
    # must open our configuration endpoints before we send it.
    provisional = Party(name=name or "pending", status="PENDING", versions_url=versions_url,
                        incoming_token_hash=token_hash(token_b))
    db.session.add(provisional)
    db.session.commit()
    try:
        payload, _ = OcpiClient(token_a, version, party_pk=provisional.pk).request(
            "POST", credentials_url, module="credentials",
            body=credentials_for_version(our_credentials(token_b), version),
        )
        theirs = parse_credentials(payload.get("data"), version)
    except OcpiError:
        db.session.delete(provisional)
        db.session.commit()
        raise
    party = _party_for_roles(theirs)
    if party is not None and party.status != "DISCONNECTED" and \
            party.versions_url != versions_url:
        # Another platform declaring a live connection's identity is no reconnection of it:
        # taking the party over would send that CPO's commands, and its token, to whoever
        # answered. grant() below refuses it; the operator disconnects the old one first.
        party = None
    if party is None:
        party = provisional
    else:  # a reconnection: keep the party (and its history), drop the provisional row
        db.session.delete(provisional)
        db.session.flush()
    try:
        declared = _declared(theirs)
        if not declared:
            raise OcpiError(StatusCode.INVALID_PARAMETERS,
                            "the peer's credentials claim no CPO or HUB role", http_status=400)
        hub = any(role == "HUB" for role, _, _ in declared)
        grant(party, [*declared, *(acting_for if hub else [])])
        db.session.flush()
    except OcpiError:
        db.session.rollback()
        _undo_registration(theirs, version, credentials_url, provisional.pk)
        raise
    if name:
        party.name = name
    _apply_roles(party, theirs)
    party.versions_url = versions_url
    party.version = version
    party.endpoints = endpoints
    party.outgoing_token = theirs.token
    party.incoming_token_hash = token_hash(token_b)
    party.status = "CONNECTED"
    db.session.commit()
    return party


def _party_for_roles(credentials: Credentials) -> Party | None:
    """The connection that already holds every identity these credentials claim, if one
    does: connecting again to the same CPO keeps its history."""
    holders = set()
    for role, country_code, party_id in _declared(credentials):
        holder = db.session.scalar(select(PartyGrant.party_pk).where(
            PartyGrant.role == role, PartyGrant.country_code == country_code,
            PartyGrant.party_id == party_id))
        holders.add(holder)
    if len(holders) == 1 and None not in holders:
        return db.session.get(Party, holders.pop())
    return None


def _undo_registration(theirs: Credentials, version: str, credentials_url: str,
                       provisional_pk: int) -> None:
    """We registered, then refused what the peer claims: tell it we are gone, forget it."""
    try:
        OcpiClient(theirs.token, version).request("DELETE", credentials_url,
                                                  module="credentials")
    except OcpiError as exc:
        log.warning("could not unregister from %s after refusing it: %s", credentials_url,
                    exc.message)
    provisional = db.session.get(Party, provisional_pk)
    if provisional is not None:
        db.session.delete(provisional)
    db.session.commit()


def credentials_for_version(credentials: dict[str, Any], version: str) -> dict[str, Any]:
    if version == "2.1.1":
        from ocpi import v211

        return v211.credentials_from_canonical(credentials)
    return credentials


def parse_credentials(data: Any, version: str) -> Credentials:
    if version == "2.1.1":
        from ocpi import v211

        data = v211.credentials_to_canonical(data)
    return parse(Credentials, data)


def register_incoming(
    party: Party, body: Any, *, update: bool, version: str = "2.2.1"
) -> dict[str, Any]:
    """A CPO POSTs (register) or PUTs (update) its credentials to us, at the credentials
    endpoint of `version`: the connection then speaks that version (credentials.asciidoc).

    We fetch its versions and endpoints with the token it sent, and answer a new token C.
    """
    theirs = parse_credentials(body, version)
    _check_claims(party, theirs)
    client = OcpiClient(theirs.token, version)
    try:
        version, endpoints = _negotiate(client, theirs.url, only=version)
    except PeerUnreachable as exc:
        raise OcpiError(StatusCode.UNABLE_TO_USE_CLIENT_API, exc.message) from exc
    _check_endpoints(endpoints)
    token_c = new_token()
    _apply_roles(party, theirs)
    party.versions_url = theirs.url
    party.version = version
    party.endpoints = endpoints
    party.outgoing_token = theirs.token
    party.incoming_token_hash = token_hash(token_c)
    party.status = "CONNECTED"
    db.session.commit()
    return credentials_for_version(our_credentials(token_c), version)


def unregister(party: Party) -> None:
    party.status = "DISCONNECTED"
    party.incoming_token_hash = None
    party.outgoing_token = None
    db.session.commit()


def _their_credentials_url(party: Party) -> str:
    url = party.endpoint("credentials")
    if not url:
        raise OcpiError(
            StatusCode.NO_MATCHING_ENDPOINTS, f"{party.name} has no credentials endpoint"
        )
    return url


def refresh(party: Party) -> Party:
    """PUT new credentials to the party: a new token for it to use towards us, and its
    current version and endpoints fetched again (credentials.asciidoc, PUT)."""
    if party.status != "CONNECTED":
        raise OcpiError(StatusCode.CLIENT_ERROR, f"{party.name} is not connected")
    client = OcpiClient.for_party(party)
    version, endpoints = _negotiate(client, party.versions_url or "")
    _check_endpoints(endpoints)
    party.endpoints = endpoints
    party.version = version
    token_b = new_token()
    previous_hash = party.incoming_token_hash
    # The CPO fetches our endpoints with the new token while answering the PUT, so the new
    # token must open our side before we send it; the old one stops working from here.
    party.incoming_token_hash = token_hash(token_b)
    db.session.commit()
    try:
        payload, _ = OcpiClient.for_party(party).request(
            "PUT", _their_credentials_url(party), module="credentials",
            body=credentials_for_version(our_credentials(token_b), party.version or "2.2.1"),
        )
        theirs = parse_credentials(payload.get("data"), party.version or "2.2.1")
        _check_claims(party, theirs)
    except OcpiError:
        party.incoming_token_hash = previous_hash
        db.session.commit()
        raise
    _apply_roles(party, theirs)
    party.outgoing_token = theirs.token
    db.session.commit()
    return party


def disconnect(party: Party) -> None:
    """Unregister from the party (DELETE on its credentials), then forget its tokens.

    Our side is cleared even when the party cannot be reached: an operator who disconnects
    a CPO must not keep accepting its requests.
    """
    try:
        if party.status == "CONNECTED" and party.outgoing_token:
            OcpiClient.for_party(party).request(
                "DELETE", _their_credentials_url(party), module="credentials"
            )
    finally:
        unregister(party)
