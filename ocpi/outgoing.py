"""The one door for HTTP requests ScanCharge sends to OCPI peers: fetch().

Every URL it fetches was given by a peer (a credentials `url`, the endpoints of a version,
a pagination Link), so a peer must not be able to make ScanCharge reach what only ScanCharge
can reach (loopback, the private network, the cloud metadata address), hold a worker with a
slow answer, or read what such a target answered through our error messages:

- only http and https, refused before any I/O;
- every address the host resolves to must be public, unless the operator allows the target
  (OCPI_ALLOWED_PRIVATE_TARGETS), and the address actually connected is checked again;
- no redirects: OCPI does not use them, and following one would reach an unchecked URL;
- one deadline for the whole request (resolution, connect, TLS, headers, body) and a cap on
  the size of the answer;
- an OutgoingFailure says what failed in words of our own, never with the target's bytes.
"""

from __future__ import annotations

import contextlib
import contextvars
import ipaddress
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from requests.structures import CaseInsensitiveDict
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

ALLOWED_SCHEMES = ("http", "https")
# No OCPI answer comes near this (a full Locations page is a few hundred kB); a larger one
# is a peer filling our memory.
MAX_RESPONSE_BYTES = 10 * 1024 * 1024
READ_CHUNK = 64 * 1024
REDIRECT_REFUSED = ("the peer answered a redirect (3xx), which OCPI does not use; "
                    "redirects are not followed")

