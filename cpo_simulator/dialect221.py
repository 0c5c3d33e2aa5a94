"""The simulator's OCPI 2.2.1: its documents, request bodies, headers and endpoints.

Catalogue objects are 2.2.1-shaped already (ocpi.modules), so this dialect mostly validates
and writes them; sessions and CDRs are built from the version-neutral state.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from cpo_simulator.documents import display_texts, document, hours, pick_version, price_or_none
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
from ocpi.modules.cdrs import Cdr, CdrDimension, CdrLocation, CdrToken, ChargingPeriod
from ocpi.modules.commands import (
    CommandResponse,
    CommandResponseType,
    CommandResult,
    CommandResultType,
    StartSession,
    StopSession,
    UnlockConnector,
)
from ocpi.modules.common import Role, parse
from ocpi.modules.credentials import Credentials, CredentialsRole
from ocpi.modules.locations import BusinessDetails, Connector, Evse, Location
from ocpi.modules.sessions import Session, SessionStatus
from ocpi.modules.tariffs import Tariff
from ocpi.modules.tokens import TokenType
from ocpi.modules.versions import Endpoint, InterfaceRole, Version, VersionDetails
from ocpi.transport import authorization_header


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
        return document(Version(version=self.version, url=version_url))

    def version_details(self, version_url: str) -> dict[str, Any]:
        endpoints = [
            Endpoint(identifier=ident, role=role, url=f"{version_url}/{path}")
            for ident, role, path in self.endpoints
        ]
        return document(VersionDetails(version=self.version, endpoints=endpoints))

    def credentials(
        self, token: str, versions_url: str, country_code: str, party_id: str, name: str
    ) -> dict[str, Any]:
        role = CredentialsRole(
            role=Role.CPO,
            business_details=BusinessDetails(name=name),
            party_id=party_id,
            country_code=country_code,
        )
        return document(Credentials(token=token, url=versions_url, roles=[role]))

    def parse_credentials(self, body: Any) -> PeerCredentials:
        credentials = parse(Credentials, body)
        # The eMSP role if there is one; a hub reports only its own HUB role.
        role = next((r for r in credentials.roles if r.role == Role.EMSP), credentials.roles[0])
        return PeerCredentials(token=credentials.token, url=credentials.url,
                               country_code=role.country_code, party_id=role.party_id)

    def pick_version(self, versions: Any) -> str | None:
        return pick_version(versions, self.version)

    def parse_version_details(self, body: Any) -> dict[tuple[str, str], str]:
        """A peer's endpoints keyed by (identifier, role); OcpiError 2001 if malformed."""
        details = parse(VersionDetails, body)
        if details.version != self.version:
            raise ValueError(f"the details are for version {details.version}")
        return {(e.identifier, e.role.value if e.role else ""): e.url for e in details.endpoints}

    # --- catalogue --------------------------------------------------------------------

    def location(self, location: Location) -> dict[str, Any]:
        return document(location)

    def evse(self, evse: Evse) -> dict[str, Any]:
        return document(evse)

    def connector(self, connector: Connector) -> dict[str, Any]:
        return document(connector)

    def tariff(self, tariff: Tariff) -> dict[str, Any]:
        return document(tariff)

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
        return document(CommandResponse(result=result, timeout=timeout,
                                        message=display_texts(message)))

    def command_result(
        self, result: CommandResultType, message: str | None = None
    ) -> dict[str, Any]:
        return document(CommandResult(result=result, message=display_texts(message)))

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
            uid=token.uid, type=TokenType(token.type), contract_id=token.contract_id,
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
            status=SessionStatus(session.status),
            last_updated=session.last_updated,
        )
        return document(model)

    def session_progress(self, session: SimSession, period: Period) -> dict[str, Any]:
        """A PATCH adding one charging period; the receiver appends it to the ones it has."""
        costs = session.costs()
        tariff_id = session.tariff.id if session.tariff else None
        return plain({
            "kwh": session.kwh,
            "charging_periods": [document(self._period(period, tariff_id))],
            "total_cost": document(costs.total.to_price()) if costs else None,
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
            total_fixed_cost=price_or_none(costs.fixed) if costs else None,
            total_energy=session.kwh,
            total_energy_cost=price_or_none(costs.energy) if costs else None,
            total_time=hours(session.seconds),
            total_time_cost=price_or_none(costs.time) if costs else None,
            last_updated=session.end,
        )
        return document(model)


