"""The resolve stage: every source customer in the store gets exactly one master.

Guarantees (DESIGN.md): each live source customer belongs to exactly one active master; master
ids are stable across runs and input order (`StableIds`); overrides from the store always win;
every link records the rule or score that made it; merges and splits are `master_events` rows.
A run with no new source customers and no new override since the last one does nothing.

A run reads a snapshot of the store in a read transaction and matches outside any transaction,
so other stages go on writing (and the lease heartbeat renews the lease) meanwhile.
It then writes what changed in one write transaction: readers see the previous resolution or
the new one, never part of it, and a crash leaves the previous one whole. That transaction only
writes (the rows are computed before it, `writes.plan_changes`, and written with the driver's
bulk paths, `bulk`); it starts by checking that nobody changed the masters since the snapshot
(an erasure: the run fails with BusyError and writes nothing) and ends by renewing the lease
(`keep_lease`), so a run that lost its lease writes nothing either.

A full run re-resolves every live record with the engine (`resolve`) and retrains the model. In
a large store a run with few changed records is incremental: the changed records, those sharing
a lookup key with them and every record of the people involved are re-resolved with the saved
model (`_neighbourhood`). A change of overrides, ``force`` or a change too large runs in full.
Either way only links, masters and queue entries that changed are written, so downstream stages
(reading by ``change_seq``) see only the change.
"""

from __future__ import annotations

import hashlib
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Connection, and_, func, select, text

from crm_hub.errors import BusyError, ConfigError
from crm_hub.identity import bulk
from crm_hub.identity.ids import master_id_for
from crm_hub.identity.online import STORE_COLUMNS, load_model, save_model
from crm_hub.identity.overrides import Overrides, RecordKey
from crm_hub.identity.resolve import Resolution, ResolutionStats, resolve
from crm_hub.identity.scoring import FellegiSunter
from crm_hub.identity.settings import MatchSettings
from crm_hub.identity.writes import open_reviews, plan_changes, write_changes, write_review
from crm_hub.logging import get_logger
from crm_hub.store.engine import Store
from crm_hub.store.raw import next_change_seq
from crm_hub.store.runs import utcnow
from crm_hub.store.schema import (
    identity_overrides,
    identity_state,
    master_links,
    masters,
    source_customers,
)
from crm_hub.store.stage_run import keep_lease, run_stage
from crm_hub.store.upsert import upsert

__all__ = ["ResolveResult", "StableIds", "load_overrides", "record_keys", "resolve_store"]

log = get_logger(__name__)

_STAGE = "resolve"
_WATERMARK = "resolve_watermark"
_IN_CHUNK = 500
"""Keys per ``IN (...)`` list."""
_INCREMENTAL_MAX = 20_000
"""More changed records than this (or 5 % of the store) re-resolve everything."""
_RECORD_COLUMNS = (*STORE_COLUMNS, "deleted", "master_id", "reason")


@dataclass(slots=True)
class ResolveResult:
    """What one resolve run did."""

    run_id: str
    status: str = "succeeded"
    records: int = 0
    masters: int = 0
    links_written: int = 0
    created: int = 0
    merged: int = 0
    split: int = 0
    retired: int = 0
    review_open: int = 0
    skipped: bool = False
    incremental: bool = False
    seconds: float = 0.0
    steps: dict[str, float] = field(default_factory=dict)

    def counts(self) -> dict[str, Any]:
        """Counts for the runs table and ``--json``."""
        return {k: v for k, v in asdict(self).items() if k not in {"run_id", "status"}}