_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class OutgoingFailure(Exception):
    """A request that did not give an answer we may use.

    `reason` is safe to show the peer (it names the kind of failure, never what the target
    sent); `detail`, `http_status` and `content` are for the operator's message log only.
    """

    def __init__(self, reason: str, *, detail: str | None = None,
                 http_status: int | None = None, content: bytes | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.detail = detail or reason
        self.http_status = http_status
        self.content = content
        # Connected, and then no answer: the peer may have received the request and acted on
        # it (a command may still be carried out), unlike a request that never left.
        self.sent_unanswered = False


@dataclass
class Answer:
    status_code: int
    headers: CaseInsensitiveDict
    content: bytes


# --- Which addresses a peer may make us reach ---------------------------------------------


def _embedded_ipv4(ip: IPAddress) -> list[IPAddress]:
    # An IPv6 address can carry an IPv4 one that the stack or a gateway then reaches
    # (::ffff:127.0.0.1 is loopback); Python 3.11 does not look inside for is_loopback etc.
    if not isinstance(ip, ipaddress.IPv6Address):
        return []
    found: list[IPAddress] = []
    if ip.ipv4_mapped:
        found.append(ip.ipv4_mapped)
    if ip.sixtofour:
        found.append(ip.sixtofour)
    if ip.teredo:
        found.extend(ip.teredo)
    if ip in _NAT64:
        found.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    return found


def _kind(ip: IPAddress) -> str | None:
    # Most specific first: 0.0.0.0 and 169.254.x are also is_private, but naming them says
    # more to whoever reads the error.
    if ip.is_unspecified:
        return "an unspecified address"
    if ip.is_loopback:
        return "a loopback address"
    if ip.is_link_local:
        return "a link-local address"
    if ip.is_multicast:  # is_global is True for most multicast in 3.11: checked by name
        return "a multicast address"
    if ip in _CGNAT:
        return "a shared (CGNAT) address"
    if ip.is_private:
        return "a private address"
    if ip.is_reserved:
        return "a reserved address"
    if isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local:
        return "a site-local address"
    if not ip.is_global:
        return "not a public address"
    return None


def non_public_kind(ip: IPAddress) -> str | None:
    """Why `ip` is not a public address ("a loopback address"), or None when it is."""
    # The embedded IPv4 address first: it is what gets reached, and ::ffff:127.0.0.1 is
    # better named loopback than by the mapped range's own kind.
    for candidate in (*_embedded_ipv4(ip), ip):
        kind = _kind(candidate)
        if kind:
            return kind
    return None


@dataclass(frozen=True)
class AllowList:
    """Non-public targets the operator allows: a host (any port), host:port, or a network."""

    hosts: frozenset[str] = frozenset()
    host_ports: frozenset[tuple[str, int]] = frozenset()
    networks: tuple[IPNetwork, ...] = ()

    def allows(self, host: str, ip: IPAddress, port: int) -> bool:
        names = {_normal_host(host), str(ip)}
        if names & self.hosts or any((n, port) in self.host_ports for n in names):
            return True
        return any(c in net for net in self.networks
                   for c in (ip, *_embedded_ipv4(ip)) if c.version == net.version)


def _normal_host(host: str) -> str:
    host = host.strip().strip("[]").rstrip(".").lower()
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return host


@lru_cache(maxsize=32)
def parse_allow_list(text: str) -> AllowList:
    """OCPI_ALLOWED_PRIVATE_TARGETS: comma-separated `host`, `host:port`, `[v6]:port` or
    CIDR entries. A wrong entry raises ValueError naming it."""
    hosts: set[str] = set()
    host_ports: set[tuple[str, int]] = set()
    networks: list[IPNetwork] = []
    for entry in (e.strip() for e in text.split(",")):
        if not entry:
            continue
        try:
            if "/" in entry:
                networks.append(ipaddress.ip_network(entry, strict=False))
                continue
            host, port = _split_host_port(entry)
        except ValueError as exc:
            raise ValueError(f"OCPI_ALLOWED_PRIVATE_TARGETS: {entry!r} is not a host, "
                             f"host:port or network ({exc})") from exc
        if port is None:
            hosts.add(host)
        else:
            host_ports.add((host, port))
    return AllowList(frozenset(hosts), frozenset(host_ports), tuple(networks))


def _split_host_port(entry: str) -> tuple[str, int | None]:
    if entry.startswith("["):
        host, closed, rest = entry[1:].partition("]")
        if not closed:
            raise ValueError("no closing ]")
        ipaddress.IPv6Address(host)  # brackets hold an IPv6 address and nothing else
        port = rest.removeprefix(":") if rest.startswith(":") else None
        if rest and port is None:
            raise ValueError("text after ]")
    elif entry.count(":") == 1:
        host, port = entry.split(":")
    else:  # a bare name, IPv4 or IPv6 address
        host, port = entry, None
    if not host:
        raise ValueError("no host")
    if port is not None and not (port.isdigit() and 0 < int(port) < 65536):
        raise ValueError(f"port {port!r}")
    return _normal_host(host), int(port) if port is not None else None


# --- One request's guard: deadline, address checks, watchdog ------------------------------


# Lookups run here so a resolver that never answers cannot outlast the deadline; a stuck
# lookup keeps its thread until the resolver gives up, the request does not wait for it.
_RESOLVER = ThreadPoolExecutor(max_workers=4, thread_name_prefix="ocpi-resolve")


@dataclass
class _Guard:
    allow: AllowList
    budget: float
    deadline: float = 0.0
    connected: bool = False
    _watchdogs: list[_Watchdog] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.deadline = time.monotonic() + self.budget

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    @property
    def expired(self) -> bool:
        return self.remaining() <= 0

    def timed_out(self) -> OutgoingFailure:
        return OutgoingFailure(f"timed out after {self.budget:g} s")

    def check(self, host: str, ip: IPAddress, port: int) -> None:
        kind = non_public_kind(ip)
        if kind and not self.allow.allows(host, ip, port):
            raise OutgoingFailure(f"refused: {ip} is {kind}")

    def resolve(self, host: str, port: int) -> list[tuple[Any, ...]]:
        """Every address of host, each checked: one refused address refuses them all, so
        a name that also points inside cannot be tried until an inside one answers."""
        future = _RESOLVER.submit(socket.getaddrinfo, host, port, 0, socket.SOCK_STREAM)
        try:
            infos = future.result(timeout=max(self.remaining(), 0))
        except FutureTimeout:
            raise self.timed_out() from None
        except socket.gaierror as exc:
            raise OutgoingFailure(f"could not resolve {host}",
                                  detail=f"could not resolve {host}: {exc}") from exc
        for *_, sockaddr in infos:
            self.check(host, ipaddress.ip_address(sockaddr[0]), port)
        return infos

    def watch(self, sock: socket.socket) -> None:
        self._watchdogs.append(_Watchdog(sock, self.remaining()))

    def close(self) -> None:
        for watchdog in self._watchdogs:
            watchdog.disarm()


class _Watchdog:
    """Shuts the connection down at the deadline, whatever it is blocked in.

    Socket timeouts bound each read, not their sum: a peer dripping a byte a second keeps
    every read short, in the TLS handshake, the status line and headers (read inside
    http.client, out of our reach) as much as in the body. A shutdown from this timer ends
    any blocked read at once. It holds its own duplicate of the socket's descriptor, so it
    never shuts down a descriptor number that was closed and reused meanwhile, and TLS
    (which takes over the original socket object) does not hide the socket from it.
    """

    def __init__(self, sock: socket.socket, seconds: float) -> None:
        self._sock = sock.dup()
        self._lock = threading.Lock()
        self._timer = threading.Timer(max(seconds, 0), self._fire)
        self._timer.daemon = True
        self._timer.start()

    def _fire(self) -> None:
        with self._lock:
            if self._sock.fileno() != -1:
                with contextlib.suppress(OSError):  # the peer may have closed it already
                    self._sock.shutdown(socket.SHUT_RDWR)

    def disarm(self) -> None:
        self._timer.cancel()
        with self._lock:
            self._sock.close()


_CURRENT: contextvars.ContextVar[_Guard] = contextvars.ContextVar("ocpi_outgoing_guard")


class _GuardedConnectionMixin:
    """Connects only to checked addresses, then checks the address actually connected.

    Why here and not a check of the URL before the request: the check must be about the
    socket that carries the request. A check before the request and a connect that resolves
    again can see two different answers (DNS rebinding: public for the check, 127.0.0.1 for
    the connect). Here one resolution is checked and exactly those addresses are connected
    to; the peer address of the connected socket is checked once more before a byte is sent.
    Pinning the URL to a checked IP instead would mean rewriting Host, SNI and certificate
    checks by hand; this keeps urllib3's TLS untouched.
    """

    host: str
    port: int
    timeout: Any
    socket_options: Any

    def _new_conn(self) -> socket.socket:
        guard = _CURRENT.get(None)
        if guard is None:  # only fetch() mounts these connections; nothing else may use them
            raise OutgoingFailure("refused: request outside the outgoing guard")
        infos = guard.resolve(self.host, self.port)
        sock = self._connect_first(guard, infos)
        try:
            guard.check(self.host, ipaddress.ip_address(sock.getpeername()[0]), self.port)
            guard.watch(sock)
        except BaseException:
            sock.close()
            raise
        guard.connected = True
        return sock

    def _connect_first(self, guard: _Guard, infos: list[tuple[Any, ...]]) -> socket.socket:
        problem: OSError | None = None
        for family, socktype, proto, _, sockaddr in infos:
            if guard.expired:
                raise guard.timed_out()
            sock = socket.socket(family, socktype, proto)
            try:
                for option in self.socket_options or ():
                    sock.setsockopt(*option)
                sock.settimeout(guard.remaining())
                sock.connect(sockaddr)
            except OSError as exc:
                sock.close()
                problem = exc
                continue
            sock.settimeout(self.timeout if isinstance(self.timeout, int | float) else None)
            return sock
        if isinstance(problem, TimeoutError) or guard.expired:
            raise guard.timed_out()
        reason = problem.strerror if problem and problem.strerror else "no address answered"
        # The log keeps the family name it always had for a peer that cannot be reached.
        raise OutgoingFailure(f"could not connect ({reason.lower()})",
                              detail=f"ConnectionError: {problem!r}")


class _GuardedHTTPConnection(_GuardedConnectionMixin, HTTPConnection):
    pass


class _GuardedHTTPSConnection(_GuardedConnectionMixin, HTTPSConnection):
    pass


class _GuardedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _GuardedHTTPConnection


class _GuardedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _GuardedHTTPSConnection


class _GuardedAdapter(HTTPAdapter):
    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _GuardedHTTPPool,
                                                   "https": _GuardedHTTPSPool}


