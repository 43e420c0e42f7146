"""The map stage: raw records changed since the watermark become canonical rows or rejections.

Guarantees (DESIGN.md): each raw record becomes canonical rows or exactly one rejected row
(accepted + rejected = read, always); rows, rejections and the watermark are written in one
transaction per batch, so a crash loses and duplicates nothing; a rerun with nothing changed
reads nothing; a changed mapping file re-maps its source from the start. One map per source at
a time, enforced by the lease ``map:<source>``.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
from collections import deque
from collections.abc import Callable, Iterator, Sized
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from functools import partial
from typing import Any

from sqlalchemy import select

from crm_hub.config.models import HubConfig
from crm_hub.errors import ConfigError, CrmHubError
from crm_hub.logging import get_logger
from crm_hub.mapping.apply import Mapped, StreamPlan, compile_mapping
from crm_hub.mapping.batches import Batch, MapPool, gc_paused, map_items
from crm_hub.mapping.echoes import suppress_echoes
from crm_hub.mapping.erased import drop_erased
from crm_hub.mapping.spec import LoadedMapping, load_mapping
from crm_hub.store.canonical import (
    RawItem,
    RawRow,
    Watermark,
    count_raw_after,
    count_rows,
    drop_indexes,
    load_watermark,
    mark_deleted,
    missing_indexes,
    read_raw_batch,
    read_raw_keys,
    read_raw_rows,
    replace_order_lines,
    restore_indexes,
    save_watermark,
    upsert_canonical,
    upsert_encoded,
    upsert_values,
)
from crm_hub.store.engine import Store
from crm_hub.store.leases import lease_holders
from crm_hub.store.rejected import Rejection, count_open, resolve_rejections, save_rejections
from crm_hub.store.runs import record_progress, utcnow
from crm_hub.store.schema import CANONICAL_TABLES, rejected_records
from crm_hub.store.stage_run import run_stage

__all__ = [
    "BATCH_SIZE",
    "MapResult",
    "MapSummary",
    "PreviewItem",
    "load_source_mapping",
    "map_all",
    "map_source",
    "preview_source",
    "replay_rejected",
]

log = get_logger(__name__)
BATCH_SIZE = 2_000


@dataclass(slots=True)
class MapResult:
    """How one source's map ended. ``accepted + rejected == read`` always."""

    source: str
    run_id: str
    status: str = "succeeded"
    read: int = 0
    accepted: int = 0
    rejected: int = 0
    deleted: int = 0
    erased: int = 0  # rows of erased people dropped (``crm-hub erase``), raw records forgotten
    echoes: int = 0  # customers that were only the hub's own write-backs (crm_hub.mapping.echoes)
    remapped: bool = False  # the mapping changed: mapped again from the start
    seconds: float = 0.0
    error: str | None = None
    tables: dict[str, int] = field(default_factory=dict)

    def counts(self) -> dict[str, Any]:
        """The counts as stored in the runs table."""
        data = asdict(self)
        for key in ("source", "run_id", "status", "error"):
            data.pop(key)
        return data


@dataclass(slots=True)
class MapSummary:
    """Every source's map: results, failures, and sources without a mapping."""

    results: list[MapResult] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    config_error: bool = False  # a failure needs a config fix (exit code 2)


@dataclass(slots=True)
class PreviewItem:
    """A raw record beside what it would become (``mapped``) or why it would be rejected."""

    stream: str
    record_key: str
    payload: Any
    mapped: Mapped | None
    rejection: Rejection | None


def load_source_mapping(config: HubConfig, name: str) -> LoadedMapping:
    """Load and validate the mapping file of source ``name``.

    Raises:
        ConfigError: no such source, no ``mapping:`` key, or a broken mapping (file:line).
    """
    source = config.sources.get(name)
    if source is None:
        known = ", ".join(sorted(config.sources)) or "none"
        raise ConfigError(f"no source named {name!r} in hub.yaml (sources: {known})")
    if not source.mapping:
        raise ConfigError(
            f"source {name} has no mapping: add `mapping: mappings/{name}.yaml` to it in hub.yaml"
        )
    return load_mapping(config.resolve_path(source.mapping), source.mapping)


