"""The simulator's internal, version-neutral session state.

Only ocpi.simulator.dialect turns these into a given OCPI version's JSON; nothing here knows
field names of the wire format, so a 2.1.1 dialect can later serialise the same state.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from ocpi.simulator.pricing import Costs, price_session
from ocpi.wire import CdrLocation, CdrToken, Tariff


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


@dataclass
class SimSession:
    id: str
    location_id: str
    evse_uid: str
    connector_id: str
    cdr_token: CdrToken
    authorization_reference: str | None
    tariff: Tariff | None
    currency: str
    power_w: int
    # Where it happened, frozen at the start: a CDR describes the site as it was then.
    cdr_location: CdrLocation
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
