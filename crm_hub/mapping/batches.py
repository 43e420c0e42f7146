"""Map a batch of raw records in memory, here or on worker processes.

:func:`map_items` turns a batch into canonical rows and rejections (every record ends up
accepted or rejected, never lost). :class:`MapPool` runs it on worker processes, so a large
backlog is mapped on every core while the stage writes the batches before it: the stage still
writes each batch, in order, in its own transaction. A worker gets the raw JSON text and
decodes it the way the store's driver would, so what it maps is what the stage would read; it
hands back rows already bound for the store (JSON as text, times as the driver takes them), so
the stage, a single process that every batch passes through, only writes them.
"""

from __future__ import annotations

import gc
import json
import marshal
import multiprocessing
import os
import pickle
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager, suppress
from typing import Any

import orjson
from sqlalchemy import URL, Dialect

from crm_hub.errors import BadRecordError
from crm_hub.logging import get_logger
from crm_hub.mapping.apply import FieldError, StreamPlan, compile_mapping, map_record
from crm_hub.mapping.apply import reject as make_rejection
from crm_hub.mapping.spec import LoadedMapping
from crm_hub.store.canonical import RawItem, RawRow, decode_values, encode_values, row_values
from crm_hub.store.rejected import Rejection

__all__ = ["Batch", "MapPool", "gc_paused", "map_items"]

log = get_logger(__name__)


class Batch:
    """One batch's outcome, ready to write in one transaction.

    Canonical rows are in ``rows`` (by table, then source id); from a worker process, in
    ``encoded``, as lists bound for the store (``crm_hub.store.canonical.encode_values``, one
    per source id); :meth:`decode` turns those into ``values``, the plain lists
    ``crm_hub.store.canonical.upsert_values`` takes, for checks that look into the rows.
    """

    def __init__(self) -> None:
        self.rows: dict[str, dict[str, dict[str, Any]]] = {}
        self.values: dict[str, list[list[Any]]] = {}
        self.encoded: dict[str, list[list[Any]]] = {}
        self.lines: dict[str, list[dict[str, Any]]] = {}
        self.rejections: list[Rejection] = []
        self.accepted: dict[str, list[str]] = {}
        self.deleted: list[int] = []

    def decode(self, dialect: Dialect) -> None:
        """Move the ``encoded`` rows to ``values``, decoded (a rare path: erasures, echoes)."""
        for table, values in self.encoded.items():
            decode_values(dialect, table, values)
            self.values.setdefault(table, []).extend(values)
        self.encoded = {}


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause Python's cycle collector for one batch (re-entrant, and across threads: it
    resumes when the last pause ends, as it was before the first).

    A batch allocates hundreds of thousands of small objects that live until it is written
    (rows, their values); each time they pass the collector's threshold it walks every object
    of the process, which costs as much as the mapping itself. Reference counting frees the
    batch's objects, which hold no cycles; anything cyclic is collected once it is re-enabled.
    (Counted: the stage's reader and writer threads pause it at once, and the first to end
    must not resume it under the other, which measured 1-3 us a record of collections.)
    """
    global _pauses, _resume
    with _pause_lock:
        if _pauses == 0:
            _resume = gc.isenabled()
            gc.disable()
        _pauses += 1
    try:
        yield
    finally:
        with _pause_lock:
            _pauses -= 1
            if _pauses == 0 and _resume:
                gc.enable()


_pause_lock = threading.Lock()
_pauses = 0  # gc_paused blocks under way, in every thread
_resume = False  # whether the collector was on before the first of them


def _forget_pauses() -> None:
    """A forked process inherits no pause (the pausing threads stayed in its parent)."""
    global _pause_lock, _pauses
    _pause_lock, _pauses = threading.Lock(), 0


os.register_at_fork(after_in_child=_forget_pauses)


def map_items(
    items: list[RawItem], plans: dict[str, StreamPlan], source: str, mapping: LoadedMapping
) -> Batch:
    """Map a batch in memory; every item ends up accepted or rejected, never lost."""
    with gc_paused():
        return _map_items(items, plans, source, mapping)


def _map_items(
    items: list[RawItem], plans: dict[str, StreamPlan], source: str, mapping: LoadedMapping
) -> Batch:
    batch = Batch()
    rows, accepted = batch.rows, batch.accepted
    for item in items:
        plan = plans.get(item.stream)
        if item.deleted:
            batch.deleted.append(item.id)
            accepted.setdefault(item.stream, []).append(item.record_key)
            continue
        try:
            if plan is None:
                raise BadRecordError(
                    f"no mapping for stream {item.stream}: add `streams: {item.stream}:` "
                    f"to {mapping.display}",
                    reason_code="unmapped_stream",
                )
            mapped = map_record(plan, source, item.record_key, item.payload)
        except (FieldError, BadRecordError) as exc:
            batch.rejections.append(
                make_rejection(plan, item.stream, item.record_key, item.payload, exc)
            )
            continue
        except Exception as exc:  # a bug must cost one record, not the run: kept, with its cause
            log.warning(
                "record failed to map", stream=item.stream, key=item.record_key, error=repr(exc)
            )
            batch.rejections.append(
                make_rejection(plan, item.stream, item.record_key, item.payload, exc)
            )
            continue
        row = mapped.row
        row["stream"], row["raw_id"], row["raw_change_seq"] = item.stream, item.id, item.change_seq
        by_id = rows.get(mapped.table)
        if by_id is None:
            by_id = rows[mapped.table] = {}
        by_id[row["source_id"]] = row  # last one wins
        if plan is not None and plan.lines_each is not None:
            batch.lines[row["source_id"]] = mapped.lines
        accepted.setdefault(item.stream, []).append(item.record_key)
    return batch


# --- worker processes -------------------------------------------------------------------------

# plans, mapping, source, payload decoder, the store's dialect (to bind rows for it)
_Worker = tuple[dict[str, StreamPlan], LoadedMapping, str, Callable[[str], Any], Dialect]
_worker: _Worker | None = None


def _decoder(dialect: str) -> Callable[[str], Any]:
    """Decode payload text as the store's driver does (JsonDocument on SQLite; psycopg's
    default ``json.loads`` on PostgreSQL)."""
    return json.loads if dialect == "postgresql" else orjson.loads


def _start_worker(mapping: LoadedMapping, source: str, driver: str) -> None:
    global _worker
    dialect = URL.create(driver).get_dialect()()
    _worker = (compile_mapping(mapping), mapping, source, _decoder(dialect.name), dialect)
    gc.enable()  # forked from a stage that paused it
    gc.freeze()  # what the worker inherited lives as long as it: the collector skips it


def _map_rows(rows: list[RawRow]) -> bytes:
    """Map on a worker; the batch comes back packed (:func:`_pack`), to be loaded by the writer
    (:meth:`MapPool.result`) with the collector paused, not by the pool's result thread."""
    if _worker is None:  # pragma: no cover - the pool's initializer always ran
        raise RuntimeError("map worker not started")
    # The batch is freed (by reference counting) before the collector is re-enabled: alive
    # then, a collection would start at once, walk it and promote it to older generations
    # for later ones to walk again (measured: 4-6 us of a worker's ~48 us per record).
    with gc_paused():
        return _pack(_mapped(rows, *_worker), by_marshal=_worker[4].name == "sqlite")


