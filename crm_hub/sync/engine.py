"""The sync stage: read a source, land its records in raw, keep its state.

Guarantees (DESIGN.md): state is committed only in the transaction that commits the records
before it; a re-delivered record is an upsert; an unchanged record writes nothing. One sync per
source at a time, enforced by a lease.
"""

from __future__ import annotations

import hashlib
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import orjson
from sqlalchemy import and_, update

from crm_hub.config.models import HubConfig, SourceConfig
from crm_hub.errors import BadRecordError, ConfigError, CrmHubError
from crm_hub.logging import bind, get_logger
from crm_hub.settings import get_settings
from crm_hub.store.engine import Store
from crm_hub.store.leases import hold_lease
from crm_hub.store.raw import LandCounts, RawRow, has_rows, land_batch
from crm_hub.store.rejected import Rejection, count_open, resolve_rejections, save_rejections
from crm_hub.store.runs import finish_run, new_run_id, record_progress, start_run, utcnow
from crm_hub.store.schema import runs
from crm_hub.store.state import load_state, save_state
from crm_hub.sync.messages import RecordMessage, RejectMessage, SourceReader, StateMessage
from crm_hub.sync.registry import make_reader
from crm_hub.sync.rotated import open_rotated

__all__ = ["SyncProgress", "SyncResult", "sync_source"]

log = get_logger(__name__)
_SORTED = orjson.OPT_SORT_KEYS
_DELETED_MARK = b"\x00deleted"


@dataclass(slots=True)
class SyncProgress:
    """Where a running sync is, for progress bars."""

    source: str
    read: int
    landed: int
    rejected: int
    done: int
    total: int | None


@dataclass(slots=True)
class SyncResult:
    """How one source's sync ended."""

    source: str
    run_id: str
    status: str = "succeeded"
    read: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    seconds: float = 0.0
    error: str | None = None
    streams: dict[str, int] = field(default_factory=dict)

    def counts(self) -> dict[str, Any]:
        """The counts as stored in the runs table."""
        data = asdict(self)
        for key in ("source", "run_id", "status", "error"):
            data.pop(key)
        return data


def record_key(data: dict[str, Any], primary_key: list[str]) -> str:
    """The key a record lands under: the value itself, or a JSON array for composite keys.

    Raises:
        BadRecordError: a key field is missing or empty.
    """
    if len(primary_key) == 1:
        value = data.get(primary_key[0])
        if value is None or value == "":
            raise BadRecordError(
                f"primary key {primary_key[0]} is missing or empty",
                reason_code="missing_primary_key",
            )
        return value if isinstance(value, str) else orjson.dumps(value).decode()
    values = [data.get(k) for k in primary_key]
    missing = [k for k, v in zip(primary_key, values, strict=True) if v is None or v == ""]
    if missing:
        raise BadRecordError(
            f"primary key {', '.join(missing)} is missing or empty",
            reason_code="missing_primary_key",
        )
    return orjson.dumps(values).decode()


class _Batch:
    """Records, rejections and the latest state waiting for the next commit."""

    def __init__(self) -> None:
        self.rows: dict[str, dict[str, RawRow]] = {}
        self.rejections: list[Rejection] = []
        self.states: dict[str, Any] = {}
        self.size = 0


class _Committer:
    """Commits batches in order on one background thread, so reading the next batch overlaps
    the database work of the last. After a failed commit nothing later is committed.
    """

    def __init__(self, commit: Callable[[_Batch], None]) -> None:
        self._commit = commit
        self._queue: queue.Queue[_Batch | None] = queue.Queue(maxsize=1)
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._loop, name="sync-committer", daemon=True)
        self._thread.start()

    def submit(self, batch: _Batch) -> None:
        """Queue a batch (waits while the previous one is still being committed)."""
        if self.error is not None:
            raise self.error
        self._queue.put(batch)

    def close(self) -> None:
        """Wait for every queued batch; raise the commit error, if any."""
        self._queue.put(None)
        self._thread.join()
        if self.error is not None:
            raise self.error

    def _loop(self) -> None:
        while (batch := self._queue.get()) is not None:
            if self.error is None:
                try:
                    self._commit(batch)
                except BaseException as exc:  # handed to the reading thread
                    self.error = exc


