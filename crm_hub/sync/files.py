"""File sources: CSV and JSONL, one stream per source, a single file or a glob of them.

Read in constant memory, one line at a time, remembering the byte offset after each record so a
killed sync resumes where its last committed checkpoint was. Incremental two ways: files whose
size and modification time did not change since they were last read completely are skipped;
with ``cursor_field``, records whose cursor is below the last completed run's maximum are
skipped. A malformed line becomes a rejection naming the file and line; the file goes on.

State, per stream::

    {"cursor": threshold of this run, "max_cursor": highest seen,
     "files": {"data/a.csv": {"mtime_ns": .., "size": .., "offset": .., "line": .., "done": ..}}}
"""

from __future__ import annotations

import csv
import functools
import glob
import hashlib
import io
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import IO, Any

import orjson

from crm_hub.config.models import FileSourceConfig
from crm_hub.errors import FatalSourceError
from crm_hub.sync.messages import Message, RecordMessage, RejectMessage, StateMessage

__all__ = ["FileReader"]

# Why a line of a file is rejected (documented in the README, checked by tests/test_docs.py).
REASON_CODES = (
    "missing_primary_key",
    "wrong_column_count",
    "malformed_csv",
    "bad_encoding",
    "invalid_json",
    "not_an_object",
)
CHECKPOINT_EVERY = 5_000  # JSONL records between resumable offsets (CSV: every 1 MiB chunk)
_BOM = b"\xef\xbb\xbf"


def _record_chunks(handle: IO[bytes], quote: bytes, size: int = 1 << 20) -> Iterator[bytes]:
    """Blocks of whole CSV records: cut after a newline where the quotes are balanced.

    Doubled quotes inside a quoted field keep the count even, so parity marks record ends.
    """
    pending = b""
    while block := handle.read(size):
        data = pending + block
        cut = data.rfind(b"\n")
        while cut != -1 and data.count(quote, 0, cut) % 2:
            cut = data.rfind(b"\n", 0, cut)
        if cut == -1:
            pending = data
            continue
        yield data[: cut + 1]
        pending = data[cut + 1 :]
    if pending:
        yield pending


def _line_at(first_line: int, numbers: list[int] | None, index: int) -> int:
    """File line of the chunk's ``index``-th (1-based) line."""
    if numbers is None:
        return first_line + index
    return numbers[index - 1] if 0 < index <= len(numbers) else first_line + index


def _csv_text(row: list[str], dialect: dict[str, Any]) -> bytes:
    out = io.StringIO()
    csv.writer(out, delimiter=dialect["delimiter"], quotechar=dialect["quotechar"]).writerow(row)
    return out.getvalue().encode()


def _as_text(rows: Any, exc: Exception) -> bytes:
    return f"(unparseable CSV near line {rows.line_num}: {exc})".encode()


def _checkpoint(
    stream: str,
    label: str,
    mtime_ns: int,
    size: int,
    cursor_state: dict[str, Any],
    files_state: dict[str, dict[str, Any]],
    offset: int,
    line: int,
    done: bool = False,
) -> StateMessage:
    """The stream's state after reading ``label`` up to ``offset``."""
    files_state[label] = {
        "mtime_ns": mtime_ns,
        "size": size,
        "offset": offset,
        "line": line,
        "done": done,
    }
    return StateMessage(stream, {**cursor_state, "files": dict(files_state)})


def _line_key(raw: bytes) -> str:
    return "line:" + hashlib.blake2b(raw, digest_size=16).hexdigest()


def _cursor_order(value: Any) -> tuple[int, float, str]:
    """Numbers compare as numbers, anything else as text (use ISO 8601 timestamps)."""
    try:
        return (0, float(value), "")
    except (TypeError, ValueError):
        return (1, 0.0, str(value))