# kept under their old names: tests and callers map a batch in memory with them
_Batch = Batch
_map_items = map_items


def _write(
    store: Store, source: str, batch: _Batch, mark: Watermark | None, run_id: str,
    result: MapResult, resolve: bool,
) -> None:  # fmt: skip
    """One transaction: canonical rows, lines, deletions, rejections, resolutions, watermark."""
    now = utcnow()
    common = {"deleted": False, "mapped_at": now, "run_id": run_id}
    with store.begin() as conn:
        result.erased += drop_erased(conn, source, batch)
        result.echoes += suppress_echoes(conn, source, batch)
        for table, by_id in batch.rows.items():
            upsert_canonical(conn, table, list(by_id.values()), common)
            result.tables[table] = result.tables.get(table, 0) + len(by_id)
        for table, values in batch.values.items():  # a worker's, decoded by a check above
            upsert_values(conn, table, values, common)
            result.tables[table] = result.tables.get(table, 0) + len(values)
        for table, values in batch.encoded.items():  # bound by a worker process
            upsert_encoded(conn, table, values, common)
            result.tables[table] = result.tables.get(table, 0) + len(values)
        if batch.lines:
            lines = [line for order in batch.lines.values() for line in order]
            replace_order_lines(conn, source, list(batch.lines), lines)
            result.tables["order_lines"] = result.tables.get("order_lines", 0) + len(lines)
        mark_deleted(conn, source, batch.deleted, run_id=run_id, now=now)
        save_rejections(conn, "map", source, batch.rejections, run_id=run_id, now=now)
        if resolve:
            for stream, keys in batch.accepted.items():
                resolve_rejections(conn, "map", source, stream, keys, now)
        if mark is not None:
            save_watermark(conn, source, mark, run_id=run_id, now=now)
        record_progress(conn, run_id, result.counts())


def _count(result: MapResult, items: Sized, batch: _Batch) -> None:
    result.read += len(items)
    result.rejected += len(batch.rejections)
    result.accepted += sum(len(keys) for keys in batch.accepted.values())
    result.deleted += len(batch.deleted)


def _run_stage(
    store: Store, name: str, work: Callable[[MapResult], None], wait: float
) -> MapResult:
    """Lease ``map:<source>``, runs row, timing and failure recording around ``work``."""
    return run_stage(store, "map", lambda run_id: MapResult(source=name, run_id=run_id), work,
                     source=name, wait=wait)  # fmt: skip


def map_source(
    store: Store,
    config: HubConfig,
    name: str,
    *,
    wait: float = 0.0,
    batch_size: int = BATCH_SIZE,
    on_progress: Callable[[MapResult], None] | None = None,
    workers: int | None = None,
) -> MapResult:
    """Map what changed in source ``name`` since the last map: the map stage's entry point.

    A backlog of more than one full batch (of at least ``PARALLEL_FROM`` records) is mapped on
    ``workers`` processes (default: one per core, at most 4; 1 maps in this process) while
    this process writes the batches, each in its own transaction, in order.

    Raises:
        ConfigError: no such source, no mapping, or a broken mapping (nothing is written).
        BusyError: another map of this source runs.
        CrmHubError: the store failed; batches committed before it are kept.
    """
    mapping = load_source_mapping(config, name)
    plans = compile_mapping(mapping)
    processes = workers if workers is not None else min(os.cpu_count() or 1, 4)
    if multiprocessing.current_process().daemon:  # a daemon process may not start workers
        processes = 1

    def work(result: MapResult) -> None:
        _restore_left_dropped(store, name)
        with store.read() as conn:
            mark = load_watermark(conn, name)
            resolve = count_open(conn, "map").get(name, 0) > 0
        if mark.mapping_hash != mapping.digest:
            result.remapped = bool(mark.mapping_hash)
            mark = Watermark(0, 0, mapping.digest)
        run = _Committer(store, name, result, resolve, on_progress)
        with _indexes_rebuilt(store, _bulk_tables(store, name, mark, plans)):
            backlog(run, mark)

    def backlog(run: _Committer, mark: Watermark) -> None:
        while True:
            with store.read() as conn:
                items = read_raw_batch(conn, name, mark, batch_size)
            if not items:
                break
            batch = _map_items(items, plans, name, mapping)
            mark = Watermark(items[-1].change_seq, items[-1].id, mapping.digest)
            if processes > 1 and batch_size >= PARALLEL_FROM and len(items) == batch_size:
                with MapPool(mapping, name, store.engine.url.drivername, processes) as pool:
                    _map_on_pool(pool, run, mark, batch_size, processes + 1, items, batch)
                break
            run.commit(len(items), batch, mark)
            if len(items) < batch_size:
                break

    return _run_stage(store, name, work, wait)


