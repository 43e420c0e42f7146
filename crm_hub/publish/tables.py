"""Writing into a table of another database, shared by ``type: sql``
(:mod:`crm_hub.publish.sql`) and the standalone Singer target ``target-crmhub-sql``.

A batch is one transaction: the rows removed are deleted first, then the rest are upserted by
their key (SQLite and PostgreSQL ``ON CONFLICT``), grouped by the columns they carry so a field
left out of a record never overwrites what the table has.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Column, Engine, Table, create_engine, delete, inspect, tuple_
from sqlalchemy.exc import ArgumentError, NoSuchModuleError
from sqlalchemy.schema import CreateColumn

from crm_hub.errors import ConfigError
from crm_hub.store.upsert import upsert

__all__ = ["add_missing_columns", "open_database", "write_batch"]


def open_database(url: str, what: str, **options: Any) -> Engine:
    """An engine on ``url`` (``options`` go to :func:`sqlalchemy.create_engine`).

    Raises:
        ConfigError: naming ``what`` (``destination crm``) when the URL is not a database URL or
            its driver is not installed.
    """
    try:
        return create_engine(url, **options)
    except (ArgumentError, NoSuchModuleError) as exc:
        raise ConfigError(f"{what}: url is not a database URL: {exc}") from None


def add_missing_columns(engine: Engine, table: Table) -> list[str]:
    """Create ``table`` when missing, else add the columns it lacks (``ALTER TABLE … ADD``);
    columns already there keep their type. Returns the names of the columns added."""
    table.create(engine, checkfirst=True)
    have = {c["name"] for c in inspect(engine).get_columns(table.name, schema=table.schema)}
    missing: list[Column[Any]] = [c for c in table.columns if c.name not in have]
    if not missing:
        return []
    target = engine.dialect.identifier_preparer.format_table(table)
    with engine.begin() as conn:
        for column in missing:
            ddl = CreateColumn(column).compile(dialect=engine.dialect)
            conn.exec_driver_sql(f"ALTER TABLE {target} ADD COLUMN {ddl}")
    return [c.name for c in missing]


def write_batch(
    conn: Any,
    table: Table,
    keys: Sequence[str],
    rows: Iterable[dict[str, Any]],
    gone: Sequence[Sequence[Any]] = (),
) -> None:
    """Delete the rows whose key values are in ``gone``, then upsert ``rows`` by ``keys``.

    Args:
        conn: an open connection, in the caller's transaction.
        table: the table.
        keys: its key columns (the primary key).
        rows: at most one row per key; a row may leave out any column but the keys.
        gone: key values (one tuple per row, in ``keys`` order) of the rows to delete.
    """
    if gone:
        key_columns = [table.c[k] for k in keys]
        if len(keys) == 1:
            condition = key_columns[0].in_([values[0] for values in gone])
        else:
            condition = tuple_(*key_columns).in_([tuple(values) for values in gone])
        conn.execute(delete(table).where(condition))
    by_shape: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for row in rows:
        by_shape.setdefault(tuple(sorted(row)), []).append(row)
    for shape, same in by_shape.items():
        update = [c for c in shape if c not in keys]
        if update:
            upsert(conn, table, same, keys=keys, update=update)
        else:  # nothing but the key: insert it if new, leave it be if not
            upsert(conn, table, same, keys=keys, update=list(keys)[:1])
