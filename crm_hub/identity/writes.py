"""What a resolve run writes: links, masters and their events, and the review queue.

`plan_changes` compares the engine's resolution with the links the run read and keeps only what
changed; it runs before the write transaction, so that transaction does nothing but write
(`write_changes`, with the driver-level bulk writes of `bulk`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import orjson
import pandas as pd
from sqlalchemy import Connection, delete, func, select

from crm_hub.identity import bulk
from crm_hub.identity.overrides import RecordKey
from crm_hub.identity.resolve import Resolution
from crm_hub.store.runs import utcnow
from crm_hub.store.schema import master_events, master_links, masters, review_queue

__all__ = ["Changes", "open_reviews", "plan_changes", "write_changes", "write_review"]

_PAIR_COLUMNS = ("left_source", "left_source_id", "right_source", "right_source_id")
_NOT_LEVELS = {*_PAIR_COLUMNS, "master_id", "reason", "probability", "match_weight"}
_LINK_COLUMNS = ("source", "source_id", "master_id", "reason", "probability", "evidence",
                 "linked_at", "change_seq", "run_id")  # fmt: skip
_LINK_UPDATE = _LINK_COLUMNS[2:]
_MASTER_COLUMNS = ("master_id", "status", "merged_into", "member_count", "created_at",
                   "updated_at", "change_seq", "run_id")  # fmt: skip
_MASTER_UPDATE = ("status", "merged_into", "member_count", "updated_at", "change_seq", "run_id")
_EVENT_COLUMNS = ("kind", "master_id", "other_ids", "occurred_at", "change_seq", "run_id")


@dataclass(slots=True)
class Changes:
    """Everything a run writes, as driver values (JSON as text), before the transaction.

    Link rows are ``(source, source_id, master_id, reason, probability, evidence)``; master rows
    ``(master_id, status, merged_into, member_count)``; events ``(kind, master_id, other_ids)``;
    review rows the pair, reason, probability, evidence and status.
    """

    new_links: list[tuple[Any, ...]] = field(default_factory=list)
    moved_links: list[tuple[Any, ...]] = field(default_factory=list)
    gone_links: list[RecordKey] = field(default_factory=list)
    new_masters: list[tuple[Any, ...]] = field(default_factory=list)
    changed_masters: list[tuple[Any, ...]] = field(default_factory=list)
    events: list[tuple[str, str, str | None]] = field(default_factory=list)
    review: list[tuple[Any, ...]] = field(default_factory=list)
    masters: int = 0
    created: int = 0
    merged: int = 0
    split: int = 0
    retired: int = 0


def _json(value: Any) -> str:
    """JSON text as `JsonDocument` stores it."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def _best_links(resolution: Resolution) -> tuple[np.ndarray, np.ndarray]:
    """Per record: the strongest link that put it in its cluster and the other record of it.

    Returns two arrays over ``resolution.records``' rows: the link's row in
    ``resolution.links`` and the other record's row (-1: the record is alone). Ties between
    equally strong links go to the earlier link.
    """
    count = len(resolution.records)
    best, other = np.full(count, -1, dtype=np.int64), np.full(count, -1, dtype=np.int64)
    rows = resolution.link_rows
    if not len(rows):
        return best, other
    order = np.argsort(-resolution.links["probability"].to_numpy(), kind="stable")
    me, them = rows[order].ravel(), rows[order][:, ::-1].ravel()  # left then right, per link
    records, first = np.unique(me, return_index=True)
    best[records], other[records] = np.repeat(order, 2)[first], them[first]
    return best, other


def _link_values(
    resolution: Resolution, best: np.ndarray, other: np.ndarray, wanted: np.ndarray
) -> list[tuple[Any, ...]]:
    """Link rows for the records at ``wanted`` (rows of ``resolution.records``)."""
    records, links = resolution.records, resolution.links
    source = records["source"].to_numpy(dtype=object)
    source_id = records["source_id"].to_numpy(dtype=object)
    master = records["master_id"].to_numpy(dtype=object)
    link = best[wanted]
    evidence = np.full(len(wanted), None, dtype=object)
    reason = np.full(len(wanted), "single", dtype=object)
    probability = np.full(len(wanted), None, dtype=object)
    linked = link >= 0
    if linked.any():
        chosen, them = link[linked], other[wanted[linked]]
        reason[linked] = links["reason"].to_numpy(dtype=object)[chosen]
        probability[linked] = links["probability"].to_numpy(dtype=np.float64)[chosen].tolist()
        evidence[linked] = _evidence(links, chosen, source[them], source_id[them])
    return list(zip(source[wanted], source_id[wanted], master[wanted], reason, probability,
                    evidence, strict=True))  # fmt: skip


