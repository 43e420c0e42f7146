"""Large scopes are read and computed in two halves at once: this process and a forked one.

Reading a million masters' orders is one database thread joining and grouping tens of
millions of rows, then pandas over the result, all on one core. Every per-master trait depends
only on that master's rows (``compute.per_master``), so the masters split into two disjoint
halves by code: a forked process reads and computes the upper half on a connection of its own
while this one does the lower half, and the two frames are concatenated before the population
model is fitted on all of them.

The halves are cut where the scope's work splits evenly (judged from a sample of orders), not
at the middle code. Master ids are hashes, so orders usually spread evenly over codes; where
they do not (the profile benchmark's sequential ids put 73% of the orders in the lower half
of the codes) one process would finish long after the other.

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

import numpy as np
import pandas as pd
from sqlalchemy import Connection

from crm_hub.errors import StoreError
from crm_hub.profile.traits.compute import per_master
from crm_hub.profile.traits.load import load_frames, prepare_scope, read_snapshot
from crm_hub.store.engine import Store, open_store

__all__ = ["HALVES_FROM", "MASTER_WEIGHT", "balanced_split", "per_master_in_halves", "splits"]

# Below this many masters a fork costs more than it saves.
HALVES_FROM = 200_000

# A master's share of the work in orders' (its customers, person traits, product counts):
# measured at 200 k masters, 2 M orders, halves of 50 k and 150 k masters.
MASTER_WEIGHT = 3
# Orders sampled (by id) to find where the scope's orders split in two equal parts.
SAMPLE = 20_000
# Ids stepped through from the lowest, each order's code through the scope's links (the same
# text on both databases; the step is a bound parameter).
_SAMPLED_CODES = (
    "WITH RECURSIVE s(id) AS (SELECT MIN(id) FROM orders UNION ALL "
    "SELECT id + {0} FROM s WHERE id + {0} <= (SELECT MAX(id) FROM orders)) "
    "SELECT k.code FROM s JOIN orders o ON o.id = s.id "
    "JOIN trait_links k ON k.source = o.source AND k.source_id = o.customer_source_id"
)

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
    half = balanced_split(conn, len(ids))
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


def balanced_split(conn: Connection, masters: int) -> int:
    """How many of the scope's codes the lower half takes so that both halves have about as
    much work: a master weighs ``MASTER_WEIGHT`` orders (orders are sampled)."""
    low, high = conn.exec_driver_sql("SELECT MIN(id), MAX(id) FROM orders").one()
    if low is None or masters < 2:
        return masters // 2
    step = max(1, (int(high) - int(low)) // SAMPLE)
    mark = "%s" if conn.dialect.name == "postgresql" else "?"
    sampled = conn.exec_driver_sql(_SAMPLED_CODES.format(mark), (step, step)).scalars().all()
    # Work below each cut 0..masters: its masters and their orders (sampled).
    below = MASTER_WEIGHT * np.arange(masters + 1) + step * np.searchsorted(
        np.sort(np.asarray(sampled, dtype=np.int64)), np.arange(masters + 1)
    )
    cut = int(np.searchsorted(below, below[-1] / 2))
    return min(max(cut, 1), masters - 1)


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
