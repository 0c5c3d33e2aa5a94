"""Everything that depends on the OCPI version the simulator speaks, in one place.

The simulator's core works on version-neutral session state (ocpi.simulator.model) and on
2.2.1-shaped catalogue objects (Locations, Tariffs); a Dialect turns them into one version's
JSON documents, parses that version's request bodies and knows its authorization header and
endpoint list. Adding 2.1.1 later means writing one more Dialect and registering it in
DIALECTS; the core and the Flask routes only ever call the dialect.

Documents returned here keep Decimal numbers; ocpi.simulator.jsonio writes them exactly.
"""

from __future__ import annotations

from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from ocpi.simulator.jsonio import plain
from ocpi.simulator.model import Period, SimSession
from ocpi.simulator.pricing import Amount
from ocpi.transport import authorization_header
from ocpi.wire import (
    BusinessDetails,
    Cdr,
    CdrDimension,
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

HOURS = Decimal("0.000001")  # TIME volumes in hours, to the 3.6 ms


def hours(seconds: int) -> Decimal:
    return (Decimal(seconds) / Decimal(3600)).quantize(HOURS, rounding=ROUND_HALF_UP)


def _doc(model: OcpiModel) -> dict[str, Any]:
    """A wire model as a JSON document that keeps its Decimals (see jsonio)."""
    return plain(model.model_dump(mode="python", exclude_none=True))


def _texts(message: str | None) -> list[DisplayText] | None:
    return [DisplayText(language="en", text=message)] if message else None


def _price(amount: Amount | None) -> Price | None:
    return amount.to_price() if amount is not None else None


class Ocpi221:
    version = "2.2.1"

    # Our own modules: (identifier, role, path below the version URL).
    endpoints: tuple[tuple[str, InterfaceRole, str], ...] = (
        ("credentials", InterfaceRole.SENDER, "credentials"),
        ("locations", InterfaceRole.SENDER, "locations"),
        ("tariffs", InterfaceRole.SENDER, "tariffs"),
        ("sessions", InterfaceRole.SENDER, "sessions"),
        ("cdrs", InterfaceRole.SENDER, "cdrs"),
        ("commands", InterfaceRole.RECEIVER, "commands"),
    )
    # What the simulator cannot work without at the eMSP (otherwise 3003 at registration).
    required_peer_endpoints: tuple[tuple[str, str], ...] = (
        ("sessions", "RECEIVER"),
        ("cdrs", "RECEIVER"),
    )

    def authorization(self, token: str) -> str:
        return authorization_header(token, self.version)

    # --- versions and credentials ---------------------------------------------------

    def versions(self, version_url: str) -> list[dict[str, Any]]:
        return [_doc(Version(version=self.version, url=version_url))]

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

    def parse_credentials(self, body: Any) -> Credentials:
        return parse(Credentials, body)

    def pick_version(self, versions: Any) -> str | None:
        """The URL of our version in a peer's version list, if it offers it."""
        if not isinstance(versions, list):
            return None
        for item in versions:
            if isinstance(item, dict) and str(item.get("version")) == self.version:
                url = item.get("url")
                return str(url) if url else None
        return None

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

    def parse_start(self, body: Any) -> StartSession:
        return parse(StartSession, body)

    def parse_stop(self, body: Any) -> StopSession:
        return parse(StopSession, body)

    def parse_unlock(self, body: Any) -> UnlockConnector:
        return parse(UnlockConnector, body)

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
            cdr_token=session.cdr_token,
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
            cdr_token=session.cdr_token,
            auth_method="COMMAND",
            authorization_reference=session.authorization_reference,
            cdr_location=session.cdr_location,
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


Dialect = Ocpi221
DIALECTS: dict[str, Dialect] = {"2.2.1": Ocpi221()}
