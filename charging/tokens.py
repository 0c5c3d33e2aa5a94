"""A charge's one-time Token: issued before START_SESSION, retired when the charge is over,
and authorised in real time only for its own charge (mod_tokens)."""

from __future__ import annotations

from typing import Any

from flask import current_app
from sqlalchemy import select

from charging.cpo import charge_for, cpo_of, owned_by
from charging.models import Charge
from charging.states import ChargeStatus as S
from extensions import db
from ocpi.answers import TokenAuthorization
from ocpi.models import IssuedToken, dump_json
from ocpi.modules.tokens import Token
from ocpi.transport import now_utc

# The states in which the charge's Token may start or keep charging.
AUTHORIZABLE = frozenset({S.AUTHORIZED, S.STARTING, S.CHARGING, S.STOPPING, S.START_FAILED})


def issue_token(charge: Charge) -> dict[str, Any]:
    """The charge's AD_HOC_USER Token as sent in START_SESSION, stored once."""
    cfg = current_app.config
    token = {
        "country_code": cfg["OCPI_COUNTRY_CODE"],
        "party_id": cfg["OCPI_PARTY_ID"],
        "uid": charge.token_uid,
        "type": "AD_HOC_USER",
        "contract_id": f"{cfg['OCPI_COUNTRY_CODE']}{cfg['OCPI_PARTY_ID']}{charge.token_uid[:20]}",
        "issuer": cfg["OCPI_BUSINESS_NAME"],
        "valid": True,
        "whitelist": "ALLOWED",
        "language": charge.language,
        "last_updated": now_utc(),
    }
    parsed = Token.model_validate(token).to_json()
    existing = db.session.scalar(select(IssuedToken).where(IssuedToken.uid == charge.token_uid))
    if existing is None:
        owner = cpo_of(charge)
        db.session.add(
            IssuedToken(
                uid=charge.token_uid,
                type="AD_HOC_USER",
                contract_id=parsed["contract_id"],
                raw=dump_json(parsed),
                party_pk=charge.party_pk,
                country_code=owner[0] if owner else None,
                party_id=owner[1] if owner else None,
            )
        )
    return parsed


def retire_token(charge: Charge) -> None:
    """A finished charge's one-time Token authorises nothing any more."""
    row = db.session.scalar(select(IssuedToken).where(IssuedToken.uid == charge.token_uid))
    if row is not None and row.valid:
        data = row.data
        data["valid"] = False
        data["last_updated"] = now_utc()
        row.valid = False
        row.raw = dump_json(data)


def on_token_authorization(
    token_uid: str, location: dict[str, Any] | None, party_pk: int | None = None,
    country_code: str | None = None, party_id: str | None = None,
) -> TokenAuthorization | None:
    """Real-time authorization of a charge's one-time Token: allowed for its own charge
    while that is open, at its own location and EVSE only (mod_tokens: AllowedType), and
    only when its own CPO asks (the edge has already refused everyone else). Reads only."""
    pk = charge_for(None, token_uid)
    if pk is None:
        return None
    charge = db.session.get_one(Charge, pk)
    if party_pk is not None and not owned_by(charge, party_pk, country_code or "",
                                             party_id or ""):
        return {"allowed": "NOT_ALLOWED"}
    if charge.state not in AUTHORIZABLE:
        return {"allowed": "EXPIRED"}
    if location is not None:
        if str(location["location_id"]).upper() != charge.location_id.upper():
            return {"allowed": "NOT_ALLOWED"}
        asked = {str(uid).upper() for uid in location.get("evse_uids") or []}
        if asked and charge.evse_uid.upper() not in asked:
            return {"allowed": "NOT_ALLOWED"}
    return {"allowed": "ALLOWED", "authorization_reference": charge.authorization_reference,
            "evse_uids": [charge.evse_uid]}
