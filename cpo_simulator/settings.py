"""How the simulator is configured (fixed at start) and how it misbehaves (changeable live)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from cpo_simulator.dialect import SUPPORTED_VERSIONS


@dataclass
class SimulatorSettings:
    """Start-up configuration of one simulated CPO platform.

    base_url may be left empty: URLs the simulator publishes about itself (versions, Link
    headers) are then derived from the incoming request, which is what tests serving it on
    port 0 need, since the port is only known after the server exists.

    versions are the OCPI versions offered at /ocpi/versions, e.g. ("2.1.1",) for a CPO
    still on 2.1.1 or ("2.1.1", "2.2.1") for one offering both. The eMSP chooses by the
    credentials endpoint it registers at (it should pick the highest it speaks); the
    simulator then pushes in that version until a PUT at another version's credentials
    endpoint switches it, as credentials.md says.
    """

    base_url: str
    token_a: str
    country_code: str = "SE"
    party_id: str = "SIM"
    # Simulated seconds per real second: a three-hour AC charge in three real minutes at 60.
    time_factor: float = 60.0
    # Real seconds between two Session updates pushed to the eMSP.
    tick_seconds: float = 1.0
    # Server-side cap on page size, kept tiny by default so clients really paginate.
    page_limit: int = 2
    command_timeout: int = 30
    # Real seconds between answering a command and posting its asynchronous CommandResult.
    result_delay: float = 0.2
    # The battery is full at this many kWh and the session completes by itself.
    session_max_kwh: Decimal = Decimal(60)
    # Seconds any request to the eMSP may take before it is given up and logged as failed.
    http_timeout: float = 5.0
    versions: tuple[str, ...] = ("2.2.1",)
    # 2.1.1 only: total_cost of Sessions and CDRs is defined "excluding VAT" there, which is
    # what is reported by default; True reports the price incl. VAT instead, as some 2.1.1
    # CPOs do (2.2.1 always reports both, so this does not apply to it).
    report_vat_included: bool = False
    # Prefix of the demo Location ids and EVSE uids ("SIM-STO", "SIM-STO-1"); None means the
    # party_id, so two simulators with different party_ids never share an id.
    id_prefix: str | None = None
    # Where the simulator keeps its state (registration, EVSE statuses, sessions, CDRs not
    # delivered yet, commands not answered yet) so it carries on after a restart, even a
    # kill -9; None keeps everything in memory only, as tests want. See
    # cpo_simulator.persistence. With a state file, call Simulator.resume() once the eMSP
    # can be reached, to restart the charge points of what was loaded.
    state_path: str | None = None

    def __post_init__(self) -> None:
        self.versions = tuple(self.versions)
        unknown = [v for v in self.versions if v not in SUPPORTED_VERSIONS]
        if not self.versions or unknown:
            raise ValueError(f"versions must be some of {SUPPORTED_VERSIONS}, not "
                             f"{self.versions!r}")

    @property
    def prefix(self) -> str:
        return self.id_prefix if self.id_prefix is not None else self.party_id


START_BEHAVIOURS = ("accept", "reject", "failed", "timeout_result", "evse_occupied", "no_result")
STOP_BEHAVIOURS = ("accept", "reject")
CDR_BEHAVIOURS = ("send", "never")


@dataclass
class Behaviour:
    """What the simulated charge points do with the next commands (see set_behaviour)."""

    start: str
    stop: str
    cdr: str
    result_delay: float
    command_timeout: int
    time_factor: float
    session_max_kwh: Decimal

    @classmethod
    def defaults(cls, settings: SimulatorSettings) -> Behaviour:
        return cls(
            start="accept",
            stop="accept",
            cdr="send",
            result_delay=float(settings.result_delay),
            command_timeout=int(settings.command_timeout),
            time_factor=float(settings.time_factor),
            session_max_kwh=Decimal(str(settings.session_max_kwh)),
        )

    def updated(self, changes: dict[str, Any]) -> Behaviour:
        """A copy with `changes` applied; ValueError (TypeError for booleans) names the first
        bad key or value, so a test typo fails loudly instead of testing the happy path."""
        values = asdict(self)
        for key, value in changes.items():
            if key not in values:
                raise ValueError(f"unknown behaviour key {key!r}; known: {sorted(values)}")
            values[key] = _coerce(key, value)
        return Behaviour(**values)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        # A string keeps the kWh limit exact in JSON; it is a quantity, but never a float here.
        data["session_max_kwh"] = str(self.session_max_kwh)
        return data


def _coerce(key: str, value: Any) -> Any:
    choices = {"start": START_BEHAVIOURS, "stop": STOP_BEHAVIOURS, "cdr": CDR_BEHAVIOURS}
    if key in choices:
        if value not in choices[key]:
            raise ValueError(f"{key} must be one of {choices[key]}, not {value!r}")
        return value
    if isinstance(value, bool):  # bool is an int to Python, never a sensible knob value
        raise TypeError(f"{key} must be a number, not a boolean")
    try:
        if key == "command_timeout":
            number: Any = int(value)
        elif key == "session_max_kwh":
            number = Decimal(str(value))
        else:
            number = float(value)
    except (TypeError, ValueError, InvalidOperation) as exc:
        raise ValueError(f"{key} must be a number, not {value!r}") from exc
    if key == "result_delay":
        if number < 0:
            raise ValueError("result_delay must not be negative")
    elif not number > 0:
        raise ValueError(f"{key} must be positive")
    return number