def _session() -> requests.Session:
    session = requests.Session()
    # Environment proxies would make the checked peer the proxy, and the proxy would then
    # reach the target for us; .netrc would add credentials the peer never got from us.
    session.trust_env = False
    session.mount("http://", _GuardedAdapter())
    session.mount("https://", _GuardedAdapter())
    return session


# --- The request ----------------------------------------------------------------------------


def check_scheme(url: str) -> None:
    try:
        parts = urlsplit(url)
    except ValueError:
        raise OutgoingFailure("refused: not a valid URL") from None
    if parts.scheme.lower() not in ALLOWED_SCHEMES:
        shown = parts.scheme.lower() or "none"
        raise OutgoingFailure(f"refused: only http and https URLs are fetched, not {shown}")
    if not parts.hostname:
        raise OutgoingFailure("refused: the URL names no host")


def fetch(
    method: str,
    url: str,
    *,
    headers: dict[str, str],
    data: bytes | None = None,
    params: dict[str, Any] | None = None,
    budget: float,
    allow: AllowList,
    max_bytes: int = MAX_RESPONSE_BYTES,
) -> Answer:
    """Send one request and read its whole answer within `budget` seconds.

    Raises OutgoingFailure for a refused target, a failure to connect, a timeout, a
    redirect, or an answer larger than max_bytes. Any other HTTP status is an Answer: OCPI
    peers answer errors (401, 404) with an envelope the caller reads.
    """
    check_scheme(url)
    guard = _Guard(allow=allow, budget=budget)
    token = _CURRENT.set(guard)
    try:
        with _session() as http:
            try:
                response = http.request(
                    method, url, data=data, params=params, headers=headers,
                    timeout=(budget, budget), allow_redirects=False, stream=True,
                )
            except requests.RequestException as exc:
                raise _failure(exc, guard) from exc
            with response:
                if 300 <= response.status_code < 400:
                    raise OutgoingFailure(REDIRECT_REFUSED, http_status=response.status_code,
                                          detail=f"{REDIRECT_REFUSED}: Location "
                                                 f"{response.headers.get('Location')}")
                content = _read_body(response, guard, max_bytes)
            return Answer(response.status_code, response.headers, content)
    except OutgoingFailure as failure:
        failure.sent_unanswered = guard.connected and failure.http_status is None
        raise
    finally:
        guard.close()
        _CURRENT.reset(token)


