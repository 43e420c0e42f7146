"""``type: sql``: upsert profiles into a table of another database (SQLite or PostgreSQL), keyed by
master id; a removal (merged away, erased, left a mirrored segment) deletes the row.

The table is created when missing: ``master_id`` (primary key), one column per field (named by
``mapping``; numbers, booleans and JSON keep their type, dates and text are text), ``segments``
(JSON) when segments are sent, ``<channel>_consent`` when a consent channel is set, and
``published_at``. Each batch is one transaction there, settled here right after it commits.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Engine,
    Float,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
)
from sqlalchemy.exc import OperationalError

from crm_hub.config.destinations import SqlDestination
from crm_hub.errors import RetryableSourceError
from crm_hub.logging import register_secret
from crm_hub.publish.driver import DriverContext, Outcome, Settle, Throttle, register_driver
from crm_hub.publish.payload import Outgoing
from crm_hub.publish.tables import open_database, write_batch
from crm_hub.store.schema import ExactDecimal, JsonDocument, UtcDateTime, profiles, traits

__all__ = ["SqlDriver"]


def _column_type(field: str) -> Any:
    source = profiles.c.get(field) if field in profiles.c else traits.c.get(field)
    kind = source.type if source is not None else None
    if field == "segments" or isinstance(kind, JsonDocument):
        return JSON()
    if isinstance(kind, ExactDecimal):
        return Numeric(20, 4)
    if isinstance(kind, Boolean):
        return Boolean()
    if isinstance(kind, Float):
        return Float()
    if kind is not None and kind.python_type is int:
        return BigInteger()
    return Text()


class SqlDriver:
    """Upserts batches into one table of another database."""

    def __init__(self, ctx: DriverContext) -> None:
        config = ctx.config
        assert isinstance(config, SqlDestination)
        self.name, self.config = ctx.name, config
        url = config.url.get_secret_value()
        register_secret(url)
        self.engine: Engine = open_database(url, f"destination {ctx.name}")
        columns = [Column("master_id", String(28), primary_key=True)]
        self.numeric: set[str] = set()
        for field in config.fields:
            name = config.mapping.get(field, field)
            kind = _column_type(field)
            if isinstance(kind, Numeric) and not isinstance(kind, Float):
                self.numeric.add(name)
            columns.append(Column(name, kind, nullable=True))
        if config.segments and "segments" not in config.fields:
            columns.append(Column("segments", JSON(), nullable=True))
        if config.channel != "none":
            columns.append(Column(f"{config.channel}_consent", Boolean(), nullable=True))
        columns.append(Column("published_at", UtcDateTime(), nullable=False))
        self.table = Table(config.table, MetaData(), *columns)
        self.names = {c.name for c in columns}

    def recover(self, settle: Settle) -> int:
        """Nothing to recover: a batch is settled right after its transaction commits."""
        return 0

    def send(self, batches: Iterable[list[Outgoing]], settle: Settle) -> None:
        """Create the table if needed, then one transaction per batch."""
        throttle = Throttle(self.config.rate_limit)
        try:
            self.table.create(self.engine, checkfirst=True)
            for batch in batches:
                throttle.wait(len(batch))
                self._write(batch)
                settle(Outcome(confirmed=batch))
        except OperationalError as exc:
            raise RetryableSourceError(
                f"destination {self.name}: database unreachable or refused the write: {exc.orig}"
            ) from None
        finally:
            self.engine.dispose()

    def _write(self, batch: list[Outgoing]) -> None:
        now = datetime.now(UTC)
        gone = [i.master_id for i in batch if i.record.get("_deleted") or i.record.get("_erase")]
        rows = []
        for item in batch:
            if item.master_id in gone or item.action == "forget":
                continue
            row = {k: self._value(k, v) for k, v in item.record.items() if k in self.names}
            rows.append({**row, "published_at": now})
        with self.engine.begin() as conn:
            write_batch(conn, self.table, ["master_id"], rows, [(m,) for m in gone])

    def _value(self, name: str, value: Any) -> Any:
        if name in self.numeric and isinstance(value, str):
            return Decimal(value)
        return value


register_driver("sql", SqlDriver)
