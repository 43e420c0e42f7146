"""Bulk reads and writes for the resolve stage: a million rows in seconds, in the caller's
transaction.

SQLAlchemy builds and type-processes one object per row and value: most of the time of reading
or writing a million links. Here the driver does the work: rows are plain tuples already in the
database's representation (`db_value`), written with ``executemany`` on SQLite and ``COPY`` on
PostgreSQL (an upsert copies into a temporary table, then merges it with one statement), and
read into numpy object arrays (`fetch_blocks`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import closing, contextmanager
from itertools import islice
from typing import Any

import numpy as np
from sqlalchemy import Column, Connection, Table

__all__ = ["db_value", "delete_keys", "fetch_blocks", "insert_rows", "mark", "upsert_rows"]

_CHUNK = 50_000
_REBUILD_FROM = 100_000
"""Rows from which an insert into an empty SQLite table rebuilds its indexes after."""


def db_value(column: Column[Any], value: Any, conn: Connection) -> Any:
    """``value`` as the driver must receive it for ``column`` (e.g. a UTC time as SQLite text)."""
    process = column.type.dialect_impl(conn.dialect).bind_processor(conn.dialect)
    return value if process is None else process(value)


def mark(conn: Connection) -> str:
    """The driver's parameter placeholder."""
    return "%s" if conn.dialect.name == "postgresql" else "?"


def fetch_blocks(conn: Connection, sql: str, params: Sequence[Any] = ()) -> Iterator[np.ndarray]:
    """The rows of ``sql`` (placeholders: `mark`), as 2-D object arrays of up to 50,000 rows.

    PostgreSQL streams them through a server-side cursor instead of holding all in memory.
    """
    raw: Any = conn.connection.driver_connection
    named = {"name": "crm_hub_fetch"} if conn.dialect.name == "postgresql" else {}
    with closing(raw.cursor(**named)) as cursor:
        cursor.execute(sql, tuple(params))
        while rows := cursor.fetchmany(_CHUNK):
            block = np.empty((len(rows), len(rows[0])), dtype=object)
            block[:] = rows
            yield block


def _chunks(rows: Iterable[tuple[Any, ...]]) -> Iterator[list[tuple[Any, ...]]]:
    it = iter(rows)
    while chunk := list(islice(it, _CHUNK)):
        yield chunk


def _cursor(conn: Connection) -> Any:
    """A driver cursor on the connection, inside its transaction."""
    raw: Any = conn.connection.driver_connection
    return closing(raw.cursor())


def _executemany(conn: Connection, sql: str, rows: Iterable[tuple[Any, ...]]) -> None:
    with _cursor(conn) as cursor:
        for chunk in _chunks(rows):
            cursor.executemany(sql, chunk)


def _copy(
    conn: Connection, table: str, columns: Sequence[str], rows: Iterable[tuple[Any, ...]]
) -> None:
    with (
        _cursor(conn) as cursor,
        cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy,
    ):
        for row in rows:
            copy.write_row(row)


@contextmanager
def _without_indexes(conn: Connection, table: Table, count: int) -> Iterator[None]:
    """On SQLite, fill an empty table with many rows without its secondary indexes, then build
    each in one sort: inserting into a random-order index (``master_id``) row by row costs
    several times more. PostgreSQL keeps them (dropping one would lock out its readers)."""
    if (
        conn.dialect.name != "sqlite"
        or count < _REBUILD_FROM
        or conn.exec_driver_sql(f"SELECT 1 FROM {table.name} LIMIT 1").first() is not None
    ):
        yield
        return
    indexes = conn.exec_driver_sql(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ? "
        "AND sql IS NOT NULL",  # the UNIQUE constraints' automatic indexes have no sql: kept
        (table.name,),
    ).all()
    for name, _ in indexes:
        conn.exec_driver_sql(f'DROP INDEX "{name}"')
    yield
    for _, sql in indexes:
        conn.exec_driver_sql(sql)


def insert_rows(
    conn: Connection,
    table: Table,
    columns: Sequence[str],
    rows: Sequence[tuple[Any, ...]],
    *,
    suffix: tuple[Any, ...] = (),
) -> None:
    """Insert ``rows`` (tuples in ``columns`` order, driver values, each followed by the same
    ``suffix`` values) into ``table``."""
    full_rows = (row + suffix for row in rows)
    if conn.dialect.name == "postgresql":
        _copy(conn, table.name, columns, full_rows)
        return
    marks = ", ".join("?" * len(columns))
    with _without_indexes(conn, table, len(rows)):
        _executemany(conn, f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({marks})",
                     full_rows)  # fmt: skip


def upsert_rows(
    conn: Connection,
    table: Table,
    columns: Sequence[str],
    rows: Sequence[tuple[Any, ...]],
    *,
    keys: Sequence[str],
    update: Sequence[str],
    suffix: tuple[Any, ...] = (),
) -> None:
    """Insert ``rows`` (as in `insert_rows`); where ``keys`` exist already, overwrite the
    ``update`` columns."""
    if not rows:
        return
    full_rows = (row + suffix for row in rows)
    names = ", ".join(columns)
    conflict = (f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET "
                + ", ".join(f"{c} = excluded.{c}" for c in update))  # fmt: skip
    if conn.dialect.name == "postgresql":
        staging = f"_bulk_{table.name}"
        conn.exec_driver_sql(f"CREATE TEMP TABLE {staging} AS SELECT {names} FROM {table.name} "
                             "WITH NO DATA")  # fmt: skip
        _copy(conn, staging, columns, full_rows)
        conn.exec_driver_sql(f"INSERT INTO {table.name} ({names}) SELECT {names} FROM {staging} "
                             f"{conflict}")  # fmt: skip
        conn.exec_driver_sql(f"DROP TABLE {staging}")
        return
    marks = ", ".join("?" * len(columns))
    _executemany(conn, f"INSERT INTO {table.name} ({names}) VALUES ({marks}) {conflict}",
                 full_rows)  # fmt: skip


def delete_keys(conn: Connection, table: Table, keys: Iterable[tuple[str, str]]) -> None:
    """Delete the rows of ``table`` with these ``(source, source_id)``."""
    p = mark(conn)
    _executemany(conn, f"DELETE FROM {table.name} WHERE source = {p} AND source_id = {p}", keys)
