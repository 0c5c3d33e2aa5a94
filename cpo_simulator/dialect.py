"""Everything that depends on the OCPI version the simulator speaks, in one place.

The simulator's core works on version-neutral state (cpo_simulator.model) and on 2.2.1-shaped
catalogue objects (Locations, Tariffs: the richer of the two versions, so 2.1.1 is a
projection of them); a Dialect turns these into one version's JSON documents, parses that
version's request bodies and knows its authorization header and endpoint list. The core and
the Flask routes only ever call a dialect.

Documents returned here keep Decimal numbers; cpo_simulator.jsonio writes them exactly.

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
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Protocol

from cpo_simulator import wire211 as w211
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
from ocpi.transport import authorization_header
from ocpi.wire import (
    BusinessDetails,
    Cdr,
    CdrDimension,
    CdrLocation,
    CdrToken,
    ChargingPeriod,
    CommandResponse,
    CommandResponseType,
    CommandResult,
    CommandResultType,
    Connector,
    Credentials,
    CredentialsRole,
    DisplayText,
    Endpoint,
    Evse,
    InterfaceRole,
    Location,
    OcpiModel,
    Price,
    Role,
    Session,
    StartSession,
    StopSession,
    Tariff,
    UnlockConnector,
    Version,
    VersionDetails,
    parse,
)

HOURS = Decimal("0.000001")  # 2.2.1 TIME volumes in hours, to the 3.6 ms
HOURS_211 = Decimal("0.0001")  # 2.1.1: "numbers use 4 decimals"


def hours(seconds: int, quantum: Decimal = HOURS) -> Decimal:
    return (Decimal(seconds) / Decimal(3600)).quantize(quantum, rounding=ROUND_HALF_UP)


def _doc(model: OcpiModel) -> dict[str, Any]:
    """A wire model as a JSON document that keeps its Decimals (see jsonio)."""
    return plain(model.model_dump(mode="python", exclude_none=True))


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
    return _ascii(_doc(model))


def _texts(message: str | None) -> list[DisplayText] | None:
    return [DisplayText(language="en", text=message)] if message else None


def _price(amount: Amount | None) -> Price | None:
    return amount.to_price() if amount is not None else None


def _pick_version(versions: Any, version: str) -> str | None:
    """The URL of `version` in a peer's version list, if it offers it."""
    if not isinstance(versions, list):
        return None
    for item in versions:
        if isinstance(item, dict) and str(item.get("version")) == version:
            url = item.get("url")
            return str(url) if url else None
    return None


class Dialect(Protocol):
    version: str
    # Whether OCPI-from/to headers exist in this version (2.2 introduced them).
    routing: bool
    # Whether the CommandResponse can carry a message for the eMSP; if not, the envelope's
    # status_message does.
    command_messages: bool
    # mod_sessions 2.1.1 makes date_from a required parameter of the Sessions GET.
    sessions_need_date_from: bool
    # Peer endpoints the simulator cannot work without, as (identifier, role) keys of
    # parse_version_details (otherwise 3003 at registration).
    required_peer_endpoints: tuple[tuple[str, str], ...]

    def authorization(self, token: str) -> str: ...
    def version_entry(self, version_url: str) -> dict[str, Any]: ...
    def version_details(self, version_url: str) -> dict[str, Any]: ...
    def credentials(self, token: str, versions_url: str, country_code: str, party_id: str,
                    name: str) -> dict[str, Any]: ...
    def parse_credentials(self, body: Any) -> PeerCredentials: ...
    def pick_version(self, versions: Any) -> str | None: ...
    def parse_version_details(self, body: Any) -> dict[tuple[str, str], str]: ...
    def location(self, location: Location) -> dict[str, Any]: ...
    def evse(self, evse: Evse) -> dict[str, Any]: ...
    def connector(self, connector: Connector) -> dict[str, Any]: ...
    def tariff(self, tariff: Tariff) -> dict[str, Any]: ...
    def evse_status_patch(self, status: str, last_updated: datetime) -> dict[str, Any]: ...
    def parse_start(self, body: Any) -> StartCommand: ...
    def parse_stop(self, body: Any) -> StopCommand: ...
    def parse_unlock(self, body: Any) -> UnlockCommand: ...
    def command_response(self, result: CommandResponseType, timeout: int,
                         message: str | None = None) -> dict[str, Any]: ...
    def command_result(self, result: CommandResultType,
                       message: str | None = None) -> dict[str, Any]: ...
    def session(self, session: SimSession, country_code: str,
                party_id: str) -> dict[str, Any]: ...
    def session_progress(self, session: SimSession, period: Period) -> dict[str, Any]: ...
    def cdr(self, session: SimSession, cdr_id: str, country_code: str,
            party_id: str) -> dict[str, Any]: ...


