"""The profile stage's watermark: which masters changed since the last run.

Stored in ``identity_state`` as ``profile_watermark``: the highest ``change_seq`` of master_links
and of masters seen, per source the highest ``raw_change_seq`` of source_customers seen (capped
at that source's map watermark, so a source mapped late is not skipped), the mapping hash of
each source (a re-mapped source is read again), and the survivorship file's digest.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import Connection, and_, func, select

from crm_hub.config.models import HubConfig
from crm_hub.store.runs import utcnow
from crm_hub.store.schema import (
    identity_state,
    map_watermarks,
    master_links,
    masters,
    source_customers,
)
from crm_hub.store.upsert import upsert

__all__ = ["Mark", "changed_masters", "current_mark", "load_mark", "save_mark"]

_STATE = "profile_watermark"


@dataclass(slots=True)
class Mark:
    """The stage's watermark, as stored in identity_state."""

    links: int = 0
    masters: int = 0
    customers: dict[str, int] | None = None
    mappings: dict[str, str] | None = None
    survivorship: str = ""

    def dump(self) -> dict[str, Any]:
        return asdict(self)


def load_mark(conn: Connection) -> Mark | None:
    value = conn.execute(
        select(identity_state.c.value).where(identity_state.c.name == _STATE)
    ).scalar_one_or_none()
    return None if value is None else Mark(**value)


def save_mark(conn: Connection, mark: Mark) -> None:
    upsert(conn, identity_state, [{"name": _STATE, "value": mark.dump(), "updated_at": utcnow()}],
           keys=["name"], update=["value", "updated_at"])  # fmt: skip


def _source_bounds(
    conn: Connection, config: HubConfig, old: Mark
) -> tuple[dict[str, tuple[int, int | None]], dict[str, str]]:
    """Per source: (seen up to, readable up to: the map watermark; None when unmapped)."""
    mapped = {s: (int(seq), h) for s, seq, h in conn.execute(
        select(map_watermarks.c.source, map_watermarks.c.change_seq,
               map_watermarks.c.mapping_hash))}  # fmt: skip
    seen, hashes = old.customers or {}, old.mappings or {}
    bounds: dict[str, tuple[int, int | None]] = {}
    for source in sorted({*config.sources, *mapped, *seen}):
        low = seen.get(source, 0)
        high, digest = mapped.get(source, (None, ""))
        if source in hashes and digest and hashes[source] != digest:
            low = 0  # the source is being mapped again from the start
        bounds[source] = (low, high)
    return bounds, {s: h for s, (_, h) in mapped.items()}


def changed_masters(
    conn: Connection, config: HubConfig, old: Mark, digest: str
) -> tuple[set[str], Mark]:
    """Masters whose links, row or member customers changed since ``old``; the new mark."""
    changed: set[str] = set()
    link, mast, cust = master_links.c, masters.c, source_customers.c
    new = Mark(old.links, old.masters, {}, {}, digest)
    for master_id, seq in conn.execute(
        select(link.master_id, link.change_seq).where(link.change_seq > old.links)
    ):
        changed.add(master_id)
        new.links = max(new.links, seq)
    for master_id, seq in conn.execute(
        select(mast.master_id, mast.change_seq).where(mast.change_seq > old.masters)
    ):
        changed.add(master_id)
        new.masters = max(new.masters, seq)
    bounds, new.mappings = _source_bounds(conn, config, old)
    assert new.customers is not None
    joined = source_customers.outerjoin(
        master_links, and_(link.source == cust.source, link.source_id == cust.source_id)
    )
    for source, (low, high) in bounds.items():
        query = (
            select(link.master_id, cust.raw_change_seq)
            .select_from(joined)
            .where(cust.source == source, cust.raw_change_seq > low)
        )
        if high is not None:
            query = query.where(cust.raw_change_seq <= high)
        top = low
        for master_id, seq in conn.execute(query):
            if master_id is not None:
                changed.add(master_id)
            top = max(top, seq)
        new.customers[source] = max(low, high) if high is not None else top
    return changed, new


def current_mark(conn: Connection, config: HubConfig, digest: str) -> Mark:
    """The mark after reading everything there is now (for a full run)."""
    link, mast, cust = master_links.c, masters.c, source_customers.c
    bounds, hashes = _source_bounds(conn, config, Mark())
    customers = {}
    for source, (_, high) in bounds.items():
        if high is None:
            top = conn.execute(
                select(func.max(cust.raw_change_seq)).where(cust.source == source)
            ).scalar()
            high = int(top or 0)
        customers[source] = high
    return Mark(
        int(conn.execute(select(func.max(link.change_seq))).scalar() or 0),
        int(conn.execute(select(func.max(mast.change_seq))).scalar() or 0),
        customers,
        hashes,
        digest,
    )
