"""A simulated OCPI CPO (2.2.1 and/or 2.1.1), so ScanCharge (the eMSP) can be tested end to
end over HTTP, and a simulated hub (cpo_simulator.hub) to put in front of several of them.

The simulator is a separate Flask app with in-memory state: five Swedish demo locations, two
ad-hoc tariffs, remote start/stop with sessions that charge in simulated time, CDRs, and
switchable misbehaviour for failure-branch tests. With SimulatorSettings(state_path=...) the
state is also kept in a file (cpo_simulator.persistence), as the embedded default does, so a
restart carries on: call sim.resume() once the eMSP can be reached.
It shares only ocpi.transport and ocpi.modules with ScanCharge, so it cannot accidentally agree
with ScanCharge's own bugs.

    sim = create_simulator(SimulatorSettings(base_url="", token_a="secret-a"))
    server = ServerThread(sim.app).start()   # from servers
    ...
    sim.shutdown(); server.stop()

A 2.1.1 CPO: SimulatorSettings(..., versions=("2.1.1",)); one offering both lets the eMSP
choose: versions=("2.1.1", "2.2.1"). A second CPO with its own ids: party_id="SI2".
"""

from cpo_simulator.app import create_app
from cpo_simulator.core import Simulator
from cpo_simulator.settings import Behaviour, SimulatorSettings


def create_simulator(settings: SimulatorSettings) -> Simulator:
    """A simulator with its Flask app (simulator.app), carrying on from settings.state_path
    if that file exists."""
    simulator = Simulator(settings)
    simulator.app = create_app(simulator)
    return simulator


__all__ = ["Behaviour", "Simulator", "SimulatorSettings", "create_simulator"]
