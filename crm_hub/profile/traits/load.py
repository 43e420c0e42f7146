"""Bulk reads for the traits stage: everything about a set of masters, as pandas frames.

The masters to compute ("the scope") go into a temporary table with a dense integer ``code``
per master; every read joins the canonical tables to it through ``master_links`` and returns
the code, not the 28-character id, so a million masters and ten million orders travel as
numbers. The counted orders are joined to the scope once, into the temporary ``trait_orders``,
and their lines to those once, into ``trait_lines``; order lines never travel one by one: SQL
counts each master's lines per product (PostgreSQL also ranks the top 3) and sums its line
spend per currency and category over ``trait_lines`` (set-based), so Python gets a few rows
per master instead of one per line. PostgreSQL sends each result with
``COPY (...) TO STDOUT`` (CSV, parsed by pandas); SQLite through its cursor. Times come back
as UTC epoch seconds plus the source's offset in minutes; money as floats, turned into exact
fixed-point integers (1/10,000) by the caller (line spend arrives already summed in them).

The SQL here is constant text: nothing from data or configuration is pasted into it.
"""

from __future__ import annotations

import io
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Connection

from crm_hub.store.engine import Store, planner_off

__all__ = ["FEW_BY_INDEX", "Frames", "load_frames", "prepare_scope", "read_snapshot"]

# PostgreSQL: an incremental scope up to this many masters is read by index probes only.
FEW_BY_INDEX = 50_000

_CANCELLED = "('cancelled', 'canceled', 'void', 'voided')"
_VOID_INVOICE = "('void', 'voided', 'cancelled', 'canceled', 'deleted', 'draft')"
_DONE_PAYMENT = "('failed', 'declined', 'void', 'voided', 'cancelled', 'canceled', 'refunded')"


def _offset_minutes(column: str) -> str:
    """SQL for '+01:30' → 90 (null: 0), the same on both dialects."""
    off = f"COALESCE({column}, '+00:00')"
    return (
        f"((CAST(substr({off}, 2, 2) AS INTEGER) * 60 + CAST(substr({off}, 5, 2) AS INTEGER))"
        f" * (CASE substr({off}, 1, 1) WHEN '-' THEN -1 ELSE 1 END))"
    )


@dataclass(frozen=True, slots=True)
class _Dialect:
    epoch: str  # format with a column: UTC epoch seconds
    money: str  # format with a column: a float
    json_text: str  # format with a column and a dotted path: text
    fixed: str  # format with a float expression: exact ten-thousandths (0 for null)
    binary: str  # after a text in ORDER BY: compare code points (as Python sorts)
    date_days: str  # format with a date column: days since 1970-01-01


# unixepoch() (SQLite 3.38) gives strftime('%s')'s seconds three times faster, as an integer.
_SQLITE_EPOCH = "CAST(strftime('%s', {}) AS INTEGER)"
if sqlite3.sqlite_version_info >= (3, 38):
    _SQLITE_EPOCH = "unixepoch({})"
_SQLITE = _Dialect(
    epoch=_SQLITE_EPOCH,
    money="CAST({} AS REAL)",
    json_text="json_extract({}, '$.{}')",
    date_days="CAST(julianday({}) - 2440587.5 AS INTEGER)",
    fixed="CAST(ROUND(COALESCE({}, 0) * 10000) AS INTEGER)",
    binary="",  # SQLite's BINARY collation already compares UTF-8 bytes
)
_POSTGRES = _Dialect(
    epoch="CAST(EXTRACT(EPOCH FROM {}) AS BIGINT)",
    money="CAST({} AS DOUBLE PRECISION)",
    json_text="json_extract_path_text({}, '{}')",
    date_days="({} - DATE '1970-01-01')",
    fixed="CAST(ROUND(COALESCE({}, 0) * 10000) AS BIGINT)",
    binary=' COLLATE "C"',
)


def _json(d: _Dialect, column: str, path: str) -> str:
    if d is _POSTGRES:
        return f"json_extract_path_text({column}, {', '.join(repr(p) for p in path.split('.'))})"
    return d.json_text.format(column, path)


@contextmanager
def read_snapshot(store: Store, snapshot: str | None = None) -> Iterator[Connection]:
    """A transaction whose reads all see one snapshot (PostgreSQL: repeatable read, importing
    ``snapshot`` when given, an id from ``pg_export_snapshot``; SQLite: a read transaction)."""
    with store.engine.connect() as raw_conn:
        if store.dialect == "postgresql":
            conn = raw_conn.execution_options(isolation_level="REPEATABLE READ")
        else:
            conn = raw_conn.execution_options(crm_hub_readonly=True)
        with conn.begin():
            if snapshot is not None:
                conn.exec_driver_sql(f"SET TRANSACTION SNAPSHOT '{snapshot}'")
            yield conn


