"""The OCPI message log: every request and answer exchanged with a CPO, in and out.

Outgoing requests are recorded by OcpiClient.request, incoming ones by hooks in
ocpi/endpoints/blueprint.py. Rules kept here:
- Rows are written on their own connection, never through the caller's session: logging
  neither commits, rolls back nor waits for the work it logs. By default a background
  thread per process writes them in batches (OCPI_MESSAGE_LOG_BACKGROUND, _Writer): a
  request's log row costs it no transaction; a clean exit writes what waits (atexit), a
  crash loses at most the last OCPI_MESSAGE_LOG_FLUSH_MS of rows (docs/performance.md);
  flush() writes them before a read that needs them at once.
- Written synchronously (tests, or the setting off), a row has its own short transaction.
  SQLite has one writer at a time, so while the caller's own session holds the write lock
  (it flushed and has not ended its transaction) the row waits in the session's info and
  is written as soon as that transaction ends; otherwise it would wait for itself.
- Logging never breaks OCPI: any failure to build or store a row is logged and dropped.
- Cheap: one INSERT row per message; everything else comes from what the request already has.
- Credentials tokens are never stored: no headers are kept, bodies pass through scrub().
"""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import os
import queue
import re
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from flask import Response, current_app, g, has_request_context, request
from sqlalchemy import and_, delete, event, insert, inspect, or_, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session as OrmSession

from extensions import db
from jobs import periodic_task
from ocpi.models import OcpiMessage
from ocpi.transport import json_dumps, now_utc

log = logging.getLogger(__name__)

BODY_LIMIT = 64 * 1024  # bytes of each body kept
READ_LIMIT = 1_000_000  # an incoming body larger than this is not read just to log it
REDACTED = "***redacted***"
MODULES = {
    "versions", "credentials", "locations", "tariffs", "sessions", "cdrs", "commands",
    "tokens", "hubclientinfo", "chargingprofiles",
}
# Bodies the charge keys are read from: the CPO's Session and CDR pushes.
KEYED_MODULES = {"sessions", "cdrs"}
PRUNE_BATCH = 5000
_PENDING = "ocpi_messages_pending"
_STATE = "_ocpi_message"


# --- Scrubbing ----------------------------------------------------------------------------


_TOKEN_TEXT = re.compile(r'("token"\s*:\s*)"(?:[^"\\]|\\.)*"?')


def scrub(body: str) -> str:
    """The body with every credentials token replaced by REDACTED.

    A Credentials object carries its token as the string `token`, whether it is sent
    (POST/PUT credentials) or answered (the envelope's `data`). Every body passes through
    here, whatever its module: a token sent to the wrong URL is still a token. Token
    objects (StartSession's `token`, AuthorizationInfo's) are objects and are kept.
    Valid JSON is rewritten only when it held a token (JSON may spell the key with escapes);
    anything else (truncated, malformed) is cleaned textually, up to a cut-off token.
    """
    if '"token"' not in body and "\\u" not in body:
        return body  # the common case, decided without parsing
    try:
        data = json.loads(body, parse_float=Decimal)
        if not _redact(data):
            return body
        return json_dumps(data)  # numbers keep their digits
    except (ValueError, RecursionError):
        # Not JSON, or too deep to walk (an attacker's body is still logged): cleaned as
        # text.
        return _TOKEN_TEXT.sub(lambda m: f'{m.group(1)}"{REDACTED}"', body)


def _redact(value: Any) -> bool:
    found = False
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "token" and isinstance(item, str):
                value[key] = REDACTED
                found = True
            else:
                found = _redact(item) or found
    elif isinstance(value, list):
        for item in value:
            found = _redact(item) or found
    return found


