"""The resolve stage: every source customer in the store gets exactly one master.

Guarantees (DESIGN.md): each live source customer belongs to exactly one active master; master
ids are stable across runs and input order (`StableIds`); overrides from the store always win;
every link records the rule or score that made it; merges and splits are `master_events` rows.
One run is one transaction, so a crash leaves the previous resolution whole. A run with no new
source customers and no new override since the last one does nothing.

A full run re-resolves every live record with the engine (`resolve`, ~3 s per 100k records)
and retrains the model. In a large store a run with few changed records is incremental: the
changed records, those sharing a lookup key with them and every record of the people involved
are re-resolved with the saved model (`_neighbourhood`). A change of overrides, ``force`` or a
change too large runs in full. Either way only links, masters and queue entries that changed are
written, so downstream stages (reading by ``change_seq``) see only the change.
"""

from __future__ import annotations

import hashlib
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Connection, delete, func, select, true, tuple_

from crm_hub.errors import ConfigError
from crm_hub.identity.ids import master_id_for
from crm_hub.identity.online import STORE_COLUMNS, birth_iso, load_model, save_model
from crm_hub.identity.overrides import Overrides, RecordKey
from crm_hub.identity.resolve import Resolution, ResolutionStats, resolve
from crm_hub.identity.settings import MatchSettings
from crm_hub.logging import get_logger
from crm_hub.store.engine import Store
from crm_hub.store.raw import next_change_seq
from crm_hub.store.runs import utcnow
from crm_hub.store.schema import (
    identity_overrides,
    identity_state,
    master_events,
    master_links,
    masters,
    review_queue,
    source_customers,
)
from crm_hub.store.stage_run import run_stage
from crm_hub.store.upsert import upsert

__all__ = ["ResolveResult", "StableIds", "load_overrides", "record_keys", "resolve_store"]

log = get_logger(__name__)

_WATERMARK = "resolve_watermark"
_BATCH = 20_000
_INCREMENTAL_MAX = 20_000
"""More changed records than this (or 5 % of the store) re-resolve everything."""
_PAIR_COLUMNS = ("left_source", "left_source_id", "right_source", "right_source_id")


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
    each previous id goes to one cluster only. A cluster with no id to keep gets the content id
    of its smallest member (`master_id_for`), salted when that id was ever used before, so the
    same store and input give the same ids in any order.
    """

    def __init__(self, previous: dict[RecordKey, str], taken: Callable[[str], bool]) -> None:
        self.previous = previous
        self.taken = taken
        self.minted: set[str] = set()

    def __call__(self, members: pd.DataFrame) -> pd.Series:
        votes: dict[int, Counter[str]] = defaultdict(Counter)
        first: dict[int, RecordKey] = {}
        for cluster, source, source_id in zip(
            members["cluster"], members["source"], members["source_id"], strict=True
        ):
            first.setdefault(int(cluster), (source, source_id))
            old = self.previous.get((source, source_id))
            if old is not None:
                votes[int(cluster)][old] += 1
        claims: dict[str, tuple[int, RecordKey, int]] = {}
        for cluster, counter in votes.items():
            for old, count in counter.items():
                bid = (-count, first[cluster], cluster)
                if old not in claims or bid < claims[old]:
                    claims[old] = bid
        # A cluster may win several ids (it absorbed masters): it keeps the one most of its
        # members held (ties: the smaller id); the others become merged into it.
        kept: dict[int, tuple[int, str]] = {}
        for old, (neg_count, _, cluster) in claims.items():
            if cluster not in kept or (neg_count, old) < kept[cluster]:
                kept[cluster] = (neg_count, old)
        ids = {cluster: kept[cluster][1] if cluster in kept else self._fresh(key)
               for cluster, key in sorted(first.items(), key=lambda item: item[1])}  # fmt: skip
        return pd.Series(ids, name="master_id")

    def _fresh(self, key: RecordKey) -> str:
        candidate, salt = master_id_for(*key), 0
        while candidate in self.minted or self.taken(candidate):
            salt += 1
            candidate = master_id_for(key[0], f"{key[1]}\x1f{salt}")
        self.minted.add(candidate)
        return candidate


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


def _in_scope(table: Any, scope: list[RecordKey] | None) -> Iterator[Any]:
    """WHERE clauses selecting ``scope``'s records, in chunks (one clause: everything)."""
    if scope is None:
        yield true()
        return
    for start in range(0, len(scope), 500):
        yield tuple_(table.c.source, table.c.source_id).in_(scope[start : start + 500])


