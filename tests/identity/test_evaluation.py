from __future__ import annotations

import numpy as np

from crm_hub.identity.evaluation import (
    blocking_recall,
    exact_recovery,
    household_false_merge_rate,
    pairwise_scores,
)


def test_pairwise_counts_from_cluster_sizes() -> None:
    scores = pairwise_scores(["a", "a", "a", "b"], [1, 1, 2, 2])
    assert (scores.true_positives, scores.predicted_pairs, scores.true_pairs) == (1, 3, 2)
    assert scores.precision == 1 / 3 and scores.recall == 1 / 2


def test_perfect_partition_scores_one() -> None:
    scores = pairwise_scores([5, 5, 7], ["x", "x", "y"])
    assert scores.f1 == 1.0
    assert exact_recovery([5, 5, 7], ["x", "x", "y"]) == 1.0


def test_exact_recovery_needs_the_whole_cluster() -> None:
    assert exact_recovery(["a", "a", "a"], [1, 1, 2]) == 0.0


def test_household_false_merge_rate_counts_households() -> None:
    predicted = ["m1", "m1", "m2", "m3", "m3"]
    truth = [1, 2, 3, 4, 4]
    household = ["h1", "h1", "h1", None, None]
    assert household_false_merge_rate(predicted, truth, household) == 1.0


def test_blocking_recall_direct_and_reachable() -> None:
    left, right = np.array([0, 1]), np.array([1, 2])
    direct, reachable = blocking_recall(left, right, [1, 1, 1])
    assert direct == 2 / 3 and reachable == 1.0
