"""Outgoing requests are safe: a peer names the URLs ScanCharge fetches, so only http(s) to
public addresses (or targets the operator allows) are reached, the address actually
connected is checked, redirects are not followed, one deadline bounds the whole request,
and errors never carry what the target answered. Real sockets on 127.0.0.1 throughout."""

from __future__ import annotations

import contextlib
import ipaddress
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask, redirect

from extensions import db
from ocpi import credentials as creds
from ocpi.client import OcpiClient, PeerUnreachable
from ocpi.models import OcpiMessage, Party
from ocpi.outgoing import (
    REDIRECT_REFUSED,
    OutgoingFailure,
    fetch,
    non_public_kind,
    parse_allow_list,
)
from ocpi.transport import OcpiError, authorization_header, envelope
from servers import ServerThread

SECRET = "SECRET-MARKER-7f3a"
PUBLIC_IP = "93.184.216.34"  # a public address; nothing here ever reaches it


@pytest.fixture
def app(make_app: Callable[..., Any]) -> Iterator[Flask]:
    """ScanCharge as in production: no non-public target allowed."""
    application = make_app(OCPI_ALLOWED_PRIVATE_TARGETS="", OCPI_HTTP_TIMEOUT=5)
    with application.app_context():
        yield application
        db.session.remove()
        db.engine.dispose()


class RawServer:
    """A TCP server on 127.0.0.1 that records every connection and the bytes it received,
    and answers with `respond(conn)` (a request must have arrived first)."""

    def __init__(self, respond: Callable[[socket.socket], None] | None = None,
                 family: int = socket.AF_INET, host: str = "127.0.0.1") -> None:
        self.respond = respond
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self.received = b""
        self.finished = 0  # connections this side has seen end (the client closed or cut)
        self._finish = threading.Condition()
        self._stop = False
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        self.sock.settimeout(0.1)
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        self.connections += 1
        conn.settimeout(3)
        with conn:
            try:
                data = conn.recv(65536)
                self.received += data
                if data and self.respond:
                    self.respond(conn)
            except OSError:
                pass  # the client cut us off: that is what some tests want
        with self._finish:
            self.finished += 1
            self._finish.notify_all()

    def wait_finished(self, count: int, timeout: float = 5.0) -> None:
        """Until `count` connections have ended here: what they received is then final."""
        with self._finish:
            if not self._finish.wait_for(lambda: self.finished >= count, timeout):
                raise AssertionError(f"{self.finished} of {count} connections ended")

    def close(self) -> None:
        self._stop = True
        with contextlib.suppress(OSError):  # already closed
            self.sock.shutdown(socket.SHUT_RDWR)  # wakes the accept() at once (Linux)
        self._thread.join(timeout=2)
        self.sock.close()


@pytest.fixture
def raw_server() -> Iterator[Callable[..., RawServer]]:
    started: list[RawServer] = []

    def start(respond: Callable[[socket.socket], None] | None = None, **kw: Any) -> RawServer:
        server = RawServer(respond, **kw)
        started.append(server)
        return server

    yield start
    for server in started:
        server.close()


def answer(status: str, body: bytes, content_type: str = "application/json"
           ) -> Callable[[socket.socket], None]:
    def respond(conn: socket.socket) -> None:
        conn.sendall(f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\n"
                     f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                     + body)
    return respond


ENVELOPE = json.dumps({"data": [], "status_code": 1000,
                       "timestamp": "2026-01-01T00:00:00Z"}).encode()


