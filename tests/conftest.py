"""Shared fixtures: a real store per test, on SQLite and on the local PostgreSQL.

PostgreSQL tests run against 127.0.0.1:5432 (user postgres, trust, database ``test``) in a
fresh schema per test; they never skip: an unreachable server fails them.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

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


class _EmptiedSchemas:
    """Migrated PostgreSQL schemas emptied after their test, for the next test of this worker.

    Creating and migrating a schema costs about half a second, emptying one a hundredth. A
    schema is reused only if it is exactly what the migrations make (same columns, indexes and
    objects, at the head revision) and still empty when taken; anything else, or a lock held
    past a few seconds, and it is dropped instead.
    """

    def __init__(self) -> None:
        self.ready: list[str] = []
        self.fresh_shape: str | None = None

    def take(self) -> str:
        with psycopg.connect(PG_DSN, autocommit=True) as conn:
            while self.ready:
                schema = self.ready.pop()
                if self._still_empty(conn, schema):
                    return schema
                conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
            schema = f"t_{uuid.uuid4().hex[:12]}"
            conn.execute(f'CREATE SCHEMA "{schema}"')
            return schema

    def give_back(self, schema: str) -> None:
        with psycopg.connect(PG_DSN, autocommit=True) as conn:
            try:
                reusable = self._as_migrated(conn, schema)
                if reusable:
                    self._empty(conn, schema)
            except psycopg.Error:  # not migrated, a table dropped, a lock held
                reusable = False
            if reusable:
                self.ready.append(schema)
            else:
                conn.execute(f'DROP SCHEMA "{schema}" CASCADE')

    def drop_all(self) -> None:
        with psycopg.connect(PG_DSN, autocommit=True) as conn:
            for schema in self.ready:
                conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
        self.ready.clear()

    def _as_migrated(self, conn: psycopg.Connection[Any], schema: str) -> bool:
        from crm_hub.store.engine import HEAD_REVISION

        version = conn.execute(f'SELECT version_num FROM "{schema}".alembic_version').fetchall()
        if version != [(HEAD_REVISION,)]:
            return False
        if self.fresh_shape is None:
            fresh = f"t_{uuid.uuid4().hex[:12]}"
            conn.execute(f'CREATE SCHEMA "{fresh}"')
            try:
                open_store(pg_url(fresh)).dispose()
                self.fresh_shape = _shape(conn, fresh)
            finally:
                conn.execute(f'DROP SCHEMA "{fresh}" CASCADE')
        return _shape(conn, schema) == self.fresh_shape

    @staticmethod
    def _empty(conn: psycopg.Connection[Any], schema: str) -> None:
        conn.execute("SET lock_timeout = '3s'")
        with conn.transaction():
            for table in _tables(conn, schema):
                conn.execute(f'DELETE FROM "{schema}"."{table}"')
            for (sequence,) in conn.execute(
                "SELECT sequencename FROM pg_sequences WHERE schemaname = %s", (schema,)
            ).fetchall():
                conn.execute(f'ALTER SEQUENCE "{schema}"."{sequence}" RESTART')

    @staticmethod
    def _still_empty(conn: psycopg.Connection[Any], schema: str) -> bool:
        """Nothing written since it was emptied (by a process its last test left running)."""
        probes = [f'SELECT 1 FROM "{schema}"."{t}"' for t in _tables(conn, schema)]
        return not conn.execute(" UNION ALL ".join(probes) + " LIMIT 1").fetchall()


def _tables(conn: psycopg.Connection[Any], schema: str) -> list[str]:
    rows = conn.execute(
        "SELECT tablename FROM pg_tables WHERE schemaname = %s AND tablename <> 'alembic_version'",
        (schema,),
    ).fetchall()
    return [table for (table,) in rows]


def _shape(conn: psycopg.Connection[Any], schema: str) -> str:
    """Columns, indexes and other objects of ``schema``, without its name."""
    rows = conn.execute(
        "SELECT 'c', table_name, column_name, data_type, is_nullable"
        " FROM information_schema.columns WHERE table_schema = %(s)s"
        " UNION ALL SELECT 'i', tablename, indexname, indexdef, ''"
        " FROM pg_indexes WHERE schemaname = %(s)s"
        " UNION ALL SELECT 'r', relname, relkind::text, '', '' FROM pg_class"
        " WHERE relnamespace = %(s)s::regnamespace AND relkind NOT IN ('r', 'i', 'S')"
        " UNION ALL SELECT 'f', proname, '', '', '' FROM pg_proc"
        " WHERE pronamespace = %(s)s::regnamespace ORDER BY 1, 2, 3, 4",
        {"s": schema},
    ).fetchall()
    return repr(rows).replace(f'"{schema}".', "").replace(f"{schema}.", "")


@pytest.fixture(scope="session")
def _emptied_schemas() -> Iterator[_EmptiedSchemas]:
    schemas = _EmptiedSchemas()
    yield schemas
    schemas.drop_all()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty store, once per backend (on PostgreSQL, possibly already migrated:
    a test that needs an unmigrated schema uses ``pg_schema``)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}"
        return
    schemas: _EmptiedSchemas = request.getfixturevalue("_emptied_schemas")
    schema = schemas.take()
    yield pg_url(schema)
    schemas.give_back(schema)


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh_store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Like ``store_url``, but never migrated yet (for tests of the migrations themselves)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    return pg_url(request.getfixturevalue("pg_schema"))


@pytest.fixture(scope="session")
def _migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A freshly migrated SQLite store file, copied for each test that asks for ``store``."""
    path = tmp_path_factory.mktemp("template") / "store.db"
    open_store(f"sqlite:///{path}").dispose()
    return path


@pytest.fixture
def store(store_url: str, request: pytest.FixtureRequest) -> Iterator[Store]:
    """An open, migrated store on each backend."""
    if store_url.startswith("sqlite:///"):
        target = Path(store_url.removeprefix("sqlite:///"))
        if not target.exists():  # copying the migrated file is 50 times faster than migrating
            shutil.copyfile(request.getfixturevalue("_migrated_sqlite"), target)
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
