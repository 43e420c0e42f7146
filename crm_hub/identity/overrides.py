"""Manual overrides: pairs a person has declared the same (must-link) or different (cannot-link).

Overrides always win over rules and scores. A cannot-link keeps the two records' clusters
apart; a must-link joins them even across a veto. Overrides naming records absent from the
input are ignored (the store may hold overrides for records not in this batch).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from crm_hub.identity.records import Prepared

__all__ = ["Overrides", "RecordKey"]

RecordKey = tuple[str, str]
"""A record's identity: ``(source, source_id)``."""


@dataclass(frozen=True)
class Overrides:
    """Pairs of records declared the same person (must-link) or different (cannot-link).

    Example:
        >>> Overrides(cannot_link=((("pos", "17"), ("forms", "a-3")),))
        Overrides(must_link=(), cannot_link=((('pos', '17'), ('forms', 'a-3')),))
    """

    must_link: tuple[tuple[RecordKey, RecordKey], ...] = ()
    cannot_link: tuple[tuple[RecordKey, RecordKey], ...] = ()

    @classmethod
    def from_pairs(
        cls,
        must_link: Iterable[tuple[RecordKey, RecordKey]] = (),
        cannot_link: Iterable[tuple[RecordKey, RecordKey]] = (),
    ) -> Overrides:
        """Build overrides from any iterables of record-key pairs."""

        def norm(
            pairs: Iterable[tuple[RecordKey, RecordKey]],
        ) -> tuple[tuple[RecordKey, RecordKey], ...]:
            return tuple(((str(a[0]), str(a[1])), (str(b[0]), str(b[1]))) for a, b in pairs)

        return cls(norm(must_link), norm(cannot_link))

    def indices(self, prepared: Prepared) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Return ``(must_left, must_right, cannot_left, cannot_right)`` canonical indices."""
        position = {prepared.key(i): i for i in _mentioned(self, prepared)}

        def arrays(pairs: tuple[tuple[RecordKey, RecordKey], ...]) -> tuple[np.ndarray, np.ndarray]:
            found = [
                (position[a], position[b])
                for a, b in pairs
                if a in position and b in position and a != b
            ]
            if not found:
                return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
            pairs_array = np.array(sorted({(min(p), max(p)) for p in found}), dtype=np.int64)
            return pairs_array[:, 0], pairs_array[:, 1]

        must_left, must_right = arrays(self.must_link)
        cannot_left, cannot_right = arrays(self.cannot_link)
        return must_left, must_right, cannot_left, cannot_right

    def __bool__(self) -> bool:
        return bool(self.must_link or self.cannot_link)


def _mentioned(overrides: Overrides, prepared: Prepared) -> list[int]:
    wanted = {key for pair in overrides.must_link + overrides.cannot_link for key in pair}
    if not wanted:
        return []
    sources = {source for source, _ in wanted}
    hits = np.flatnonzero(np.isin(prepared.source, list(sources)))
    return [int(i) for i in hits if prepared.key(int(i)) in wanted]
