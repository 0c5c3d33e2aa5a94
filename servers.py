"""Serving WSGI apps on real sockets inside this process: the embedded default runs
ScanCharge and the CPO simulator this way, and end-to-end tests do the same."""

from __future__ import annotations

import threading

from werkzeug.serving import BaseWSGIServer, make_server


class ServerThread:
    """A threaded WSGI server on host:port (port 0 picks a free one), in a daemon thread."""

    # How often serve_forever looks for a shutdown request: stop() waits up to this long.
    # socketserver's default (0.5 s) made every end-to-end test wait a second to tear down.
    POLL_INTERVAL = 0.02

    def __init__(self, app, host: str = "127.0.0.1", port: int = 0) -> None:
        self.server: BaseWSGIServer = make_server(host, port, app, threaded=True)
        self.host = host
        self.port = self.server.server_port
        self._thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": self.POLL_INTERVAL},
            name=f"wsgi-{self.port}", daemon=True,
        )

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> ServerThread:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