def _input_frame(conn: Connection, scope: list[RecordKey] | None = None) -> pd.DataFrame:
    rows = [row for where in _in_scope(source_customers, scope)
            for row in _customer_rows(conn, where)]  # fmt: skip
    rows.sort(key=lambda row: (row[0], row[1]))
    return _customer_frame(rows)


def _customer_rows(conn: Connection, where: Any) -> list[Any]:
    c = source_customers.c
    query = select(*(c[name] for name in STORE_COLUMNS)).where(c.deleted.is_(False), where)
    return list(conn.execute(query).all())


def _customer_frame(rows: list[Any]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=list(STORE_COLUMNS))
    frame["birth_date"] = [
        birth_iso(y, m, d)
        for y, m, d in zip(
            frame["birth_year"], frame["birth_month"], frame["birth_day"], strict=True
        )  # fmt: skip
    ]
    return frame.drop(columns=["birth_year", "birth_month", "birth_day"])


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


def _previous_links(
    conn: Connection, scope: list[RecordKey] | None = None
) -> dict[RecordKey, tuple[str, str, float | None]]:
    c = master_links.c
    found = {}
    for where in _in_scope(master_links, scope):
        rows = conn.execute(
            select(c.source, c.source_id, c.master_id, c.reason, c.probability).where(where)
        )
        found.update({(s, i): (m, r, p) for s, i, m, r, p in rows})
    return found


def _best_links(resolution: Resolution) -> dict[RecordKey, dict[str, Any]]:
    """Per record, the strongest link that put it in its cluster, with its evidence."""
    links = resolution.links
    if links.empty:
        return {}
    levels = [c for c in links.columns if c not in {
        "left_source", "left_source_id", "right_source", "right_source_id", "master_id",
        "reason", "probability", "match_weight"}]  # fmt: skip
    order = np.argsort(-links["probability"].to_numpy(), kind="stable")
    best: dict[RecordKey, dict[str, Any]] = {}
    columns = [links[name].to_numpy() for name in links.columns]
    index = {name: i for i, name in enumerate(links.columns)}
    for row in order:
        values = [col[row] for col in columns]
        left = (values[index["left_source"]], values[index["left_source_id"]])
        right = (values[index["right_source"]], values[index["right_source_id"]])
        for me, other in ((left, right), (right, left)):
            if me in best:
                continue
            best[me] = {
                "reason": values[index["reason"]],
                "probability": float(values[index["probability"]]),
                "evidence": {
                    "linked_to": list(other),
                    "match_weight": float(values[index["match_weight"]]),
                    "levels": {n: int(values[index[n]]) for n in levels},
                },
            }
    return best