def prepare_scope(conn: Connection, master_ids: Iterable[str] | None) -> list[str]:
    """Fill the temporary scope tables; returns the master ids in code order.

    ``None`` means every active master; otherwise the given ids that are active.
    """
    pg = conn.dialect.name == "postgresql"
    drop = "DROP TABLE IF EXISTS {}"
    for table in ("trait_links", "trait_scope", "trait_wanted"):
        conn.exec_driver_sql(drop.format(table if pg else f"temp.{table}"))
    temp = "CREATE TEMP TABLE"
    conn.exec_driver_sql(f"{temp} trait_scope (code INTEGER PRIMARY KEY, master_id TEXT NOT NULL)")
    active = "SELECT master_id FROM masters WHERE status = 'active'"
    if master_ids is not None:
        conn.exec_driver_sql(f"{temp} trait_wanted (master_id TEXT PRIMARY KEY)")
        _fill_wanted(conn, sorted(set(master_ids)))
        active += " AND master_id IN (SELECT master_id FROM trait_wanted)"
    conn.exec_driver_sql(
        "INSERT INTO trait_scope (code, master_id) "
        f"SELECT row_number() OVER (ORDER BY master_id) - 1, master_id FROM ({active}) a"
    )
    links = (
        "SELECT l.source, l.source_id, s.code FROM master_links l "
        "JOIN trait_scope s ON s.master_id = l.master_id"
    )
    if pg:
        conn.exec_driver_sql(f"CREATE TEMP TABLE trait_links AS {links}")
        conn.exec_driver_sql("CREATE INDEX ON trait_links (source, source_id)")
        conn.exec_driver_sql("ANALYZE trait_scope")
        conn.exec_driver_sql("ANALYZE trait_links")
    else:
        conn.exec_driver_sql(
            "CREATE TEMP TABLE trait_links (source TEXT, source_id TEXT, code INTEGER, "
            "PRIMARY KEY (source, source_id)) WITHOUT ROWID"
        )
        conn.exec_driver_sql(f"INSERT OR IGNORE INTO trait_links {links}")
    ids = conn.exec_driver_sql("SELECT master_id FROM trait_scope ORDER BY code").scalars()
    return list(ids)


def _fill_wanted(conn: Connection, master_ids: list[str]) -> None:
    """The ids into ``trait_wanted``: PostgreSQL by COPY (an upper half of 714 k ids took 9 s
    as single-row inserts, 0.5 s copied), SQLite by one prepared insert."""
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        if conn.dialect.name == "postgresql":
            with cursor.copy("COPY trait_wanted (master_id) FROM STDIN") as copy:
                for master_id in master_ids:
                    copy.write_row((master_id,))
        else:
            cursor.executemany(
                "INSERT INTO trait_wanted (master_id) VALUES (?)", [(m,) for m in master_ids]
            )
    finally:
        cursor.close()


@dataclass(slots=True)
class Frames:
    """Everything read for the scope; ``code`` columns index ``master_ids``."""

    master_ids: list[str]
    customers: pd.DataFrame
    profiles: pd.DataFrame
    orders: pd.DataFrame
    items: pd.DataFrame  # line counts per code and product (at least each code's top 3)
    categories: pd.DataFrame  # fixed-point line spend per code, order currency and category
    invoices: pd.DataFrame
    payments: pd.DataFrame
    events: pd.DataFrame


def _join(table: str, on: str, walk: str) -> str:
    """``table`` joined to the scope's links. ``walk`` says which side SQLite walks:
    "links" (a few links, each finding its rows by the table's customer index), "table" (every
    row in storage order, each finding its link in the small temporary table) or "planner"
    (PostgreSQL's choice)."""
    if walk == "links":
        return f"trait_links k CROSS JOIN {table} ON {on}"
    if walk == "table":
        return f"{table} CROSS JOIN trait_links k ON {on}"
    return f"{table} JOIN trait_links k ON {on}"


