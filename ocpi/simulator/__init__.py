"""A simulated OCPI 2.2.1 CPO, so ScanCharge (the eMSP) can be tested end to end over HTTP.

It is a separate Flask app with in-memory state: five Swedish demo locations, two ad-hoc
tariffs, remote start/stop with sessions that charge in simulated time, CDRs, and switchable
misbehaviour for failure-branch tests. It shares only ocpi.transport and ocpi.wire with
ScanCharge, so it cannot accidentally agree with ScanCharge's own bugs.

    sim = create_simulator(SimulatorSettings(base_url="", token_a="secret-a"))
    server = ServerThread(sim.app).start()   # from servers
    ...
    sim.shutdown(); server.stop()
"""

from ocpi.simulator.core import Simulator, create_simulator
from ocpi.simulator.settings import Behaviour, SimulatorSettings

__all__ = ["Behaviour", "Simulator", "SimulatorSettings", "create_simulator"]
