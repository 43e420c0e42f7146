"""Master ids: deterministic from cluster content, or minted by a caller-supplied hook.

The standalone matcher derives a cluster's id from its smallest ``(source, source_id)``: the
same partition gives the same ids whatever the input order. A store-backed stage passes its own
`IdMinter` that keeps existing ids and mints new ones.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import pandas as pd
from ulid import ULID

__all__ = ["IdMinter", "content_ids", "master_id_for"]

IdMinter = Callable[[pd.DataFrame], pd.Series]
"""Mint master ids for clusters.

Receives the members, one row per record with columns ``cluster``, ``source``, ``source_id``
and ``row`` (its row in the input), sorted by ``(source, source_id)``; returns a Series indexed
by ``cluster`` holding each cluster's master id.
"""


def master_id_for(source: str, source_id: str) -> str:
    """Return the content-derived master id of a cluster whose smallest member is given.

    The id is ``m_`` followed by a ULID-shaped (26 Crockford base-32 characters) hash.

    Example:
        >>> master_id_for("pos", "17") == master_id_for("pos", "17")
        True
    """
    digest = hashlib.blake2b(f"{source}\x1f{source_id}".encode(), digest_size=16).digest()
    return f"m_{ULID.from_bytes(digest)}"


def content_ids(members: pd.DataFrame) -> pd.Series:
    """Default `IdMinter`: hash each cluster's smallest ``(source, source_id)``."""
    first = members.drop_duplicates("cluster", keep="first")
    ids = [master_id_for(s, i) for s, i in zip(first["source"], first["source_id"], strict=True)]
    return pd.Series(ids, index=first["cluster"].to_numpy(), name="master_id")
