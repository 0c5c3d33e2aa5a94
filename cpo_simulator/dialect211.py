"""The simulator's OCPI 2.1.1: a projection of the 2.2.1-shaped state onto 2.1.1.

2.1.1 decisions (Ocpi211), each from ../shared/ocpi-spec/2.1.1/:
- Sessions and CDRs report `total_cost` excluding VAT, as mod_sessions and mod_cdrs define
  it ("The total cost (excluding VAT)"); report_vat_included=True reports the price incl.
  VAT instead, as some CPOs do, to test an eMSP against that reading.
- A remotely started session has auth_method AUTH_REQUEST: 2.1.1 has no COMMAND, and the
  start was requested by the eMSP (WHITELIST means "no request done to the eMSP").
- The CommandResponse is only `result`, also for the asynchronous result; Charge Point
  outcomes 2.1.1 cannot name (EVSE_OCCUPIED, EVSE_INOPERATIVE, FAILED) become REJECTED.
- A session PATCH carries the whole `charging_periods` list: 2.1.1 PATCH replaces the
  fields it names, it knows no appending of periods (2.2.1 does).
- Numbers have at most 4 decimals (types.md): TIME volumes are hours rounded to 0.0001.
- Strings are "only printable ASCII" (types.md 1.5): Göteborg is sent as Goteborg.
- No routing headers (2.1.1 has none) and the token in `Authorization: Token` unencoded.
"""

from __future__ import annotations

import unicodedata
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, TypeVar

import cpo_simulator.wire211 as w211
from cpo_simulator.documents import document, hours, pick_version
from cpo_simulator.jsonio import plain
from cpo_simulator.model import (
    DriverToken,
    PeerCredentials,
    Period,
    SimSession,
    StartCommand,
    StopCommand,
    UnlockCommand,
)
from cpo_simulator.pricing import Amount
from ocpi.modules.commands import CommandResponseType, CommandResultType
from ocpi.modules.common import OcpiModel, parse
from ocpi.modules.locations import BusinessDetails, Connector, Evse, Location
from ocpi.modules.tariffs import Tariff
from ocpi.modules.versions import Version
from ocpi.transport import authorization_header

HOURS_211 = Decimal("0.0001")  # 2.1.1: "numbers use 4 decimals"