PARALLEL_FROM = 1_000
"""Batch size from which a backlog of several batches is mapped on worker processes."""

BULK_FROM = 100_000
"""Backlog (raw records) from which a run loads a table that holds fewer rows than the backlog
without its secondary indexes, and builds them once at the end (measured on SQLite, 300k
customers: 30 -> 19 us a record, the build included)."""

_COUNT_UP_TO = 100_000_000  # raw records: a backlog is counted up to this


def _bulk_tables(
    store: Store, name: str, mark: Watermark, plans: dict[str, StreamPlan]
) -> list[str]:
    """The canonical tables this run bulk-loads: those that hold fewer rows than the backlog
    has records, when the backlog has ``BULK_FROM`` at least (counting costs no more than the
    backlog's size: a small run counts a few rows)."""
    with store.read() as conn:
        if count_raw_after(conn, name, mark, BULK_FROM) < BULK_FROM:
            return []
        backlog = count_raw_after(conn, name, mark, _COUNT_UP_TO)
        tables = sorted({plan.table for plan in plans.values()})
        return [t for t in tables if count_rows(conn, t, backlog) < backlog]


@contextmanager
def _indexes_rebuilt(store: Store, tables: list[str]) -> Iterator[None]:
    """Drop the secondary indexes of ``tables`` for the block and build them again after it,
    failed or not. A process that dies meanwhile leaves them dropped: the next map run
    builds them (:func:`_restore_left_dropped`). Queries stay right without them, only slower.
    """
    if not tables:
        yield
        return
    with store.begin() as conn:
        for table in tables:
            drop_indexes(conn, table, keep=_kept_in_bulk(table))
    log.info("bulk load: secondary indexes dropped until the end of the run", tables=tables)
    try:
        yield
    finally:
        with store.begin() as conn:
            restore_indexes(conn, tables)


_KEPT_IN_BULK = frozenset({("raw_change_seq",), ("birth_month", "birth_day")})
"""Index columns a bulk load keeps up to date as it writes: keys that arrive in order (a map
reads raw records by change_seq) or take few values (366 birthdays) land where the last ones
did, in pages already cached. Measured at 1 M customers on SQLite, kept against built at the
end: raw_change_seq 0.17 s against 0.42 s, birthday 1.3 s against 1.5 s, and what is kept is
done while the workers map (on the other core) instead of after them."""


def _kept_in_bulk(table: str) -> list[str]:
    """Names of ``table``'s indexes a bulk load does not drop (see ``_KEPT_IN_BULK``)."""
    return [
        str(index.name)
        for index in CANONICAL_TABLES[table].indexes
        if tuple(column.name for column in index.columns) in _KEPT_IN_BULK
    ]


