"""`resolve`: from source records to master ids, links with their evidence, and a review queue.

The steps, each in its own module: normalise (`records`), block (`blocking`), compare
(`comparisons`), learn and score (`scoring`), apply rules and vetoes (`rules`), cluster under
constraints (`clustering`), mint ids (`ids`). Everything runs in canonical record order, so the
partition and the ids do not depend on the input's row order.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from crm_hub.errors import ConfigError
from crm_hub.identity import rules
from crm_hub.identity.arrays import distinct
from crm_hub.identity.blocking import BlockingStats, CandidatePairs, candidate_pairs
from crm_hub.identity.clustering import ClusterResult, cluster, components
from crm_hub.identity.comparisons import PairContext, comparison_names
from crm_hub.identity.ids import IdMinter, content_ids
from crm_hub.identity.overrides import Overrides
from crm_hub.identity.profiles import (
    FILL_GROUPS,
    FillGroup,
    counted_by_cluster,
    fill_from_clusters,
)
from crm_hub.identity.records import Prepared, prepare
from crm_hub.identity.scoring import (
    FellegiSunter,
    compute_levels,
    estimate_u,
    match_weights,
    probability,
    tf_adjustments,
    train,
)
from crm_hub.identity.settings import MatchSettings

__all__ = ["Progress", "Resolution", "ResolutionStats", "resolve"]

log = logging.getLogger(__name__)

Progress = Callable[[str, float], None]
"""Called with a step name and the fraction of the whole run done (0 to 1)."""

_STEPS = {"normalise": 0.0, "block": 0.25, "compare": 0.35, "train": 0.6, "score": 0.65,
          "cluster": 0.7, "profiles": 0.8, "ids": 0.9, "done": 1.0}  # fmt: skip


@dataclass
class ResolutionStats:
    """Counts and timings of one run."""

    records: int = 0
    candidates: int = 0
    blocking: BlockingStats = field(default_factory=BlockingStats)
    rule_links: dict[str, int] = field(default_factory=dict)
    score_links: int = 0
    profile_links: int = 0
    name_only_dropped: int = 0
    must_links: int = 0
    vetoed: dict[str, int] = field(default_factory=dict)
    vetoes: tuple[str, ...] = ()
    review: int = 0
    refused: int = 0
    clusters: int = 0
    rebuilt_components: int = 0
    em_iterations: int = 0
    match_share: float = 0.0
    flags: dict[str, dict[str, int]] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)


@dataclass
class Resolution:
    """The outcome of `resolve`.

    Attributes:
        records: one row per input record, in input order: ``source``, ``source_id``,
            ``master_id``, ``cluster_size``.
        links: the links that built the clusters: both records, ``master_id``, ``reason``
            (``rule:<name>``, ``score`` or ``must_link``), ``probability``, ``match_weight`` and
            one column per comparison holding its level (labels in the comparison registry).
        review: pairs for a person to decide: the "maybe" band and links refused by a cluster
            check (``reason`` ``maybe`` or ``refused``), same columns.
        stats: counts and timings.
        model: the trained Fellegi-Sunter model.
        link_rows: per link, the rows of ``records`` holding its left and right record (shape
            ``(len(links), 2)``): the store writes evidence per record without key lookups.
    """

    records: pd.DataFrame
    links: pd.DataFrame
    review: pd.DataFrame
    stats: ResolutionStats
    model: FellegiSunter | None = None
    link_rows: np.ndarray = field(default_factory=lambda: np.empty((0, 2), dtype=np.int64))


def _pair_frame(
    prepared: Prepared,
    left: np.ndarray,
    right: np.ndarray,
    *,
    reason: np.ndarray,
    prob: np.ndarray,
    weight: np.ndarray,
    levels: np.ndarray,
    names: Sequence[str],
    master: np.ndarray | None,
) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "left_source": prepared.source[left],
            "left_source_id": prepared.source_id[left],
            "right_source": prepared.source[right],
            "right_source_id": prepared.source_id[right],
        }
    )
    if master is not None:
        frame["master_id"] = master[left]
    frame["reason"] = reason
    frame["probability"] = np.round(prob, 6)
    frame["match_weight"] = np.round(weight, 3)
    for column, name in enumerate(names):
        frame[name] = levels[:, column]
    return frame


def _conflict_function(
    prepared: Prepared, base: PairContext, vetoes: Sequence[str], settings: MatchSettings
) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """Build the cluster check: True for pairs a conflict veto marks as different people."""
    chosen = [v for v in vetoes if v in rules.conflict_names()]
    needed = sorted({name for veto in chosen for name in rules.requires(veto, True)})
    # Everything cached but the per-pair name agreement is per value, so it holds for any pairs.
    shared = {k: v for k, v in base.cache.items() if k != "names"}

    def conflicts(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        if not len(a) or not chosen:
            return np.zeros(len(a), dtype=bool)
        ctx = PairContext(prepared, a.astype(np.int32), b.astype(np.int32), settings, dict(shared))
        levels = compute_levels(ctx, needed)
        level_map = {name: levels[:, c] for c, name in enumerate(needed)}
        fired: np.ndarray = rules.apply(level_map, chosen, ctx, vetoes=True) >= 0
        return fired

    return conflicts


def _profile_links(
    prepared: Prepared,
    candidates: CandidatePairs,
    model: FellegiSunter,
    labels: np.ndarray,
    accepted: np.ndarray,
    vetoed: np.ndarray,
    names: Sequence[str],
    rule_names: Sequence[str],
    veto_names: Sequence[str],
    settings: MatchSettings,
    *,
    use_tf: bool,
) -> np.ndarray:
    """Second pass: candidate pairs across clusters, compared with their clusters' profiles.

    Each record's missing fields are filled from its first-pass cluster (`profiles`); the
    pairs still apart and not vetoed on their own values are compared again with the same
    model, rules and vetoes. Returns the indices of candidate pairs to link in addition.
    """
    todo = np.flatnonzero(
        ~accepted & (vetoed < 0) & (labels[candidates.left] != labels[candidates.right])
    )
    if not len(todo):
        return todo
    keep, _ = _accepted_with_profiles(prepared, candidates, todo, model, labels, names,
                                      rule_names, veto_names, settings, use_tf=use_tf)  # fmt: skip
    result: np.ndarray = todo[keep]
    return result


def _accepted_with_profiles(
    prepared: Prepared,
    candidates: CandidatePairs,
    todo: np.ndarray,
    model: FellegiSunter,
    labels: np.ndarray,
    names: Sequence[str],
    rule_names: Sequence[str],
    veto_names: Sequence[str],
    settings: MatchSettings,
    *,
    use_tf: bool,
    groups: tuple[FillGroup, ...] = FILL_GROUPS,
    cache: dict[str, object] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Score the candidate pairs ``todo`` again with each record's gaps (of ``groups``) filled
    from its cluster (``labels``); return which a rule or the threshold accepts and no veto
    blocks, and the filled pairs' levels. ``cache``: per-value results still valid for the
    filled records."""
    needed = np.concatenate([candidates.left[todo], candidates.right[todo]])
    filled = fill_from_clusters(prepared, labels, groups, needed=needed)
    ctx = PairContext(filled, candidates.left[todo], candidates.right[todo], settings,
                      dict(cache or {}))  # fmt: skip
    levels = compute_levels(ctx, names)
    tf = tf_adjustments(model, levels, ctx, settings) if use_tf else None
    prob = probability(match_weights(model, levels, tf))
    level_map = {name: levels[:, c] for c, name in enumerate(names)}
    fired = rules.apply(level_map, rule_names, ctx, vetoes=False)
    again = rules.apply(level_map, veto_names, ctx, vetoes=True)
    keep: np.ndarray = ((fired >= 0) | (prob >= settings.threshold)) & (again < 0)
    return keep, levels


