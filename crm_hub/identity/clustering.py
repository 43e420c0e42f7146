"""Clustering: union-find over accepted links, with constraints and a check against chaining.

Connected components chain errors (A~B and B~C put A with C). Components whose members are all
compatible pass as they are, computed with scipy in one call. A component that holds a conflict
(two members a veto would keep apart), a cannot-link pair or more records than the cap is
rebuilt greedily: must-links first, then links by decreasing score, each merge refused when it
would join conflicting records, cross a cannot-link or exceed the cap. Refused links go to
the review queue.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from crm_hub.errors import ConfigError
from crm_hub.identity.arrays import distinct

__all__ = ["ClusterResult", "cluster", "components"]

log = logging.getLogger(__name__)

ConflictFunction = Callable[[np.ndarray, np.ndarray], np.ndarray]
"""Given aligned arrays of record indices, return True where the two may not share a cluster."""

_CHECK_ALL_PAIRS_UP_TO = 200


@dataclass
class ClusterResult:
    """Cluster label per record (its smallest canonical index) and the links refused."""

    labels: np.ndarray
    refused: np.ndarray
    rebuilt_components: int


def _components(n: int, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    graph = coo_matrix((np.ones(len(left), dtype=np.int8), (left, right)), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    result: np.ndarray = labels.astype(np.int64)
    return result


def components(n: int, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Plain connected components of links, labelled by their smallest member (no checks)."""
    return _min_label(_components(n, left, right))