class StableIds:
    """Mint master ids that survive re-resolution.

    A cluster keeps the previous master id held by most of its members (ties: the smaller id);
    each previous id goes to one cluster only (the one holding most of its records; ties: the
    cluster with the smallest member). A cluster with no id to keep gets the content id of its
    smallest member (`master_id_for`), salted when that id was ever used before, so the same
    store and input give the same ids in any order.

    Args:
        previous: per input row, the master id its record had before (None: none).
        taken: which of the given master ids were ever used.
    """

    def __init__(self, previous: np.ndarray, taken: Callable[[list[str]], set[str]]) -> None:
        self.previous = previous
        self.taken = taken
        self.minted: set[str] = set()

    def __call__(self, members: pd.DataFrame) -> pd.Series:
        cluster = members["cluster"].to_numpy()
        clusters, first = np.unique(cluster, return_index=True)  # members are in key order
        old = self.previous[members["row"].to_numpy()]
        held = pd.notna(old)
        votes = (
            pd.DataFrame({"cluster": cluster[held], "old": old[held]})
            .groupby(["cluster", "old"]).size().reset_index(name="count")
        )  # fmt: skip
        votes["first"] = first[np.searchsorted(clusters, votes["cluster"].to_numpy())]
        claims = votes.sort_values(["old", "count", "first"], ascending=[True, False, True])
        claims = claims.drop_duplicates("old")  # each old id to the cluster holding most of it
        # A cluster may win several ids (it absorbed masters): it keeps the one most of its
        # members held (ties: the smaller id); the others become merged into it.
        kept = claims.sort_values(["cluster", "count", "old"], ascending=[True, False, True])
        kept = kept.drop_duplicates("cluster")
        ids = dict(zip(kept["cluster"].tolist(), kept["old"].tolist(), strict=True))
        source, source_id = members["source"].to_numpy(), members["source_id"].to_numpy()
        in_key_order = np.argsort(first)  # so salting does not depend on the input order
        fresh = [(label, (source[at], source_id[at]))
                 for label, at in zip(clusters[in_key_order].tolist(),
                                      first[in_key_order].tolist(), strict=True)
                 if label not in ids]  # fmt: skip
        candidates = [master_id_for(*key) for _, key in fresh]
        used = self.taken(candidates)
        for (label, key), candidate in zip(fresh, candidates, strict=True):
            salt = 0
            while candidate in self.minted or candidate in used:
                salt += 1
                candidate = master_id_for(key[0], f"{key[1]}\x1f{salt}")
                used |= self.taken([candidate])
            self.minted.add(candidate)
            ids[label] = candidate
        return pd.Series(ids, name="master_id", dtype=object)


def load_overrides(conn: Connection) -> Overrides:
    """Every override in the store."""
    rows = conn.execute(
        select(
            identity_overrides.c.kind,
            identity_overrides.c.left_source,
            identity_overrides.c.left_source_id,
            identity_overrides.c.right_source,
            identity_overrides.c.right_source_id,
        ).order_by(identity_overrides.c.id)
    ).all()
    pairs: dict[str, list[tuple[RecordKey, RecordKey]]] = {"must_link": [], "cannot_link": []}
    for kind, ls, lid, rs, rid in rows:
        pairs[kind].append(((ls, lid), (rs, rid)))
    return Overrides.from_pairs(pairs["must_link"], pairs["cannot_link"])


@dataclass(slots=True)
class _Snapshot:
    """What a run read: the records to resolve and the identity state they start from.

    ``previous`` and ``previous_reason`` hold, per row of ``frame``, the record's master and
    link reason before the run (None: a new record).
    """

    overrides: Overrides
    fingerprint: dict[str, Any]
    model: FellegiSunter | None
    scope: list[RecordKey] | None
    frame: pd.DataFrame
    previous: np.ndarray
    previous_reason: np.ndarray
    gone: list[tuple[str, str, str]]
    """``(source, source_id, master_id)`` of links whose records are no longer live."""
    known: dict[str, str]
    """Status of every master involved (of every master, in a full run)."""
    masters_seq: int
    """The highest ``masters.change_seq`` read: a higher one at write time is someone else's."""


def _by_source(keys: Iterable[RecordKey]) -> Iterator[tuple[str, list[str]]]:
    """The keys as ``(source, [source_id, ...])`` chunks: a lookup by ``source = ? AND
    source_id IN (...)`` uses the unique index on both databases, where SQLite scans the whole
    table for an ``IN`` of ``(source, source_id)`` pairs."""
    by_source: dict[str, list[str]] = defaultdict(list)
    for source, source_id in keys:
        by_source[source].append(source_id)
    for source, ids in sorted(by_source.items()):
        for start in range(0, len(ids), _IN_CHUNK):
            yield source, ids[start : start + _IN_CHUNK]


def _key_filters(table: Any, keys: Iterable[RecordKey]) -> Iterator[Any]:
    """WHERE clauses selecting these records, by `_by_source` chunks."""
    for source, ids in _by_source(keys):
        yield and_(table.c.source == source, table.c.source_id.in_(ids))