def _restore_left_dropped(store: Store, name: str) -> None:
    """Build the canonical indexes a map that died in a bulk load left dropped; not while
    another source's map runs (it may be bulk-loading: it builds them at its end)."""
    with store.read() as conn:
        if not missing_indexes(conn):  # as nearly always: no write lock taken
            return
    if any(lease.startswith("map:") and lease != f"map:{name}" for lease in lease_holders(store)):
        return
    with store.begin() as conn:
        created = restore_indexes(conn)
    log.warning("indexes left dropped by an interrupted map rebuilt", indexes=created)


class _Committer:
    """Writes mapped batches, in order, one transaction each, and keeps the counts."""

    def __init__(
        self, store: Store, name: str, result: MapResult, resolve: bool,
        on_progress: Callable[[MapResult], None] | None,
    ) -> None:  # fmt: skip
        self.store, self.name, self.result = store, name, result
        self.resolve, self.on_progress = resolve, on_progress

    def commit(self, read: int, batch: _Batch, mark: Watermark) -> None:
        result = self.result
        result.read += read
        _count(result, (), batch)
        with gc_paused():
            _write(self.store, self.name, batch, mark, result.run_id, result, self.resolve)
        self.resolve = self.resolve or bool(batch.rejections)
        if self.on_progress is not None:
            self.on_progress(result)


_COLLECT_EVERY = 20  # batches mapped on a pool between two collections of young objects


class _RawReader:
    """Reads a source's raw rows (payloads as JSON text) batch after batch, from a watermark."""

    def __init__(self, store: Store, name: str, mark: Watermark, batch_size: int) -> None:
        self.store, self.name, self.mark, self.batch_size = store, name, mark, batch_size
        self.done = False

    def next_rows(self) -> list[RawRow]:
        with self.store.read() as conn:
            rows = read_raw_rows(conn, self.name, self.mark, self.batch_size)
        if rows:
            self.mark = Watermark(rows[-1][5], rows[-1][0], self.mark.mapping_hash)
        self.done = len(rows) < self.batch_size
        return rows


def _map_on_pool(
    pool: MapPool, run: _Committer, mark: Watermark, batch_size: int, depth: int,
    first: list[RawItem], mapped: _Batch,
) -> None:  # fmt: skip
    """Map the rest of the backlog on the pool, up to ``depth`` batches ahead of the writes.

    ``first`` (mapped here while the workers start) is written first; then every batch in the
    order it was read, each with the watermark of its own last record.
    """
    pending: deque[tuple[Future[bytes], int, Watermark]] = deque()
    reader = _RawReader(run.store, run.name, mark, batch_size)

    def read_ahead() -> None:
        while not reader.done and len(pending) < depth:
            rows = reader.next_rows()
            if rows:
                pending.append((pool.submit(rows), len(rows), reader.mark))

    with _Writer(background=not _in_memory(run.store)) as writer:
        # Queued before the first submit, so a worker that dies at once cannot cost it.
        writer.write(partial(run.commit, len(first), mapped, mark))
        read_ahead()
        # Paused for the whole backlog: a batch loaded from its worker outlives any shorter
        # pause, and each collection in its life walked it (measured ~1.5 us a record). What
        # little cyclic garbage the writes leave is collected every _COLLECT_EVERY batches.
        with gc_paused():
            written = 0
            while pending:
                future, read, batch_mark = pending.popleft()
                read_ahead()
                writer.write(partial(run.commit, read, pool.result(future), batch_mark))
                written += 1
                if written % _COLLECT_EVERY == 0:
                    gc.collect(1)  # the young objects only: those since the pause