class _SyncRun:
    """One sync of one source: reads messages, lands them in batches."""

    def __init__(
        self,
        store: Store,
        name: str,
        reader: SourceReader,
        run_id: str,
        batch_size: int,
        on_progress: Callable[[SyncProgress], None] | None,
    ) -> None:
        self.store, self.name, self.reader, self.run_id = store, name, reader, run_id
        self.batch_size, self.on_progress = batch_size, on_progress
        self.result = SyncResult(source=name, run_id=run_id)
        self.primary_keys = reader.streams()
        self.has_open_rejections = False
        self.first_load: set[str] = set()  # streams empty at start: insert without diffing
        self._last_progress = 0.0
        self._state: dict[str, Any] = {}
        self._pending = _Batch()

    def run(self) -> SyncResult:
        with self.store.read() as conn:
            self._state = load_state(conn, self.name)
            self.first_load = {s for s in self.primary_keys if not has_rows(conn, self.name, s)}
            self.has_open_rejections = count_open(conn, "sync").get(self.name, 0) > 0
        self._committer = _Committer(self._commit)
        try:
            self._consume(self._pending)
        except Exception:
            # Records read before the failure are good, and so is the state before them.
            self._committer.submit(self._pending)
            self._committer.close()
            raise
        self._committer.submit(self._pending)
        self._committer.close()
        self._report(force=True)
        return self.result

    def _consume(self, batch: _Batch) -> None:
        """The hot loop: per record, key + canonical JSON + hash, nothing else."""
        self._pending = batch
        dumps, blake2b, single_keys = orjson.dumps, hashlib.blake2b, self._single_keys()
        read = 0
        for message in self.reader.read(self._state):
            if type(message) is RecordMessage:
                read += 1
                data, stream = message.data, message.stream
                field_name = single_keys.get(stream)
                key = data.get(field_name) if field_name else None
                if type(key) is not str or not key:
                    try:
                        key = record_key(data, self.primary_keys.get(stream) or [])
                    except BadRecordError as exc:
                        self._reject_record(batch, message, exc)
                        continue
                payload = dumps(data, option=_SORTED, default=str)
                digest = blake2b(payload, digest_size=16)
                if message.deleted:
                    digest.update(_DELETED_MARK)
                rows = batch.rows.get(stream)
                if rows is None:
                    rows = batch.rows[stream] = {}
                rows[key] = (digest.hexdigest(), payload.decode(), message.deleted)
                batch.size += 1
                if batch.size >= self.batch_size:
                    self.result.read = read
                    batch = self._pending = self._flush(batch)
                    self._report()
            elif isinstance(message, StateMessage):
                batch.states[message.stream] = message.state
            elif isinstance(message, RejectMessage):
                self._add_rejection(batch, message)
            if read & 0x3FF == 0:
                self.result.read = read
                self._report()
        self.result.read = read

    def _single_keys(self) -> dict[str, str]:
        return {s: pk[0] for s, pk in self.primary_keys.items() if len(pk) == 1}

    def _reject_record(self, batch: _Batch, message: RecordMessage, exc: BadRecordError) -> None:
        location = f"{message.where}:{message.line}" if message.line else message.where
        payload = orjson.dumps(message.data, option=_SORTED, default=str)
        self._add_rejection(
            batch,
            RejectMessage(
                stream=message.stream,
                reason_code=exc.reason_code,
                message=exc.message,
                reject_key="record:" + hashlib.blake2b(payload, digest_size=16).hexdigest(),
                location=location,
                payload=payload.decode(),
            ),
        )

    def _add_rejection(self, batch: _Batch, message: RejectMessage) -> None:
        self.result.rejected += 1
        batch.rejections.append(
            Rejection(
                stream=message.stream,
                reject_key=message.reject_key,
                reason_code=message.reason_code,
                message=message.message,
                location=message.location,
                payload=message.payload,
                record_key=message.record_key,
            )
        )

    def _flush(self, batch: _Batch) -> _Batch:
        self._committer.submit(batch)
        return _Batch()

    def _commit(self, batch: _Batch) -> None:
        """One transaction: the batch's records, rejections, and the state that follows them."""
        if not (batch.rows or batch.rejections or batch.states):
            return
        now = utcnow()
        with self.store.begin() as conn:
            for stream, rows in batch.rows.items():
                assume_new = stream in self.first_load
                counts = land_batch(
                    conn,
                    self.name,
                    stream,
                    rows,
                    run_id=self.run_id,
                    now=now,
                    assume_new=assume_new,
                )
                if assume_new and (counts.updated or counts.unchanged or counts.conflicted):
                    self.first_load.discard(stream)
                self._count(stream, counts)
                if self.has_open_rejections:
                    resolve_rejections(conn, "sync", self.name, stream, list(rows), now)
            save_rejections(conn, "sync", self.name, batch.rejections, run_id=self.run_id, now=now)
            save_state(conn, self.name, batch.states, run_id=self.run_id, now=now)
            record_progress(conn, self.run_id, self.result.counts())

    def _count(self, stream: str, counts: LandCounts) -> None:
        r = self.result
        r.inserted += counts.inserted
        r.updated += counts.updated
        r.unchanged += counts.unchanged
        r.streams[stream] = r.streams.get(stream, 0) + counts.inserted + counts.updated

    def _report(self, force: bool = False) -> None:
        if self.on_progress is None:
            return
        now = time.monotonic()
        if not force and now - self._last_progress < 0.1:
            return
        self._last_progress = now
        done, total = self.reader.position()
        r = self.result
        self.on_progress(
            SyncProgress(self.name, r.read, r.inserted + r.updated, r.rejected, done, total)
        )


