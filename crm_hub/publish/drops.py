"""File drops shared by ``type: file`` (:mod:`crm_hub.publish.files`) and the standalone Singer
target ``target-crmhub-files``: CSV, JSONL and Parquet renderers, and the atomic write.

Records are flat dicts of JSON values. In CSV, lists and objects are JSON text and ``None`` an
empty cell; in Parquet, objects are JSON text. Columns are every key seen, in first-seen order.
"""

from __future__ import annotations

import csv
import io
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from crm_hub.errors import ConfigError

__all__ = [
    "RENDERERS",
    "columns",
    "format_for_path",
    "render_csv",
    "render_jsonl",
    "render_parquet",
    "write_atomically",
]

Records = list[dict[str, Any]]


def columns(records: Records) -> list[str]:
    """Every key of ``records``, in the order first seen."""
    seen: dict[str, None] = {}
    for record in records:
        seen.update(dict.fromkeys(record))
    return list(seen)


def render_jsonl(records: Records) -> bytes:
    """One JSON object per line."""
    return b"".join(orjson.dumps(r) + b"\n" for r in records)


def render_csv(records: Records) -> bytes:
    """A header row, then one row per record (UTF-8, ``\\n`` line ends)."""
    names = columns(records)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(names)
    for record in records:
        writer.writerow([_csv_cell(record.get(c)) for c in names])
    return buffer.getvalue().encode("utf-8")


def _csv_cell(value: Any) -> Any:
    if isinstance(value, list | dict):
        return orjson.dumps(value).decode()
    return "" if value is None else value


def render_parquet(records: Records) -> bytes:
    """One Parquet table (types inferred by pyarrow).

    Raises:
        ConfigError: when pyarrow is not installed.
    """
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise ConfigError(
            "file destinations in Parquet need pyarrow: pip install pyarrow (or use csv/jsonl)"
        ) from None
    names = columns(records)
    cells = {c: [_parquet_cell(r.get(c)) for r in records] for c in names}
    table = pa.table(cells)
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    return bytes(sink.getvalue().to_pybytes())


def _parquet_cell(value: Any) -> Any:
    return orjson.dumps(value).decode() if isinstance(value, dict) else value


RENDERERS: dict[str, Callable[[Records], bytes]] = {
    "jsonl": render_jsonl,
    "csv": render_csv,
    "parquet": render_parquet,
}


def format_for_path(path: str, declared: str = "auto") -> str:
    """The format to write: ``declared``, or with ``auto`` the one the extension names (JSONL
    when it names none). Example: ``format_for_path("out/x.csv")`` → ``"csv"``."""
    if declared != "auto":
        return declared
    for ext, kind in ((".csv", "csv"), (".parquet", "parquet"), (".jsonl", "jsonl"),
                      (".ndjson", "jsonl")):  # fmt: skip
        if path.endswith(ext):
            return kind
    return "jsonl"


def write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``path``, fsync it and rename it into place: a
    reader never sees half a file, and a write killed before the rename leaves no file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
