"""The message log's background writer (OCPI_MESSAGE_LOG_BACKGROUND): requests add no
transaction of their own for their log rows, which are written in batches; flush() and a
clean shutdown write everything that waits, so nothing is lost but to a crash."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from sqlalchemy import event, func, select

from extensions import db
from ocpi import messages
from ocpi.models import OcpiMessage, Party, token_hash

TOKEN = "writer-token"
AUTH = {"Authorization": f"Token {base64.b64encode(TOKEN.encode()).decode()}"}


@pytest.fixture
def background(make_app: Any) -> Any:
    # A long interval: only a full batch, flush() or shutdown() writes before it.
    app = make_app(OCPI_MESSAGE_LOG_BACKGROUND=True, OCPI_MESSAGE_LOG_FLUSH_MS=60_000,
                   OCPI_MESSAGE_LOG_BATCH=5)
    with app.app_context():
        db.session.add(Party(name="CPO", country_code="SE", party_id="CPO",
                             status="CONNECTED", incoming_token_hash=token_hash(TOKEN),
                             endpoints=[]))
        db.session.commit()
        yield app
        messages.shutdown()
        db.session.remove()
        db.engine.dispose()


def _logged() -> int:
    db.session.rollback()  # a fresh snapshot: the writer commits on its own connection
    return db.session.scalar(select(func.count()).select_from(OcpiMessage)) or 0


def _inserts_while(run: Any) -> int:
    inserts: list[str] = []

    def seen(conn: Any, cursor: Any, statement: str, *rest: Any) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO OCPI_MESSAGES"):
            inserts.append(statement)

    event.listen(db.engine, "before_cursor_execute", seen)
    try:
        run()
    finally:
        event.remove(db.engine, "before_cursor_execute", seen)
    return len(inserts)


def test_rows_wait_for_the_writer_and_flush_writes_them_in_one_batch(background: Any) -> None:
    client = background.test_client()

    def requests_then_flush() -> None:
        for _ in range(3):
            assert client.get("/ocpi/versions", headers=AUTH).status_code == 200
        assert _logged() == 0, "a request wrote its own log row"
        messages.flush()

    assert _inserts_while(requests_then_flush) == 1
    assert _logged() == 3


def test_a_full_batch_is_written_without_waiting(background: Any) -> None:
    client = background.test_client()
    for _ in range(5):
        client.get("/ocpi/versions", headers=AUTH)
    writer = messages._writers[next(iter(messages._writers))]
    writer.rows.join()  # the batch of 5 went as soon as it was full
    assert _logged() == 5


def test_shutdown_writes_what_waits(background: Any) -> None:
    client = background.test_client()
    for _ in range(2):
        client.get("/ocpi/versions", headers=AUTH)
    messages.shutdown()
    assert _logged() == 2
    assert messages._writers == {}