class _Lines:
    """Decoded lines of a binary file, tracking line number and byte offset.

    Lines that are not valid in the file's encoding are set aside in ``bad`` (line number, raw
    bytes, error) and skipped, so the CSV parser never sees them.
    """

    def __init__(self, handle: IO[bytes], encoding: str, offset: int, line: int) -> None:
        self.handle, self.encoding = handle, encoding
        self.offset, self.line = offset, line
        self.record_start = line + 1
        self.bad: list[tuple[int, bytes, str]] = []
        self.last_raw = b""

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        while True:
            raw = self.handle.readline()
            if not raw:
                raise StopIteration
            if self.offset == 0 and raw.startswith(_BOM):
                raw = raw[len(_BOM) :]
                self.offset = len(_BOM)
            self.offset += len(raw)
            self.line += 1
            self.last_raw = raw
            try:
                return raw.decode(self.encoding)
            except UnicodeDecodeError as exc:
                self.bad.append((self.line, raw, f"not valid {self.encoding}: {exc.reason}"))
                self.record_start = self.line + 1


class FileReader:
    """Reads the files of one file source (see the module docstring)."""

    def __init__(self, name: str, config: FileSourceConfig, base_dir: Path) -> None:
        self.name, self.config, self.base_dir = name, config, base_dir
        self._done_bytes = 0
        self._total_bytes: int | None = None
        self._lines: _Lines | None = None

    def streams(self) -> dict[str, list[str]]:
        """The one stream of this source and its primary key."""
        return {self.config.stream: list(self.config.primary_key)}

    def position(self) -> tuple[int, int | None]:
        """Bytes read so far, and the total size of the files."""
        current = self._lines.offset if self._lines else 0
        return self._done_bytes + current, self._total_bytes

    def files(self) -> list[Path]:
        """The files this source reads now, in a stable order.

        Raises:
            FatalSourceError: the path or glob matches no file.
        """
        pattern = str(self.base_dir / self.config.path)
        found = sorted(Path(p) for p in glob.glob(pattern, recursive=True) if Path(p).is_file())
        if not found:
            raise FatalSourceError(
                f"source {self.name}: path {self.config.path!r} matches no file "
                f"(looked for {pattern})"
            )
        return found

    def _fmt(self, path: Path) -> str:
        if self.config.format != "auto":
            return self.config.format
        suffix = path.suffix.lower()
        if suffix in (".jsonl", ".ndjson", ".json"):
            return "jsonl"
        return "csv"

    def _label(self, path: Path) -> str:
        try:
            return str(path.relative_to(self.base_dir))
        except ValueError:
            return str(path)

    def read(self, state: dict[str, Any]) -> Iterator[Message]:
        """Yield records of every new or changed file, with checkpoints; see module docs."""
        stream = self.config.stream
        saved = dict(state.get(stream) or {})
        files_state: dict[str, dict[str, Any]] = dict(saved.get("files") or {})
        resuming = any(not entry.get("done", True) for entry in files_state.values())
        threshold = saved.get("cursor") if resuming else saved.get("max_cursor")
        cursor_state = {"cursor": threshold, "max_cursor": saved.get("max_cursor", threshold)}
        paths = self.files()
        self._total_bytes = sum(p.stat().st_size for p in paths)
        for path in paths:
            label, stat = self._label(path), path.stat()
            entry = files_state.get(label) or {}
            same_file = entry.get("mtime_ns") == stat.st_mtime_ns and entry.get("size") == (
                stat.st_size
            )
            if same_file and entry.get("done"):
                self._done_bytes += stat.st_size
                continue
            start = (entry.get("offset", 0), entry.get("line", 0)) if same_file else (0, 0)
            checkpoint = functools.partial(
                _checkpoint,
                stream,
                label,
                stat.st_mtime_ns,
                stat.st_size,
                cursor_state,
                files_state,
            )
            reader = self._read_jsonl if self._fmt(path) == "jsonl" else self._read_csv
            yield from reader(path, label, start, threshold, cursor_state, checkpoint)
            self._lines = None
            self._done_bytes += stat.st_size
        cursor_state["cursor"] = cursor_state["max_cursor"]
        yield StateMessage(stream, {**cursor_state, "files": files_state})

    def _keep(self, data: dict[str, Any], threshold: Any, cursor_state: dict[str, Any]) -> bool:
        field = self.config.cursor_field
        if field is None:
            return True
        value = data.get(field)
        if value is None or value == "":
            return True
        order = _cursor_order(value)
        best = cursor_state["max_cursor"]
        if best is None or order > _cursor_order(best):
            cursor_state["max_cursor"] = value
        return threshold is None or order >= _cursor_order(threshold)

    def _reject(self, label: str, line: int, raw: bytes, code: str, message: str) -> RejectMessage:
        return RejectMessage(
            stream=self.config.stream,
            reason_code=code,
            message=message,
            reject_key=_line_key(raw),
            location=f"{label}:{line}",
            payload=raw.decode(self.config.encoding, errors="replace").rstrip("\r\n")[:10_000],
        )

    def _missing_key(self, data: dict[str, Any]) -> str | None:
        missing = [k for k in self.config.primary_key if data.get(k) in (None, "")]
        return ", ".join(missing) if missing else None

    def _read_csv(
        self,
        path: Path,
        label: str,
        start: tuple[int, int],
        threshold: Any,
        cursor_state: dict[str, Any],
        checkpoint: Any,
    ) -> Iterator[Message]:
        cfg = self.config
        dialect = {"delimiter": cfg.delimiter, "quotechar": cfg.quotechar, "strict": True}
        with path.open("rb") as handle:
            header_lines = _Lines(handle, cfg.encoding, 0, 0)
            header = next(csv.reader(header_lines, **dialect), None)  # type: ignore[arg-type]
            if header is None:
                return
            if header_lines.bad:
                raise FatalSourceError(
                    f"source {self.name}: {label}:1: header is not valid {cfg.encoding}"
                )
            self._check_header(label, header)
            offset, line = start if start[0] else (header_lines.offset, header_lines.line)
            handle.seek(offset)
            self._lines = progress = _Lines(handle, cfg.encoding, offset, line)
            quote = cfg.quotechar.encode(cfg.encoding)
            for chunk in _record_chunks(handle, quote):
                yield from self._csv_chunk(
                    chunk, label, line, header, dialect, threshold, cursor_state
                )
                offset += len(chunk)
                line += chunk.count(b"\n") + (0 if chunk.endswith(b"\n") else 1)
                progress.offset = offset
                yield checkpoint(offset, line)
            yield checkpoint(offset, line, done=True)

    def _csv_chunk(
        self,
        chunk: bytes,
        label: str,
        first_line: int,
        header: list[str],
        dialect: dict[str, Any],
        threshold: Any,
        cursor_state: dict[str, Any],
    ) -> Iterator[Message]:
        """Parse one chunk of whole records; ``first_line`` is the line before the chunk."""
        cfg, stream, width = self.config, self.config.stream, len(header)
        try:
            text = chunk.decode(cfg.encoding)
            line_numbers: list[int] | None = None
        except UnicodeDecodeError:
            text, line_numbers = yield from self._decode_lines(chunk, label, first_line)
        rows = csv.reader(io.StringIO(text, newline=""), **dialect)
        pk = cfg.primary_key
        single = pk[0] if len(pk) == 1 else None
        filtering = cfg.cursor_field is not None
        while True:
            before = rows.line_num
            try:
                row = next(rows)
            except StopIteration:
                return
            except csv.Error as exc:
                where = _line_at(first_line, line_numbers, before + 1)
                yield self._reject(label, where, _as_text(rows, exc), "malformed_csv", str(exc))
                return  # the rest of the chunk cannot be trusted after a broken quote
            if not row:
                continue
            if len(row) != width:
                where = _line_at(first_line, line_numbers, before + 1)
                yield self._reject(
                    label,
                    where,
                    _csv_text(row, dialect),
                    "wrong_column_count",
                    f"expected {width} columns (as in the header), found {len(row)}",
                )
                continue
            data = dict(zip(header, row, strict=True))
            if (not data[single]) if single else self._missing_key(data):
                where = _line_at(first_line, line_numbers, before + 1)
                yield self._reject(
                    label,
                    where,
                    _csv_text(row, dialect),
                    "missing_primary_key",
                    f"primary key {self._missing_key(data)} is empty",
                )
                continue
            if not filtering or self._keep(data, threshold, cursor_state):
                yield RecordMessage(
                    stream, data, label, _line_at(first_line, line_numbers, before + 1)
                )

    def _decode_lines(
        self, chunk: bytes, label: str, first_line: int
    ) -> Generator[Message, None, tuple[str, list[int]]]:
        """Slow path for a chunk with bad bytes: reject its bad lines, keep the others."""
        kept, numbers = [], []
        for index, raw in enumerate(chunk.splitlines(keepends=True)):
            try:
                kept.append(raw.decode(self.config.encoding))
                numbers.append(first_line + index + 1)
            except UnicodeDecodeError as exc:
                why = f"not valid {self.config.encoding}: {exc.reason}"
                yield self._reject(label, first_line + index + 1, raw, "bad_encoding", why)
        return "".join(kept), numbers

    def _check_header(self, label: str, header: list[str]) -> None:
        problems = []
        if len(set(header)) != len(header):
            dupes = sorted({h for h in header if header.count(h) > 1})
            problems.append(f"duplicate column(s) {', '.join(dupes)}")
        needed = [*self.config.primary_key, *filter(None, [self.config.cursor_field])]
        absent = [c for c in needed if c not in header]
        if absent:
            problems.append(
                f"no column {', '.join(absent)} (primary_key/cursor_field in hub.yaml); "
                f"columns are: {', '.join(header)}"
            )
        if problems:
            raise FatalSourceError(f"source {self.name}: {label}:1: " + "; ".join(problems))

    def _read_jsonl(
        self,
        path: Path,
        label: str,
        start: tuple[int, int],
        threshold: Any,
        cursor_state: dict[str, Any],
        checkpoint: Any,
    ) -> Iterator[Message]:
        stream, since = self.config.stream, 0
        with path.open("rb") as handle:
            handle.seek(start[0])
            lines = self._lines = _Lines(handle, "latin-1", start[0], start[1])
            for raw_line in iter(handle.readline, b""):
                if lines.offset == 0 and raw_line.startswith(_BOM):
                    raw_line, lines.offset = raw_line[len(_BOM) :], len(_BOM)
                lines.offset += len(raw_line)
                lines.line += 1
                if not raw_line.strip():
                    continue
                try:
                    data = orjson.loads(raw_line)
                except orjson.JSONDecodeError as exc:
                    code = "bad_encoding" if "UTF-8" in str(exc) else "invalid_json"
                    yield self._reject(label, lines.line, raw_line, code, f"invalid JSON: {exc}")
                    continue
                if not isinstance(data, dict):
                    yield self._reject(
                        label,
                        lines.line,
                        raw_line,
                        "not_an_object",
                        f"expected a JSON object, found {type(data).__name__}",
                    )
                    continue
                missing = self._missing_key(data)
                if missing:
                    yield self._reject(
                        label,
                        lines.line,
                        raw_line,
                        "missing_primary_key",
                        f"primary key {missing} is missing or empty",
                    )
                    continue
                if self._keep(data, threshold, cursor_state):
                    yield RecordMessage(stream, data, label, lines.line)
                since += 1
                if since >= CHECKPOINT_EVERY:
                    since = 0
                    yield checkpoint(lines.offset, lines.line)
            yield checkpoint(lines.offset, lines.line, done=True)
