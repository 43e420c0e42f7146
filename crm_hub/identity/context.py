"""Comparison registry and `PairContext`, the candidate pairs every comparison reads.

A comparison is a function of a `PairContext` returning one ``int8`` level per pair: ``-1``
when either side lacks the data (no evidence either way), ``0`` for a clear disagreement, and
higher values for closer agreement. Comparisons are registered by name
(`register_comparison`) with a label per level.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from rapidfuzz import process
from rapidfuzz.distance import JaroWinkler

from crm_hub.identity.arrays import distinct_pairs
from crm_hub.identity.records import Prepared
from crm_hub.identity.settings import MatchSettings

__all__ = [
    "Comparison",
    "Levels",
    "PairContext",
    "comparison",
    "comparison_names",
    "register_comparison",
]

Levels = np.ndarray


@dataclass(frozen=True)
class Comparison:
    """A registered comparison.

    Attributes:
        name: the registry name.
        labels: one label per level, ``labels[0]`` for level 0 (disagree) upwards.
        function: computes levels for a `PairContext`.
        tf_fields: for a level, the term-frequency field whose rarity adjusts its weight.
        default: whether it is part of the default model.
        prior_m: typical P(level | match), used where data are too few to learn from.
        prior_u: typical P(level | random pair), blended into small samples.
    """

    name: str
    labels: tuple[str, ...]
    function: Callable[[PairContext], Levels]
    tf_fields: dict[int, str] = field(default_factory=dict)
    default: bool = True
    prior_m: tuple[float, ...] = ()
    prior_u: tuple[float, ...] = ()

    @property
    def n_levels(self) -> int:
        """Number of levels (excluding the null level ``-1``)."""
        return len(self.labels)


_COMPARISONS: dict[str, Comparison] = {}


def register_comparison(
    name: str,
    labels: tuple[str, ...],
    *,
    tf_fields: dict[int, str] | None = None,
    default: bool = True,
    prior_m: tuple[float, ...] = (),
    prior_u: tuple[float, ...] = (),
) -> Callable[[Callable[[PairContext], Levels]], Callable[[PairContext], Levels]]:
    """Register a comparison function under ``name``.

    Args:
        name: registry name, used in settings and in link explanations.
        labels: a label per level from 0 (disagree) to the closest agreement.
        tf_fields: levels whose weight is adjusted by the rarity of the agreeing value.
        default: include it in the default model.
        prior_m: typical P(level | match) per level (default: rising with the level).
        prior_u: typical P(level | random pair) per level (default: falling with the level).

    Example:
        >>> @register_comparison("city", ("different", "same"), default=False)
        ... def _city(ctx):
        ...     return ctx.equal_codes("city_code")
    """

    def add(function: Callable[[PairContext], Levels]) -> Callable[[PairContext], Levels]:
        k = len(labels)
        m = prior_m or tuple(float(x) for x in 2.0 ** np.arange(k) / (2.0**k - 1))
        u = prior_u or tuple(float(x) for x in 2.0 ** -np.arange(k) / (2 - 2.0 ** (1 - k)))
        if len(m) != k or len(u) != k:
            raise ValueError(f"comparison {name!r}: prior_m and prior_u need {k} values")
        _COMPARISONS[name] = Comparison(
            name, labels, function, dict(tf_fields or {}), default, tuple(m), tuple(u)
        )
        return function

    return add


def comparison_names(*, defaults_only: bool = True) -> tuple[str, ...]:
    """Return the registered comparison names (by default only those in the default model)."""
    return tuple(n for n, c in _COMPARISONS.items() if c.default or not defaults_only)


def comparison(name: str) -> Comparison:
    """Return a registered comparison by name."""
    return _COMPARISONS[name]


def _vocabulary(*arrays: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
    """Factorise several string arrays into one code space; return codes and the strings."""
    joined = np.concatenate(arrays)
    present = np.array([isinstance(v, str) for v in joined], dtype=bool)
    inverse, uniques = pd.factorize(joined[present])
    codes = np.full(len(joined), -1, dtype=np.int32)
    codes[present] = inverse.astype(np.int32)
    out, start = [], 0
    for array in arrays:
        out.append(codes[start : start + len(array)])
        start += len(array)
    return out, np.asarray(uniques, dtype=object)


@dataclass
class PairContext:
    """Candidate pairs plus the prepared records, with shared intermediate results cached.

    Attributes:
        prepared: the records.
        left: canonical index of each pair's first record.
        right: canonical index of each pair's second record.
        settings: the match settings.
    """

    prepared: Prepared
    left: np.ndarray
    right: np.ndarray
    settings: MatchSettings = field(default_factory=MatchSettings)
    cache: dict[str, object] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.left)

    def codes(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """Return a code field of `Prepared` gathered for the left and right records."""
        values: np.ndarray = getattr(self.prepared, name)
        return values[self.left], values[self.right]

    def equal_codes(self, name: str) -> Levels:
        """Level 1 where both records have the same value, 0 where they differ, -1 if missing."""
        a, b = self.codes(name)
        out = (a == b).astype(np.int8)
        out[(a < 0) | (b < 0)] = -1
        result: np.ndarray = out
        return result

    def vocabulary(self, key: str, *fields: str) -> tuple[list[np.ndarray], np.ndarray]:
        """Return (cached) codes of string fields in one shared code space, and the strings."""
        cache_key = f"vocab:{key}"
        if cache_key not in self.cache:
            self.cache[cache_key] = _vocabulary(*(getattr(self.prepared, f) for f in fields))
        found: tuple[list[np.ndarray], np.ndarray] = self.cache[cache_key]  # type: ignore[assignment]
        return found

    def similarity(
        self, codes_left: np.ndarray, codes_right: np.ndarray, strings: np.ndarray
    ) -> np.ndarray:
        """Jaro-Winkler similarity of per-pair string codes (one code space); NaN if missing.

        Each distinct pair of values is scored once, with rapidfuzz's batch ``cpdist``.
        """
        out = np.full(len(codes_left), np.nan, dtype=np.float32)
        present = (codes_left >= 0) & (codes_right >= 0)
        same = present & (codes_left == codes_right)
        out[same] = 1.0
        todo = np.flatnonzero(present & ~same)
        if len(todo):
            low, high, inverse = distinct_pairs(codes_left[todo], codes_right[todo])
            scores = process.cpdist(
                strings[low],
                strings[high],
                scorer=JaroWinkler.normalized_similarity,
                workers=self.settings.workers,
            )
            out[todo] = np.asarray(scores, dtype=np.float32)[inverse]
        return out