def _orders_table(d: _Dialect, walk: str) -> str:
    """The scope's counted orders (cancelled ones never count) with their code and ``kind``,
    kept for the orders frame and the line aggregates, so orders are joined to links once."""
    status = "lower(COALESCE(o.status, ''))"
    kind = (
        f"CASE WHEN {d.money.format('o.total')} < 0 THEN 2 "
        f"WHEN {status} = 'refunded' THEN 1 ELSE 0 END"
    )
    on = "k.source = o.source AND k.source_id = o.customer_source_id"
    return (
        f"CREATE TEMP TABLE trait_orders AS SELECT k.code, {kind} AS kind, o.source, "
        f"o.source_id, o.branch, {d.epoch.format('o.placed_at')} AS placed, "
        f"{_offset_minutes('o.placed_at_offset')} AS offset_min, o.currency, "
        f"COALESCE({d.money.format('o.total')}, 0) AS total "
        f"FROM {_join('orders o', on, walk)} "
        f"WHERE NOT o.deleted AND {status} NOT IN {_CANCELLED}"
    )


def _lines_table(d: _Dialect) -> str:
    """The lines of the counted orders that are not refunded, with what both line aggregates
    need: order lines are joined, their category read and their amount made fixed-point once,
    not once per aggregate (SQLite, 2 M orders: 16.5 s for both aggregates, now 15)."""
    category = _json(d, "l.attributes", "category")
    return (
        "CREATE TEMP TABLE trait_lines AS SELECT o.code, o.kind, o.currency, l.product, "
        f"COALESCE({category}, 'uncategorised') AS category, "
        f"{d.fixed.format(d.money.format('l.amount'))} AS amount FROM trait_orders o "
        "JOIN order_lines l ON l.source = o.source AND l.order_source_id = o.source_id "
        "WHERE o.kind <> 1"
    )


def _product_counts(d: _Dialect) -> str:
    """Line counts per code and product of normal orders; PostgreSQL keeps only each code's
    top 3 (ties: A-Z), SQLite sends all and ``_item_lists`` ranks them: SQLite's second sort,
    for the ranking, cost more than reading every count (200 k masters: 6.9 s, now 4.7 s).
    PostgreSQL counts on lines sorted by code and product in byte order (see ``load_frames``),
    so the ranking only sorts within each code."""
    product = f"product{d.binary}"
    counts = (
        f"SELECT code, {product} AS product, COUNT(*) AS n FROM trait_lines "
        f"WHERE kind = 0 AND product IS NOT NULL GROUP BY code, {product}"
    )
    if d is _SQLITE:
        return counts
    return (
        "SELECT code, product, n FROM (SELECT code, product, n, ROW_NUMBER() OVER "
        f"(PARTITION BY code ORDER BY n DESC, product) AS rank FROM ({counts}) g) r "
        "WHERE rank <= 3"
    )


