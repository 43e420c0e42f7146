"""Settings of the matcher: thresholds, caps, which blocking keys, comparisons and rules."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["MatchSettings"]


@dataclass(frozen=True)
class MatchSettings:
    """How `resolve` matches records; every field has a working default.

    Attributes:
        default_region: ISO region assumed for phone numbers without a country code.
        threshold: match probability at or above which a pair is linked.
        review_threshold: lower edge of the "maybe" band sent to the review queue.
        max_block_size: a blocking-key value shared by more records than this creates no pairs
            (placeholder values, shared office phones, very common names).
        max_cluster_size: no cluster grows past this many records.
        blocking_keys: names of registered blocking keys to use (``None``: all).
        comparisons: names of registered comparisons to score with (``None``: the defaults).
        rules: names of deterministic match rules (``None``: all registered).
        vetoes: names of non-match rules that block a link whatever its score (``None``: all).
        u_sample_pairs: random record pairs used to estimate how often values agree by chance.
        em_iterations: at most this many EM iterations.
        em_tolerance: EM stops when no parameter moves more than this.
        tf_max_boost: most bits a rare agreeing value adds over an average one.
        seed: seed for the random pair sample (results are deterministic for a given input).
        workers: threads for rapidfuzz's batch string comparisons (``-1``: all cores).
        profile_pass: after a first clustering, compare candidate pairs still apart again
            with each record's missing fields filled from its cluster (`profiles`); off by
            default: +0.0007 F1 on the synthetic benchmark for ~20 % more time.
        cluster_tf: after a first clustering, count term frequencies once per cluster instead
            of once per record and score again (a person's duplicates no longer make their
            own values look common); only when the model is trained in the run.
        name_only_check: score links made on names alone (no e-mail, phone, address or
            birthday agrees) again with each side's missing fields filled from its cluster
            without those links, and drop those that the filled fields now compare (an
            e-mail, contact or birth date missing before) and that are no longer accepted
            (namesakes); on by default: +0.005 F1 at 1 M synthetic records (precision
            0.980 -> 0.994) for a few seconds.
    """

    default_region: str = "GB"
    threshold: float = 0.9
    review_threshold: float = 0.5
    max_block_size: int = 100
    max_cluster_size: int = 50
    blocking_keys: tuple[str, ...] | None = None
    comparisons: tuple[str, ...] | None = None
    rules: tuple[str, ...] | None = None
    vetoes: tuple[str, ...] | None = None
    u_sample_pairs: int = 200_000
    em_iterations: int = 100
    em_tolerance: float = 1e-5
    tf_max_boost: float = 6.0
    seed: int = 20240601
    workers: int = -1
    profile_pass: bool = False
    cluster_tf: bool = True
    name_only_check: bool = True