class Ocpi221:
    version = "2.2.1"
    routing = True
    command_messages = True
    sessions_need_date_from = False

    # Our own modules: (identifier, role, path below the version URL).
    endpoints: tuple[tuple[str, InterfaceRole, str], ...] = (
        ("credentials", InterfaceRole.SENDER, "credentials"),
        ("locations", InterfaceRole.SENDER, "locations"),
        ("tariffs", InterfaceRole.SENDER, "tariffs"),
        ("sessions", InterfaceRole.SENDER, "sessions"),
        ("cdrs", InterfaceRole.SENDER, "cdrs"),
        ("commands", InterfaceRole.RECEIVER, "commands"),
    )
    required_peer_endpoints: tuple[tuple[str, str], ...] = (
        ("sessions", "RECEIVER"),
        ("cdrs", "RECEIVER"),
    )

    def authorization(self, token: str) -> str:
        return authorization_header(token, self.version)

    # --- versions and credentials ---------------------------------------------------

    def version_entry(self, version_url: str) -> dict[str, Any]:
        return _doc(Version(version=self.version, url=version_url))

    def version_details(self, version_url: str) -> dict[str, Any]:
        endpoints = [
            Endpoint(identifier=ident, role=role, url=f"{version_url}/{path}")
            for ident, role, path in self.endpoints
        ]
        return _doc(VersionDetails(version=self.version, endpoints=endpoints))

    def credentials(
        self, token: str, versions_url: str, country_code: str, party_id: str, name: str
    ) -> dict[str, Any]:
        role = CredentialsRole(
            role=Role.CPO,
            business_details=BusinessDetails(name=name),
            party_id=party_id,
            country_code=country_code,
        )
        return _doc(Credentials(token=token, url=versions_url, roles=[role]))

    def parse_credentials(self, body: Any) -> PeerCredentials:
        credentials = parse(Credentials, body)
        # The eMSP role if there is one; a hub reports only its own HUB role.
        role = next((r for r in credentials.roles if r.role == Role.EMSP), credentials.roles[0])
        return PeerCredentials(token=credentials.token, url=credentials.url,
                               country_code=role.country_code, party_id=role.party_id)

    def pick_version(self, versions: Any) -> str | None:
        return _pick_version(versions, self.version)

    def parse_version_details(self, body: Any) -> dict[tuple[str, str], str]:
        """A peer's endpoints keyed by (identifier, role); OcpiError 2001 if malformed."""
        details = parse(VersionDetails, body)
        if details.version != self.version:
            raise ValueError(f"the details are for version {details.version}")
        return {(e.identifier, e.role.value if e.role else ""): e.url for e in details.endpoints}

    # --- catalogue --------------------------------------------------------------------

    def location(self, location: Location) -> dict[str, Any]:
        return _doc(location)

    def evse(self, evse: Evse) -> dict[str, Any]:
        return _doc(evse)

    def connector(self, connector: Connector) -> dict[str, Any]:
        return _doc(connector)

    def tariff(self, tariff: Tariff) -> dict[str, Any]:
        return _doc(tariff)

    def evse_status_patch(self, status: str, last_updated: datetime) -> dict[str, Any]:
        return plain({"status": status, "last_updated": last_updated})

    # --- commands -------------------------------------------------------------------

    def parse_start(self, body: Any) -> StartCommand:
        command = parse(StartSession, body)
        token = command.token
        return StartCommand(
            response_url=command.response_url,
            token=DriverToken(uid=token.uid, type=token.type.value,
                              contract_id=token.contract_id,
                              country_code=token.country_code, party_id=token.party_id),
            location_id=command.location_id,
            evse_uid=command.evse_uid,
            connector_id=command.connector_id,
            authorization_reference=command.authorization_reference,
        )

    def parse_stop(self, body: Any) -> StopCommand:
        command = parse(StopSession, body)
        return StopCommand(response_url=command.response_url, session_id=command.session_id)

    def parse_unlock(self, body: Any) -> UnlockCommand:
        command = parse(UnlockConnector, body)
        return UnlockCommand(response_url=command.response_url,
                             location_id=command.location_id, evse_uid=command.evse_uid,
                             connector_id=command.connector_id)

    def command_response(
        self, result: CommandResponseType, timeout: int, message: str | None = None
    ) -> dict[str, Any]:
        return _doc(CommandResponse(result=result, timeout=timeout, message=_texts(message)))

    def command_result(
        self, result: CommandResultType, message: str | None = None
    ) -> dict[str, Any]:
        return _doc(CommandResult(result=result, message=_texts(message)))

    # --- sessions and CDRs ----------------------------------------------------------

    def _period(self, period: Period, tariff_id: str | None) -> ChargingPeriod:
        return ChargingPeriod(
            start_date_time=period.start,
            dimensions=[
                CdrDimension(type="ENERGY", volume=period.kwh),
                CdrDimension(type="TIME", volume=hours(period.seconds)),
            ],
            tariff_id=tariff_id,
        )

    def _cdr_token(self, session: SimSession) -> CdrToken:
        token = session.token
        # A token that came with a 2.1.1 command names no party: it is the session owner's.
        return CdrToken(
            country_code=token.country_code or session.owner.country_code,
            party_id=token.party_id or session.owner.party_id,
            uid=token.uid, type=token.type, contract_id=token.contract_id,
        )

    def _cdr_location(self, site: Location) -> CdrLocation:
        evse = (site.evses or [])[0]
        connector = evse.connectors[0]
        return CdrLocation(
            id=site.id, name=site.name, address=site.address, city=site.city,
            postal_code=site.postal_code, state=site.state, country=site.country,
            coordinates=site.coordinates, evse_uid=evse.uid, evse_id=evse.evse_id or evse.uid,
            connector_id=connector.id, connector_standard=connector.standard,
            connector_format=connector.format,
            connector_power_type=connector.power_type.value,
        )

    def session(self, session: SimSession, country_code: str, party_id: str) -> dict[str, Any]:
        """The whole Session, as PUT: its charging periods replace the receiver's."""
        costs = session.costs()
        tariff_id = session.tariff.id if session.tariff else None
        model = Session(
            country_code=country_code,
            party_id=party_id,
            id=session.id,
            start_date_time=session.start,
            end_date_time=session.end,
            kwh=session.kwh,
            cdr_token=self._cdr_token(session),
            auth_method="COMMAND",
            authorization_reference=session.authorization_reference,
            location_id=session.location_id,
            evse_uid=session.evse_uid,
            connector_id=session.connector_id,
            currency=session.currency,
            charging_periods=[self._period(p, tariff_id) for p in session.periods] or None,
            total_cost=costs.total.to_price() if costs else None,
            status=session.status,
            last_updated=session.last_updated,
        )
        return _doc(model)

    def session_progress(self, session: SimSession, period: Period) -> dict[str, Any]:
        """A PATCH adding one charging period; the receiver appends it to the ones it has."""
        costs = session.costs()
        tariff_id = session.tariff.id if session.tariff else None
        return plain({
            "kwh": session.kwh,
            "charging_periods": [_doc(self._period(period, tariff_id))],
            "total_cost": _doc(costs.total.to_price()) if costs else None,
            "last_updated": session.last_updated,
        })

    def cdr(
        self, session: SimSession, cdr_id: str, country_code: str, party_id: str
    ) -> dict[str, Any]:
        """The final CDR of a completed session, validated as the wire model."""
        if session.end is None:
            raise ValueError("a CDR needs a completed session")
        costs = session.costs()
        tariff_id = session.tariff.id if session.tariff else None
        # Without a tariff the CPO still must state a total; zero is the honest value then.
        total = costs.total if costs else Amount(Decimal("0.00"), Decimal("0.00"))
        model = Cdr(
            country_code=country_code,
            party_id=party_id,
            id=cdr_id,
            start_date_time=session.start,
            end_date_time=session.end,
            session_id=session.id,
            cdr_token=self._cdr_token(session),
            auth_method="COMMAND",
            authorization_reference=session.authorization_reference,
            cdr_location=self._cdr_location(session.site),
            currency=session.currency,
            tariffs=[session.tariff] if session.tariff else None,
            charging_periods=[self._period(p, tariff_id) for p in session.periods],
            total_cost=total.to_price(),
            total_fixed_cost=_price(costs.fixed) if costs else None,
            total_energy=session.kwh,
            total_energy_cost=_price(costs.energy) if costs else None,
            total_time=hours(session.seconds),
            total_time_cost=_price(costs.time) if costs else None,
            last_updated=session.end,
        )
        return _doc(model)


