"""SQL sink: each batch is one transaction on the stream's table.

Records of a batch are folded per key, in order: a record with ``_deleted: true`` (or
``_erase: true``) deletes the row, any other upserts the columns it carries (a column it leaves
out keeps its value). If the database refuses the batch (a value its column cannot hold, a
constraint), the batch is written key by key and the keys it still refuses are rejected with the
database's words; a connection failure stops the run (nothing of the batch is reported).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from singer_sdk.sinks import BatchSink
from sqlalchemy import Engine, Table, insert
from sqlalchemy.exc import OperationalError, StatementError

from connectors.target_common import (
    BatchOutcome,
    BatchReporter,
    Rejection,
    batch_size,
    record_key,
)
from connectors.target_sql.columns import CONTROL_FIELDS, cell, table_for
from crm_hub.publish.tables import add_missing_columns, write_batch


@dataclass
class KeyChange:
    """What a batch does to one key: delete the row first, then upsert ``row`` (if any)."""

    delete_first: bool = False
    row: dict[str, Any] | None = None
    keys: list[Any] = field(default_factory=list)  # the record keys, as reported


Changes = dict[tuple[Any, ...], KeyChange]


def removes(record: dict[str, Any]) -> bool:
    """True when the record asks for its row to go."""
    return bool(record.get("_deleted") or record.get("_erase"))


class SqlSink(BatchSink):
    """Upserts batches into ``table`` (see the module docstring)."""

    def __init__(self, target: Any, stream_name: str, schema: dict[str, Any], key_properties: Any):
        super().__init__(target, stream_name, schema, key_properties)
        self._engine: Engine = target.engine
        self._reporter: BatchReporter = target.reporter
        self.table: Table = table_for(
            target.table_name(stream_name), schema, list(key_properties or [])
        )
        added = add_missing_columns(self._engine, self.table)
        if added:
            self.logger.info("table %s: added column(s) %s", self.table.name, ", ".join(added))

    @property
    def max_size(self) -> int:
        """Records per batch (``batch_size``): one transaction and one STATE line each."""
        return batch_size(self.config, 1000)

    def process_batch(self, context: dict[str, Any]) -> None:
        """Write the batch in one transaction (key by key if refused), then report it."""
        records: list[dict[str, Any]] = context.get("records", [])
        outcome = BatchOutcome()
        if self.key_properties:
            changes = self._fold(records, outcome)
            self._write(changes, outcome)
        else:
            self._append(records, outcome)
        self._reporter.report(self.stream_name, f"batch_{uuid.uuid4().hex}", outcome)
        self.tally_record_written(len(outcome.confirmed))

    def _fold(self, records: list[dict[str, Any]], outcome: BatchOutcome) -> Changes:
        changes: Changes = {}
        for record in records:
            key = record_key(record, self.key_properties)
            values = tuple(record.get(k) for k in self.key_properties)
            if any(v is None for v in values):
                missing = ", ".join(k for k in self.key_properties if record.get(k) is None)
                outcome.rejected.append(Rejection(key, f"no value for key property {missing}"))
                continue
            change = changes.setdefault(values, KeyChange())
            change.keys.append(key)
            if removes(record):
                change.delete_first, change.row = True, None
            else:
                change.row = {**(change.row or {}), **self._row(record)}
        return changes

    def _row(self, record: dict[str, Any]) -> dict[str, Any]:
        columns = self.table.c
        return {
            name: cell(columns[name], value)
            for name, value in record.items()
            if name in columns and name not in CONTROL_FIELDS
        }

    def _write(self, changes: Changes, outcome: BatchOutcome) -> None:
        try:
            self._apply(list(changes.items()))
        except OperationalError:
            raise
        except StatementError as exc:
            self.logger.warning("table %s refused a batch (%s); writing it key by key",
                                self.table.name, _reason(exc))  # fmt: skip
            for item in changes.items():
                try:
                    self._apply([item])
                except OperationalError:
                    raise
                except StatementError as refused:
                    reason = _reason(refused)
                    outcome.rejected.extend(Rejection(k, reason) for k in item[1].keys)
                else:
                    outcome.confirmed.extend(item[1].keys)
            return
        outcome.confirmed.extend(k for change in changes.values() for k in change.keys)

    def _apply(self, items: list[tuple[tuple[Any, ...], KeyChange]]) -> None:
        keys = list(self.key_properties)
        gone = [values for values, change in items if change.delete_first]
        rows = [change.row for _, change in items if change.row is not None]
        with self._engine.begin() as conn:
            write_batch(conn, self.table, keys, rows, gone)

    def _append(self, records: list[dict[str, Any]], outcome: BatchOutcome) -> None:
        """A stream without key properties: every record is a new row; removals are refused."""
        by_shape: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for record in records:
            if removes(record):
                outcome.rejected.append(Rejection(None, "cannot delete: stream has no key"))
                continue
            row = self._row(record)
            by_shape.setdefault(tuple(sorted(row)), []).append(row)
            outcome.confirmed.append(None)
        with self._engine.begin() as conn:
            for rows in by_shape.values():
                conn.execute(insert(self.table), rows)


def _reason(exc: StatementError) -> str:
    """The database's words, first line only (no SQL, no parameters)."""
    words = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return (words[0] if words else type(exc).__name__)[:500]
