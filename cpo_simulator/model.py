"""The simulator's internal, version-neutral state: commands, parties and sessions.

Only cpo_simulator.dialect turns these into a given OCPI version's JSON, and only a dialect
builds them from a version's request bodies; nothing here knows field names of the wire
format, so the same session can be serialised as 2.1.1 or 2.2.1.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from cpo_simulator.pricing import Costs, price_session
from ocpi.modules.locations import Location
from ocpi.modules.tariffs import Tariff


@dataclass(frozen=True)
class PartyRef:
    """An OCPI party as routing headers and client-owned URLs name it."""

    country_code: str
    party_id: str


@dataclass(frozen=True)
class DriverToken:
    """The driver's token as the START_SESSION brought it.

    2.1.1's Token.auth_id and 2.2.1's Token.contract_id are the same thing (the eMA ID the
    eMSP bills under), so both land in contract_id. A 2.1.1 Token names no owning party.
    """

    uid: str
    type: str
    contract_id: str
    country_code: str | None = None
    party_id: str | None = None

    @property
    def owner(self) -> PartyRef | None:
        if self.country_code and self.party_id:
            return PartyRef(self.country_code, self.party_id)
        return None


@dataclass(frozen=True)
class StartCommand:
    response_url: str
    token: DriverToken
    location_id: str
    evse_uid: str | None
    connector_id: str | None
    authorization_reference: str | None


@dataclass(frozen=True)
class StopCommand:
    response_url: str
    session_id: str


@dataclass(frozen=True)
class UnlockCommand:
    response_url: str
    location_id: str
    evse_uid: str
    connector_id: str


@dataclass(frozen=True)
class PeerCredentials:
    """What the simulator keeps of an eMSP's credentials, whatever their version."""

    token: str
    url: str
    country_code: str
    party_id: str


@dataclass(frozen=True)
class Period:
    """One charging period: it starts at `start` and lasts `seconds` of simulated time."""

    start: datetime
    kwh: Decimal
    seconds: int


@dataclass(frozen=True)
class StopRequest:
    response_url: str
    correlation_id: str
    result_delay: float
    # Real (monotonic) time the STOP_SESSION arrived: charging ends then, not when the
    # result is posted.
    received: float
    # Who sent the command, so the result is routed back to them through a hub.
    reply_to: PartyRef | None = None
    # The OCPI version the command came in, which its result is written in.
    version: str = ""


@dataclass
class SimSession:
    id: str
    location_id: str
    evse_uid: str
    connector_id: str
    token: DriverToken
    authorization_reference: str | None
    tariff: Tariff | None
    currency: str
    power_w: int
    # Where it happened, frozen at the start (the Location with only this EVSE and this
    # connector): Sessions and CDRs describe the site as it was then.
    site: Location
    # The eMSP the session belongs to: where its pushes are routed.
    owner: PartyRef
    start: datetime
    last_updated: datetime
    status: str = "ACTIVE"
    end: datetime | None = None
    periods: list[Period] = field(default_factory=list)
    stop: StopRequest | None = None
    # Set once the session is bound to end (battery full), before it is completed.
    finishing: bool = False
    # Real (monotonic) time of the last tick, to size the partial period when stopped.
    last_tick: float = field(default_factory=time.monotonic)
    wake: threading.Event = field(default_factory=threading.Event, repr=False)
    cdr_id: str | None = None

    @property
    def kwh(self) -> Decimal:
        return sum((p.kwh for p in self.periods), Decimal(0))

    @property
    def seconds(self) -> int:
        return sum(p.seconds for p in self.periods)

    @property
    def clock(self) -> datetime:
        """The session's simulated 'now': its start plus the simulated time charged."""
        return self.start + timedelta(seconds=self.seconds)

    def costs(self) -> Costs | None:
        if self.tariff is None:
            return None
        return price_session(self.tariff, self.kwh, self.seconds)
