"""Selects compiled once and run on the driver's cursor: for statements run thousands of times
a second (the read API's lookups, the online matcher's candidates).

Building a SQLAlchemy statement and computing its cache key per call cost about ten times what
SQLite spends answering a keyed lookup. A :class:`CompiledSelect` keeps the dialect's SQL, the
order of its parameters, the statement's own constant values and each column's result
processor, so its rows are the ones ``conn.execute(statement)`` would give, as dicts. Parameters
the caller binds are named ``crm_*``; every other bound value is the statement's constant.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, Select
from sqlalchemy.engine import Dialect
from sqlalchemy.pool import PoolProxiedConnection
from sqlalchemy.types import TypeEngine

__all__ = ["CompiledSelect", "KeptConnection", "Reader", "release_kept"]

Reader = Connection | PoolProxiedConnection
"""Where a statement runs: a transaction, or (one statement alone) a pooled driver connection."""


@dataclass(slots=True)
class CompiledSelect:
    """One statement as driver SQL, its parameter order and its columns' converters."""

    sql: str
    positions: tuple[str, ...] | None  # bind names in order (positional drivers), else None
    constants: dict[str, Any]  # the statement's own bound values ('active', ...)
    keys: tuple[str, ...]
    types: tuple[TypeEngine[Any], ...]
    dialect: Dialect
    converters: tuple[Callable[[Any], Any] | None, ...] | None = None  # known after a first run

    @classmethod
    def of(cls, statement: Select[Any], dialect: Dialect) -> CompiledSelect:
        compiled = statement.compile(dialect=dialect)
        positions = tuple(compiled.positiontup or ()) if compiled.positional else None
        ours = {name: None for name in compiled.binds if name.startswith("crm_")}
        constants = {k: v for k, v in compiled.construct_params(ours).items() if k not in ours}
        columns = statement.selected_columns
        types = tuple(c.type.dialect_impl(dialect) for c in columns)
        return cls(compiled.string, positions, constants, tuple(columns.keys()), types, dialect)

    def rows(self, conn: Reader, params: dict[str, Any]) -> list[dict[str, Any]]:
        params = {**self.constants, **params}
        bound: Any = params if self.positions is None else tuple(params[k] for k in self.positions)
        driver = conn.connection if isinstance(conn, Connection) else conn
        cursor = driver.cursor()  # the driver's own: no result metadata per call
        try:
            cursor.execute(self.sql, bound)
            fetched = cursor.fetchall()
            converters = self.converters or self._converters(cursor.description)
        finally:
            cursor.close()
        return [
            {
                key: value if convert is None else convert(value)
                for key, convert, value in zip(self.keys, converters, row, strict=True)
            }
            for row in fetched
        ]

    def _converters(self, description: Any) -> tuple[Callable[[Any], Any] | None, ...]:
        """Each column type's result processor for the driver's type codes (PG needs them)."""
        self.converters = tuple(
            kind.result_processor(self.dialect, column[1])
            for kind, column in zip(self.types, description, strict=True)
        )
        return self.converters


class KeptConnection:
    """A pooled driver connection that one owner keeps across calls, for statements that run
    thousands of times a second: no pool checkout and return (on PostgreSQL, no ping), and no
    transaction events, per statement. ``setup`` runs on each new one's DB-API connection and
    ``reset`` undoes it before the connection goes back to the pool: with its owner, or at
    ``Store.dispose()`` (:func:`release_kept`). After a failure the owner calls
    :meth:`discard`, and the next :meth:`get` opens another."""

    def __init__(
        self,
        engine: Engine,
        setup: Callable[[Any], None] | None = None,
        reset: Callable[[Any], None] | None = None,
    ) -> None:
        self._engine = engine
        self._setup = setup
        self._reset = reset
        self._kept: PoolProxiedConnection | None = None
        self._give_back: weakref.finalize[Any, Any] | None = None
        _kept_on.setdefault(engine, weakref.WeakSet()).add(self)

    @classmethod
    def reader(cls, engine: Engine) -> KeptConnection:
        """One for statements that each read alone: each is its own snapshot, so PostgreSQL
        runs them in autocommit (one round trip, no BEGIN and COMMIT; undone before the pool
        has the connection back). SQLite's connections already are: the engine issues BEGIN."""
        if engine.dialect.name == "postgresql":
            return cls(engine, _autocommit, _no_autocommit)
        return cls(engine)

    def get(self) -> PoolProxiedConnection:
        if self._kept is None:
            kept = self._engine.raw_connection()
            if self._setup is not None:
                self._setup(kept.driver_connection)
            self._kept = kept
            self._give_back = weakref.finalize(self, _give_back, kept, self._reset)
        return self._kept

    def release(self) -> None:
        """Give the connection back to the pool now; the next :meth:`get` opens another."""
        if self._give_back is not None:
            self._give_back()  # once: it is then dead
        self._kept = self._give_back = None

    def discard(self) -> None:
        """Never use the current connection again (a connection that failed once is not trusted)."""
        broken, self._kept = self._kept, None
        if self._give_back is not None:
            self._give_back.detach()
            self._give_back = None
        if broken is not None:
            broken.invalidate()


_kept_on: weakref.WeakKeyDictionary[Engine, weakref.WeakSet[KeptConnection]] = (
    weakref.WeakKeyDictionary()
)


def release_kept(engine: Engine) -> None:
    """Give back every connection kept on ``engine`` (before its pool is disposed: a connection
    checked out then would be dropped still open)."""
    for kept in list(_kept_on.get(engine, ())):
        kept.release()


def _give_back(kept: PoolProxiedConnection, reset: Callable[[Any], None] | None) -> None:
    if reset is not None and kept.is_valid:
        reset(kept.driver_connection)
    kept.close()


def _autocommit(driver: Any) -> None:
    driver.autocommit = True


def _no_autocommit(driver: Any) -> None:
    driver.autocommit = False