def _evidence(
    links: pd.DataFrame, chosen: np.ndarray, other_source: np.ndarray, other_id: np.ndarray
) -> list[str]:
    """The evidence JSON of each chosen link: the record linked to, the match weight and the
    comparison levels; as `JsonDocument` writes it (sorted keys), a few times faster."""
    levels = [name for name in links.columns if name not in _NOT_LEVELS]
    level_text = _level_text(links[levels].to_numpy(dtype=np.int64)[chosen], levels)
    weights = links["match_weight"].to_numpy(dtype=np.float64)[chosen].tolist()
    dumps = orjson.dumps
    return [
        f'{{"levels":{lv},"linked_to":{dumps((s, i)).decode()},"match_weight":{dumps(w).decode()}}}'
        for lv, s, i, w in zip(level_text, other_source.tolist(), other_id.tolist(), weights,
                               strict=True)
    ]  # fmt: skip


def _level_text(values: np.ndarray, levels: list[str]) -> list[str]:
    """The levels of each row as a JSON object, written once per distinct combination."""
    if not levels or not len(values):
        return ["{}"] * len(values)
    low, base = int(values.min()), int(values.max() - values.min()) + 1
    if base ** len(levels) >= 2**62:  # too many to number: slower, same result
        combos, which = np.unique(values, axis=0, return_inverse=True)
        fragments = [_json(dict(zip(levels, combo, strict=True))) for combo in combos.tolist()]
        return [fragments[i] for i in which.ravel().tolist()]
    weights = base ** np.arange(len(levels), dtype=np.int64)
    which, codes = pd.factorize((values - low) @ weights)
    combos = (codes[:, None] // weights) % base + low
    fragments = [_json(dict(zip(levels, combo, strict=True))) for combo in combos.tolist()]
    return [fragments[i] for i in which.tolist()]


def _reasons(resolution: Resolution, best: np.ndarray) -> np.ndarray:
    reasons = np.full(len(best), "single", dtype=object)
    linked = best >= 0
    reasons[linked] = resolution.links["reason"].to_numpy(dtype=object)[best[linked]]
    return reasons


def plan_changes(
    resolution: Resolution,
    previous: np.ndarray,
    previous_reason: np.ndarray,
    gone: list[tuple[str, str, str]],
    known: dict[str, str],
) -> Changes:
    """What changed between the links read and the resolution.

    Args:
        resolution: the engine's result; its records are in the order of ``previous``.
        previous: per record, its master before the run (None: new record).
        previous_reason: per record, the reason of its link before the run.
        gone: ``(source, source_id, master_id)`` of links whose records are no longer live.
        known: status of every master involved.
    """
    changes = Changes()
    master = resolution.records["master_id"].to_numpy(dtype=object)
    had = pd.notna(previous)
    best, other = _best_links(resolution)
    changed = ~had | (previous != master) | (previous_reason != _reasons(resolution, best))
    rows = _link_values(resolution, best, other, np.flatnonzero(changed))
    fresh = ~had[changed]
    changes.new_links = [row for row, new in zip(rows, fresh.tolist(), strict=True) if new]
    changes.moved_links = [row for row, new in zip(rows, fresh.tolist(), strict=True) if not new]
    changes.gone_links = [(source, source_id) for source, source_id, _ in gone]
    gone_masters = np.array([master_id for *_, master_id in gone], dtype=object)
    old = pd.Series(np.concatenate([previous[had], gone_masters]), dtype=object)
    _plan_masters(changes, master, previous, had, old, known)
    changes.review = _review_rows(resolution.review)
    return changes


def _review_rows(review: pd.DataFrame) -> list[tuple[Any, ...]]:
    if review.empty:
        return []
    levels = [c for c in review.columns if c not in _NOT_LEVELS]
    level_text = _level_text(review[levels].to_numpy(dtype=np.int64), levels)
    return [
        (ls, lid, rs, rid, reason, float(p),
         f'{{"levels":{lv},"match_weight":{orjson.dumps(float(w)).decode()}}}', "open")
        for ls, lid, rs, rid, reason, p, w, lv in zip(
            *(review[c] for c in (*_PAIR_COLUMNS, "reason", "probability", "match_weight")),
            level_text, strict=True)
    ]  # fmt: skip


def _plan_masters(
    changes: Changes,
    master: np.ndarray,
    previous: np.ndarray,
    had: np.ndarray,
    old: pd.Series,
    known: dict[str, str],
) -> None:
    """Masters rows and events: creations, merges, splits and retirements."""
    count = pd.Series(master, dtype=object).value_counts()
    old_count = old.value_counts()
    moved = had & (previous != master)
    flows = pd.DataFrame({"to": master[moved], "came_from": previous[moved]}, dtype=object)
    came_from: dict[str, list[str]] = {
        to: sorted(set(group)) for to, group in flows.groupby("to")["came_from"]
    } if len(flows) else {}  # fmt: skip
    status = pd.Series(known, dtype=object).reindex(count.index)
    needed = (
        (status != "active").to_numpy()
        | (old_count.reindex(count.index, fill_value=0) != count).to_numpy()
        | count.index.isin(list(came_from))
    )
    current = set(count.index.tolist())
    size = dict(zip(count.index.tolist(), count.to_numpy().tolist(), strict=True))
    names = sorted(count.index[needed].tolist())
    # Most masters only gained or lost records, or are new: rows and events in bulk.
    plain = [master_id for master_id in names if master_id not in came_from]
    fresh = [master_id for master_id in plain if master_id not in known]
    changes.new_masters = [(master_id, "active", None, size[master_id]) for master_id in fresh]
    changes.changed_masters = [(master_id, "active", None, size[master_id])
                               for master_id in plain if master_id in known]  # fmt: skip
    changes.events = [("created", master_id, None) for master_id in fresh]
    changes.created = len(fresh)
    for master_id in (master_id for master_id in names if master_id in came_from):
        row = (master_id, "active", None, size[master_id])
        sources = came_from[master_id]
        if master_id not in known:
            changes.new_masters.append(row)
            split_from = [m for m in sources if m in current]
            if split_from:
                changes.events.append(("split", master_id, _json(split_from)))
                changes.split += 1
            else:
                changes.events.append(("created", master_id, None))
                changes.created += 1
        else:
            changes.changed_masters.append(row)
        absorbed = [m for m in sources if m not in current]
        if absorbed:
            changes.events.append(("merged", master_id, _json(absorbed)))
            changes.merged += len(absorbed)
    if came_from:
        changes.new_masters.sort()  # inserted in key order: appends to the primary key index
    vanished = sorted(m for m in old_count.index.tolist()
                      if m not in current and known.get(m) == "active")  # fmt: skip
    survivors = flows[flows["came_from"].isin(vanished)].value_counts()  # (to, came_from) -> n
    best_survivor: dict[str, str] = {}
    for (to, gone_from), _ in sorted(survivors.items(), key=lambda kv: (-kv[1], kv[0][0])):
        best_survivor.setdefault(gone_from, to)
    for master_id in vanished:
        into = best_survivor.get(master_id)
        if into is not None:
            changes.changed_masters.append((master_id, "merged", into, 0))
        else:
            changes.changed_masters.append((master_id, "retired", None, 0))
            changes.events.append(("retired", master_id, None))
            changes.retired += 1
    changes.masters = len(count)


def write_changes(
    conn: Connection, changes: Changes, *, seq: int, now: datetime, run_id: str
) -> None:
    """Write the planned links, masters and events (inside the caller's transaction)."""
    at = bulk.db_value(master_links.c.linked_at, now, conn)
    stamp: tuple[Any, ...] = (at, seq, run_id)  # linked_at / occurred_at, change_seq, run_id
    bulk.insert_rows(conn, master_links, _LINK_COLUMNS, changes.new_links, suffix=stamp)
    bulk.upsert_rows(conn, master_links, _LINK_COLUMNS, changes.moved_links, suffix=stamp,
                     keys=("source", "source_id"), update=_LINK_UPDATE)  # fmt: skip
    bulk.delete_keys(conn, master_links, changes.gone_links)
    bulk.insert_rows(conn, master_events, _EVENT_COLUMNS, changes.events, suffix=stamp)
    stamp = (at, at, seq, run_id)  # created_at, updated_at, change_seq, run_id
    bulk.insert_rows(conn, masters, _MASTER_COLUMNS, changes.new_masters, suffix=stamp)
    bulk.upsert_rows(conn, masters, _MASTER_COLUMNS, changes.changed_masters, suffix=stamp,
                     keys=("master_id",), update=_MASTER_UPDATE)  # fmt: skip


def write_review(conn: Connection, changes: Changes, scope: set[RecordKey] | None) -> int:
    """Open review pairs the engine found; pairs a person already decided stay decided.

    Returns the number of open pairs.
    """
    q = review_queue.c
    now = bulk.db_value(q.created_at, utcnow(), conn)
    columns = (*_PAIR_COLUMNS, "reason", "probability", "evidence", "status", "created_at")
    bulk.upsert_rows(conn, review_queue, columns, changes.review, suffix=(now,),
                     keys=_PAIR_COLUMNS, update=("probability", "evidence", "reason"))  # fmt: skip
    # Open pairs that are no longer in doubt (now one master, or no longer candidates) close.
    pairs = {row[:4] for row in changes.review}
    stale = [
        row.id for row in conn.execute(
            select(q.id, q.left_source, q.left_source_id, q.right_source, q.right_source_id)
            .where(q.status == "open"))
        if (row.left_source, row.left_source_id, row.right_source, row.right_source_id)
        not in pairs
        and (scope is None or ((row.left_source, row.left_source_id) in scope
                               and (row.right_source, row.right_source_id) in scope))
    ]  # fmt: skip
    for start in range(0, len(stale), 500):
        conn.execute(delete(review_queue).where(q.id.in_(stale[start : start + 500])))
    return open_reviews(conn)


def open_reviews(conn: Connection) -> int:
    """The number of open review pairs."""
    count = select(func.count()).where(review_queue.c.status == "open")
    return int(conn.execute(count).scalar_one())