@pytest.fixture
def connects(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every address a socket in this process tries to connect to."""
    calls: list[Any] = []
    original = socket.socket.connect

    def spy(self: socket.socket, address: Any) -> None:
        calls.append(address)
        return original(self, address)

    monkeypatch.setattr(socket.socket, "connect", spy)
    return calls


def get(url: str, **kw: Any) -> Any:
    return OcpiClient("token-a").request("GET", url, module="versions", **kw)


def last_message() -> OcpiMessage:
    db.session.rollback()
    return db.session.scalars(db.select(OcpiMessage).order_by(OcpiMessage.pk.desc())).first()


# --- Refused before any connection -----------------------------------------------------


REFUSED = [
    ("ftp://cpo.example/versions", "only http and https URLs are fetched, not ftp"),
    ("file:///etc/passwd", "only http and https URLs are fetched, not file"),
    ("gopher://127.0.0.1:{port}/", "only http and https URLs are fetched, not gopher"),
    ("http://127.0.0.1:{port}/ocpi/versions", "127.0.0.1 is a loopback address"),
    ("http://localhost:{port}/ocpi/versions", "is a loopback address"),
    ("http://127.1.2.3:{port}/", "127.1.2.3 is a loopback address"),
    ("http://10.0.0.1/ocpi/versions", "10.0.0.1 is a private address"),
    ("http://192.168.1.1/", "192.168.1.1 is a private address"),
    ("http://172.16.0.1/", "172.16.0.1 is a private address"),
    ("http://100.64.0.1/", "100.64.0.1 is a shared (CGNAT) address"),
    ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 is a link-local address"),
    ("https://169.254.169.254/latest", "169.254.169.254 is a link-local address"),
    ("http://[::1]:{port}/", "::1 is a loopback address"),
    ("http://[fe80::1]/", "fe80::1 is a link-local address"),
    ("http://[fc00::1]/", "fc00::1 is a private address"),
    ("http://224.0.0.1/", "224.0.0.1 is a multicast address"),
    ("http://[ff02::1]/", "ff02::1 is a multicast address"),
    ("http://0.0.0.0:{port}/", "0.0.0.0 is an unspecified address"),
    ("http://[::ffff:127.0.0.1]:{port}/", "is a loopback address"),
    ("http://[::ffff:169.254.169.254]/", "is a link-local address"),
    ("http://240.0.0.1/", "240.0.0.1 is a private address"),
]


@pytest.mark.parametrize(("url", "reason"), REFUSED)
def test_a_target_that_is_not_public_is_refused_with_no_connection_made(
    app: Flask, raw_server: Callable[..., RawServer], connects: list[Any], url: str,
    reason: str,
) -> None:
    listening = raw_server(answer("200 OK", ENVELOPE))
    url = url.format(port=listening.port)
    with pytest.raises(PeerUnreachable) as raised:
        get(url)
    assert raised.value.message.startswith(f"GET {url}: refused: ")
    assert raised.value.message.endswith(reason)
    assert raised.value.status_code == 3001
    assert connects == [] and listening.connections == 0
    assert last_message().error.startswith("refused")  # every try is in the log


def test_a_name_with_one_inside_address_among_public_ones_is_refused(
    app: Flask, monkeypatch: pytest.MonkeyPatch, connects: list[Any],
    raw_server: Callable[..., RawServer],
) -> None:
    inside = raw_server(answer("200 OK", ENVELOPE))

    def resolve(host: str, port: Any, *args: Any, **kw: Any) -> list[Any]:
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (PUBLIC_IP, port)),
                (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    with pytest.raises(PeerUnreachable, match=r"127.0.0.1 is a loopback address"):
        get(f"http://cpo.example:{inside.port}/ocpi/versions")
    assert connects == [] and inside.connections == 0


# --- DNS rebinding ---------------------------------------------------------------------


def test_exactly_the_checked_address_is_connected_not_a_second_resolution(
    app: Flask, monkeypatch: pytest.MonkeyPatch, connects: list[Any],
    raw_server: Callable[..., RawServer],
) -> None:
    """A rebinding name answers a public address to the check and 127.0.0.1 afterwards: a
    client that resolves again to connect (urllib3's default) would reach the inside."""
    inside = raw_server(answer("200 OK", ENVELOPE))
    answers = iter([PUBLIC_IP])

    def rebinding(host: str, port: Any, *args: Any, **kw: Any) -> list[Any]:
        address = next(answers, "127.0.0.1")
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]

    def no_internet(self: socket.socket, address: Any) -> None:
        connects.append(address)
        if address[0] == PUBLIC_IP:
            raise ConnectionRefusedError(111, "Connection refused")
        return original(self, address)

    original = socket.socket.connect
    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    monkeypatch.setattr(socket.socket, "connect", no_internet)
    with pytest.raises(PeerUnreachable, match="could not connect"):
        get(f"http://rebind.example:{inside.port}/ocpi/versions")
    assert [a[0] for a in connects] == [PUBLIC_IP]
    assert inside.connections == 0


def test_the_address_actually_connected_is_checked_before_a_byte_is_sent(
    app: Flask, monkeypatch: pytest.MonkeyPatch, raw_server: Callable[..., RawServer],
) -> None:
    """Resolution says public, but the socket lands on 127.0.0.1 (rebinding below the
    resolver, a NAT): the connected peer is refused and the inside hears nothing."""
    inside = raw_server(answer("200 OK", ENVELOPE))
    original = socket.socket.connect

    def public(host: str, port: Any, *args: Any, **kw: Any) -> list[Any]:
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (PUBLIC_IP, port))]

    def lands_inside(self: socket.socket, address: Any) -> None:
        if address[0] == PUBLIC_IP:
            address = ("127.0.0.1", inside.port)
        return original(self, address)

    monkeypatch.setattr(socket, "getaddrinfo", public)
    monkeypatch.setattr(socket.socket, "connect", lands_inside)
    with pytest.raises(PeerUnreachable, match=r"refused: 127.0.0.1 is a loopback address"):
        get(f"http://cpo.example:{inside.port}/ocpi/versions")
    inside.wait_finished(1)  # the server thread saw the connection end
    assert inside.connections == 1  # the socket was connected...
    assert inside.received == b""  # ...and closed before any request went out