def _read_body(response: requests.Response, guard: _Guard, max_bytes: int) -> bytes:
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise _too_large(response.status_code, max_bytes)
    body = bytearray()
    while True:
        if guard.expired:
            raise _with_status(guard.timed_out(), response.status_code, body)
        try:
            # read1 returns what has arrived, so a drip is seen here between chunks.
            chunk = response.raw.read1(READ_CHUNK, decode_content=True)
        except Exception as exc:  # urllib3 raises several families for a broken body
            failure = guard.timed_out() if guard.expired else OutgoingFailure(
                "the answer broke off before its end",
                detail=f"body read failed: {exc.__class__.__name__}: {exc}")
            raise _with_status(failure, response.status_code, body) from exc
        if not chunk:
            if guard.expired:  # the watchdog's shutdown looks like an end of body
                raise _with_status(guard.timed_out(), response.status_code, body)
            return bytes(body)
        body += chunk
        if len(body) > max_bytes:
            raise _too_large(response.status_code, max_bytes)


def _too_large(status: int, max_bytes: int) -> OutgoingFailure:
    return OutgoingFailure(f"the answer is larger than {max_bytes} bytes", http_status=status)


def _with_status(failure: OutgoingFailure, status: int, body: bytearray) -> OutgoingFailure:
    failure.http_status = status
    failure.content = bytes(body)
    return failure


def _failure(exc: requests.RequestException, guard: _Guard) -> OutgoingFailure:
    """Our words for what requests raised: its texts can carry the target's first bytes
    (a status line that is not HTTP is quoted in BadStatusLine), so they go to the log."""
    detail = f"{exc.__class__.__name__}: {exc}"
    if isinstance(exc, requests.Timeout) or guard.expired:
        reason = guard.timed_out().reason
    elif isinstance(exc, requests.exceptions.SSLError):
        reason = "the TLS handshake failed"
    elif isinstance(exc, requests.exceptions.InvalidURL | requests.exceptions.MissingSchema
                    | requests.exceptions.InvalidSchema):
        reason = "refused: not a valid URL"
    else:
        reason = "the connection failed or the answer was not HTTP"
    return OutgoingFailure(reason, detail=detail)