def _body(raw: bytes | None) -> tuple[str | None, bool]:
    """Stored text of a body: scrubbed first (so a cut cannot leave half a token behind),
    then cut to BODY_LIMIT bytes."""
    if not raw:
        return None, False
    text = scrub(raw.decode("utf-8", errors="replace"))
    encoded = text.encode("utf-8")
    if len(encoded) <= BODY_LIMIT:
        return _clean(text), False
    return _clean(encoded[:BODY_LIMIT].decode("utf-8", errors="ignore")), True


def _clean(text: str | None, limit: int | None = None) -> str | None:
    # PostgreSQL text cannot hold NUL; peers' ids and headers are bounded by the columns.
    if text is None:
        return None
    text = text.replace("\x00", "\ufffd")
    return text[:limit] if limit else text


def _key(value: Any) -> str | None:
    # Stored upper-cased (CiString) and cut to the column: these are lookup keys only.
    return _clean(str(value).upper(), 64) if isinstance(value, str | int) and value != "" else None


# --- What a message is about --------------------------------------------------------------


def module_of(path: str) -> str | None:
    """The OCPI module a URL path addresses: /ocpi/versions and /ocpi/2.2.1 are `versions`,
    /ocpi/2.2.1/sessions/... is `sessions`; also for a peer's URLs (/cpo/2.2.1/...)."""
    parts = [p for p in path.split("/") if p]
    for index, part in enumerate(parts):
        if part == "versions":
            return "versions"
        if re.fullmatch(r"\d+(\.\d+)+", part):
            rest = parts[index + 1:]
            if not rest:
                return "versions"
            return rest[0].lower() if rest[0].lower() in MODULES else None
    return None


@dataclass
class Keys:
    """What ties a message to a charge, without knowing charges."""

    object_id: str | None = None
    authorization_reference: str | None = None
    token_uid: str | None = None

    def take(self, body: Any, *, object_field: str | None = "id") -> None:
        """Fill what is still missing from a JSON body (a Session, CDR or command)."""
        if not isinstance(body, dict):
            return
        if self.object_id is None and object_field:
            self.object_id = _key(body.get(object_field))
        if self.authorization_reference is None:
            self.authorization_reference = _key(body.get("authorization_reference"))
        if self.token_uid is None:
            for name in ("cdr_token", "token"):  # a Session or CDR; a StartSession
                token = body.get(name)
                if isinstance(token, dict) and token.get("uid"):
                    self.token_uid = _key(token["uid"])
                    break


def outgoing_keys(module: str, body: Any) -> Keys:
    keys = Keys()
    if module == "commands" and isinstance(body, dict):
        # The command's uid is the last segment of the response_url we gave.
        response_url = body.get("response_url")
        if isinstance(response_url, str):
            keys.object_id = _key(response_url.rstrip("/").rpartition("/")[2])
        keys.take(body, object_field=None)
    elif module in KEYED_MODULES:
        keys.take(body)
    return keys


# --- Writing --------------------------------------------------------------------------------


def _insert(engine: Engine, rows: list[dict[str, Any]]) -> None:
    with engine.begin() as connection:
        connection.execute(insert(OcpiMessage), rows)


def _store(row: dict[str, Any]) -> None:
    engine = db.engine
    config = current_app.config
    if config.get("OCPI_MESSAGE_LOG_BACKGROUND"):
        _writer(config).put(engine, row)
        return
    session = db.session()
    if _holds_write_lock(session, engine):
        session.info.setdefault(_PENDING, []).append((engine, row))
        return
    _insert(engine, [row])


def _holds_write_lock(session: OrmSession, engine: Engine) -> bool:
    """True when this thread's session holds SQLite's one write lock: an insert on another
    connection would wait for our own transaction, i.e. until busy_timeout."""
    if engine.dialect.name != "sqlite":
        return False
    transaction = session.get_transaction()
    if transaction is None or not transaction.is_active:
        return False  # none, or a failed flush already rolled the database back
    # pysqlite opens a transaction only before a write: reading leaves none open.
    dbapi = session.connection().connection.dbapi_connection
    return dbapi is not None and bool(dbapi.in_transaction)