def _chunks(rows: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    for start in range(0, len(rows), _BATCH):
        yield rows[start : start + _BATCH]


def _write_links(
    conn: Connection,
    resolution: Resolution,
    previous: dict[RecordKey, tuple[str, str, float | None]],
    seq: int,
    run_id: str,
) -> int:
    best = _best_links(resolution)
    now, changed = utcnow(), []
    records = resolution.records
    for source, source_id, master in zip(records["source"], records["source_id"],
                                         records["master_id"], strict=True):  # fmt: skip
        key = (source, source_id)
        link = best.get(key, {"reason": "single", "probability": None, "evidence": None})
        before = previous.get(key)
        if before is not None and before[0] == master and before[1] == link["reason"]:
            continue
        changed.append({"source": source, "source_id": source_id, "master_id": master,
                        "reason": link["reason"], "probability": link["probability"],
                        "evidence": link["evidence"], "linked_at": now, "change_seq": seq,
                        "run_id": run_id})  # fmt: skip
    fresh = [row for row in changed if (row["source"], row["source_id"]) not in previous]
    for chunk in _chunks(fresh):  # plain inserts: far cheaper than upserts on a first run
        conn.execute(master_links.insert(), chunk)
    moved = [row for row in changed if (row["source"], row["source_id"]) in previous]
    for chunk in _chunks(moved):
        upsert(conn, master_links, chunk, keys=["source", "source_id"],
               update=["master_id", "reason", "probability", "evidence", "linked_at",
                       "change_seq", "run_id"])  # fmt: skip
    live = set(zip(records["source"], records["source_id"], strict=True))
    gone = [key for key in previous if key not in live]
    for start in range(0, len(gone), 500):
        conn.execute(delete(master_links).where(
            tuple_(master_links.c.source, master_links.c.source_id).in_(gone[start:start + 500])
        ))  # fmt: skip
    return len(changed)


def _write_masters(
    conn: Connection,
    resolution: Resolution,
    previous: dict[RecordKey, tuple[str, str, float | None]],
    known: dict[str, str],
    seq: int,
    run_id: str,
    result: ResolveResult,
) -> None:
    """Masters, their status, and an event per creation, merge, split and retirement."""
    now = utcnow()
    records = resolution.records
    members: dict[str, list[RecordKey]] = defaultdict(list)
    for source, source_id, master in zip(records["source"], records["source_id"],
                                         records["master_id"], strict=True):  # fmt: skip
        members[master].append((source, source_id))
    now_in = {key: master for master, keys in members.items() for key in keys}
    old_members: dict[str, list[RecordKey]] = defaultdict(list)
    for key, (master, _, _) in previous.items():
        old_members[master].append(key)

    rows: list[dict[str, Any]] = []
    events: list[tuple[str, str, list[str] | None]] = []
    for master, keys in members.items():
        came_from = sorted({previous[k][0] for k in keys if k in previous} - {master})
        old_count = len(old_members.get(master, ()))
        if known.get(master) != "active" or old_count != len(keys) or came_from:
            rows.append({"master_id": master, "status": "active", "merged_into": None,
                         "member_count": len(keys)})  # fmt: skip
        if master not in known:
            split_from = [m for m in came_from if m in members]
            if split_from:
                events.append(("split", master, split_from))
                result.split += 1
            else:
                events.append(("created", master, None))
                result.created += 1
        absorbed = [m for m in came_from if m not in members]
        if absorbed:
            events.append(("merged", master, absorbed))
            result.merged += len(absorbed)
    for master, keys in old_members.items():
        if master in members or known.get(master) != "active":
            continue
        survivors = Counter(now_in[k] for k in keys if k in now_in)
        if survivors:
            into = sorted(survivors.items(), key=lambda kv: (-kv[1], kv[0]))[0][0]
            rows.append({"master_id": master, "status": "merged", "merged_into": into,
                         "member_count": 0})  # fmt: skip
        else:
            rows.append({"master_id": master, "status": "retired", "merged_into": None,
                         "member_count": 0})  # fmt: skip
            events.append(("retired", master, None))
            result.retired += 1
    for row in rows:
        row.update(created_at=now, updated_at=now, change_seq=seq, run_id=run_id)
    for chunk in _chunks(rows):
        upsert(conn, masters, chunk, keys=["master_id"],
               update=["status", "merged_into", "member_count", "updated_at", "change_seq",
                       "run_id"])  # fmt: skip
    if events:
        conn.execute(master_events.insert(), [
            {"kind": kind, "master_id": master, "other_ids": others, "detail": None,
             "occurred_at": now, "change_seq": seq, "run_id": run_id}
            for kind, master, others in events])  # fmt: skip
    result.masters = len(members)


def _write_review(conn: Connection, resolution: Resolution, scope: set[RecordKey] | None) -> int:
    """Open review pairs the engine found; pairs a person already decided stay decided."""
    review = resolution.review
    now = utcnow()
    q = review_queue.c
    if not review.empty:
        levels = [c for c in review.columns if c not in {
            "left_source", "left_source_id", "right_source", "right_source_id", "reason",
            "probability", "match_weight"}]  # fmt: skip
        rows = [
            {"left_source": r["left_source"], "left_source_id": r["left_source_id"],
             "right_source": r["right_source"], "right_source_id": r["right_source_id"],
             "reason": r["reason"], "probability": float(r["probability"]),
             "evidence": {"match_weight": float(r["match_weight"]),
                          "levels": {n: int(r[n]) for n in levels}},
             "status": "open", "created_at": now}
            for r in review.to_dict("records")
        ]  # fmt: skip
        for chunk in _chunks(rows):
            upsert(conn, review_queue, chunk,
                   keys=["left_source", "left_source_id", "right_source", "right_source_id"],
                   update=["probability", "evidence", "reason"])  # fmt: skip
    # Open pairs that are no longer in doubt (now one master, or no longer candidates) close.
    pairs = set(zip(*(review[c] for c in _PAIR_COLUMNS), strict=True))
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
    return _open_reviews(conn)


def _open_reviews(conn: Connection) -> int:
    count = select(func.count()).where(review_queue.c.status == "open")
    return int(conn.execute(count).scalar_one())


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
        BusyError: another resolve runs.
        ConfigError: the overrides contradict each other.
    """

    def work(result: ResolveResult) -> None:
        _resolve(store, settings, force, on_step, result, incremental_from)

    return run_stage(store, "resolve", lambda run_id: ResolveResult(run_id=run_id), work,
                     wait=wait)  # fmt: skip


def _resolve(
    store: Store,
    settings: MatchSettings | None,
    force: bool,
    on_step: Callable[[str, float], None] | None,
    result: ResolveResult,
    incremental_from: int,
) -> None:
    settings = settings or MatchSettings()
    with store.begin() as conn:
        overrides = load_overrides(conn)
        fingerprint = _fingerprint(conn, overrides)
        last = _state(conn, _WATERMARK)
        if not force and last == fingerprint:
            result.skipped = True
            result.review_open = _open_reviews(conn)
            return
        clock = time.perf_counter()
        model = load_model(conn)
        scope = None
        if (
            not force
            and model is not None
            and last
            and last["overrides"] == fingerprint["overrides"]
            and fingerprint["customers"] >= incremental_from
        ):
            scope = _neighbourhood(conn, int(last["customers_seq"]), settings.max_block_size)
        result.incremental = scope is not None
        frame = _input_frame(conn, scope)
        previous = _previous_links(conn, scope)
        known = _statuses(conn, {master for master, _, _ in previous.values()} if scope else None)
        result.steps["read"] = round(time.perf_counter() - clock, 3)
        result.records = len(frame)
        taken = known.__contains__ if scope is None else _taken_checker(conn, known)
        ids = StableIds({k: v[0] for k, v in previous.items()}, taken)
        clock = time.perf_counter()
        if len(frame):
            saved = model if scope is not None else None
            resolution = resolve(frame, overrides=overrides, settings=settings, progress=on_step,
                                 id_minter=ids, model=saved)  # fmt: skip
        else:
            resolution = _empty_resolution()
        result.steps["match"] = round(time.perf_counter() - clock, 3)
        clock = time.perf_counter()
        seq = next_change_seq(conn)
        result.links_written = _write_links(conn, resolution, previous, seq, result.run_id)
        _write_masters(conn, resolution, previous, known, seq, result.run_id, result)
        result.review_open = _write_review(conn, resolution, set(scope) if scope else None)
        if scope is None and resolution.model is not None:
            save_model(conn, resolution.model)
        _save_state(conn, _WATERMARK, fingerprint)
        result.steps["write"] = round(time.perf_counter() - clock, 3)


def _statuses(conn: Connection, ids: set[str] | None) -> dict[str, str]:
    """Status of the given masters (None: of every master)."""
    m = masters.c
    if ids is None:
        return dict(conn.execute(select(m.master_id, m.status)).tuples().all())
    found: dict[str, str] = {}
    listed = sorted(ids)
    for start in range(0, len(listed), 500):
        chunk = listed[start : start + 500]
        rows = conn.execute(select(m.master_id, m.status).where(m.master_id.in_(chunk)))
        found.update(rows.tuples().all())
    return found


def _taken_checker(conn: Connection, known: dict[str, str]) -> Callable[[str], bool]:
    def taken(master_id: str) -> bool:
        if master_id in known:
            return True
        exists = select(func.count()).where(masters.c.master_id == master_id)
        return bool(conn.execute(exists).scalar_one())

    return taken


def _neighbourhood(conn: Connection, since: int, max_block: int) -> list[RecordKey] | None:
    """The records a change can affect, or None when a full run is cheaper.

    Changed records (new, edited, deleted since ``since``), the records sharing a lookup key
    with them (e-mail match key, phone, postcode; values shared by more than ``max_block``
    records are ignored, as blocking ignores them), and every record of the people those
    belong to.
    """
    c = source_customers.c
    changed = conn.execute(
        select(c.source, c.source_id, c.email_match_key, c.phone, c.postcode_key)
        .where(c.raw_change_seq > since)
    ).all()  # fmt: skip
    total = int(conn.execute(select(func.count()).select_from(source_customers)).scalar_one())
    if not changed or len(changed) > max(_INCREMENTAL_MAX, total // 20):
        return None
    scope = {(row.source, row.source_id) for row in changed}
    for column in ("email_match_key", "phone", "postcode_key"):
        values = sorted({getattr(row, column) for row in changed} - {None})
        for start in range(0, len(values), 500):
            chunk = values[start : start + 500]
            usable = (
                select(c[column]).where(c[column].in_(chunk), c.deleted.is_(False))
                .group_by(c[column]).having(func.count() <= max_block)
            )  # fmt: skip
            rows = conn.execute(select(c.source, c.source_id).where(c[column].in_(usable)))
            scope.update((row.source, row.source_id) for row in rows)
    people = {master for master, _, _ in _previous_links(conn, sorted(scope)).values()}
    listed = sorted(people)
    for start in range(0, len(listed), 500):
        chunk = listed[start : start + 500]
        link = master_links.c
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
