"""``type: file``: one drop per push, CSV, JSONL or Parquet (Parquet needs pyarrow), written to a
temporary file beside the target and renamed into place: a reader never sees half a file, and
a push killed before the rename leaves no file and no state (it is sent again next time).

Records keep their destination field names; a removal is a row with ``_deleted`` true. In CSV,
lists and objects are JSON text. A push with nothing to send writes no file.
"""

from __future__ import annotations

import csv
import io
import os
import tempfile
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from crm_hub.config.destinations import FileDestination
from crm_hub.errors import ConfigError
from crm_hub.publish.driver import DriverContext, Outcome, Settle, register_driver
from crm_hub.publish.payload import Outgoing

__all__ = ["FileDriver"]


class FileDriver:
    """Writes every batch of one push into one file, then settles them all."""

    def __init__(self, ctx: DriverContext) -> None:
        config = ctx.config
        assert isinstance(config, FileDestination)
        self.config, self.name, self.run_id = config, ctx.name, ctx.run_id
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        relative = config.path.format(destination=ctx.name, run_id=ctx.run_id, timestamp=stamp)
        path = Path(relative).expanduser()
        self.path = path if path.is_absolute() else ctx.base_dir / path
        self.format = config.file_format()

    def recover(self, settle: Settle) -> int:
        """Nothing to recover: an unrenamed temporary file is not a drop."""
        return 0

    def send(self, batches: Iterable[list[Outgoing]], settle: Settle) -> None:
        """Write the file atomically; settle everything once it is in place."""
        items = [item for batch in batches for item in batch]
        if not items:
            return
        records = [item.record for item in items]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = _RENDER[self.format](records)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        settle(Outcome(confirmed=items))


def _columns(records: list[dict[str, Any]]) -> list[str]:
    seen: dict[str, None] = {}
    for record in records:
        seen.update(dict.fromkeys(record))
    return list(seen)


def _jsonl(records: list[dict[str, Any]]) -> bytes:
    return b"".join(orjson.dumps(r) + b"\n" for r in records)


def _csv(records: list[dict[str, Any]]) -> bytes:
    columns = _columns(records)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for record in records:
        writer.writerow([_cell(record.get(c)) for c in columns])
    return buffer.getvalue().encode("utf-8")


def _cell(value: Any) -> Any:
    if isinstance(value, list | dict):
        return orjson.dumps(value).decode()
    return "" if value is None else value


def _parquet(records: list[dict[str, Any]]) -> bytes:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise ConfigError(
            "file destinations in Parquet need pyarrow: pip install pyarrow (or use csv/jsonl)"
        ) from None
    columns = _columns(records)
    cells = {c: [_parquet_cell(r.get(c)) for r in records] for c in columns}
    table = pa.table(cells)
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    return bytes(sink.getvalue().to_pybytes())


def _parquet_cell(value: Any) -> Any:
    return orjson.dumps(value).decode() if isinstance(value, dict) else value


_RENDER = {"jsonl": _jsonl, "csv": _csv, "parquet": _parquet}

register_driver("file", FileDriver)