# 2.2.1 values 2.1.1 lacks, projected onto the nearest 2.1.1 value.
_LOCATION_TYPES = {t.value for t in w211.LocationType}
_POWER_TYPES = {p.value for p in w211.PowerType}
_CAPABILITIES = {c.value for c in w211.Capability}
_FACILITIES = {f.value for f in w211.Facility}
_RESTRICTIONS = {r.value for r in w211.ParkingRestriction}
_RESULTS_211 = {
    CommandResultType.ACCEPTED: w211.CommandResponseType.ACCEPTED,
    CommandResultType.TIMEOUT: w211.CommandResponseType.TIMEOUT,
    CommandResultType.NOT_SUPPORTED: w211.CommandResponseType.NOT_SUPPORTED,
}


def _known(values: list[str] | None, allowed: set[str]) -> list[str] | None:
    """The values 2.1.1 has a name for; None rather than an empty list."""
    kept = [v for v in values or [] if v in allowed]
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
        return _pick_version(versions, self.version)

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
            format=connector.format,
            # 2.1.1 knows no two-phase AC; one phase is the conservative reading of it.
            power_type=power if power in _POWER_TYPES else w211.PowerType.AC_1_PHASE,
            voltage=connector.max_voltage,
            amperage=connector.max_amperage,
            # 2.1.1 links one tariff per connector.
            tariff_id=(connector.tariff_ids or [None])[0],
            terms_and_conditions=connector.terms_and_conditions,
            last_updated=connector.last_updated,
        )

    def _evse(self, evse: Evse) -> w211.Evse:
        return w211.Evse(
            uid=evse.uid,
            evse_id=evse.evse_id,
            status=evse.status.value,
            capabilities=_known(evse.capabilities, _CAPABILITIES),
            connectors=[self._connector(c) for c in evse.connectors],
            floor_level=evse.floor_level,
            coordinates=evse.coordinates,
            physical_reference=evse.physical_reference,
            directions=evse.directions,
            parking_restrictions=_known(evse.parking_restrictions, _RESTRICTIONS),
            last_updated=evse.last_updated,
        )

    def _location(self, location: Location) -> w211.Location:
        parking = location.parking_type or "UNKNOWN"
        return w211.Location(
            id=location.id,
            # 2.2.1 split this into parking_type; its extra values are OTHER to 2.1.1.
            type=parking if parking in _LOCATION_TYPES else w211.LocationType.OTHER,
            name=location.name,
            address=location.address,
            city=location.city,
            postal_code=location.postal_code or "",
            country=location.country,
            coordinates=location.coordinates,
            evses=[self._evse(e) for e in location.evses] if location.evses else None,
            directions=location.directions,
            operator=location.operator,
            facilities=_known(location.facilities, _FACILITIES),
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
        return _doc211(w211.CommandResponse(result=result.value))

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
            status=session.status,
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


SUPPORTED_VERSIONS = ("2.1.1", "2.2.1")


def make_dialect(version: str, *, report_vat_included: bool = False) -> Dialect:
    if version == "2.2.1":
        return Ocpi221()
    if version == "2.1.1":
        return Ocpi211(report_vat_included=report_vat_included)
    raise ValueError(f"unsupported OCPI version {version!r}; known: {SUPPORTED_VERSIONS}")
