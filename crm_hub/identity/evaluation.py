"""Evaluation against ground truth, counting pairs from cluster sizes (never listing pairs).

Pairwise precision and recall treat every two records placed in one cluster as a predicted
pair. Counts come from the contingency table of (predicted cluster, true entity): the pairs
both agree on are ``sum(n_ij * (n_ij - 1) / 2)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

__all__ = [
    "PairwiseScores",
    "blocking_recall",
    "exact_recovery",
    "household_false_merge_rate",
    "pairwise_scores",
]


def _pairs(sizes: np.ndarray) -> int:
    sizes = sizes.astype(np.int64)
    return int((sizes * (sizes - 1) // 2).sum())


def _codes(values: object) -> np.ndarray:
    codes, _ = pd.factorize(pd.Series(values), use_na_sentinel=True)
    result: np.ndarray = codes.astype(np.int64)
    return result


@dataclass(frozen=True)
class PairwiseScores:
    """Pair counts and the derived precision, recall and F1."""

    true_positives: int
    predicted_pairs: int
    true_pairs: int

    @property
    def precision(self) -> float:
        """Share of predicted pairs that are true."""
        return self.true_positives / self.predicted_pairs if self.predicted_pairs else 1.0

    @property
    def recall(self) -> float:
        """Share of true pairs that are predicted."""
        return self.true_positives / self.true_pairs if self.true_pairs else 1.0

    @property
    def f1(self) -> float:
        """Harmonic mean of precision and recall."""
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


def pairwise_scores(predicted: object, truth: object) -> PairwiseScores:
    """Score a partition against the truth, pairwise.

    Args:
        predicted: cluster label per record (any hashable values).
        truth: true entity per record.

    Example:
        >>> s = pairwise_scores(["a", "a", "b"], [1, 1, 1])
        >>> (s.true_positives, s.predicted_pairs, s.true_pairs)
        (1, 1, 3)
    """
    p, t = _codes(predicted), _codes(truth)
    joint = pd.DataFrame({"p": p, "t": t}).value_counts().to_numpy()
    return PairwiseScores(_pairs(joint), _pairs(np.bincount(p)), _pairs(np.bincount(t)))


def exact_recovery(predicted: object, truth: object) -> float:
    """Share of true entities whose records form exactly one predicted cluster."""
    p, t = _codes(predicted), _codes(truth)
    per_entity = pd.DataFrame({"p": p, "t": t}).groupby("t")["p"].agg(["nunique", "first", "size"])
    predicted_size = np.bincount(p)[per_entity["first"].to_numpy()]
    whole = (per_entity["nunique"].to_numpy() == 1) & (
        predicted_size == per_entity["size"].to_numpy()
    )
    return float(whole.mean()) if len(whole) else 1.0


def household_false_merge_rate(predicted: object, truth: object, household: object) -> float:
    """Share of households in which two different members were put in one cluster.

    Args:
        predicted: cluster label per record.
        truth: true person per record.
        household: household id per record (missing for people living alone).
    """
    frame = pd.DataFrame({"p": _codes(predicted), "t": _codes(truth), "h": _codes(household)})
    frame = frame[frame["h"] >= 0]
    if frame.empty:
        return 0.0
    people = frame.groupby(["h", "p"])["t"].nunique()
    merged = people[people > 1].index.get_level_values("h").unique()
    result: float = len(merged) / frame["h"].nunique()
    return result


def blocking_recall(left: np.ndarray, right: np.ndarray, truth: object) -> tuple[float, float]:
    """Return the share of true pairs that are candidates, and that are reachable.

    *Direct* recall counts true pairs among the candidate pairs. *Reachable* recall counts true
    pairs connected through candidate pairs between records of that same person: what
    clustering could recover at best.
    """
    t = _codes(truth)
    true_pairs = _pairs(np.bincount(t))
    if not true_pairs:
        return 1.0, 1.0
    same = t[left] == t[right]
    direct = int(same.sum()) / true_pairs
    n = len(t)
    graph = coo_matrix(
        (np.ones(int(same.sum()), dtype=np.int8), (left[same], right[same])), shape=(n, n)
    )
    _, components = connected_components(graph, directed=False)
    joint = pd.DataFrame({"c": components, "t": t}).value_counts().to_numpy()
    return direct, _pairs(joint) / true_pairs
