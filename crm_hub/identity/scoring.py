"""Fellegi-Sunter scoring: m/u per comparison level by EM without labels, TF adjustments.

``u`` (how often non-matching pairs reach a level) starts from a random sample of record pairs;
``m`` (how often matching pairs do) and the share of matches among candidates are learnt by EM
over the *patterns* of levels (few thousand distinct patterns for millions of pairs, so EM
costs milliseconds). The weight of an exact agreement is adjusted by the rarity of the value
(term frequency): agreeing on "Vanderhoeven" says more than agreeing on "Smith".
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from crm_hub.identity.arrays import distinct_counts
from crm_hub.identity.comparisons import PairContext, comparison
from crm_hub.identity.records import Prepared
from crm_hub.identity.settings import MatchSettings

__all__ = [
    "FellegiSunter",
    "compute_levels",
    "estimate_u",
    "match_weights",
    "probability",
    "tf_adjustments",
    "train",
]

log = logging.getLogger(__name__)

_TF_CLIP = 10.0


@dataclass
class FellegiSunter:
    """A trained model: per comparison, ``m`` and ``u`` for each level.

    Attributes:
        names: comparison names, in column order of the level matrix.
        m: per comparison, P(level | match).
        u: per comparison, P(level | non-match) among candidate pairs.
        u_random: per comparison, P(level) for random record pairs (base of TF adjustments).
        prior: share of matches among candidate pairs.
        iterations: EM iterations run.
    """

    names: tuple[str, ...]
    m: list[np.ndarray]
    u: list[np.ndarray]
    u_random: list[np.ndarray]
    prior: float
    iterations: int = 0
    history: list[float] = field(default_factory=list)

    def weights(self) -> list[np.ndarray]:
        """Return ``log2(m/u)`` per comparison and level."""
        return [np.log2(m / u) for m, u in zip(self.m, self.u, strict=True)]

    def describe(self) -> dict[str, dict[str, dict[str, float]]]:
        """Return the parameters keyed by comparison and level label (for stats and explain)."""
        out: dict[str, dict[str, dict[str, float]]] = {}
        for c, name in enumerate(self.names):
            labels = comparison(name).labels
            out[name] = {
                labels[k]: {
                    "m": float(self.m[c][k]),
                    "u": float(self.u[c][k]),
                    "weight": float(np.log2(self.m[c][k] / self.u[c][k])),
                }
                for k in range(len(labels))
            }
        return out


def compute_levels(ctx: PairContext, names: Sequence[str]) -> np.ndarray:
    """Compute the level matrix (pairs × comparisons, int8) for candidate pairs."""
    matrix = np.empty((len(ctx), len(names)), dtype=np.int8)
    for column, name in enumerate(names):
        matrix[:, column] = comparison(name).function(ctx)
    return matrix


_U_PSEUDO_PAIRS = 2000.0
_M_PSEUDO_PAIRS = 20.0


def _smoothed(levels: np.ndarray, prior: Sequence[float]) -> np.ndarray:
    """Level shares of a sample, blended with typical values (which dominate tiny samples)."""
    valid = levels[levels >= 0]
    counts = np.bincount(valid, minlength=len(prior)).astype(np.float64)
    typical = np.asarray(prior, dtype=np.float64) / sum(prior)
    result: np.ndarray = (counts + _U_PSEUDO_PAIRS * typical) / (counts.sum() + _U_PSEUDO_PAIRS)
    return result


def estimate_u(
    prepared: Prepared, names: Sequence[str], settings: MatchSettings
) -> list[np.ndarray]:
    """Estimate P(level) for random record pairs (nearly all non-matches).

    The sample is drawn with a fixed seed over canonical indices, so it does not depend on the
    input's row order.
    """
    n = prepared.n
    rng = np.random.default_rng(settings.seed)
    size = int(min(settings.u_sample_pairs, max(n * (n - 1) // 2, 1)))
    a = rng.integers(0, max(n, 1), size)
    b = rng.integers(0, max(n, 1), size)
    keep = a != b
    left, right = np.minimum(a, b)[keep], np.maximum(a, b)[keep]
    ctx = PairContext(prepared, left.astype(np.int32), right.astype(np.int32), settings)
    levels = compute_levels(ctx, names)
    result = []
    for c, name in enumerate(names):
        u = _smoothed(levels[:, c], comparison(name).prior_u)
        found = comparison(name)
        top = found.n_levels - 1
        if set(found.tf_fields) == {top}:
            # Exact agreement on one field: its chance is known exactly from value counts,
            # which a sample cannot estimate for near-unique values (e-mails).
            chance = min(prepared.tf_base[found.tf_fields[top]], 0.5)
            u[:top] *= (1 - chance) / u[:top].sum()
            u[top] = chance
        result.append(u)
    return result


@dataclass(frozen=True)
class Session:
    """An EM training session: candidate pairs agreeing on some comparisons.

    Within a session, the comparisons of its filter are left out and the others are learnt:
    their agreement is (nearly) independent of the filter among non-matches, so ``u`` from
    random pairs holds. This is Splink's way of training on blocked pairs.
    """

    name: str
    filter: dict[str, int]

    def mask(self, levels: np.ndarray, names: Sequence[str]) -> np.ndarray:
        """Return which candidate pairs belong to the session."""
        keep = np.ones(len(levels), dtype=bool)
        for comparison_name, minimum in self.filter.items():
            if comparison_name not in names:
                return np.zeros(len(levels), dtype=bool)
            keep &= levels[:, list(names).index(comparison_name)] >= minimum
        return keep


SESSIONS = (
    Session("same_email", {"email": 2}),
    Session("same_phone_and_name", {"contact": 4, "first_name": 4, "last_name": 3}),
    Session("same_name_and_birth_date", {"first_name": 4, "last_name": 3, "birth_date": 3}),
    Session("same_birth_date_and_address", {"birth_date": 3, "contact": 3}),
    Session("same_name_and_address", {"first_name": 4, "last_name": 4, "contact": 3}),
)
"""Training sessions in priority order: each comparison is learnt in the first that frees it."""

_MIN_SESSION_PAIRS = 50


def _prior_m(names: Sequence[str], c: int) -> np.ndarray:
    typical = np.asarray(comparison(names[c]).prior_m, dtype=np.float64)
    result: np.ndarray = typical / typical.sum()
    return result


def _patterns(levels: np.ndarray, n_levels: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    strides = np.cumprod([1] + [k + 1 for k in n_levels[:-1]]).astype(np.int64)
    codes = ((levels.astype(np.int64) + 1) * strides).sum(axis=1)
    patterns, counts = distinct_counts(codes)
    table = np.stack(
        [(patterns // strides[c]) % (n_levels[c] + 1) - 1 for c in range(len(n_levels))], axis=1
    )
    return table, counts.astype(np.float64)


def _em_m(
    table: np.ndarray,
    counts: np.ndarray,
    free: Sequence[int],
    names: Sequence[str],
    u: Sequence[np.ndarray],
    settings: MatchSettings,
) -> tuple[dict[int, np.ndarray], int]:
    """EM for m (u fixed) over level patterns, using only the ``free`` comparisons."""
    n_levels = [comparison(name).n_levels for name in names]
    typical = {c: _prior_m(names, c) for c in free}
    m = dict(typical)
    prior = 0.5
    iterations = 0
    for step in range(1, settings.em_iterations + 1):
        iterations = step
        log_ratio = np.full(len(table), np.log(prior / (1 - prior)))
        for c in free:
            column = table[:, c]
            valid = column >= 0
            log_ratio[valid] += np.log(m[c][column[valid]]) - np.log(u[c][column[valid]])
        posterior = 1.0 / (1.0 + np.exp(-np.clip(log_ratio, -700, 700)))
        matched = counts * posterior
        change = 0.0
        for c in free:
            column = table[:, c]
            valid = column >= 0
            new_m = np.bincount(column[valid], matched[valid], n_levels[c])
            new_m = (new_m + _M_PSEUDO_PAIRS * typical[c]) / (new_m.sum() + _M_PSEUDO_PAIRS)
            change = max(change, float(np.abs(new_m - m[c]).max()))
            m[c] = new_m
        new_prior = float(np.clip(matched.sum() / counts.sum(), 1e-6, 1 - 1e-6))
        change = max(change, abs(new_prior - prior))
        prior = new_prior
        if change < settings.em_tolerance:
            break
    return m, iterations


def train(
    levels: np.ndarray,
    names: Sequence[str],
    u_random: list[np.ndarray],
    settings: MatchSettings,
    *,
    n_records: int,
    tf_weights: np.ndarray | None = None,
) -> FellegiSunter:
    """Learn m per comparison by EM in training sessions, then the prior over all pairs.

    Args:
        levels: the candidates' level matrix.
        names: comparison names of its columns.
        u_random: P(level) for random pairs (fixed ``u``).
        settings: EM iteration cap and tolerance.
        n_records: number of records (the prior is per pair of records).
        tf_weights: per-candidate term-frequency adjustment (log2), included when estimating
            the prior.

    Returns:
        The trained model.
    """
    n_levels = [comparison(name).n_levels for name in names]
    u = [np.asarray(x, dtype=np.float64) for x in u_random]
    m: list[np.ndarray | None] = [None] * len(names)
    iterations = 0
    lone: list[int] = []
    for session in SESSIONS:
        todo = [c for c, name in enumerate(names) if m[c] is None and name not in session.filter]
        if not todo:
            continue
        mask = session.mask(levels, names)
        if mask.sum() < _MIN_SESSION_PAIRS:
            continue
        selected = levels[mask]
        table, counts = _patterns(selected, n_levels)
        free = [c for c, name in enumerate(names) if name not in session.filter]
        learnt, steps = _em_m(table, counts, free, names, u, settings)
        iterations += steps
        informative = [c for c in free if (selected[:, c] >= 0).sum() >= _MIN_SESSION_PAIRS]
        for c in todo:
            m[c] = learnt[c]
            if len(informative) <= 1:
                lone.append(c)
        log.debug("em session", extra={"session": session.name, "pairs": int(mask.sum())})
    final_m = [x if x is not None else _prior_m(names, c) for c, x in enumerate(m)]
    model = FellegiSunter(tuple(names), final_m, u, [x.copy() for x in u], 0.5, iterations)
    evidence = _evidence(model, levels, tf_weights)
    model.prior = _global_prior(model, evidence, n_records)
    if _refine_m(model, levels, evidence, lone):
        evidence = _evidence(model, levels, tf_weights)
    model.prior = _global_prior(model, evidence, n_records)
    return model


def _evidence(
    model: FellegiSunter, levels: np.ndarray, tf_weights: np.ndarray | None
) -> np.ndarray:
    """Per pair, its level weights and term-frequency adjustment (log2), the prior left out."""
    evidence = np.zeros(len(levels))
    for c, table in enumerate(model.weights()):
        evidence += _level_weights(table, levels[:, c])
    if tf_weights is not None:
        evidence += tf_weights
    return evidence


def _refine_m(
    model: FellegiSunter, levels: np.ndarray, evidence: np.ndarray, which: list[int]
) -> bool:
    """Re-estimate m of comparisons learnt alone from all candidates, leave-one-out.

    A training session frees few comparisons (often one, where its filter fixes the rest), and
    EM over a single comparison cannot tell its disagreement among matches from non-matches:
    corrupted birth dates of true duplicates all look like other people. Here each
    comparison's m is the level distribution over all candidate pairs, each pair weighted by
    its match probability from every *other* comparison (leave-one-out), which identifies it.
    ``evidence`` is `_evidence` of the model as it stands. Returns whether any m changed.
    """
    weights = model.weights()
    log_odds = np.log2(model.prior / (1 - model.prior))
    changed = False
    for c in which:
        column = levels[:, c]
        valid = np.flatnonzero(column >= 0)
        if len(valid) < _MIN_SESSION_PAIRS:
            continue
        present = column[valid]
        # Its own weight taken out of the pair's evidence: the other comparisons' say.
        others = evidence[valid] - weights[c][present]
        others += log_odds
        posterior = 1.0 / (1.0 + np.exp2(-np.clip(others, -60, 60)))
        counts = np.bincount(present, posterior, len(model.m[c]))
        if counts.sum() < _MIN_SESSION_PAIRS:
            continue
        typical = _prior_m(model.names, c)
        model.m[c] = (counts + _M_PSEUDO_PAIRS * typical) / (counts.sum() + _M_PSEUDO_PAIRS)
        changed = True
    return changed


_PRIOR_BLOCK = 1 << 16
"""Pairs per block of the prior's fixed point: a block's temporaries stay in cache."""


def _expected_matches(log_odds: float, evidence: np.ndarray) -> float:
    """Sum of the pairs' match probabilities at prior log-odds ``log_odds``.

    Block by block, in place: over millions of pairs, full-length temporaries cost more in
    memory traffic than the arithmetic.
    """
    total = 0.0
    buffer = np.empty(min(len(evidence), _PRIOR_BLOCK))
    for start in range(0, len(evidence), _PRIOR_BLOCK):
        block = evidence[start : start + _PRIOR_BLOCK]
        odds = buffer[: len(block)]
        np.add(block, log_odds, out=odds)
        np.clip(odds, -60, 60, out=odds)
        np.negative(odds, out=odds)
        np.exp2(odds, out=odds)
        odds += 1.0
        np.divide(1.0, odds, out=odds)
        total += float(odds.sum())
    return total


def _global_prior(model: FellegiSunter, evidence: np.ndarray, n_records: int) -> float:
    """Fixed point of the prior over all record pairs (pairs outside the candidates ~ 0).

    ``evidence``: `_evidence` of the candidate pairs.
    """
    total_pairs = max(n_records * (n_records - 1) / 2, 1.0)
    prior = min(max(n_records, 1) / total_pairs, 0.5)
    for _ in range(50):
        expected = _expected_matches(float(np.log2(prior / (1 - prior))), evidence)
        new_prior = min(max(expected / total_pairs, 1e-12), 0.5)
        if abs(np.log(new_prior / prior)) < 1e-4:
            prior = new_prior
            break
        prior = new_prior
    model.history.append(prior)
    return prior


def tf_adjustments(
    model: FellegiSunter, levels: np.ndarray, ctx: PairContext, settings: MatchSettings
) -> np.ndarray:
    """Return each pair's term-frequency adjustment (log2).

    For a level with a TF field, the weight moves by ``log2(chance / tf)`` where ``tf`` is the
    share of other records holding the agreeing value and ``chance`` the chance two random
    records agree on that field: rare values count more than common ones (boost capped by
    ``settings.tf_max_boost`` bits).
    """
    adjust = np.zeros(len(levels))
    for c, name in enumerate(model.names):
        column = levels[:, c]
        for level, field_name in comparison(name).tf_fields.items():
            hit = np.flatnonzero(column == level)
            if not len(hit):
                continue
            tf = ctx.prepared.tf[field_name]
            value = np.maximum(tf[ctx.left[hit]], tf[ctx.right[hit]])
            base = ctx.prepared.tf_base[field_name]
            change = np.log2(base / np.maximum(value, 1e-12))
            adjust[hit] += np.clip(change, -_TF_CLIP, settings.tf_max_boost)
    adjust += _namesake_adjustment(model.names, levels, ctx)
    return adjust


def _namesake_adjustment(names: Sequence[str], levels: np.ndarray, ctx: PairContext) -> np.ndarray:
    """Weaken an exact full-name agreement by the namesakes other clusters show (log2).

    With ``k`` other clusters already holding the same (given, family) name where ``e`` were
    expected by chance, agreeing on it tells the two records apart from ``k`` rivals instead of
    ``e``: the weight drops by ``log2((k + 1) / (e + 1))`` (never raised). Needs the per-cluster
    counts of `profiles.counted_by_cluster`; zero without them.
    """
    counts = ctx.prepared.counts
    adjust = np.zeros(len(levels))
    if "namesakes" not in counts or "first_name" not in names or "last_name" not in names:
        return adjust
    first, last = (
        levels[:, list(names).index("first_name")],
        levels[:, list(names).index("last_name")],
    )
    p, left, right = ctx.prepared, ctx.left, ctx.right
    hit = np.flatnonzero((first == 5) & (last == 4))
    hit = hit[(p.first_code[left[hit]] == p.first_code[right[hit]])
              & (p.last_code[left[hit]] == p.last_code[right[hit]])]  # fmt: skip
    if not len(hit):
        return adjust
    cluster = counts["cluster"]
    rivals = counts["namesakes"][left[hit]] - (cluster[left[hit]] != cluster[right[hit]])
    expected = counts["namesakes_expected"][left[hit]]
    adjust[hit] = -np.maximum(np.log2((np.maximum(rivals, 0) + 1) / (expected + 1)), 0)
    return adjust


def _level_weights(table: np.ndarray, column: np.ndarray) -> np.ndarray:
    """Per pair, the weight of its level; ``0.0`` where the level is missing (``-1``).

    The missing level ``-1`` indexes the ``0.0`` appended at the end: one gather instead of
    masked reads and writes over every candidate pair.
    """
    result: np.ndarray = np.append(table, 0.0)[column]
    return result


def match_weights(
    model: FellegiSunter, levels: np.ndarray, tf: np.ndarray | None = None
) -> np.ndarray:
    """Return each pair's match weight (log2 odds): prior, level weights, TF adjustments."""
    weights = np.full(len(levels), np.log2(model.prior / (1 - model.prior)))
    for c, table in enumerate(model.weights()):
        weights += _level_weights(table, levels[:, c])
    if tf is not None:
        weights += tf
    return weights


def probability(weights: np.ndarray) -> np.ndarray:
    """Turn match weights (log2 odds) into probabilities."""
    result: np.ndarray = 1.0 / (1.0 + np.exp2(-np.clip(weights, -60, 60)))
    return result