def _queries(d: _Dialect, walk: str) -> dict[str, tuple[str, dict[str, str]]]:
    """Per frame: the SQL and its column dtypes (pandas names)."""
    customer_key = "k.source = {0}.source AND k.source_id = {0}.customer_source_id"
    return {
        "customers": (
            "SELECT k.code, c.birth_year, c.birth_month, c.birth_day, "
            f"{_json(d, 'c.consents', 'email.granted')} AS email_granted, "
            f"{_json(d, 'c.consents', 'email.at')} AS email_at, "
            f"{_json(d, 'c.consents', 'sms.granted')} AS sms_granted, "
            f"{_json(d, 'c.consents', 'sms.at')} AS sms_at, "
            f"CAST(c.attributes AS TEXT) AS attributes, "
            f"COALESCE({d.epoch.format('c.updated_at')}, 0) AS updated, c.id AS row_id "
            f"FROM trait_links k {'CROSS ' if walk == 'links' else ''}JOIN source_customers c "
            "ON c.source = k.source AND c.source_id = k.source_id WHERE NOT c.deleted",
            {"code": "int64", "birth_year": "Int64", "birth_month": "Int64",
             "birth_day": "Int64", "email_granted": "object", "email_at": "object",
             "sms_granted": "object", "sms_at": "object", "attributes": "object",
             "updated": "int64", "row_id": "int64"},
        ),
        "profiles": (
            "SELECT s.code, p.birth_year, p.birth_month, p.birth_day FROM trait_scope s "
            "JOIN profiles p ON p.master_id = s.master_id",
            {"code": "int64", "birth_year": "Int64", "birth_month": "Int64",
             "birth_day": "Int64"},
        ),
        "orders": (
            "SELECT code, kind, branch, placed, offset_min, currency, total FROM trait_orders",
            {"code": "int64", "kind": "int8", "branch": "object", "placed": "Int64",
             "offset_min": "int64", "currency": "object", "total": "float64"},
        ),
        # Lines arrive aggregated (a master has many lines, but a few products and
        # categories): the line count per product of normal orders, and the fixed-point
        # spend per order currency and category of lines not refunded (all of trait_lines).
        "items": (
            _product_counts(d),
            {"code": "int64", "product": "object", "n": "int64"},
        ),
        "categories": (
            "SELECT code, currency, category, SUM(amount) AS amount FROM trait_lines "
            "GROUP BY code, currency, category",
            {"code": "int64", "currency": "object", "category": "object", "amount": "int64"},
        ),
        "invoices": (
            "SELECT k.code, i.source, i.source_id, i.currency, "
            f"{d.money.format('i.amount')} AS amount, {d.money.format('i.balance')} AS balance, "
            f"{d.date_days.format('i.due_date')} AS due_day "
            f"FROM {_join('invoices i', customer_key.format('i'), walk)} "
            f"WHERE NOT i.deleted AND lower(COALESCE(i.status, '')) NOT IN {_VOID_INVOICE}",
            {"code": "int64", "source": "object", "source_id": "object", "currency": "object",
             "amount": "float64", "balance": "float64", "due_day": "Int64"},
        ),
        "payments": (
            # A payment belongs to its own customer, else to its invoice's customer.
            "SELECT COALESCE(k.code, ki.code) AS code, p.source, p.invoice_source_id, "
            f"p.currency, COALESCE({d.money.format('p.amount')}, 0) AS amount "
            "FROM payments p LEFT JOIN trait_links k ON " + customer_key.format("p") + " "
            "LEFT JOIN invoices i ON i.source = p.source AND i.source_id = p.invoice_source_id "
            "LEFT JOIN trait_links ki ON ki.source = i.source "
            "AND ki.source_id = i.customer_source_id "
            f"WHERE NOT p.deleted AND lower(COALESCE(p.status, '')) NOT IN {_DONE_PAYMENT} "
            "AND COALESCE(k.code, ki.code) IS NOT NULL",
            {"code": "int64", "source": "object", "invoice_source_id": "object",
             "currency": "object", "amount": "float64"},
        ),
        "events": (
            f"SELECT k.code, lower(e.kind) AS kind, {d.epoch.format('e.occurred_at')} AS at "
            f"FROM {_join('events e', customer_key.format('e'), walk)} "
            "WHERE NOT e.deleted AND lower(e.kind) IN "
            "('opened', 'clicked', 'unsubscribed', 'subscribed')",
            {"code": "int64", "kind": "object", "at": "Int64"},
        ),
    }  # fmt: skip


def _read(conn: Connection, sql: str, dtypes: dict[str, str]) -> pd.DataFrame:
    names = list(dtypes)
    raw: Any = conn.connection.driver_connection
    if conn.dialect.name == "postgresql":
        buffer = io.BytesIO()
        with raw.cursor() as cursor, cursor.copy(f"COPY ({sql}) TO STDOUT WITH CSV") as copy:
            for block in copy:
                buffer.write(block)
        buffer.seek(0)
        if buffer.getbuffer().nbytes == 0:
            return pd.DataFrame({n: pd.Series(dtype=t) for n, t in dtypes.items()})
        # Nullable integers parse as floats, then become Int64: pandas' own Int64 parse
        # converts text by text (5.5 M orders: 4.1 s, as floats 1.3 s). Exact below 2**53.
        parsed = {n: "float64" if t == "Int64" else t for n, t in dtypes.items()}
        frame = pd.read_csv(
            buffer, header=None, names=names, dtype=parsed, keep_default_na=False,
            na_values={n: [""] for n in names}, engine="c",
        )  # fmt: skip
        for name in (n for n, t in dtypes.items() if t == "Int64"):
            frame[name] = _nullable_int(frame[name].to_numpy())
        return frame
    cursor = raw.cursor()
    try:
        cursor.execute(sql)
        # Rows straight into typed arrays: no list of tuples, no object frame to convert.
        rows = np.fromiter(cursor, dtype=[(n, _FIELDS.get(t, "O")) for n, t in dtypes.items()])
    finally:
        cursor.close()
    return pd.DataFrame({n: _column(rows[n], t) for n, t in dtypes.items()})