class _Writer:
    """Commits batches in order on one thread (``with _Writer() as writer``).

    Reading the next batch and loading it from its worker overlap the store's work on the
    last one (SQLite syncing its log, PostgreSQL upserting): the driver lets go of the GIL
    meanwhile. One commit runs at a time and the next batch waits for it, so a failed commit
    stops everything after it, and its error is raised by the next :meth:`write` or on exit.
    Without ``background`` (an in-memory SQLite store: one connection per thread, so another
    thread would see another database), commits run in the caller's thread.
    """

    def __init__(self, *, background: bool) -> None:
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="map-writer")
        self._background = background
        self._last: Future[None] | None = None

    def write(self, commit: Callable[[], None]) -> None:
        if not self._background:
            commit()
            return
        if self._last is not None:
            self._last.result()
        self._last = self._thread.submit(commit)

    def __enter__(self) -> _Writer:
        return self

    def __exit__(self, kind: type[BaseException] | None, *exc: object) -> None:
        self._thread.shutdown(wait=True)  # a commit under way ends (or fails) as a whole
        if kind is None and self._last is not None:
            self._last.result()


def _in_memory(store: Store) -> bool:
    url = store.engine.url
    return store.dialect == "sqlite" and url.database in (None, "", ":memory:")


def map_all(
    store: Store,
    config: HubConfig,
    names: list[str] | None = None,
    *,
    wait: float = 0.0,
    on_progress: Callable[[MapResult], None] | None = None,
) -> MapSummary:
    """Map the named sources (default: every enabled one with a mapping).

    One source failing does not stop the rest. Sources without ``mapping:`` are listed in
    ``skipped``.
    """
    unknown = [n for n in names or [] if n not in config.sources]
    if unknown:
        known = ", ".join(sorted(config.sources)) or "none"
        raise ConfigError(f"no source named {', '.join(unknown)} in hub.yaml (sources: {known})")
    summary = MapSummary()
    for name, source in config.enabled_sources(names).items():
        if not source.mapping and not names:
            summary.skipped.append(name)
            continue
        try:
            summary.results.append(
                map_source(store, config, name, wait=wait, on_progress=on_progress)
            )
        except CrmHubError as exc:
            summary.failures.append(f"map {name}: {exc.message}")
            summary.config_error = summary.config_error or isinstance(exc, ConfigError)
    return summary


def preview_source(
    store: Store, config: HubConfig, name: str, *, limit: int = 10
) -> list[PreviewItem]:
    """What the first ``limit`` raw records of ``name`` become with the current mapping.

    Writes nothing: no rows, no rejections, no watermark, no lease.
    """
    mapping = load_source_mapping(config, name)
    plans = compile_mapping(mapping)
    with store.read() as conn:
        items = read_raw_batch(conn, name, Watermark(), limit)
    preview = []
    for item in items:
        batch = _map_items([item], plans, name, mapping)
        mapped = None
        for table, by_id in batch.rows.items():
            row = next(iter(by_id.values()))
            mapped = Mapped(table, row, batch.lines.get(row["source_id"], []))
        rejection = batch.rejections[0] if batch.rejections else None
        preview.append(PreviewItem(item.stream, item.record_key, item.payload, mapped, rejection))
    return preview


def replay_rejected(
    store: Store, config: HubConfig, name: str, *, reason: str | None = None, wait: float = 0.0
) -> MapResult:
    """Map again the raw records behind open map rejections of ``name`` (after a fix).

    Records that now map leave the ledger (resolved); the rest stay, with the new reason.
    The watermark does not move.
    """
    mapping = load_source_mapping(config, name)
    plans = compile_mapping(mapping)

    def work(result: MapResult) -> None:
        t = rejected_records
        query = select(t.c.stream, t.c.record_key).where(
            t.c.stage == "map", t.c.source == name, t.c.resolved_at.is_(None)
        )
        if reason:
            query = query.where(t.c.reason_code == reason)
        with store.read() as conn:
            keys = [(s, k) for s, k in conn.execute(query) if k is not None]
        for start in range(0, len(keys), BATCH_SIZE):
            with store.read() as conn:
                items = read_raw_keys(conn, name, keys[start : start + BATCH_SIZE])
            batch = _map_items(items, plans, name, mapping)
            _count(result, items, batch)
            _write(store, name, batch, None, result.run_id, result, resolve=True)

    return _run_stage(store, name, work, wait)
