"""Shared fixtures: a real store per test, on SQLite and on the local PostgreSQL.

PostgreSQL tests run against 127.0.0.1:5432 (user postgres, trust, database ``test``) in a
fresh schema per test; they never skip: an unreachable server fails them.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from crm_hub.store import Store, open_store

PG_DSN = os.environ.get("CRM_HUB_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")


def pg_url(schema: str) -> str:
    """SQLAlchemy URL of the test database with ``schema`` first on the search path."""
    base = PG_DSN.replace("postgresql://", "postgresql+psycopg://", 1)
    return f"{base}?options=-csearch_path%3D{schema}"


@pytest.fixture
def pg_schema() -> Iterator[str]:
    """A fresh, empty PostgreSQL schema, dropped afterwards."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_DSN, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    yield schema
    with psycopg.connect(PG_DSN, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of an empty store, once per backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    schema = request.getfixturevalue("pg_schema")
    return pg_url(schema)


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    """An open, migrated store on each backend."""
    opened = open_store(store_url)
    yield opened
    opened.dispose()


@pytest.fixture
def write_project(tmp_path: Path, store_url: str) -> Callable[..., Path]:
    """Write hub.yaml (with this test's store) plus data files; returns hub.yaml's path.

    Usage: ``write_project(sources_yaml, {"data/c.csv": "id,name\\n1,Ann\\n"})``.
    """

    def write(sources_yaml: str, files: dict[str, str | bytes] | None = None) -> Path:
        for name, content in (files or {}).items():
            path = tmp_path / name
            path.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                path.write_bytes(content)
            else:
                path.write_text(content, encoding="utf-8")
        hub = tmp_path / "hub.yaml"
        hub.write_text(f"store: {store_url}\nsources:\n{sources_yaml}", encoding="utf-8")
        return hub

    return write
