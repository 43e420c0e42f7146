"""The commonest lookups as statements compiled once: search by phone, e-mail or id, one profile.

:func:`~crm_hub.api.lookup.search` and :func:`~crm_hub.api.lookup.load_customer` build their
SQLAlchemy statement per call; building it and computing its cache key cost about ten times
what SQLite spends answering it. Here each statement is built and compiled once per store (the
same selects, filters and order), run on the driver's cursor with bound parameters (inside
the caller's transaction, or alone on a pooled driver connection: one statement needs no
transaction of its own to read one consistent snapshot), and its values are
converted by the columns' own result processors, so the rows are the ones the builders return.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Select, bindparam, true
from sqlalchemy.engine import Dialect
from sqlalchemy.pool import PoolProxiedConnection
from sqlalchemy.types import TypeEngine

from crm_hub.api.lookup import (
    SearchTerm,
    customer_select,
    profile_select,
    split_customer,
)
from crm_hub.api.policy import Principal
from crm_hub.store.schema import masters, profiles

__all__ = ["PreparedLookups", "Reader"]

Reader = Connection | PoolProxiedConnection
"""Where a statement runs: a transaction, or (one statement alone) a pooled driver connection."""

_BRANCH = "crm_branch"
_MASTER_ID = "crm_master_id"
_ROW_LIMIT = "crm_row_limit"


@dataclass(slots=True)
class _Compiled:
    """One statement as driver SQL, its parameter order and its columns' converters."""

    sql: str
    positions: tuple[str, ...] | None  # bind names in order (positional drivers), else None
    constants: dict[str, Any]  # the statement's own bound values ('active', ...)
    keys: tuple[str, ...]
    types: tuple[TypeEngine[Any], ...]
    dialect: Dialect
    converters: tuple[Callable[[Any], Any] | None, ...] | None = None  # known after a first run

    @classmethod
    def of(cls, statement: Select[Any], dialect: Dialect) -> _Compiled:
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


class PreparedLookups:
    """Phone, e-mail and id searches and the profile read, compiled for one store's dialect.

    ``width`` is how many normalised forms a search term may have (e-mail: 3; phone: one per
    region); fewer are padded by repeating the last, which ``IN`` ignores.
    """

    def __init__(self, dialect: Dialect, width: int) -> None:
        self.width = max(width, 3)
        self._statements = {
            (kind, branch): _Compiled.of(self._build(kind, branch), dialect)
            for kind in ("id", "email", "phone", "customer")
            for branch in (False, True)
        }

    def search(
        self, conn: Reader, principal: Principal, term: SearchTerm, limit: int
    ) -> tuple[list[dict[str, Any]], bool]:
        """The first page of an id, e-mail or phone search, and whether more rows follow."""
        values = list(term.values[: self.width])
        values += values[-1:] * (self.width - len(values))
        params: dict[str, Any] = {f"crm_v{i}": v for i, v in enumerate(values)}
        params.update({_ROW_LIMIT: limit + 1, _BRANCH: principal.branch})
        rows = self._run(conn, term.kind, principal, params)
        return rows[:limit], len(rows) > limit

    def customer(
        self, conn: Reader, principal: Principal, master_id: str
    ) -> tuple[dict[str, Any], dict[str, Any] | None] | None:
        """As :func:`~crm_hub.api.lookup.load_customer`: profile and traits, or None."""
        params = {_MASTER_ID: master_id, _BRANCH: principal.branch}
        rows = self._run(conn, "customer", principal, params)
        return split_customer(rows[0]) if rows else None

    def _run(
        self, conn: Reader, kind: str, principal: Principal, params: dict[str, Any]
    ) -> list[dict[str, Any]]:
        return self._statements[kind, principal.branch is not None].rows(conn, params)

    def _build(self, kind: str, branch: bool) -> Select[Any]:
        visible = [masters.c.status == "active"]
        visible.append(profiles.c.branch == bindparam(_BRANCH) if branch else true())
        if kind == "customer":
            return customer_select(profiles.c.master_id == bindparam(_MASTER_ID), *visible)
        column = {"id": profiles.c.master_id, "email": profiles.c.email, "phone": profiles.c.phone}
        forms: Sequence[Any] = [bindparam(f"crm_v{i}") for i in range(self.width)]
        return (
            profile_select()
            .where(column[kind].in_(forms), *visible)
            .order_by(profiles.c.master_id)
            .limit(bindparam(_ROW_LIMIT))
        )
