"""Open the store: one SQLAlchemy engine, SQLite tuned for a single writer, migrations applied
on first use.

SQLite runs in WAL mode; write transactions start with ``BEGIN IMMEDIATE`` so two writers queue
on the busy timeout instead of failing when one upgrades a read lock. PostgreSQL migrations take
an advisory lock so two processes starting at once do not both create the tables.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError

from crm_hub.errors import ConfigError, StoreError
from crm_hub.store.compiled import release_kept

__all__ = ["HEAD_REVISION", "Store", "open_store", "planner_off"]

# The newest migration; tests/unit/store check it equals Alembic's head.
HEAD_REVISION = "0011"
_MIGRATIONS = Path(__file__).parent / "migrations"
_MIGRATION_LOCK = 7_451_228_901  # pg advisory lock id for migrations


class Store:
    """A handle on the store: an engine plus the dialect-specific ways to use it."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.dialect: str = engine.dialect.name

    @property
    def safe_url(self) -> str:
        """The URL without its password, fit for messages and logs."""
        return self.engine.url.render_as_string(hide_password=True)

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        """A write transaction: committed on success, rolled back on any error."""
        try:
            with self.engine.begin() as conn:
                yield conn
        except DBAPIError as exc:
            if exc.connection_invalidated or "could not connect" in str(exc.orig):
                raise StoreError(
                    f"lost the store at {self.safe_url}: {exc.orig}", detail=str(exc)
                ) from exc
            raise

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read-only transaction (on SQLite it does not take the write lock)."""
        with self.engine.connect() as conn:
            conn = conn.execution_options(crm_hub_readonly=True)
            with conn.begin():
                yield conn

    def dispose(self) -> None:
        """Close every pooled connection, kept ones included."""
        release_kept(self.engine)
        self.engine.dispose()


@contextmanager
def planner_off(conn: Connection, *methods: str) -> Iterator[None]:
    """PostgreSQL: the planner avoids ``methods`` (e.g. ``"sort"`` → ``enable_sort``) for
    the statements run meanwhile, in this transaction; then they are back to the session's
    setting. Nothing on SQLite."""
    if conn.dialect.name != "postgresql":
        yield
        return
    for method in methods:
        conn.exec_driver_sql(f"SET LOCAL enable_{method} = off")
    try:
        yield
    finally:
        for method in methods:
            conn.exec_driver_sql(f"RESET enable_{method}")


def _make_engine(url: str) -> Engine:
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ConfigError(
            f"store: {url!r} is not a database URL "
            "(e.g. sqlite:///crm-hub.db or postgresql+psycopg://user@host/db)"
        ) from None
    kwargs: dict[str, Any] = {}
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database and database != ":memory:":
            folder = Path(database).parent
            if not folder.exists():
                raise ConfigError(f"store: folder {folder} of the SQLite file does not exist")
        kwargs["connect_args"] = {"timeout": 60, "check_same_thread": False}
    elif parsed.get_backend_name() == "postgresql":
        kwargs["pool_pre_ping"] = True
    else:
        raise ConfigError(
            f"store: {parsed.get_backend_name()!r} is not supported; use sqlite or postgresql"
        )
    try:
        engine = create_engine(parsed, **kwargs)
    except NoSuchModuleError as exc:
        raise ConfigError(f"store: no driver for {url!r}: {exc}") from None
    if engine.dialect.name == "sqlite":
        _tune_sqlite(engine)
    return engine


def _tune_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves, below
        cursor = dbapi_conn.cursor()
        for pragma in (
            "busy_timeout=60000",  # first: switching a new file to WAL may wait for a lock
            "journal_mode=WAL",
            "synchronous=NORMAL",
            "foreign_keys=ON",
            "cache_size=-65536",
        ):
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        readonly = conn.get_execution_options().get("crm_hub_readonly")
        conn.exec_driver_sql("BEGIN" if readonly else "BEGIN IMMEDIATE")


def current_revision(store: Store) -> str | None:
    """The store's migration revision, or None for an empty database."""
    with store.read() as conn:
        if not store.engine.dialect.has_table(conn, "alembic_version"):
            return None
        return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


def upgrade(store: Store) -> str | None:
    """Apply every pending migration; returns the revision before (None: empty store)."""
    from alembic import command
    from alembic.config import Config

    before = current_revision(store)
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    with store.begin() as conn:
        if store.dialect == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _MIGRATION_LOCK})
        config.attributes["connection"] = conn
        command.upgrade(config, "head")
    return before


def open_store(url: str, *, migrate: bool = True) -> Store:
    """Connect to the store at ``url`` and bring its schema up to date.

    Raises:
        ConfigError: the URL is malformed or names an unsupported database.
        StoreError: the database cannot be reached, or is newer than this crm-hub.
    """
    store = Store(_make_engine(url))
    try:
        revision = _probe_revision(store)
    except DBAPIError as exc:
        store.dispose()
        raise StoreError(
            f"cannot reach the store at {store.safe_url}: {_first_line(exc.orig)}",
            detail=str(exc),
        ) from None
    if revision != HEAD_REVISION and migrate:
        if revision is not None and not _is_known_revision(revision):
            raise StoreError(
                f"the store at {store.safe_url} is at migration {revision}, newer than this "
                "crm-hub knows; upgrade crm-hub"
            )
        upgrade(store)
    return store


def _probe_revision(store: Store) -> str | None:
    """current_revision, waiting out another process creating a fresh SQLite file."""
    for attempt in range(50):
        try:
            return current_revision(store)
        except DBAPIError as exc:
            if "database is locked" not in str(exc.orig) or attempt == 49:
                raise
            time.sleep(0.2)
    return None


def _is_known_revision(revision: str) -> bool:
    return any(p.name.startswith(f"{revision}_") for p in (_MIGRATIONS / "versions").glob("*.py"))


def _first_line(error: Any) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