@event.listens_for(OrmSession, "after_transaction_end")
def _write_pending(session: OrmSession, transaction: Any) -> None:
    if transaction.parent is not None:
        return
    pending = session.info.pop(_PENDING, None)
    for engine, row in pending or ():
        try:
            _insert(engine, [row])
        except Exception:
            log.warning("OCPI message log: could not store %s %s", row.get("method"),
                        row.get("url"), exc_info=True)


def _safely(kind: str, build: Any) -> None:
    try:
        _store(build())
    except Exception:
        log.warning("OCPI message log: could not store an %s message", kind, exc_info=True)


def _party_pk(party: Any) -> int | None:
    """The party's primary key without loading it: after a commit it is expired, and a
    refresh would be a query the log does not need."""
    if party is None:
        return None
    state = inspect(party, raiseerr=False)
    identity = state.identity if state is not None else None
    return identity[0] if identity else None


def current_party_pk() -> int | None:
    """The party whose OCPI request is being answered, if any: what ScanCharge sends while
    answering it (fetching its versions during its registration) concerns that party."""
    if has_request_context() and _STATE in g:
        return _party_pk(g.get("party"))
    return None


# --- Outgoing -------------------------------------------------------------------------------


@dataclass
class Outgoing:
    """One request OcpiClient is sending; record() writes it once the answer (or the
    failure) is known."""

    method: str
    url: str
    module: str
    party_pk: int | None
    request_id: str | None
    correlation_id: str | None
    body: Any
    data: bytes | None
    at: datetime = field(default_factory=now_utc)
    started: float = field(default_factory=time.perf_counter)

    def record(
        self,
        *,
        http_status: int | None = None,
        content: bytes | None = None,
        ocpi_status: Any = None,
        error: str | None = None,
    ) -> None:
        _safely("outgoing", lambda: self._row(http_status, content, ocpi_status, error))

    def _row(
        self, http_status: int | None, content: bytes | None, ocpi_status: Any, error: str | None
    ) -> dict[str, Any]:
        request_body, request_truncated = _body(self.data)
        response_body, response_truncated = _body(content)
        keys = outgoing_keys(self.module, self.body)
        return {
            "at": self.at,
            "direction": "out",
            "party_pk": self.party_pk,
            "method": self.method.upper()[:10],
            "url": _clean(self.url, 2048),
            "module": self.module[:16],
            "http_status": http_status,
            "ocpi_status": ocpi_status if isinstance(ocpi_status, int) else None,
            "duration_ms": round((time.perf_counter() - self.started) * 1000),
            "request_id": _clean(self.request_id, 255),
            "correlation_id": _clean(self.correlation_id, 255),
            "object_id": keys.object_id,
            "authorization_reference": keys.authorization_reference,
            "token_uid": keys.token_uid,
            "request_body": request_body,
            "request_truncated": request_truncated,
            "response_body": response_body,
            "response_truncated": response_truncated,
            "error": _clean(error),
        }


# --- Incoming -------------------------------------------------------------------------------


def is_ocpi_path(path: str) -> bool:
    return path == "/ocpi" or path.startswith("/ocpi/")


def incoming_started() -> None:
    setattr(g, _STATE, (now_utc(), time.perf_counter()))


def incoming_finished(response: Response | None, error: BaseException | None = None) -> None:
    """Record the request being answered; called once, with the response or, when an
    exception escaped before one was made, with that exception."""
    state = g.pop(_STATE, None)
    if state is not None:
        _safely("incoming", lambda: _incoming_row(state, response, error))