# --- Redirects, deadline, size ---------------------------------------------------------


def test_a_redirect_is_not_followed(app: Flask) -> None:
    hits: list[str] = []
    target = Flask("redirect-target")
    target.add_url_rule("/versions", "versions",
                        lambda: hits.append("hit") or envelope([]))
    hop = Flask("redirector")
    with ServerThread(target) as to, ServerThread(hop) as start:
        hop.add_url_rule("/versions", "versions",
                         lambda: redirect(f"{to.url}/versions", code=302))
        app.config["OCPI_ALLOWED_PRIVATE_TARGETS"] = f"127.0.0.1:{start.port},127.0.0.1:{to.port}"
        with pytest.raises(PeerUnreachable) as raised:
            get(f"{start.url}/versions")
    assert raised.value.message == f"GET {start.url}/versions: {REDIRECT_REFUSED}"
    assert hits == []
    assert last_message().http_status == 302


def drip(head: bytes, body_bytes: int = 1000) -> Callable[[socket.socket], None]:
    def respond(conn: socket.socket) -> None:
        for byte in head + b"x" * body_bytes:
            conn.sendall(bytes([byte]))
            time.sleep(0.3)
    return respond


@pytest.mark.parametrize("where", ["body", "headers"])
def test_a_dripping_peer_is_cut_at_the_one_deadline(
    app: Flask, raw_server: Callable[..., RawServer], where: str
) -> None:
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n"
    if where == "body":
        server = raw_server(lambda conn: (conn.sendall(head), drip(b"")(conn)))
    else:  # the status line and headers, read inside http.client, drip as well
        server = raw_server(drip(head))
    app.config.update(OCPI_HTTP_TIMEOUT=1,
                      OCPI_ALLOWED_PRIVATE_TARGETS=f"127.0.0.1:{server.port}")
    started = time.monotonic()
    with pytest.raises(PeerUnreachable) as raised:
        get(f"http://127.0.0.1:{server.port}/ocpi/versions")
    elapsed = time.monotonic() - started
    assert elapsed < 2.5, f"the request took {elapsed:.1f} s against a 1 s budget"
    assert raised.value.message.endswith(": timed out after 1 s")