def _ascii(value: Any) -> Any:
    """A document with every string folded to printable ASCII, as 2.1.1 strings must be:
    accents dropped (ö -> o), anything else without an ASCII form becomes '?'."""
    if isinstance(value, dict):
        return {k: _ascii(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_ascii(v) for v in value]
    if isinstance(value, str) and not value.isascii():
        decomposed = unicodedata.normalize("NFKD", value)
        stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
        return stripped.encode("ascii", "replace").decode("ascii")
    return value


def _doc211(model: OcpiModel) -> dict[str, Any]:
    return _ascii(document(model))


# 2.2.1 values 2.1.1 lacks, projected onto the nearest 2.1.1 value.
_LOCATION_TYPES = {t.value for t in w211.LocationType}
_POWER_TYPES = {p.value for p in w211.PowerType}
_RESULTS_211 = {
    CommandResultType.ACCEPTED: w211.CommandResponseType.ACCEPTED,
    CommandResultType.TIMEOUT: w211.CommandResponseType.TIMEOUT,
    CommandResultType.NOT_SUPPORTED: w211.CommandResponseType.NOT_SUPPORTED,
}


_Name = TypeVar("_Name", bound=StrEnum)


def _known(values: list[str] | None, names: type[_Name]) -> list[_Name] | None:
    """The values 2.1.1 has a name for; None rather than an empty list."""
    allowed = {member.value for member in names}
    kept = [names(v) for v in values or [] if v in allowed]
    return kept or None


class Ocpi211:
    version = "2.1.1"
    routing = False
    command_messages = False
    sessions_need_date_from = True

    # 2.1.1 endpoints have no role: the identifier alone names a module's interface.
    endpoints: tuple[tuple[str, str], ...] = (
        ("credentials", "credentials"),
        ("locations", "locations"),
        ("tariffs", "tariffs"),
        ("sessions", "sessions"),
        ("cdrs", "cdrs"),
        ("commands", "commands"),
    )
    required_peer_endpoints: tuple[tuple[str, str], ...] = (("sessions", ""), ("cdrs", ""))

    def __init__(self, report_vat_included: bool = False) -> None:
        self.report_vat_included = report_vat_included

    def authorization(self, token: str) -> str:
        return authorization_header(token, self.version)

    def _money(self, amount: Amount) -> Decimal:
        return amount.incl_vat if self.report_vat_included else amount.excl_vat

    # --- versions and credentials ---------------------------------------------------

    def version_entry(self, version_url: str) -> dict[str, Any]:
        return _doc211(Version(version=self.version, url=version_url))

    def version_details(self, version_url: str) -> dict[str, Any]:
        endpoints = [w211.Endpoint(identifier=ident, url=f"{version_url}/{path}")
                     for ident, path in self.endpoints]
        return _doc211(w211.VersionDetails(version=self.version, endpoints=endpoints))

    def credentials(
        self, token: str, versions_url: str, country_code: str, party_id: str, name: str
    ) -> dict[str, Any]:
        return _doc211(w211.Credentials(
            token=token, url=versions_url, business_details=BusinessDetails(name=name),
            party_id=party_id, country_code=country_code,
        ))

    def parse_credentials(self, body: Any) -> PeerCredentials:
        credentials = parse(w211.Credentials, body)
        return PeerCredentials(token=credentials.token, url=credentials.url,
                               country_code=credentials.country_code,
                               party_id=credentials.party_id)

    def pick_version(self, versions: Any) -> str | None:
        return pick_version(versions, self.version)

    def parse_version_details(self, body: Any) -> dict[tuple[str, str], str]:
        """A peer's endpoints keyed by (identifier, ""): 2.1.1 endpoints have no role."""
        details = parse(w211.VersionDetails, body)
        if details.version != self.version:
            raise ValueError(f"the details are for version {details.version}")
        return {(e.identifier, ""): e.url for e in details.endpoints}

    # --- catalogue --------------------------------------------------------------------

    def _connector(self, connector: Connector) -> w211.Connector:
        power = connector.power_type.value
        return w211.Connector(
            id=connector.id,
            standard=connector.standard,
            format=w211.ConnectorFormat(connector.format),
            # 2.1.1 knows no two-phase AC; one phase is the conservative reading of it.
            power_type=(w211.PowerType(power) if power in _POWER_TYPES
                        else w211.PowerType.AC_1_PHASE),
            voltage=connector.max_voltage,
            amperage=connector.max_amperage,
            # 2.1.1 links one tariff per connector.
            tariff_id=connector.tariff_ids[0] if connector.tariff_ids else None,
            terms_and_conditions=connector.terms_and_conditions,
            last_updated=connector.last_updated,
        )

    def _evse(self, evse: Evse) -> w211.Evse:
        return w211.Evse(
            uid=evse.uid,
            evse_id=evse.evse_id,
            status=w211.Status(evse.status.value),
            capabilities=_known(evse.capabilities, w211.Capability),
            connectors=[self._connector(c) for c in evse.connectors],
            floor_level=evse.floor_level,
            coordinates=evse.coordinates,
            physical_reference=evse.physical_reference,
            directions=evse.directions,
            parking_restrictions=_known(evse.parking_restrictions, w211.ParkingRestriction),
            last_updated=evse.last_updated,
        )

    def _location(self, location: Location) -> w211.Location:
        parking = location.parking_type or "UNKNOWN"
        return w211.Location(
            id=location.id,
            # 2.2.1 split this into parking_type; its extra values are OTHER to 2.1.1.
            type=(w211.LocationType(parking) if parking in _LOCATION_TYPES
                  else w211.LocationType.OTHER),
            name=location.name,
            address=location.address,
            city=location.city,
            postal_code=location.postal_code or "",
            country=location.country,
            coordinates=location.coordinates,
            evses=[self._evse(e) for e in location.evses] if location.evses else None,
            directions=location.directions,
            operator=location.operator,
            facilities=_known(location.facilities, w211.Facility),
            time_zone=location.time_zone,
            charging_when_closed=location.charging_when_closed,
            last_updated=location.last_updated,
        )

    def _tariff(self, tariff: Tariff) -> w211.Tariff:
        # Prices are excl. VAT in both versions; 2.1.1 simply has no field for the VAT.
        elements = [
            {
                "price_components": [
                    {"type": c.type.value, "price": c.price, "step_size": c.step_size}
                    for c in element.price_components
                ],
                "restrictions": (element.restrictions.model_dump(exclude_none=True)
                                 if element.restrictions else None),
            }
            for element in tariff.elements
        ]
        return w211.Tariff.model_validate({
            "id": tariff.id,
            "currency": tariff.currency,
            "tariff_alt_text": tariff.tariff_alt_text,
            "tariff_alt_url": tariff.tariff_alt_url,
            "elements": elements,
            "last_updated": tariff.last_updated,
        })

    def location(self, location: Location) -> dict[str, Any]:
        return _doc211(self._location(location))

    def evse(self, evse: Evse) -> dict[str, Any]:
        return _doc211(self._evse(evse))

    def connector(self, connector: Connector) -> dict[str, Any]:
        return _doc211(self._connector(connector))

    def tariff(self, tariff: Tariff) -> dict[str, Any]:
        return _doc211(self._tariff(tariff))

    def evse_status_patch(self, status: str, last_updated: datetime) -> dict[str, Any]:
        return plain({"status": status, "last_updated": last_updated})

    # --- commands -------------------------------------------------------------------

    def parse_start(self, body: Any) -> StartCommand:
        command = parse(w211.StartSession, body)
        token = command.token
        return StartCommand(
            response_url=command.response_url,
            token=DriverToken(uid=token.uid, type=token.type.value, contract_id=token.auth_id),
            location_id=command.location_id,
            evse_uid=command.evse_uid,
            connector_id=None,  # 2.1.1 names no connector: the Charge Point picks one
            authorization_reference=None,
        )

    def parse_stop(self, body: Any) -> StopCommand:
        command = parse(w211.StopSession, body)
        return StopCommand(response_url=command.response_url, session_id=command.session_id)

    def parse_unlock(self, body: Any) -> UnlockCommand:
        command = parse(w211.UnlockConnector, body)
        return UnlockCommand(response_url=command.response_url,
                             location_id=command.location_id, evse_uid=command.evse_uid,
                             connector_id=command.connector_id)

    def command_response(
        self, result: CommandResponseType, timeout: int, message: str | None = None
    ) -> dict[str, Any]:
        # No timeout in 2.1.1: the eMSP decides itself how long to wait for the result.
        return _doc211(w211.CommandResponse(result=w211.CommandResponseType(result.value)))

    def command_result(
        self, result: CommandResultType, message: str | None = None
    ) -> dict[str, Any]:
        mapped = _RESULTS_211.get(result, w211.CommandResponseType.REJECTED)
        return _doc211(w211.CommandResponse(result=mapped))

    # --- sessions and CDRs ----------------------------------------------------------

    def _periods(self, session: SimSession) -> list[w211.ChargingPeriod]:
        return [
            w211.ChargingPeriod(
                start_date_time=p.start,
                dimensions=[
                    w211.CdrDimension(type=w211.CdrDimensionType.ENERGY, volume=p.kwh),
                    w211.CdrDimension(type=w211.CdrDimensionType.TIME,
                                      volume=hours(p.seconds, HOURS_211)),
                ],
            )
            for p in session.periods
        ]

    def session(self, session: SimSession, country_code: str, party_id: str) -> dict[str, Any]:
        """The whole Session; the party is in the URL only, 2.1.1 objects do not carry it."""
        costs = session.costs()
        model = w211.Session(
            id=session.id,
            start_datetime=session.start,
            end_datetime=session.end,
            kwh=session.kwh,
            auth_id=session.token.contract_id,
            auth_method=w211.AuthMethod.AUTH_REQUEST,
            location=self._location(session.site),
            currency=session.currency,
            charging_periods=self._periods(session) or None,
            total_cost=self._money(costs.total) if costs else None,
            status=w211.SessionStatus(session.status),
            last_updated=session.last_updated,
        )
        return _doc211(model)

    def session_progress(self, session: SimSession, period: Period) -> dict[str, Any]:
        """A PATCH naming what changed; charging_periods is the whole, replacing list."""
        costs = session.costs()
        return _ascii(plain({
            "kwh": session.kwh,
            "charging_periods": [_doc211(p) for p in self._periods(session)],
            "total_cost": self._money(costs.total) if costs else None,
            "last_updated": session.last_updated,
        }))

    def cdr(
        self, session: SimSession, cdr_id: str, country_code: str, party_id: str
    ) -> dict[str, Any]:
        if session.end is None:
            raise ValueError("a CDR needs a completed session")
        costs = session.costs()
        total = self._money(costs.total) if costs else Decimal("0.00")
        model = w211.Cdr(
            id=cdr_id,
            start_date_time=session.start,
            stop_date_time=session.end,
            auth_id=session.token.contract_id,
            auth_method=w211.AuthMethod.AUTH_REQUEST,
            location=self._location(session.site),
            currency=session.currency,
            tariffs=[self._tariff(session.tariff)] if session.tariff else None,
            charging_periods=self._periods(session),
            total_cost=total,
            total_energy=session.kwh,
            total_time=hours(session.seconds, HOURS_211),
            last_updated=session.end,
        )
        return _doc211(model)