def _incoming_row(
    state: tuple[datetime, float], response: Response | None, error: BaseException | None
) -> dict[str, Any]:
    at, started = state
    raw_request = _request_data()
    request_body, request_truncated = _body(raw_request)
    if raw_request is None and (request.content_length or 0) > 0:
        request_truncated = True  # too large to read just to log it
    response_body, response_truncated, ocpi_status = None, False, None
    if response is not None and not response.is_streamed:
        content = response.get_data()
        response_body, response_truncated = _body(content)
        ocpi_status = _status_code(content)
    module = module_of(request.path)
    keys = _incoming_keys(module, raw_request)
    query = request.query_string.decode("latin-1")
    request_id = request.headers.get("X-Request-ID")
    if response is not None:
        request_id = response.headers.get("X-Request-ID") or request_id
    return {
        "at": at,
        "direction": "in",
        "party_pk": _party_pk(g.get("party")),
        "method": request.method[:10],
        "url": _clean(request.path + (f"?{query}" if query else ""), 2048),
        "module": module,
        "http_status": response.status_code if response is not None else 500,
        "ocpi_status": ocpi_status,
        "duration_ms": round((time.perf_counter() - started) * 1000),
        "request_id": _clean(request_id, 255),
        "correlation_id": _clean(request.headers.get("X-Correlation-ID") or None, 255),
        "object_id": keys.object_id,
        "authorization_reference": keys.authorization_reference,
        "token_uid": keys.token_uid,
        "request_body": request_body,
        "request_truncated": request_truncated,
        "response_body": response_body,
        "response_truncated": response_truncated,
        "error": _clean(f"{error.__class__.__name__}: {error}") if error else None,
    }


def _request_data() -> bytes | None:
    length = request.content_length
    if length is not None and length > READ_LIMIT:
        return None
    return request.get_data(cache=True)


def _status_code(content: bytes) -> int | None:
    try:
        status = json.loads(content).get("status_code")
    except (ValueError, AttributeError):
        return None
    return status if isinstance(status, int) else None


def _incoming_keys(module: str | None, raw: bytes | None) -> Keys:
    args = request.view_args or {}
    keys = Keys()
    if module == "tokens":  # real-time authorization names the Token we issued
        keys.object_id = keys.token_uid = _key(args.get("uid"))
        return keys
    keys.object_id = _key(
        args.get("session_id") or args.get("uid") or args.get("location_id")
        or args.get("tariff_id")
    )
    if module in KEYED_MODULES and raw and request.method in {"PUT", "PATCH", "POST"}:
        # A body that is not JSON was answered by the view; the log keeps it as it came.
        with contextlib.suppress(ValueError, RecursionError):
            keys.take(json.loads(raw))
    return keys


# --- Reading and retention ------------------------------------------------------------------


def failed_clause() -> Any:
    """SQL for OcpiMessage.failed: no answer, an HTTP error, or an OCPI error status."""
    m = OcpiMessage
    return or_(
        m.error.is_not(None),
        m.http_status.is_(None),
        m.http_status >= 400,
        and_(m.ocpi_status.is_not(None), or_(m.ocpi_status < 1000, m.ocpi_status >= 2000)),
    )


def prune(older_than: timedelta, batch: int = PRUNE_BATCH) -> int:
    """Delete messages that started before now - older_than, in batches so SQLite's one
    write lock is never held for long; returns how many went."""
    cutoff = now_utc() - older_than
    removed = 0
    while True:
        pks = db.session.scalars(
            select(OcpiMessage.pk).where(OcpiMessage.at < cutoff).limit(batch)
        ).all()
        if not pks:
            db.session.rollback()
            return removed
        db.session.execute(delete(OcpiMessage).where(OcpiMessage.pk.in_(pks)))
        db.session.commit()
        removed += len(pks)


@periodic_task("ocpi.prune_messages", "OCPI_MESSAGE_PRUNE_INTERVAL")
def prune_messages() -> None:
    days = current_app.config["OCPI_MESSAGE_RETENTION_DAYS"]
    if days <= 0:
        return  # 0 keeps messages forever
    removed = prune(timedelta(days=days))
    if removed:
        log.info("OCPI message log: %d messages older than %d days removed", removed, days)




