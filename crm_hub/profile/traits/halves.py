"""Large scopes are read and computed in two halves at once: this process and a forked one.

Reading a million masters' orders is one database thread joining and grouping tens of
millions of rows, then pandas over the result, all on one core. Every per-master trait depends
only on that master's rows (``compute.per_master``), so the masters split into two disjoint
halves by code: a forked process reads and computes the upper half on a connection of its own
while this one does the lower half, and the two frames are concatenated before the population
model is fitted on all of them.

Both halves read the same data: on PostgreSQL the fork imports this transaction's snapshot
(``pg_export_snapshot``). SQLite cannot share a snapshot between connections; the fork's reads
start a moment later and may see rows committed since. Those rows are past the watermark this
run saves, so the next incremental run computes their masters again.
"""

from __future__ import annotations

import multiprocessing as mp
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from datetime import date

import pandas as pd
from sqlalchemy import Connection

from crm_hub.errors import StoreError
from crm_hub.profile.traits.compute import per_master
from crm_hub.profile.traits.load import load_frames, prepare_scope, read_snapshot
from crm_hub.store.engine import Store, open_store

__all__ = ["HALVES_FROM", "per_master_in_halves", "splits"]

# Below this many masters a fork costs more than it saves.
HALVES_FROM = 200_000

# What the forked process needs, set just before the fork (inherited, never pickled).
_FORKED: tuple[str, list[str], date, str | None] | None = None


def splits(store: Store, masters: int) -> bool:
    """Whether a scope of ``masters`` is computed in two processes."""
    in_memory = store.dialect == "sqlite" and store.engine.url.database in (None, "", ":memory:")
    return masters >= HALVES_FROM and "fork" in mp.get_all_start_methods() and not in_memory


def per_master_in_halves(
    store: Store, conn: Connection, ids: list[str], today: date
) -> tuple[list[str], pd.DataFrame]:
    """``per_master`` for every master of ``ids`` (the scope prepared on ``conn``), in halves.

    Returns the masters computed, in code order, and their traits (index: code). A master that
    left the active set between the two halves' reads is missing from both.
    """
    half = len(ids) // 2
    snapshot = None
    if store.dialect == "postgresql":
        snapshot = str(conn.exec_driver_sql("SELECT pg_export_snapshot()").scalar_one())
    global _FORKED
    _FORKED = (store.engine.url.render_as_string(hide_password=False), ids[half:], today, snapshot)
    pool = ProcessPoolExecutor(max_workers=1, mp_context=mp.get_context("fork"))
    try:
        upper = pool.submit(_upper_half)
        _FORKED = None
        lower_ids = prepare_scope(conn, ids[:half])
        lower = per_master(load_frames(conn, lower_ids), today)
        try:
            upper_ids, upper_traits = upper.result()
        except BrokenProcessPool as exc:
            raise StoreError(
                "traits: the process computing the second half of the masters died "
                "(out of memory?); nothing was written, run again",
            ) from exc
    finally:
        _FORKED = None
        pool.shutdown(wait=True, cancel_futures=True)
    upper_traits.index = upper_traits.index + len(lower_ids)
    return lower_ids + upper_ids, pd.concat([lower, upper_traits])


def _upper_half() -> tuple[list[str], pd.DataFrame]:
    assert _FORKED is not None
    url, ids, today, snapshot = _FORKED
    # An engine of its own: the inherited one's connections belong to the parent (the fork
    # ends with os._exit, so they are never closed from here either).
    store = open_store(url, migrate=False)
    with read_snapshot(store, None if snapshot is None else _snapshot_id(snapshot)) as conn:
        computed = prepare_scope(conn, ids)
        traits = per_master(load_frames(conn, computed), today)
    return computed, traits


def _snapshot_id(text: str) -> str:
    """The exported snapshot's id, checked to be one (it is pasted into SQL)."""
    if not all(c.isalnum() or c == "-" for c in text):
        raise StoreError(f"traits: unexpected snapshot id from PostgreSQL: {text!r}")
    return text