def _read_records(conn: Connection, scope: list[RecordKey] | None) -> pd.DataFrame:
    """Source customers (deleted ones too) with the master and link reason each had."""
    columns = ", ".join(f"c.{name}" for name in STORE_COLUMNS)
    sql = (
        f"SELECT {columns}, c.deleted, l.master_id, l.reason FROM source_customers c "
        "LEFT JOIN master_links l ON l.source = c.source AND l.source_id = c.source_id"
    )
    if scope is None:
        blocks = list(bulk.fetch_blocks(conn, sql))
    else:
        p = bulk.mark(conn)
        blocks = []
        for source, ids in _by_source(scope):
            where = f" WHERE c.source = {p} AND c.source_id IN ({', '.join([p] * len(ids))})"
            blocks.extend(bulk.fetch_blocks(conn, sql + where, [source, *ids]))
    rows = np.concatenate(blocks) if blocks else np.empty((0, len(_RECORD_COLUMNS)), dtype=object)
    return pd.DataFrame(rows, columns=list(_RECORD_COLUMNS), copy=False)


def _links_of(conn: Connection, keys: Iterable[RecordKey]) -> list[tuple[str, str, str]]:
    """``(source, source_id, master_id)`` of the links of these records."""
    link = master_links.c
    return [
        (row.source, row.source_id, row.master_id)
        for where in _key_filters(master_links, keys)
        for row in conn.execute(select(link.source, link.source_id, link.master_id).where(where))
    ]


def _orphan_links(
    conn: Connection, table: pd.DataFrame, scope: list[RecordKey] | None
) -> list[tuple[str, str, str]]:
    """Links of records that have no source customer row at all (erased since, or lost)."""
    if scope is not None:
        read = set(zip(table["source"], table["source_id"], strict=True))
        return _links_of(conn, [key for key in scope if key not in read])
    total = conn.execute(select(func.count()).select_from(master_links)).scalar_one()
    if total == int(table["master_id"].notna().sum()):
        return []  # every link belongs to a record read: the usual case, without a scan
    c, link = source_customers.c, master_links.c
    has_record = select(c.id).where(c.source == link.source, c.source_id == link.source_id)
    rows = conn.execute(
        select(link.source, link.source_id, link.master_id).where(~has_record.exists())
    )
    return [tuple(row) for row in rows]


def _birth_iso(year: int | None, month: int | None, day: int | None) -> str | None:
    """`birth_iso` for values straight from the driver (ints or None): 5x faster."""
    if month is None or day is None:
        return None
    return f"--{month:02d}-{day:02d}" if year is None else f"{year:04d}-{month:02d}-{day:02d}"


def _customer_frame(table: pd.DataFrame) -> pd.DataFrame:
    frame = table[list(STORE_COLUMNS)]
    birth = [_birth_iso(y, m, d) for y, m, d in zip(
        frame["birth_year"], frame["birth_month"], frame["birth_day"], strict=True)]  # fmt: skip
    frame = frame.drop(columns=["birth_year", "birth_month", "birth_day"])
    frame["birth_date"] = birth
    return frame.reset_index(drop=True)


def _fingerprint(conn: Connection, overrides: Overrides) -> dict[str, Any]:
    """What a run saw: a new source customer or any change to the overrides changes it."""
    c = source_customers.c
    seq, count = conn.execute(select(func.max(c.raw_change_seq), func.count())).one()
    digest = hashlib.blake2b(repr(overrides).encode(), digest_size=16).hexdigest()
    return {"customers_seq": int(seq or 0), "customers": int(count or 0), "overrides": digest}


def _state(conn: Connection, name: str) -> Any:
    return conn.execute(
        select(identity_state.c.value).where(identity_state.c.name == name)
    ).scalar_one_or_none()


def _save_state(conn: Connection, name: str, value: Any) -> None:
    upsert(conn, identity_state, [{"name": name, "value": value, "updated_at": utcnow()}],
           keys=["name"], update=["value", "updated_at"])  # fmt: skip


def _masters_seq(conn: Connection) -> int:
    return int(conn.execute(select(func.max(masters.c.change_seq))).scalar() or 0)


def _statuses(conn: Connection, ids: set[str] | None) -> dict[str, str]:
    """Status of the given masters (None: of every master)."""
    m = masters.c
    if ids is None:
        found_all: dict[str, str] = {}
        for block in bulk.fetch_blocks(conn, "SELECT master_id, status FROM masters"):
            found_all.update(zip(block[:, 0].tolist(), block[:, 1].tolist(), strict=True))
        return found_all
    found: dict[str, str] = {}
    listed = sorted(ids)
    for start in range(0, len(listed), _IN_CHUNK):
        chunk = listed[start : start + _IN_CHUNK]
        rows = conn.execute(select(m.master_id, m.status).where(m.master_id.in_(chunk)))
        found.update(rows.tuples().all())
    return found


