"""Canonical rows and the map stage's watermark: written in the map stage's transaction.

Rows are upserted by ``(source, source_id)``; an order's lines are replaced as a whole. A raw
record that was deleted marks the canonical rows it produced ``deleted`` (found by ``raw_id``).
The watermark is ``(change_seq, raw id)`` of the last raw record mapped, plus the hash of the
mapping file that mapped it: a different mapping starts the source again from the beginning.

Canonical upserts are the map stage's bulk write, so they skip SQLAlchemy's per-row work: the
statement is compiled once per table and dialect, values go through the columns' own bind
processors (exactly what SQLAlchemy would send), then SQLite gets one ``executemany`` and
PostgreSQL a ``COPY`` into a temporary table and one ``INSERT ... SELECT ... ON CONFLICT`` (or,
when none of the rows' keys is in the table yet, a ``COPY`` straight into it).
Only the columns some row of a batch fills are bound; the statement writes NULL to the rest.
Binding needs no connection (:func:`encode_values`), so the map stage's worker processes do it
and its single writer only writes (:func:`upsert_encoded`). A large load into a small table
goes faster without the secondary indexes: :func:`drop_indexes`, then :func:`restore_indexes`.
JSON columns are bound as text by orjson on both dialects (on PostgreSQL in the order and form
``json.dumps`` would give, less its spaces).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from operator import itemgetter
from typing import Any, NamedTuple

import orjson
from sqlalchemy import (
    Column,
    Connection,
    Dialect,
    MetaData,
    Table,
    Text,
    bindparam,
    cast,
    delete,
    func,
    inspect,
    literal,
    null,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.schema import CreateIndex, CreateTable, DropIndex, DropTable
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.types import TypeEngine

from crm_hub.store.engine import planner_off
from crm_hub.store.schema import (
    CANONICAL_TABLES,
    JsonDocument,
    UtcDateTime,
    map_watermarks,
    order_lines,
    raw_records,
    sqlite_json_text,
)
from crm_hub.store.upsert import upsert

__all__ = [
    "RawItem",
    "RawRow",
    "Watermark",
    "count_raw_after",
    "count_rows",
    "decode_values",
    "drop_indexes",
    "encode_values",
    "json_text",
    "load_watermark",
    "mark_deleted",
    "missing_indexes",
    "read_raw_batch",
    "read_raw_rows",
    "replace_order_lines",
    "restore_indexes",
    "row_values",
    "save_watermark",
    "upsert_canonical",
    "upsert_encoded",
    "upsert_values",
]


@dataclass(frozen=True, slots=True)
class Watermark:
    """Where the map stage of a source stands."""

    change_seq: int = 0
    raw_id: int = 0
    mapping_hash: str = ""


class RawItem(NamedTuple):
    """One raw record as the map stage reads it (a named tuple: one is made per record, at a
    third of a frozen dataclass's cost)."""

    id: int
    stream: str
    record_key: str
    payload: Any
    deleted: bool
    change_seq: int


RawRow = tuple[int, str, str, str, bool | int, int]
"""A raw record with its payload as stored JSON text: id, stream, record_key, payload text,
deleted (a bool, or 0/1 from SQLite), change_seq (what worker processes decode and map)."""


def load_watermark(conn: Connection, source: str) -> Watermark:
    """The saved watermark of ``source`` (zero when never mapped)."""
    t = map_watermarks
    row = conn.execute(
        select(t.c.change_seq, t.c.raw_id, t.c.mapping_hash).where(t.c.source == source)
    ).first()
    return Watermark() if row is None else Watermark(int(row[0]), int(row[1]), str(row[2]))


def save_watermark(
    conn: Connection, source: str, mark: Watermark, *, run_id: str, now: datetime
) -> None:
    """Save the watermark (in the caller's transaction, with the rows before it)."""
    upsert(
        conn,
        map_watermarks,
        [
            {
                "source": source,
                "change_seq": mark.change_seq,
                "raw_id": mark.raw_id,
                "mapping_hash": mark.mapping_hash,
                "updated_at": now,
                "run_id": run_id,
            }
        ],
        keys=["source"],
        update=["change_seq", "raw_id", "mapping_hash", "updated_at", "run_id"],
    )


def _after(after: Watermark) -> Any:
    """Raw records past the watermark (the map stage's order: change_seq, then id)."""
    t = raw_records
    return tuple_(t.c.change_seq, t.c.id) > tuple_(literal(after.change_seq), literal(after.raw_id))


def count_raw_after(conn: Connection, source: str, after: Watermark, limit: int) -> int:
    """How many raw records of ``source`` changed after the watermark, counting to ``limit``."""
    t = raw_records
    past = select(t.c.id).where(t.c.source == source, _after(after)).limit(limit).subquery()
    return int(conn.execute(select(func.count()).select_from(past)).scalar_one())


def count_rows(conn: Connection, table: str, limit: int) -> int:
    """How many rows canonical ``table`` holds, counting to ``limit``."""
    rows = select(literal(1)).select_from(CANONICAL_TABLES[table]).limit(limit).subquery()
    return int(conn.execute(select(func.count()).select_from(rows)).scalar_one())


def drop_indexes(conn: Connection, table: str, *, keep: Iterable[str] = ()) -> None:
    """Drop the secondary indexes of canonical ``table`` (not its ``(source, source_id)`` key,
    which upserts need) before a bulk load: building an index once at the end costs a fraction
    of keeping it up to date row by row. :func:`restore_indexes` builds them again. ``keep``:
    names of indexes left in place."""
    kept = set(keep)
    for index in CANONICAL_TABLES[table].indexes:
        if index.name not in kept:
            conn.execute(DropIndex(index, if_exists=True))


def missing_indexes(conn: Connection, tables: Iterable[str] = CANONICAL_TABLES) -> list[str]:
    """The schema's indexes of canonical ``tables`` that the store lacks (a read: no lock)."""
    found = inspect(conn)
    missing = []
    for table in tables:
        present = {index["name"] for index in found.get_indexes(table)}
        missing += [str(i.name) for i in CANONICAL_TABLES[table].indexes if i.name not in present]
    return missing


def restore_indexes(conn: Connection, tables: Iterable[str] = CANONICAL_TABLES) -> list[str]:
    """Create the indexes of canonical ``tables`` that are missing (dropped by
    :func:`drop_indexes`), exactly as the schema (and so the migrations) define them.
    Returns their names."""
    missing = missing_indexes(conn, tables)
    for table in tables:
        for index in CANONICAL_TABLES[table].indexes:
            if index.name in missing:
                conn.execute(CreateIndex(index, if_not_exists=True))
    return missing


def read_raw_batch(
    conn: Connection,
    source: str,
    after: Watermark,
    limit: int,
    streams: Sequence[str] | None = None,
) -> list[RawItem]:
    """Raw records of ``source`` changed after the watermark, in commit order."""
    t = raw_records
    query = (
        select(t.c.id, t.c.stream, t.c.record_key, t.c.payload, t.c.deleted, t.c.change_seq)
        .where(t.c.source == source, _after(after))
        .order_by(t.c.change_seq, t.c.id)
        .limit(limit)
    )
    if streams is not None:
        query = query.where(t.c.stream.in_(list(streams)))
    with _in_index_order(conn):
        return [RawItem(*row) for row in conn.execute(query)]


def _in_index_order(conn: Connection) -> AbstractContextManager[None]:
    """PostgreSQL: the next raw records past a watermark are read by walking the
    ``(source, change_seq, id)`` index, never sorted. Right after a large landing the table's
    statistics are stale, and the planner fetched every record past the watermark and sorted
    them on disk for each batch of a few thousand (mapping 300k records: 29 -> 13 us of the
    server's CPU a record)."""
    return planner_off(conn, "sort")


def read_raw_rows(conn: Connection, source: str, after: Watermark, limit: int) -> list[RawRow]:
    """:func:`read_raw_batch`, with each payload left as its JSON text (not decoded) and
    ``deleted`` as the driver gives it (0 or 1 on SQLite).

    The map stage's single reader reads a whole backlog with it, so the driver's rows are
    taken as they are (measured, per record: 2.8 -> 2.1 us on SQLite, 1.5 -> 0.6 us on
    PostgreSQL, against SQLAlchemy's result rows).
    """
    compiled = _raw_rows_query(conn.dialect)
    named = compiled.construct_params(
        {"source": source, "seq": after.change_seq, "raw_id": after.raw_id, "limit": limit}
    )
    params = [named[name] for name in compiled.positiontup or ()] if compiled.positional else named
    driver: Any = conn.connection.driver_connection
    cursor = driver.cursor()
    try:
        with _in_index_order(conn):
            cursor.execute(str(compiled), params)
            rows: list[RawRow] = cursor.fetchall()
    finally:
        cursor.close()
    return rows


@lru_cache(maxsize=4)
def _raw_rows_query(dialect: Dialect) -> SQLCompiler:
    """The statement of :func:`read_raw_rows`, compiled once for ``dialect``."""
    t = raw_records
    query = (
        select(t.c.id, t.c.stream, t.c.record_key, cast(t.c.payload, Text))
        .add_columns(t.c.deleted, t.c.change_seq)
        .where(
            t.c.source == bindparam("source"),
            tuple_(t.c.change_seq, t.c.id) > tuple_(bindparam("seq"), bindparam("raw_id")),
        )
        .order_by(t.c.change_seq, t.c.id)
        .limit(bindparam("limit"))
    )
    compiled = query.compile(dialect=dialect)
    assert isinstance(compiled, SQLCompiler)  # what a select compiles to
    return compiled


def read_raw_keys(conn: Connection, source: str, keys: Iterable[tuple[str, str]]) -> list[RawItem]:
    """Raw records of ``source`` by ``(stream, record_key)`` (for replaying rejections)."""
    wanted = list(keys)
    if not wanted:
        return []
    t = raw_records
    query = (
        select(t.c.id, t.c.stream, t.c.record_key, t.c.payload, t.c.deleted, t.c.change_seq)
        .where(t.c.source == source, tuple_(t.c.stream, t.c.record_key).in_(wanted))
        .order_by(t.c.change_seq, t.c.id)
    )
    return [RawItem(*row) for row in conn.execute(query)]


def upsert_canonical(
    conn: Connection,
    table: str,
    rows: list[dict[str, Any]],
    common: dict[str, Any] | None = None,
) -> None:
    """Insert or overwrite rows of a canonical table by ``(source, source_id)``.

    Rows may name only some columns: the rest are written as null, so a field removed from a
    mapping does not leave a stale value behind. ``common`` columns (e.g. ``mapped_at``) are
    the same in every row and override the rows' own.
    """
    if rows:
        upsert_values(conn, table, [row_values(table, row) for row in rows], common)


def row_values(table: str, row: dict[str, Any]) -> list[Any]:
    """A canonical row as the list :func:`upsert_values` takes (column order; no connection
    needed, so worker processes can prepare it; ``map`` runs the lookups in C)."""
    return list(map(row.get, _columns(table)))


def upsert_values(
    conn: Connection, table: str, values: list[list[Any]], common: dict[str, Any] | None = None
) -> None:
    """:func:`upsert_canonical` for rows made by :func:`row_values` (the lists are reused)."""
    if not values:
        return
    bulk = _bulk(conn.dialect, CANONICAL_TABLES[table])
    bulk.process(values)
    unique = len({(row[0], row[1]) for row in values}) == len(values)  # source, source_id
    bulk.write(conn, values, bulk.common(common), unique=unique)


def encode_values(dialect: Dialect, table: str, values: list[list[Any]]) -> None:
    """Bind rows made by :func:`row_values` for ``dialect``, in place, as :func:`upsert_values`
    would (no connection needed: the map stage's worker processes do it)."""
    _bulk(dialect, CANONICAL_TABLES[table]).process(values)


def decode_values(dialect: Dialect, table: str, values: list[list[Any]]) -> None:
    """Undo :func:`encode_values` in place: each value as the store reads it back (JSON
    decoded, times as aware UTC datetimes), for checks that look into a batch before it is
    written."""
    _bulk(dialect, CANONICAL_TABLES[table]).unprocess(values)


def upsert_encoded(
    conn: Connection, table: str, values: list[list[Any]], common: dict[str, Any] | None = None
) -> None:
    """:func:`upsert_values` for rows bound by :func:`encode_values`: written as they are.

    Each ``(source, source_id)`` must occur once (a mapped batch keeps the last version of a
    record); ``common`` columns are bound here, once.
    """
    if values:
        bulk = _bulk(conn.dialect, CANONICAL_TABLES[table])
        bulk.write(conn, values, bulk.common(common), unique=True)


def json_text(value: Any) -> str:
    """A JSON column's text on PostgreSQL: what ``json.dumps`` writes (key order, non-text
    keys as text), compact, by orjson; ``json.dumps`` itself for what orjson refuses (an
    integer past 64 bits)."""
    try:
        return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()
    except TypeError:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


_KEYS = ("source", "source_id")
_COPY_FROM = 200  # rows: below this, PostgreSQL gets a plain executemany


@lru_cache(maxsize=16)
def _columns(table: str) -> tuple[str, ...]:
    names = tuple(c.name for c in CANONICAL_TABLES[table].columns if c.name != "id")
    if names[:2] != _KEYS:
        raise AssertionError(f"{table}: source and source_id must be the first columns")
    return names


class _Bulk:
    """One canonical table's bulk upsert on one dialect, compiled once."""

    def __init__(self, dialect: Dialect, target: Table) -> None:
        self.dialect = dialect.name
        self.target = target
        self.columns = list(_columns(target.name))
        self.index = {name: i for i, name in enumerate(self.columns)}
        types = [target.c[name].type for name in self.columns]
        self.binders = {
            name: _binder(dialect, kind) for name, kind in zip(self.columns, types, strict=True)
        }
        # a datetime column repeats its values (mapped_at in every row): process each once
        self.processors: list[tuple[int, Coder, bool]] = []
        for i, name in enumerate(self.columns):
            process = self.binders[name]
            if process is not None:
                self.processors.append((i, process, isinstance(types[i], UtcDateTime)))
        self.decoders = [
            (i, _unbinder(dialect, types[i])) for i, _process, _repeats in self.processors
        ]
        update = [c for c in self.columns if c not in _KEYS]
        self.everything = tuple(range(len(self.columns)))
        self.statements: dict[tuple[int, ...], str] = {}  # by the positions bound (see _used)
        self.sql_dialect = dialect
        self.positional = bool(dialect.positional)
        if self.dialect == "postgresql":
            self.temporary = Table(
                f"map_upsert_{target.name}",
                MetaData(),
                *(Column(name, target.c[name].type) for name in self.columns),
                prefixes=["TEMPORARY"],
            )
            copied = postgresql.insert(target).from_select(self.columns, select(*self.temporary.c))
            self.statement: Any = copied.on_conflict_do_update(
                index_elements=list(_KEYS), set_={c: copied.excluded[c] for c in update}
            )

    def process(self, values: list[list[Any]]) -> None:
        """Apply the columns' bind processors in place: what SQLAlchemy would send."""
        for index, process, repeats in self.processors:
            if repeats:
                done: dict[Any, Any] = {}
                for row in values:
                    value = row[index]
                    found = done.get(value, _MISSING)
                    if found is _MISSING:
                        found = done[value] = process(value)
                    row[index] = found
            else:
                for row in values:
                    row[index] = process(row[index])

    def unprocess(self, values: list[list[Any]]) -> None:
        """Undo :meth:`process` in place (see :func:`decode_values`)."""
        for index, decode in self.decoders:
            for row in values:
                value = row[index]
                if value is not None:
                    row[index] = decode(value)

    def common(self, common: dict[str, Any] | None) -> list[tuple[int, Any]]:
        """Columns with one value for every row, bound: (position, value)."""
        found = []
        for name, value in (common or {}).items():
            process = self.binders[name]
            found.append((self.index[name], value if process is None else process(value)))
        return found

    def write(
        self, conn: Connection, values: list[list[Any]], common: list[tuple[int, Any]], *,
        unique: bool,
    ) -> None:  # fmt: skip
        """Upsert bound rows; ``unique``: no ``(source, source_id)`` twice among them."""
        for index, value in common:
            for row in values:
                row[index] = value
        used = self._used(values)
        rows: Sequence[Sequence[Any]] = values
        if used != self.everything:
            rows = list(map(itemgetter(*used), values))  # (source and source_id: 2 at least)
        names = [self.columns[i] for i in used]
        if self.dialect == "postgresql" and unique and len(rows) >= _COPY_FROM:
            if not self._copy_new(conn, rows, names):
                self._copy(conn, rows, names)
            return
        # SQLite; or few rows (a temporary table costs more), or one key twice (one
        # INSERT ... SELECT cannot update a row twice; executemany lets the last one win)
        sql = self._statement(used)
        driver: Any = conn.connection.driver_connection
        cursor = driver.cursor()
        try:
            if self.positional:
                cursor.executemany(sql, rows)
            else:
                cursor.executemany(sql, [dict(zip(names, row, strict=True)) for row in rows])
        finally:
            cursor.close()

    def _used(self, values: list[list[Any]]) -> tuple[int, ...]:
        """Positions of the columns holding a value in some row. The others are written as
        NULL by the statement itself, not bound: the same rows, and SQLite's driver looks an
        adapter up for every None it binds (measured: 7 empty columns of 39 cost ~3 us a
        customer on SQLite)."""
        first = values[0]
        return tuple(i for i in self.everything if first[i] is not None or _any(values, i))

    def _statement(self, used: tuple[int, ...]) -> str:
        """The upsert binding the columns at ``used``, NULL for the rest (compiled once)."""
        sql = self.statements.get(used)
        if sql is None:
            names = [self.columns[i] for i in used]
            insert = (postgresql.insert if self.dialect == "postgresql" else sqlite.insert)(
                self.target
            ).values({name: null() for name in self.columns if name not in names})
            upsert_sql = insert.on_conflict_do_update(
                index_elements=list(_KEYS),
                set_={c: insert.excluded[c] for c in self.columns if c not in _KEYS},
            )
            compiled = upsert_sql.compile(dialect=self.sql_dialect, column_keys=names)
            bound = compiled.positiontup if compiled.positional else compiled.params
            if list(bound or ()) != names:
                raise AssertionError(f"unexpected parameters for {self.target.name}")
            sql = self.statements[used] = str(compiled)
        return sql

    def _copy(self, conn: Connection, values: Sequence[Sequence[Any]], names: list[str]) -> None:
        conn.execute(CreateTable(self.temporary))
        self._copy_rows(conn, self.temporary.name, values, names)  # the others: NULL
        conn.execute(self.statement)
        conn.execute(DropTable(self.temporary))

    def _copy_new(
        self, conn: Connection, values: Sequence[Sequence[Any]], names: list[str]
    ) -> bool:
        """COPY rows straight into the table when none of their keys is there yet (a first
        map): the upsert would only insert them, at about twice the server's work. False,
        having written nothing, when a key exists or appears meanwhile (savepoint)."""
        from psycopg import errors, sql

        driver: Any = conn.connection.driver_connection
        query = sql.SQL("SELECT 1 FROM {} WHERE source = %s AND source_id = ANY(%s) LIMIT 1")
        found = query.format(sql.Identifier(self.target.name))
        by_source: dict[str, list[str]] = {}
        for row in values:
            by_source.setdefault(row[0], []).append(row[1])
        with driver.cursor() as cursor:
            for source, ids in by_source.items():
                if cursor.execute(found, (source, ids)).fetchone() is not None:
                    return False
        try:
            with conn.begin_nested():  # columns not named: NULL (none has a server default)
                self._copy_rows(conn, self.target.name, values, names)
        except errors.UniqueViolation:  # inserted by another transaction since the check
            return False
        return True

    def _copy_rows(
        self, conn: Connection, table: str, values: Sequence[Sequence[Any]], names: list[str]
    ) -> None:
        from psycopg import sql

        copy_sql = sql.SQL("COPY {} ({}) FROM STDIN").format(
            sql.Identifier(table), sql.SQL(", ").join(sql.Identifier(name) for name in names)
        )
        driver: Any = conn.connection.driver_connection
        with driver.cursor() as cursor, cursor.copy(copy_sql) as copy:
            write_row: Callable[[Sequence[Any]], None] = copy.write_row
            for row in values:
                write_row(row)


def _any(values: list[list[Any]], index: int) -> bool:
    """Whether some row has a value at ``index`` (in C: no Python loop over the rows)."""
    column = list(map(itemgetter(index), values))
    return column.count(None) != len(column)


Coder = Callable[[Any], Any]


def _binder(dialect: Dialect, kind: TypeEngine[Any]) -> Coder | None:
    """A column's bind processor; JSON as text on PostgreSQL too (COPY takes it as it is)."""
    if isinstance(kind, JsonDocument):
        if dialect.name == "postgresql":
            return _none_or(json_text)
        return _none_or(sqlite_json_text)  # what the type binds, without its dialect test
    process: Coder | None = kind.dialect_impl(dialect).bind_processor(dialect)
    return process


def _unbinder(dialect: Dialect, kind: TypeEngine[Any]) -> Coder:
    """The inverse of :func:`_binder` (for a value that is not None)."""
    if isinstance(kind, JsonDocument):
        return json.loads
    if dialect.name == "postgresql":  # binding there keeps Python values: undone as it is
        return _same
    process: Coder | None = kind.dialect_impl(dialect).result_processor(dialect, None)
    return _same if process is None else process


def _none_or(process: Coder) -> Coder:
    def bind(value: Any) -> Any:
        return None if value is None else process(value)

    return bind


def _same(value: Any) -> Any:
    return value


_MISSING = object()


@lru_cache(maxsize=64)
def _bulk(dialect: Dialect, target: Table) -> _Bulk:
    return _Bulk(dialect, target)


def replace_order_lines(
    conn: Connection, source: str, order_ids: list[str], lines: list[dict[str, Any]]
) -> None:
    """Replace every line of these orders by ``lines``."""
    if order_ids:
        for start in range(0, len(order_ids), 500):
            chunk = order_ids[start : start + 500]
            conn.execute(
                delete(order_lines).where(
                    order_lines.c.source == source, order_lines.c.order_source_id.in_(chunk)
                )
            )
    if lines:
        columns = [c.name for c in order_lines.columns if c.name != "id"]
        rows = [{name: line.get(name) for name in columns} | {"source": source} for line in lines]
        conn.execute(order_lines.insert(), rows)


def mark_deleted(
    conn: Connection, source: str, raw_ids: list[int], *, run_id: str, now: datetime
) -> int:
    """Mark the canonical rows made from these raw records deleted; returns rows marked."""
    if not raw_ids:
        return 0
    marked = 0
    for table in CANONICAL_TABLES.values():
        result = conn.execute(
            update(table)
            .where(table.c.source == source, table.c.raw_id.in_(raw_ids))
            .values(deleted=True, mapped_at=now, run_id=run_id)
        )
        marked += result.rowcount
    return marked