def _min_label(labels: np.ndarray) -> np.ndarray:
    """Relabel components by their smallest member index (order-independent labels)."""
    smallest = np.full(labels.max(initial=-1) + 1, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(smallest, labels, np.arange(len(labels), dtype=np.int64))
    result: np.ndarray = smallest[labels]
    return result


def _intra_pairs(members_sorted: np.ndarray, starts: np.ndarray, sizes: np.ndarray) -> tuple[
    np.ndarray, np.ndarray, np.ndarray
]:  # fmt: skip
    lefts, rights, owners = [], [], []
    for offset in range(1, int(sizes.max(initial=1))):
        alive = sizes > offset
        if not alive.any():
            break
        for_start, for_size = starts[alive], sizes[alive]
        counts = for_size - offset
        base = np.repeat(for_start, counts)
        within = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
        lefts.append(members_sorted[base + within])
        rights.append(members_sorted[base + within + offset])
        owners.append(np.repeat(np.flatnonzero(alive), counts))
    if not lefts:
        empty = np.empty(0, dtype=np.int64)
        return empty, empty, empty
    return np.concatenate(lefts), np.concatenate(rights), np.concatenate(owners)


class _UnionFind:
    def __init__(self) -> None:
        self.parent: dict[int, int] = {}
        self.members: dict[int, list[int]] = {}

    def find(self, item: int) -> int:
        parent = self.parent.setdefault(item, item)
        if parent == item:
            self.members.setdefault(item, [item])
            return item
        root = self.find(parent)
        self.parent[item] = root
        return root

    def union(self, a: int, b: int) -> int:
        if len(self.members[a]) < len(self.members[b]):
            a, b = b, a
        self.parent[b] = a
        self.members[a].extend(self.members.pop(b))
        return a


def cluster(
    n: int,
    left: np.ndarray,
    right: np.ndarray,
    score: np.ndarray,
    *,
    must: tuple[np.ndarray, np.ndarray],
    cannot: tuple[np.ndarray, np.ndarray],
    conflicts: ConflictFunction,
    max_size: int,
) -> ClusterResult:
    """Cluster records from accepted links under constraints.

    Args:
        n: number of records.
        left: accepted links, first record (canonical index).
        right: accepted links, second record.
        score: link strength; stronger links are merged first when a component is rebuilt.
        must: must-link pairs (always merged).
        cannot: cannot-link pairs (never in one cluster).
        conflicts: tells which record pairs may not share a cluster.
        max_size: largest cluster allowed (must-links may exceed it).

    Returns:
        Labels per record and a mask of refused links.

    Raises:
        ConfigError: must-links join two records that a cannot-link separates.
    """
    edge_left = np.concatenate([must[0], left]).astype(np.int64)
    edge_right = np.concatenate([must[1], right]).astype(np.int64)
    labels = _components(n, edge_left, edge_right)
    sizes = np.bincount(labels, minlength=labels.max(initial=-1) + 1)
    suspicious = np.zeros(len(sizes), dtype=bool)
    suspicious[sizes > max_size] = True
    if len(cannot[0]):
        same = labels[cannot[0]] == labels[cannot[1]]
        suspicious[labels[cannot[0]][same]] = True
    known: set[tuple[int, int]] = set()
    checkable = np.flatnonzero((sizes >= 3) & (sizes <= _CHECK_ALL_PAIRS_UP_TO))
    if len(checkable):
        in_checkable = np.isin(labels, checkable)
        members = np.flatnonzero(in_checkable)
        members = members[np.argsort(labels[members], kind="stable")]
        comp_of_member = labels[members]
        starts = np.flatnonzero(np.r_[True, comp_of_member[1:] != comp_of_member[:-1]])
        comp_sizes = np.diff(np.r_[starts, len(members)])
        a, b, owner = _intra_pairs(members, starts, comp_sizes)
        low, high = np.minimum(a, b), np.maximum(a, b)
        bad = conflicts(low, high)
        suspicious[comp_of_member[starts[distinct(owner[bad])]]] = True
        known = set(zip(low[bad].tolist(), high[bad].tolist(), strict=True))
    suspicious[sizes > _CHECK_ALL_PAIRS_UP_TO] = True
    refused = np.zeros(len(left), dtype=bool)
    rebuild = np.flatnonzero(suspicious)
    if len(rebuild):
        labels = labels.copy()
        checked = sizes <= _CHECK_ALL_PAIRS_UP_TO

        def conflict_between(group_a: list[int], group_b: list[int], component: int) -> bool:
            if checked[component]:
                return any((min(x, y), max(x, y)) in known for x in group_a for y in group_b)
            xa = np.repeat(np.array(group_a, dtype=np.int64), len(group_b))
            xb = np.tile(np.array(group_b, dtype=np.int64), len(group_a))
            return bool(conflicts(np.minimum(xa, xb), np.maximum(xa, xb)).any())

        _rebuild(
            labels, rebuild, edge_left, edge_right, len(must[0]), score, cannot,
            conflict_between, max_size, refused,
        )  # fmt: skip
    log.debug("clustered", extra={"rebuilt": len(rebuild), "refused": int(refused.sum())})
    return ClusterResult(_min_label(labels), refused, len(rebuild))


def _rebuild(
    labels: np.ndarray,
    components: np.ndarray,
    edge_left: np.ndarray,
    edge_right: np.ndarray,
    n_must: int,
    score: np.ndarray,
    cannot: tuple[np.ndarray, np.ndarray],
    conflict_between: Callable[[list[int], list[int], int], bool],
    max_size: int,
    refused: np.ndarray,
) -> None:
    """Greedy constrained union-find over the links of the given components (in place)."""
    chosen = np.isin(labels[edge_left], components)
    edges = np.flatnonzero(chosen)
    strength = np.concatenate([np.full(n_must, np.inf), score])[edges]
    order = np.lexsort((edge_right[edges], edge_left[edges], -strength))
    edges = edges[order]
    forbidden: dict[int, set[int]] = {}
    for a, b in zip(cannot[0].tolist(), cannot[1].tolist(), strict=True):
        forbidden.setdefault(a, set()).add(b)
        forbidden.setdefault(b, set()).add(a)
    sets = _UnionFind()
    lefts, rights = edge_left.tolist(), edge_right.tolist()
    for edge in edges.tolist():
        ra, rb = sets.find(lefts[edge]), sets.find(rights[edge])
        if ra == rb:
            continue
        group_a, group_b = sets.members[ra], sets.members[rb]
        crossing = bool(forbidden) and any(
            forbidden.get(x, set()).intersection(group_b) for x in group_a
        )
        if edge < n_must:
            if crossing:
                raise ConfigError(
                    "must-link overrides join records that a cannot-link override separates; "
                    "remove one of the conflicting overrides"
                )
            sets.union(ra, rb)
            continue
        link = edge - n_must
        if crossing or len(group_a) + len(group_b) > max_size:
            refused[link] = True
            continue
        if conflict_between(group_a, group_b, int(labels[lefts[edge]])):
            refused[link] = True
            continue
        sets.union(ra, rb)
    next_label = labels.max(initial=-1) + 1
    in_rebuilt = np.flatnonzero(np.isin(labels, components))
    labels[in_rebuilt] = np.arange(next_label, next_label + len(in_rebuilt))
    for root, group in sets.members.items():
        labels[np.array(group, dtype=np.int64)] = next_label + len(in_rebuilt) + root