def test_a_peer_that_accepts_and_never_answers_is_cut_at_the_deadline(
    app: Flask, raw_server: Callable[..., RawServer]
) -> None:
    silent = raw_server(lambda conn: time.sleep(3))
    app.config.update(OCPI_HTTP_TIMEOUT=0.5,
                      OCPI_ALLOWED_PRIVATE_TARGETS=f"127.0.0.1:{silent.port}")
    started = time.monotonic()
    with pytest.raises(PeerUnreachable, match=r"timed out after 0.5 s"):
        get(f"http://127.0.0.1:{silent.port}/")
    assert time.monotonic() - started < 2


@pytest.mark.parametrize("declared", [True, False])
def test_an_answer_larger_than_the_cap_is_refused(
    app: Flask, raw_server: Callable[..., RawServer], declared: bool
) -> None:
    body = b"[" + b"1," * 3000 + b"1]"

    def respond(conn: socket.socket) -> None:
        length = f"Content-Length: {len(body)}\r\n" if declared else ""
        conn.sendall(f"HTTP/1.1 200 OK\r\n{length}Connection: close\r\n\r\n".encode() + body)

    server = raw_server(respond)
    allow = parse_allow_list(f"127.0.0.1:{server.port}")
    with pytest.raises(OutgoingFailure, match="the answer is larger than 1000 bytes"):
        fetch("GET", f"http://127.0.0.1:{server.port}/", headers={}, budget=5, allow=allow,
              max_bytes=1000)


# --- What errors say -------------------------------------------------------------------


@pytest.mark.parametrize(("status", "body", "says"), [
    ("502 Bad Gateway", f"<html>{SECRET}</html>".encode(),
     "HTTP 502, not an OCPI response (not JSON)"),
    ("200 OK", f"{SECRET} is not json".encode(), "not an OCPI response (not JSON)"),
    ("200 OK", json.dumps({"secret": SECRET}).encode(),
     "not an OCPI response (no OCPI envelope)"),
])
def test_what_the_target_answered_is_never_in_the_error(
    app: Flask, raw_server: Callable[..., RawServer], status: str, body: bytes, says: str
) -> None:
    server = raw_server(answer(status, body, "text/html"))
    app.config["OCPI_ALLOWED_PRIVATE_TARGETS"] = f"127.0.0.1:{server.port}"
    url = f"http://127.0.0.1:{server.port}/ocpi/versions"
    with pytest.raises(PeerUnreachable) as raised:
        get(url)
    assert raised.value.message == f"GET {url}: {says}"
    assert SECRET in last_message().response_body  # the operator's log keeps it


def test_a_target_that_does_not_speak_http_is_not_quoted(
    app: Flask, raw_server: Callable[..., RawServer]
) -> None:
    # http.client quotes a bad status line in its exception; that text must not travel.
    server = raw_server(lambda conn: conn.sendall(f"SSH-2.0-{SECRET}\r\n\r\n".encode()))
    app.config["OCPI_ALLOWED_PRIVATE_TARGETS"] = f"127.0.0.1:{server.port}"
    with pytest.raises(PeerUnreachable) as raised:
        get(f"http://127.0.0.1:{server.port}/")
    assert SECRET not in raised.value.message
    assert "the connection failed or the answer was not HTTP" in raised.value.message


def test_an_ocpi_error_answer_gives_its_status_not_its_text(
    app: Flask, raw_server: Callable[..., RawServer]
) -> None:
    body = json.dumps({"status_code": 2001, "status_message": SECRET,
                       "timestamp": "2026-01-01T00:00:00Z"}).encode()
    server = raw_server(answer("200 OK", body))
    app.config["OCPI_ALLOWED_PRIVATE_TARGETS"] = f"127.0.0.1:{server.port}"
    with pytest.raises(OcpiError) as raised:
        get(f"http://127.0.0.1:{server.port}/")
    assert raised.value.status_code == 2001 and SECRET not in raised.value.message
    assert "the peer answered OCPI status 2001 (HTTP 200)" in raised.value.message


# --- The operator's allow-list ---------------------------------------------------------