def _pack(batch: Batch, *, by_marshal: bool) -> bytes:
    """A worker's batch as bytes, pickled; ``by_marshal``: its rows by ``marshal``, for rows
    bound for SQLite (text, numbers and None: 1-1.5 us per record less than pickle, both
    ways together). Not for PostgreSQL's, which keep datetimes: marshal would walk every row
    before it gave up."""
    rows = b""
    if by_marshal:
        with suppress(ValueError):  # a value only pickle takes: the rows stay in the pickle
            rows, batch.encoded = marshal.dumps(batch.encoded), {}
    return pickle.dumps((batch, rows), protocol=pickle.HIGHEST_PROTOCOL)


def _unpack(data: bytes) -> Batch:
    """The :class:`Batch` that :func:`_pack` made."""
    batch: Batch
    batch, rows = pickle.loads(data)
    if rows:
        batch.encoded = marshal.loads(rows)
    return batch


def _mapped(
    rows: list[RawRow], plans: dict[str, StreamPlan], mapping: LoadedMapping, source: str,
    loads: Callable[[str], Any], dialect: Dialect,
) -> Batch:  # fmt: skip
    """A worker's batch, its rows bound for the store (lists pickle faster than dicts)."""
    items = [
        RawItem(raw_id, stream, key, None if deleted else loads(text), bool(deleted), seq)
        for raw_id, stream, key, text, deleted, seq in rows
    ]
    batch = _map_items(items, plans, source, mapping)
    for table, by_id in batch.rows.items():
        values = [row_values(table, row) for row in by_id.values()]
        encode_values(dialect, table, values)
        batch.encoded[table] = values
    batch.rows = {}
    return batch


_START = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"


class MapPool:
    """Worker processes mapping batches of raw rows (``with MapPool(...) as pool``).

    Workers are forked where the platform can (they start at once and need no importable
    ``__main__``, so any script may call the stage; they touch none of the connections they
    inherit), compile the mapping once each, and return :class:`Batch` objects; the caller
    writes them in the order it submitted them.
    """

    def __init__(self, mapping: LoadedMapping, source: str, driver: str, workers: int) -> None:
        self._executor = ProcessPoolExecutor(
            max_workers=workers,
            mp_context=multiprocessing.get_context(_START),
            initializer=_start_worker,
            initargs=(mapping, source, driver),
        )

    def submit(self, rows: list[RawRow]) -> Future[bytes]:
        """Map ``rows`` on a worker; :meth:`result` gives the :class:`Batch`."""
        return self._executor.submit(_map_rows, rows)

    @staticmethod
    def result(future: Future[bytes]) -> Batch:
        """The batch a :meth:`submit` made (waits for it)."""
        data = future.result()
        with gc_paused():
            return _unpack(data)

    def __enter__(self) -> MapPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