# SQLite fields read as numbers as they arrive; every other column as Python objects (texts,
# and numbers that may be null).
_FIELDS = {"int64": "i8", "int8": "i8"}


def _nullable_int(floats: np.ndarray[Any, Any]) -> pd.arrays.IntegerArray:
    """Whole floats (NaN: null) as an Int64 array."""
    missing = np.isnan(floats)
    return pd.arrays.IntegerArray(np.where(missing, 0, floats).astype(np.int64), missing)


def _column(values: np.ndarray[Any, Any], dtype: str) -> Any:
    """A column of ``_read`` in its pandas dtype (None → NA/NaN)."""
    if dtype == "object":
        return values
    if dtype == "Int64":
        missing: np.ndarray[Any, Any] = values == None  # noqa: E711 (elementwise: SQLite's NULL)
        numbers = values.copy()
        numbers[missing] = 0
        return pd.arrays.IntegerArray(numbers.astype(np.int64), missing)
    return values.astype(dtype)


# SQLite's page caches while the scope is read (KiB), set back after: the temporary tables
# and their sorts are hundreds of MB at a million masters, and the temporary database's cache
# is 2 MB unless set, so their pages went back and forth through the OS (200 k masters, the
# heavier half: 24 s of SQL, 20 s with 256 MB). A bigger main cache (1 GB) for the random
# order-line probes was measured too, and not kept: no clear gain at 1 M masters.
_READ_CACHES = {"temp": -262_144}


@contextmanager
def _read_caches(conn: Connection) -> Iterator[None]:
    """SQLite: ``_READ_CACHES`` for the duration (a smaller size frees the pages again)."""
    if conn.dialect.name != "sqlite":
        yield
        return
    before = {db: int(conn.exec_driver_sql(f"PRAGMA {db}.cache_size").scalar_one())
              for db in _READ_CACHES}  # fmt: skip
    for db, size in _READ_CACHES.items():
        conn.exec_driver_sql(f"PRAGMA {db}.cache_size = {size}")
    try:
        yield
    finally:
        for db, size in before.items():
            conn.exec_driver_sql(f"PRAGMA {db}.cache_size = {size}")


def load_frames(conn: Connection, master_ids: list[str], *, few: bool = False) -> Frames:
    """Read every input of the scope prepared by ``prepare_scope`` (``few``: a small scope)."""
    dialect = _POSTGRES if conn.dialect.name == "postgresql" else _SQLITE
    # SQLite, a large scope: orders are scanned in storage order, not found customer by
    # customer, so their lines are then probed in about the order they were written (lower
    # half of 1 M masters: orders 37 -> 20 s, their lines 66 -> 13 s).
    walk = "planner" if dialect is _POSTGRES else ("links" if few else "table")
    temp = "temp." if dialect is _SQLITE else ""
    tables = (f"{temp}trait_orders", f"{temp}trait_lines")
    if dialect is _POSTGRES:
        # Sorts and hash aggregates of millions of rows stay in memory for this transaction.
        conn.exec_driver_sql("SET LOCAL work_mem = '256MB'")
        if few and len(master_ids) <= FEW_BY_INDEX:
            # A thousand people's orders and lines are found by index. Costing random reads
            # as disk seeks, the planner hashed them against a scan of every order line
            # instead: 21 s, where index probes take 2 s, at 10 M orders.
            conn.exec_driver_sql("SET LOCAL enable_hashjoin = off")
            conn.exec_driver_sql("SET LOCAL enable_mergejoin = off")
    with _read_caches(conn):
        for table in tables:
            conn.exec_driver_sql(f"DROP TABLE IF EXISTS {table}")
        conn.exec_driver_sql(_orders_table(dialect, walk))
        if dialect is _POSTGRES:
            conn.exec_driver_sql("ANALYZE trait_orders")  # before its lines are joined to it
        conn.exec_driver_sql(_lines_table(dialect))
        if dialect is _POSTGRES:
            conn.exec_driver_sql("ANALYZE trait_lines")
        queries = _queries(dialect, walk)
        frames = {}
        for name, (sql, dtypes) in queries.items():
            # Nearly every (code, product) is its own group: hashing them, then sorting the
            # groups for the ranking, took 11.4 s for 8 M lines, sorting the lines 8.9 s.
            with planner_off(conn, "hashagg") if name == "items" else nullcontext():
                frames[name] = _read(conn, sql, dtypes)
        for table in tables:
            conn.exec_driver_sql(f"DROP TABLE {table}")
    return Frames(master_ids=master_ids, **frames)
