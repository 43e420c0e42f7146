"""Master ids: deterministic from cluster content, or minted by a caller-supplied hook.

The standalone matcher derives a cluster's id from its smallest ``(source, source_id)``: the
same partition gives the same ids whatever the input order. A store-backed stage passes its own
`IdMinter` that keeps existing ids and mints new ones.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable

import numpy as np
import pandas as pd

__all__ = ["IdMinter", "content_ids", "master_id_for"]

IdMinter = Callable[[pd.DataFrame], pd.Series]
"""Mint master ids for clusters.

Receives the members, one row per record with columns ``cluster``, ``source``, ``source_id``
and ``row`` (its row in the input), sorted by ``(source, source_id)``; returns a Series indexed
by ``cluster`` holding each cluster's master id.
"""

_CROCKFORD = np.frombuffer(b"0123456789ABCDEFGHJKMNPQRSTVWXYZ", dtype=np.uint8)


def _master_ids(keys: Iterable[tuple[str, str]]) -> list[str]:
    """Hash ``(source, source_id)`` keys into ids, base-32 encoded as ULIDs print.

    A ULID's text is its 128 bits, after two zero bits, in 26 Crockford base-32 digits;
    encoding every digest at once with numpy takes a third of the time ULID objects take.
    """
    digests = b"".join(
        hashlib.blake2b(f"{source}\x1f{source_id}".encode(), digest_size=16).digest()
        for source, source_id in keys
    )
    bits = np.unpackbits(np.frombuffer(digests, dtype=np.uint8).reshape(-1, 16), axis=1)
    padded = np.concatenate([np.zeros((len(bits), 2), dtype=np.uint8), bits], axis=1)
    # Each group of five bits packed into the high end of a byte, shifted down: one digit.
    digits = np.packbits(padded.reshape(-1, 26, 5), axis=2)[:, :, 0] >> 3
    text = np.empty((len(bits), 28), dtype=np.uint8)
    text[:, :2] = np.frombuffer(b"m_", dtype=np.uint8)
    text[:, 2:] = _CROCKFORD[digits]
    result: list[str] = text.view("S28").ravel().astype("U28").tolist()
    return result


def master_id_for(source: str, source_id: str) -> str:
    """Return the content-derived master id of a cluster whose smallest member is given.

    The id is ``m_`` followed by a ULID-shaped (26 Crockford base-32 characters) hash.

    Example:
        >>> master_id_for("pos", "17") == master_id_for("pos", "17")
        True
    """
    return _master_ids([(source, source_id)])[0]


def content_ids(members: pd.DataFrame) -> pd.Series:
    """Default `IdMinter`: hash each cluster's smallest ``(source, source_id)``."""
    first = members.drop_duplicates("cluster", keep="first")
    ids = _master_ids(zip(first["source"], first["source_id"], strict=True))
    return pd.Series(ids, index=first["cluster"].to_numpy(), name="master_id")
