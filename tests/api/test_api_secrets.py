"""Secrets never leave: not in responses, errors, logs or the store (a sentinel hunt), over a
real uvicorn server on loopback."""

from __future__ import annotations

import io
import logging
import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
import uvicorn
from sqlalchemy import select, text

from crm_hub.api import create_app
from crm_hub.api.tokens import create_token, hash_token
from crm_hub.logging import configure_logging
from crm_hub.store import Store
from crm_hub.store.schema import api_tokens, audit_log
from tests.api.conftest import ANN, build_world

SENTINEL = "SENTINELx7f3a9q"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def served(store: Store) -> Iterator[tuple[str, Store]]:
    """The app on a real uvicorn server on 127.0.0.1, stopped afterwards."""
    build_world(store)
    config = uvicorn.Config(
        create_app(store), host="127.0.0.1", port=_free_port(), log_level="debug",
        access_log=False, lifespan="off",
    )  # fmt: skip
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{config.port}", store
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def captured_logs() -> Iterator[io.StringIO]:
    """Everything crm-hub and uvicorn log, at DEBUG."""
    configure_logging("DEBUG")
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    names = ("crm_hub", "uvicorn", "fastapi", "starlette", "sqlalchemy")  # the server side
    loggers = [logging.getLogger(n) for n in names]
    levels = [lg.level for lg in loggers]
    for logger in loggers:
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)
    yield stream
    for logger, level in zip(loggers, levels, strict=True):
        logger.removeHandler(handler)
        logger.setLevel(level)
    configure_logging("WARNING")


def test_no_secret_in_responses_errors_logs_or_store(
    served: tuple[str, Store], captured_logs: io.StringIO
) -> None:
    base, store = served
    good = create_token(store, name="till", role="manager", branch="north").secret
    bad_tokens = [f"chub_{SENTINEL}", SENTINEL, f"Bearer {SENTINEL}", f"chub_{SENTINEL}" * 20]
    seen: list[str] = []
    with httpx.Client(base_url=base, timeout=10) as client:

        def call(method: str, path: str, token: str, **kwargs: object) -> httpx.Response:
            response = client.request(
                method, path, headers={"Authorization": f"Bearer {token}",
                                       "X-Api-Key": SENTINEL, "If-None-Match": SENTINEL},
                **kwargs,  # type: ignore[arg-type]
            )  # fmt: skip
            seen.append(response.text + repr(dict(response.headers)))
            return response

        for token in bad_tokens:
            assert call("GET", f"/customers/{ANN}", token).status_code == 401
        assert call("GET", f"/customers/{ANN}", good).status_code == 200
        assert call("GET", "/customers", good, params={"q": "ann"}).status_code == 200
        assert call("GET", "/customers", good, params={"q": SENTINEL * 20}).status_code == 422
        cursor = call("GET", f"/customers/{ANN}/orders", good, params={"cursor": SENTINEL})
        assert cursor.status_code == 400
        assert call("GET", f"/customers/{SENTINEL}", good).status_code == 422
        assert call("POST", "/match", good, json={"token": SENTINEL}).status_code == 403
        with store.begin() as conn:  # a real failure inside a request: the audit table is gone
            conn.execute(text("DROP TABLE audit_log"))
        failed = call("GET", f"/customers/{ANN}", good)
        assert failed.status_code == 500
        assert failed.headers["content-type"] == "application/problem+json"
        assert "audit_log" not in failed.text and "Traceback" not in failed.text
    logs = captured_logs.getvalue()
    assert "api request failed" in logs  # the failure was logged, for ops
    for blob in (*seen, logs):
        assert SENTINEL not in blob
        assert good not in blob and good[5:] not in blob
    with store.read() as conn:
        stored = conn.execute(select(api_tokens.c.token_hash)).scalars().all()
        assert hash_token(good) in stored and good not in repr(stored)


def test_audit_rows_hold_no_query_strings(store: Store) -> None:
    build_world(store)
    from fastapi.testclient import TestClient

    good = create_token(store, name="t", role="admin").secret
    with TestClient(create_app(store)) as client:
        client.get("/customers", params={"q": "07911 123456"},
                   headers={"Authorization": f"Bearer {good}"})  # fmt: skip
    with store.read() as conn:
        paths = conn.execute(select(audit_log.c.path)).scalars().all()
    assert paths == ["/customers"]