# --- The background writer ----------------------------------------------------------------

_FLUSH = object()  # queued by flush(): write what came before it now
QUEUE_BOUND = 10_000  # rows waiting; beyond it a request writes its own (nothing dropped)


class _Writer:
    """The process's message-log writer: a thread taking rows from a bounded queue and
    inserting them in batches, one transaction per batch, so a request adds no transaction
    of its own for its log row. A full queue makes the request write its row itself."""

    def __init__(self, batch: int, interval_ms: int) -> None:
        self.batch = max(1, batch)
        self.interval = max(1, interval_ms) / 1000
        self.pid = os.getpid()
        self.rows: queue.Queue[Any] = queue.Queue(QUEUE_BOUND)
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name="ocpi-message-log", daemon=True)
        self.thread.start()

    def put(self, engine: Engine, row: dict[str, Any]) -> None:
        try:
            self.rows.put_nowait((engine, row))
        except queue.Full:
            _insert(engine, [row])

    def flush(self) -> None:
        """Return once everything queued before the call is written."""
        if self.thread.is_alive():
            self.rows.put(_FLUSH)
            self.rows.join()
        else:
            self._drain()

    def stop(self) -> None:
        self.stopping.set()
        if self.thread.is_alive():
            self.rows.put(_FLUSH)  # the batch being gathered is written now, not at its time
            self.thread.join(timeout=10)
        self._drain()

    def _run(self) -> None:
        while not self.stopping.is_set():
            try:
                first = self.rows.get(timeout=0.5)
            except queue.Empty:
                continue
            batch, taken = ([] if first is _FLUSH else [first]), 1
            deadline = time.monotonic() + self.interval
            while first is not _FLUSH and len(batch) < self.batch:
                try:
                    item = self.rows.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    break
                taken += 1
                if item is _FLUSH:
                    break
                batch.append(item)
            _write_batch(batch)
            for _ in range(taken):
                self.rows.task_done()

    def _drain(self) -> None:
        # On the calling thread (shutdown, or a writer that died): what is left.
        batch = []
        while True:
            try:
                item = self.rows.get_nowait()
            except queue.Empty:
                break
            if item is not _FLUSH:
                batch.append(item)
            self.rows.task_done()
        _write_batch(batch)


def _write_batch(batch: list[tuple[Engine, dict[str, Any]]]) -> None:
    by_engine: dict[Engine, list[dict[str, Any]]] = {}
    for engine, row in batch:
        by_engine.setdefault(engine, []).append(row)
    for engine, rows in by_engine.items():
        try:
            _insert(engine, rows)
        except Exception:
            # One bad row must not take the batch with it: the rest row by row.
            for row in rows:
                try:
                    _insert(engine, [row])
                except Exception:
                    log.warning("OCPI message log: could not store %s %s", row.get("method"),
                                row.get("url"), exc_info=True)


_writers: dict[int, _Writer] = {}
_writers_lock = threading.Lock()


def _writer(config: Any) -> _Writer:
    """This process's writer, started on first use (after a fork, the child's own)."""
    pid = os.getpid()
    writer = _writers.get(pid)
    if writer is None:
        with _writers_lock:
            writer = _writers.get(pid)
            if writer is None:
                writer = _Writer(config["OCPI_MESSAGE_LOG_BATCH"],
                                 config["OCPI_MESSAGE_LOG_FLUSH_MS"])
                _writers.clear()  # a parent's writer is not this process's thread
                _writers[pid] = writer
    return writer


def flush() -> None:
    """Write every message still waiting in this process's writer (none when each request
    writes its own): before reading the log right after a request."""
    writer = _writers.get(os.getpid())
    if writer is not None:
        writer.flush()


@atexit.register
def shutdown() -> None:
    """A clean exit (a gunicorn worker stopping, Ctrl-C) writes what waits first."""
    writer = _writers.pop(os.getpid(), None)
    if writer is not None:
        writer.stop()