def _read(
    conn: Connection, *, force: bool, incremental_from: int, max_block: int
) -> _Snapshot | None:
    """The snapshot a run works from, or None when nothing changed since the last run."""
    overrides = load_overrides(conn)
    fingerprint = _fingerprint(conn, overrides)
    last = _state(conn, _WATERMARK)
    if not force and last == fingerprint:
        return None
    model = load_model(conn)
    scope = None
    if (
        not force
        and model is not None
        and last
        and last["overrides"] == fingerprint["overrides"]
        and fingerprint["customers"] >= incremental_from
    ):
        scope = _neighbourhood(conn, int(last["customers_seq"]), fingerprint["customers"],
                               max_block)  # fmt: skip
    table = _read_records(conn, scope)
    gone = _orphan_links(conn, table, scope)
    deleted = table["deleted"].to_numpy(dtype=bool)
    dead = table[deleted & table["master_id"].notna().to_numpy()]
    gone += list(zip(dead["source"], dead["source_id"], dead["master_id"], strict=True))
    live = table[~deleted]
    del table, dead
    previous = live["master_id"].to_numpy(dtype=object)
    involved = None if scope is None else {*previous[pd.notna(previous)], *(m for *_, m in gone)}
    return _Snapshot(
        overrides=overrides,
        fingerprint=fingerprint,
        model=model,
        scope=scope,
        frame=_customer_frame(live),
        previous=previous,
        previous_reason=live["reason"].to_numpy(dtype=object),
        gone=gone,
        known=_statuses(conn, involved),
        masters_seq=_masters_seq(conn),
    )


def resolve_store(
    store: Store,
    *,
    settings: MatchSettings | None = None,
    force: bool = False,
    wait: float = 0.0,
    on_step: Callable[[str, float], None] | None = None,
    incremental_from: int = 50_000,
) -> ResolveResult:
    """Resolve every source customer in the store into masters: the resolve stage's entry point.

    Args:
        store: the store.
        settings: matching settings (defaults work).
        force: re-resolve everything (and retrain the model) even when nothing changed.
        incremental_from: from this many source customers on, a run with few changes
            re-resolves only the records the change can affect, with the saved model; below it
            (where a full run takes a second or two) every run is full.
        wait: seconds to wait for another resolve run to finish.
        on_step: progress callback ``(step, fraction)``.

    Raises:
        BusyError: another resolve runs, or the masters changed while this run matched (an
            erasure: run again).
        ConfigError: the overrides contradict each other.
    """

    def work(result: ResolveResult) -> None:
        _resolve(store, settings or MatchSettings(), force, on_step, result, incremental_from)

    return run_stage(store, _STAGE, lambda run_id: ResolveResult(run_id=run_id), work,
                     wait=wait)  # fmt: skip


def _resolve(
    store: Store,
    settings: MatchSettings,
    force: bool,
    on_step: Callable[[str, float], None] | None,
    result: ResolveResult,
    incremental_from: int,
) -> None:
    clock = time.perf_counter()
    with store.read() as conn:  # a snapshot: the store stays writable while we read and match
        snapshot = _read(conn, force=force, incremental_from=incremental_from,
                         max_block=settings.max_block_size)  # fmt: skip
        if snapshot is None:
            result.skipped = True
            result.review_open = open_reviews(conn)
            return
    result.incremental = snapshot.scope is not None
    result.records = len(snapshot.frame)
    result.steps["read"] = round(time.perf_counter() - clock, 3)
    clock = time.perf_counter()
    resolution = _match(store, snapshot, settings, on_step)
    result.steps["match"] = round(time.perf_counter() - clock, 3)
    clock = time.perf_counter()
    changes = plan_changes(resolution, snapshot.previous, snapshot.previous_reason,
                           snapshot.gone, snapshot.known)  # fmt: skip
    result.links_written = len(changes.new_links) + len(changes.moved_links)
    for name in ("masters", "created", "merged", "split", "retired"):
        setattr(result, name, getattr(changes, name))
    locked = time.perf_counter()
    with store.begin() as conn:
        _hold_identity(conn, snapshot)
        write_changes(conn, changes, seq=next_change_seq(conn), now=utcnow(), run_id=result.run_id)
        scope = None if snapshot.scope is None else set(snapshot.scope)
        result.review_open = write_review(conn, changes, scope)
        if snapshot.scope is None and resolution.model is not None:
            save_model(conn, resolution.model)
        _save_state(conn, _WATERMARK, snapshot.fingerprint)
        keep_lease(conn, _STAGE, result.run_id)
    result.steps["write"] = round(time.perf_counter() - clock, 3)
    result.steps["locked"] = round(time.perf_counter() - locked, 3)