_CONTACT_FIELDS = ("email", "contact", "birth_date")
_CONTACT_GROUPS = tuple(g for g in FILL_GROUPS if g.key not in ("first_code", "last_code"))


def _contact_columns(names: Sequence[str]) -> list[int]:
    """Columns of the contact comparisons (e-mail, phone or address, birthday) in ``names``."""
    return [list(names).index(name) for name in _CONTACT_FIELDS]


def _name_only(levels: np.ndarray, names: Sequence[str]) -> np.ndarray:
    """Pairs whose names agree and nothing else does (no e-mail, phone, address or birthday)."""
    if not set(_CONTACT_FIELDS) <= set(names):
        return np.zeros(len(levels), dtype=bool)
    return np.asarray((levels[:, _contact_columns(names)] <= 0).all(axis=1))


def _gained_contact(before: np.ndarray, after: np.ndarray, names: Sequence[str]) -> np.ndarray:
    """Pairs that compare some contact field after the fill that they could not before."""
    columns = _contact_columns(names)
    return np.asarray(((before[:, columns] < 0) & (after[:, columns] >= 0)).any(axis=1))


def resolve(
    records: pd.DataFrame,
    *,
    overrides: Overrides | None = None,
    settings: MatchSettings | None = None,
    progress: Progress | None = None,
    id_minter: IdMinter | None = None,
    model: FellegiSunter | None = None,
) -> Resolution:
    """Find which records are the same person and give each person a master id.

    Args:
        records: one row per source record; ``source_id`` required, ``source`` defaults to
            ``"file"``; optional ``first_name``, ``last_name``, ``full_name``, ``email``,
            ``phone``, ``birth_date``, ``address_line1``, ``address_line2``, ``city``,
            ``region``, ``postcode``, ``country``; other columns are ignored.
        overrides: must-link and cannot-link pairs; they always win.
        settings: thresholds, caps and model choices (defaults work).
        progress: called as steps complete, for a progress bar.
        id_minter: mints master ids per cluster (default: a hash of the smallest member).
        model: a model trained before (on the whole population): used as is, without EM and
            without term-frequency adjustments (the input is then a neighbourhood whose value
            frequencies say nothing about the population).

    Returns:
        The resolution: master id per record, links, review queue and stats.

    Raises:
        ConfigError: the input lacks ``source_id``, has an empty or repeated one, or
            must-link overrides contradict cannot-link overrides.
    """
    settings = settings or MatchSettings()
    overrides = overrides or Overrides()
    stats = ResolutionStats()
    clock = time.perf_counter()

    def step(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        if stats.seconds or name != "normalise":
            previous = list(_STEPS)[list(_STEPS).index(name) - 1]
            stats.seconds[previous] = round(now - clock, 3)
        clock = now
        if progress is not None:
            progress(name, _STEPS[name])

    step("normalise")
    prepared = prepare(records, default_region=settings.default_region)
    stats.records, stats.flags = prepared.n, prepared.flags
    step("block")
    candidates = candidate_pairs(prepared, settings)
    stats.blocking, stats.candidates = candidates.stats, len(candidates)
    step("compare")
    names = tuple(settings.comparisons or comparison_names())
    ctx = PairContext(prepared, candidates.left, candidates.right, settings)
    levels = compute_levels(ctx, names)
    step("train")
    tf: np.ndarray | None = None
    if model is None:
        u_random = estimate_u(prepared, names, settings)
        untrained = FellegiSunter(names, u_random, u_random, u_random, 0.5)
        tf = tf_adjustments(untrained, levels, ctx, settings)
        model = train(levels, names, u_random, settings, n_records=prepared.n, tf_weights=tf)
    elif tuple(model.names) != names:
        raise ConfigError(f"the saved model compares {model.names}, the settings ask for {names}")
    stats.em_iterations, stats.match_share = model.iterations, model.prior
    step("score")
    weights = match_weights(model, levels, tf)
    prob = probability(weights)
    level_map = {name: levels[:, c] for c, name in enumerate(names)}
    rule_names = tuple(rules.rule_names() if settings.rules is None else settings.rules)
    veto_names = rules.active_vetoes(
        rules.veto_names() if settings.vetoes is None else settings.vetoes,
        dict(zip(model.names, model.m, strict=True)),
    )
    stats.vetoes = veto_names
    fired = rules.apply(level_map, rule_names, ctx, vetoes=False)
    vetoed = rules.apply(level_map, veto_names, ctx, vetoes=True)
    wanted = (fired >= 0) | (prob >= settings.threshold)
    accepted = wanted & (vetoed < 0)
    for index, name in enumerate(veto_names):
        stats.vetoed[name] = int((wanted & (vetoed == index)).sum())
    step("cluster")
    profile_link = np.zeros(len(candidates), dtype=bool)
    must_l, must_r, cannot_l, cannot_r = overrides.indices(prepared)
    conflicts = _conflict_function(prepared, ctx, veto_names, settings)

    def cluster_links(chosen: np.ndarray, strength: np.ndarray) -> ClusterResult:
        return cluster(
            prepared.n,
            candidates.left[chosen],
            candidates.right[chosen],
            strength,
            must=(must_l, must_r),
            cannot=(cannot_l, cannot_r),
            conflicts=conflicts,
            max_size=settings.max_cluster_size,
        )

    chosen = np.flatnonzero(accepted)
    clusters = cluster_links(chosen, prob[chosen] + (fired[chosen] >= 0))
    if tf is not None and settings.cluster_tf:
        # Second pass: term frequencies counted per first-pass cluster (`counted_by_cluster`).
        counted = counted_by_cluster(prepared, clusters.labels)
        tf = tf_adjustments(model, levels, PairContext(counted, ctx.left, ctx.right, settings,
                                                       ctx.cache), settings)  # fmt: skip
        weights = match_weights(model, levels, tf)
        prob = probability(weights)
        wanted = (fired >= 0) | (prob >= settings.threshold)
        accepted = wanted & (vetoed < 0)
        chosen = np.flatnonzero(accepted)
        clusters = cluster_links(chosen, prob[chosen] + (fired[chosen] >= 0))
    if settings.name_only_check:
        # A link on names alone is judged with what both sides' clusters know: two
        # "Bruce Hatherbourne" clusters with different e-mails and phones are namesakes.
        weak = np.flatnonzero(accepted & (fired < 0) & _name_only(levels, names))
        if len(weak):
            others = accepted.copy()
            others[weak] = False
            strong = components(prepared.n, candidates.left[others], candidates.right[others])
            # Names are not filled, so everything cached per name value still holds.
            names_cache = {k: v for k, v in ctx.cache.items()
                           if k != "names" and not k.startswith("vocab:address")}  # fmt: skip
            keep, filled = _accepted_with_profiles(prepared, candidates, weak, model, strong,
                                                   names, rule_names, veto_names, settings,
                                                   use_tf=tf is not None, groups=_CONTACT_GROUPS,
                                                   cache=names_cache)  # fmt: skip
            # Only what the clusters add can tell namesakes apart: a link refused on the same
            # evidence as before (a threshold moved by the fill's term frequencies) stays.
            drop = weak[~keep & _gained_contact(levels[weak], filled, names)]
            wanted, accepted = wanted.copy(), accepted.copy()
            wanted[drop] = accepted[drop] = False
            stats.name_only_dropped = len(drop)
            chosen = np.flatnonzero(accepted)
            clusters = cluster_links(chosen, prob[chosen] + (fired[chosen] >= 0))
    step("profiles")
    if settings.profile_pass:
        extra = _profile_links(prepared, candidates, model, clusters.labels, accepted, vetoed,
                               names, rule_names, veto_names, settings,
                               use_tf=tf is not None)  # fmt: skip
        stats.profile_links = len(extra)
        if len(extra):
            accepted = accepted.copy()
            accepted[extra] = True
            profile_link[extra] = True
            chosen = np.flatnonzero(accepted)
            strength = prob[chosen] + (fired[chosen] >= 0)
            strength[profile_link[chosen]] = np.minimum(strength[profile_link[chosen]], 0.5)
            clusters = cluster_links(chosen, strength)
    labels = clusters.labels
    stats.refused, stats.rebuilt_components = (
        int(clusters.refused.sum()),
        clusters.rebuilt_components,
    )
    step("ids")
    members = pd.DataFrame(
        {
            "cluster": labels,
            "source": prepared.source,
            "source_id": prepared.source_id,
            "row": prepared.input_position,
        }
    )
    minted = (id_minter or content_ids)(members)
    master = minted.reindex(labels).to_numpy(dtype=object)
    sizes = np.bincount(labels)[labels]
    stats.clusters = int(len(distinct(labels)))

    kept = chosen[~clusters.refused]
    reason = np.array(["score"] * len(kept), dtype=object)
    by_rule = fired[kept] >= 0
    reason[by_rule] = [f"rule:{rule_names[i]}" for i in fired[kept][by_rule]]
    reason[profile_link[kept]] = "profile"
    for index, name in enumerate(rule_names):
        stats.rule_links[name] = int((fired[kept] == index).sum())
    stats.score_links = int((~by_rule & ~profile_link[kept]).sum())
    links = _pair_frame(prepared, candidates.left[kept], candidates.right[kept], reason=reason,
                        prob=prob[kept], weight=weights[kept], levels=levels[kept], names=names,
                        master=master)  # fmt: skip
    if len(must_l):
        must_ctx = PairContext(prepared, must_l.astype(np.int32), must_r.astype(np.int32),
                               settings)  # fmt: skip
        must_levels = compute_levels(must_ctx, names)
        must_tf = tf_adjustments(model, must_levels, must_ctx, settings)
        must_weights = match_weights(model, must_levels, must_tf)
        must_frame = _pair_frame(prepared, must_l, must_r, reason=np.full(len(must_l), "must_link"),
                                 prob=probability(must_weights), weight=must_weights,
                                 levels=must_levels, names=names, master=master)  # fmt: skip
        links = pd.concat([must_frame, links], ignore_index=True)
        stats.must_links = len(must_l)
        link_left = np.concatenate([must_l, candidates.left[kept]]).astype(np.int64)
        link_right = np.concatenate([must_r, candidates.right[kept]]).astype(np.int64)
    else:
        link_left, link_right = candidates.left[kept], candidates.right[kept]
    link_rows = prepared.input_position[np.column_stack([link_left, link_right])]

    maybe = np.flatnonzero(~wanted & (vetoed < 0) & (prob >= settings.review_threshold))
    maybe = maybe[labels[candidates.left[maybe]] != labels[candidates.right[maybe]]]
    refused = chosen[clusters.refused]
    queue = np.concatenate([refused, maybe])
    review = _pair_frame(
        prepared, candidates.left[queue], candidates.right[queue],
        reason=np.array(["refused"] * len(refused) + ["maybe"] * len(maybe), dtype=object),
        prob=prob[queue], weight=weights[queue], levels=levels[queue], names=names, master=None,
    )  # fmt: skip
    stats.review = len(review)

    output = np.empty(prepared.n, dtype=np.int64)
    output[prepared.input_position] = np.arange(prepared.n)
    result = pd.DataFrame(
        {
            "source": prepared.source[output],
            "source_id": prepared.source_id[output],
            "master_id": master[output],
            "cluster_size": sizes[output],
        }
    )
    step("done")
    log.info(
        "resolved",
        extra={
            "records": stats.records,
            "candidates": stats.candidates,
            "clusters": stats.clusters,
            "review": stats.review,
        },  # fmt: skip
    )
    return Resolution(result, links, review, stats, model, link_rows.reshape(-1, 2))