def _close_dead_runs(store: Store, source: str) -> None:
    """Runs of this source still marked running died (we hold its lease now)."""
    with store.begin() as conn:
        conn.execute(
            update(runs)
            .where(
                and_(runs.c.stage == "sync", runs.c.source == source, runs.c.status == "running")
            )
            .values(status="failed", finished_at=utcnow(), error="interrupted: the process died")
        )


def sync_source(
    store: Store,
    config: HubConfig,
    name: str,
    *,
    wait: float = 0.0,
    on_progress: Callable[[SyncProgress], None] | None = None,
    reader: SourceReader | None = None,
) -> SyncResult:
    """Sync one source into raw: the sync stage's entry point.

    Args:
        store: the open store.
        config: the hub configuration holding the source.
        name: the source's name in hub.yaml.
        wait: seconds to wait if another sync of this source runs (0: fail at once).
        on_progress: called often with a :class:`SyncProgress`.
        reader: a reader to use instead of the one ``config`` describes (tests, embedding).

    Raises:
        ConfigError: no such source.
        BusyError: another sync of this source runs.
        CrmHubError: the source failed; the run is recorded as failed, what was read is kept.
    """
    source: SourceConfig | None = config.sources.get(name)
    if source is None:
        known = ", ".join(sorted(config.sources)) or "none"
        raise ConfigError(f"no source named {name!r} in hub.yaml (sources: {known})")
    settings = get_settings().sync
    run_id = new_run_id()
    bind(run_id=run_id, stage="sync", source=name)
    with hold_lease(store, f"sync:{name}", run_id, ttl=settings.lease_ttl_seconds, wait=wait):
        _close_dead_runs(store, name)
        with store.begin() as conn:
            start_run(conn, run_id, "sync", name)
        started = time.monotonic()
        result = SyncResult(source=name, run_id=run_id)
        try:  # a reader failing to start (bad manifest, discover error) is a failed run too
            if reader is None:
                # Rotated credentials stored by earlier syncs win over hub.yaml's (see rotated).
                source, rotated = open_rotated(store, name, source)
                reader = make_reader(name, source, config.base_dir)
                if hasattr(reader, "config_listener"):
                    reader.config_listener = rotated.save
            run = _SyncRun(
                store,
                name,
                reader,
                run_id,
                settings.batch_size,
                on_progress,
            )
            result = run.result
            result = run.run()
        except Exception as exc:
            result.status, result.error = "failed", _describe(exc)
            result.seconds = time.monotonic() - started
            with store.begin() as conn:
                finish_run(conn, run_id, counts=result.counts(), error=result.error)
            log.error("sync failed", error=result.error, **result.counts())
            raise
        result.seconds = round(time.monotonic() - started, 3)
        with store.begin() as conn:
            finish_run(conn, run_id, counts=result.counts())
        log.info("sync finished", **{k: v for k, v in result.counts().items() if k != "streams"})
        return result


def _describe(exc: BaseException) -> str:
    if isinstance(exc, CrmHubError):
        return exc.message
    return f"{type(exc).__name__}: {exc}"