def test_an_allow_listed_loopback_target_works_and_only_that_one(
    app: Flask, raw_server: Callable[..., RawServer]
) -> None:
    allowed = raw_server(answer("200 OK", ENVELOPE))
    other = raw_server(answer("200 OK", ENVELOPE))
    app.config["OCPI_ALLOWED_PRIVATE_TARGETS"] = f"127.0.0.1:{allowed.port}"
    payload, reply = get(f"http://127.0.0.1:{allowed.port}/ocpi/versions")
    assert payload["status_code"] == 1000 and reply.status_code == 200
    with pytest.raises(PeerUnreachable, match=r"127.0.0.1 is a loopback address"):
        get(f"http://127.0.0.1:{other.port}/ocpi/versions")
    assert other.connections == 0


@pytest.mark.parametrize("entry", ["127.0.0.0/8", "127.0.0.1", "localhost:{port}"])
def test_allow_list_entries_by_network_host_and_host_port(
    app: Flask, raw_server: Callable[..., RawServer], entry: str
) -> None:
    server = raw_server(answer("200 OK", ENVELOPE))
    app.config["OCPI_ALLOWED_PRIVATE_TARGETS"] = "10.9.9.9:1, " + entry.format(port=server.port)
    host = "localhost" if entry.startswith("localhost") else "127.0.0.1"
    payload, _ = get(f"http://{host}:{server.port}/")
    assert payload["status_code"] == 1000


def test_allow_list_parsing() -> None:
    allow = parse_allow_list(" cpo.internal:8443, [fd00::5]:443,10.20.0.0/16 ,Host.Lan ,")
    assert allow.host_ports == {("cpo.internal", 8443), ("fd00::5", 443)}
    assert allow.hosts == {"host.lan"}
    ip = ipaddress.ip_address
    assert allow.allows("x", ip("10.20.3.4"), 80) and not allow.allows("x", ip("10.21.0.1"), 80)
    assert allow.allows("CPO.internal.", ip("10.0.0.1"), 8443)
    assert not allow.allows("cpo.internal", ip("10.0.0.1"), 443)
    for wrong in ("cpo:http", "[::1", "10.0.0.0/33", ":80"):
        with pytest.raises(ValueError, match="OCPI_ALLOWED_PRIVATE_TARGETS"):
            parse_allow_list(wrong)


@pytest.mark.parametrize(("address", "kind"), [
    ("8.8.8.8", None),
    ("2606:4700:4700::1111", None),
    ("2002:c0a8:0101::1", "a private address"),  # 6to4 around 192.168.1.1
    ("64:ff9b::7f00:1", "a loopback address"),  # NAT64 around 127.0.0.1
    ("::7f00:1", "a reserved address"),  # IPv4-compatible, deprecated
    ("192.0.2.1", "a private address"),  # documentation range
    ("fec0::1", "a site-local address"),
])
def test_address_kinds(address: str, kind: str | None) -> None:
    assert non_public_kind(ipaddress.ip_address(address)) == kind


# --- A registration that points inside --------------------------------------------------


def test_credentials_whose_url_points_at_the_metadata_address_are_answered_3001(
    app: Flask, connects: list[Any]
) -> None:
    party, token_a = creds.invite("Intruder", [("CPO", "SE", "ABC")])
    body = {"token": "their-token-b", "url": "http://169.254.169.254/latest/meta-data/",
            "roles": [{"role": "CPO", "country_code": "SE", "party_id": "ABC",
                       "business_details": {"name": "Intruder"}}]}
    reply = app.test_client().post("/ocpi/2.2.1/credentials", json=body,
                                   headers={"Authorization": authorization_header(token_a)})
    answer_ = reply.get_json()
    assert answer_["status_code"] == 3001
    assert answer_["status_message"] == (
        "GET http://169.254.169.254/latest/meta-data/: refused: 169.254.169.254 is a "
        "link-local address")
    assert connects == []  # no request left ScanCharge
    db.session.rollback()
    assert db.session.get(Party, party.pk).status == "PENDING"
