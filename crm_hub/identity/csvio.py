"""CSV in and out for the standalone matcher, with errors that name the file, line and column.

Input: UTF-8 (a BOM is allowed) with a header; ``source_id`` required. Output: one row per
input record (``source,source_id,master_id,cluster_size``) and, optionally, the review queue
with comparison levels spelled out.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from crm_hub.errors import ConfigError
from crm_hub.identity.comparisons import comparison
from crm_hub.identity.records import check_identity
from crm_hub.identity.resolve import Resolution

__all__ = ["read_records", "write_records", "write_review"]


def _utf8(path: Path) -> tuple[bytes, str]:
    """Return the file's bytes and its text (checked as UTF-8, a BOM dropped)."""
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise ConfigError(f"{path}: cannot read the input file ({error.strerror})") from error
    try:
        return raw, raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        before = raw[: error.start]
        line = before.count(b"\n") + 1
        column = error.start - (before.rfind(b"\n") + 1) + 1
        raise ConfigError(
            f"{path}:{line}:{column}: not valid UTF-8 (byte 0x{raw[error.start]:02x}); "
            "save the file as UTF-8 and try again"
        ) from error


def _line_numbers(text: str, rows: int) -> Callable[[int], int]:
    """Map a data row index to its line in the file (quoted fields may span lines)."""
    if text.count("\n") - (1 if text.endswith("\n") else 0) == rows:
        return lambda row: row + 2
    starts: list[int] = []
    reader = csv.reader(io.StringIO(text))
    next(reader, None)
    line = reader.line_num
    for _ in reader:
        starts.append(line + 1)
        line = reader.line_num
    return lambda row: starts[row] if row < len(starts) else row + 2


def read_records(path: str | Path) -> pd.DataFrame:
    """Read an input CSV as strings, checking encoding, header and record identity.

    Args:
        path: the CSV file.

    Returns:
        The records, every column as strings (empty string for an empty cell).

    Raises:
        ConfigError: the file is unreadable, not UTF-8, has no ``source_id`` column, or a
            ``source_id`` is empty or repeated within its source; the message names the file
            and line (and column for encoding errors).
    """
    path = Path(path)
    raw, text = _utf8(path)
    if not text.strip():
        raise ConfigError(f"{path}:1: the file is empty; it needs a header with `source_id`")
    try:
        # Parsing the bytes is faster than the decoded text (a sixth at 1 M rows).
        frame = pd.read_csv(io.BytesIO(raw), encoding="utf-8-sig", dtype=str,
                            keep_default_na=False, na_filter=False)  # fmt: skip
    except (pd.errors.ParserError, ValueError) as error:
        raise ConfigError(f"{path}: not a readable CSV file: {error}") from error
    frame.columns = [str(name).strip() for name in frame.columns]
    if "source_id" not in frame.columns:
        raise ConfigError(
            f"{path}:1: required column `source_id` is missing from the header "
            f"(found: {', '.join(frame.columns)})"
        )
    line_of = _line_numbers(text, len(frame))
    check_identity(frame, describe_row=lambda row: f"{path}:{line_of(row)}")
    return frame


def write_records(resolution: Resolution, path: str | Path) -> None:
    """Write one row per input record: ``source,source_id,master_id,cluster_size``."""
    resolution.records.to_csv(path, index=False)


def write_review(resolution: Resolution, path: str | Path) -> None:
    """Write the review queue, with each comparison level as its label."""
    review = resolution.review.copy()
    names = resolution.model.names if resolution.model else ()
    for name in names:
        labels = comparison(name).labels
        review[name] = [labels[level] if level >= 0 else "" for level in review[name]]
    review.to_csv(path, index=False)
