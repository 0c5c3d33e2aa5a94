"""Run the CPO simulator on its own: python -m cpo_simulator --port 5001 --token-a TOKEN.

--versions 2.1.1 makes it a 2.1.1 CPO; --versions 2.1.1,2.2.1 offers both. --state FILE keeps
its state in FILE, so a restart carries on with the registration and the open sessions."""

from __future__ import annotations

import argparse
import secrets
import signal
import threading
from types import FrameType

from cpo_simulator import SimulatorSettings, create_simulator
from servers import ServerThread


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cpo_simulator",
                                     description="OCPI 2.2.1/2.1.1 CPO simulator")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5001)
    parser.add_argument("--token-a", default="",
                        help="credentials token A for registration (random if omitted)")
    parser.add_argument("--base-url", default="",
                        help="public URL if not http://HOST:PORT (e.g. behind a proxy)")
    parser.add_argument("--time-factor", type=float, default=60.0,
                        help="simulated seconds per real second")
    parser.add_argument("--tick-seconds", type=float, default=1.0,
                        help="real seconds between session updates")
    parser.add_argument("--versions", default="2.2.1",
                        help="comma-separated OCPI versions to offer, e.g. 2.1.1,2.2.1")
    parser.add_argument("--country-code", default="SE")
    parser.add_argument("--party-id", default="SIM",
                        help="also the prefix of the demo location ids")
    parser.add_argument("--report-vat-included", action="store_true",
                        help="2.1.1: report total_cost incl. VAT instead of excl. VAT")
    parser.add_argument("--state", default=None, metavar="FILE",
                        help="keep the state in FILE (JSON) across restarts; delete it to reset")
    args = parser.parse_args(argv)

    settings = SimulatorSettings(
        base_url=args.base_url,
        token_a=args.token_a or secrets.token_urlsafe(24),
        time_factor=args.time_factor,
        tick_seconds=args.tick_seconds,
        versions=tuple(v.strip() for v in args.versions.split(",") if v.strip()),
        country_code=args.country_code,
        party_id=args.party_id,
        report_vat_included=args.report_vat_included,
        state_path=args.state,
    )
    simulator = create_simulator(settings)
    server = ServerThread(simulator.app, args.host, args.port)
    if not settings.base_url:
        settings.base_url = server.url
    server.start()
    simulator.resume()  # the eMSP may not be up yet: undelivered CDRs are retried
    print(f"CPO simulator versions URL: {settings.base_url}/ocpi/versions", flush=True)
    print(f"Token A: {settings.token_a}", flush=True)
    if simulator.registered:
        print("Still registered with the eMSP from the state file (token A is needed only "
              "after it unregisters)", flush=True)

    done = threading.Event()

    def stop(signum: int, frame: FrameType | None) -> None:
        done.set()

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    while not done.wait(0.5):  # short waits keep the main thread responsive to signals
        pass
    simulator.shutdown()
    server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