def _match(
    store: Store,
    snapshot: _Snapshot,
    settings: MatchSettings,
    on_step: Callable[[str, float], None] | None,
) -> Resolution:
    if not len(snapshot.frame):
        return _empty_resolution()
    full = snapshot.scope is None
    taken = _taken_checker(None if full else store, snapshot.known)
    frame, snapshot.frame = snapshot.frame, snapshot.frame.iloc[:0]  # free it once matched
    return resolve(frame, overrides=snapshot.overrides, settings=settings, progress=on_step,
                   id_minter=StableIds(snapshot.previous, taken),
                   model=None if full else snapshot.model)  # fmt: skip


def _hold_identity(conn: Connection, snapshot: _Snapshot) -> None:
    """Keep others off the identity tables until commit, and fail if they changed meanwhile.

    SQLite's write transaction already excludes every other writer. On PostgreSQL the lock
    makes an erasure wait for this transaction (or this one wait for it, then see its change).
    """
    if conn.dialect.name == "postgresql":
        conn.execute(text("LOCK TABLE masters, master_links IN SHARE ROW EXCLUSIVE MODE"))
    if _masters_seq(conn) != snapshot.masters_seq:
        raise BusyError("resolve: masters changed while this run matched (an erasure?); "
                        "nothing was written: run resolve again")  # fmt: skip


def _taken_checker(store: Store | None, known: dict[str, str]) -> Callable[[list[str]], set[str]]:
    """Which master ids were ever used: in ``known``, or (given the store) in the store."""

    def taken(ids: list[str]) -> set[str]:
        used = {master_id for master_id in ids if master_id in known}
        if store is not None and len(used) < len(ids):
            with store.read() as conn:
                used.update(_statuses(conn, set(ids) - used))
        return used

    return taken


def _neighbourhood(
    conn: Connection, since: int, total: int, max_block: int
) -> list[RecordKey] | None:
    """The records a change can affect, or None when a full run is cheaper.

    Changed records (new, edited, deleted since ``since``), the records sharing a lookup key
    with them (e-mail match key, phone, postcode; values shared by more than ``max_block``
    records are ignored, as blocking ignores them), and every record of the people those
    belong to. Every lookup goes through an index.
    """
    c = source_customers.c
    changed = conn.execute(
        select(c.source, c.source_id, c.email_match_key, c.phone, c.postcode_key)
        .where(c.raw_change_seq > since)
    ).all()  # fmt: skip
    if not changed or len(changed) > max(_INCREMENTAL_MAX, total // 20):
        return None
    scope = {(row.source, row.source_id) for row in changed}
    for column in ("email_match_key", "phone", "postcode_key"):
        values = sorted({getattr(row, column) for row in changed} - {None})
        for start in range(0, len(values), _IN_CHUNK):
            chunk = values[start : start + _IN_CHUNK]
            usable = (
                select(c[column]).where(c[column].in_(chunk), c.deleted.is_(False))
                .group_by(c[column]).having(func.count() <= max_block)
            )  # fmt: skip
            rows = conn.execute(select(c.source, c.source_id).where(c[column].in_(usable)))
            scope.update((row.source, row.source_id) for row in rows)
    people = sorted({master for _, _, master in _links_of(conn, scope)})
    link = master_links.c
    for start in range(0, len(people), _IN_CHUNK):
        chunk = people[start : start + _IN_CHUNK]
        rows = conn.execute(select(link.source, link.source_id).where(link.master_id.in_(chunk)))
        scope.update((row.source, row.source_id) for row in rows)
    return sorted(scope)


def _empty_resolution() -> Resolution:
    empty = pd.DataFrame({"source": [], "source_id": [], "master_id": [], "cluster_size": []})
    pairs = pd.DataFrame({"left_source": [], "left_source_id": [], "right_source": [],
                          "right_source_id": [], "reason": [], "probability": [],
                          "match_weight": []})  # fmt: skip
    return Resolution(empty, pairs, pairs, ResolutionStats())


def record_keys(values: Iterable[str]) -> list[RecordKey]:
    """Parse ``source:source_id`` strings."""
    keys = []
    for value in values:
        source, sep, source_id = value.partition(":")
        if not sep or not source or not source_id:
            raise ConfigError(f"{value!r} is not a record reference; write SOURCE:SOURCE_ID")
        keys.append((source, source_id))
    return keys
