"""A tiny identity world: source customers, their links and masters, written directly (the
resolve stage is not needed to test the profile stage)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update

from crm_hub.config.models import HubConfig
from crm_hub.profile import ProfileResult, build_profiles
from crm_hub.store import Store
from crm_hub.store.raw import next_change_seq
from crm_hub.store.schema import master_links, masters, profiles, source_customers
from crm_hub.store.upsert import upsert

SOURCES = ("pos", "web", "news")


def day(n: int) -> datetime:
    """A distinct, ordered moment: day n of 2025."""
    return datetime(2025, 1, 1, tzinfo=UTC).replace(day=1 + n % 28, month=1 + n // 28)


def mid(n: int) -> str:
    """A master id: m_ + 26 characters."""
    return f"m_{n:026d}"


class World:
    """Writes canonical customers, links and masters; runs the stage; reads profiles."""

    def __init__(self, store: Store, config: HubConfig) -> None:
        self.store, self.config = store, config

    def customer(
        self, source: str, source_id: str, master: str | None = None, **fields: Any
    ) -> None:
        """Upsert a source customer (and link it to ``master`` when given)."""
        with self.store.begin() as conn:
            seq = next_change_seq(conn)
            row: dict[str, Any] = {c.name: None for c in source_customers.columns if c.name != "id"}
            row.update(source=source, source_id=source_id, deleted=False, stream="customers",
                       raw_id=1, raw_change_seq=seq, mapped_at=day(0), run_id=None)  # fmt: skip
            if "email" in fields and "emails" not in fields and fields["email"]:
                fields["emails"] = [{"email": fields["email"], "match_key": None, "flag": None}]
            row.update(fields)
            keys = ["source", "source_id"]
            upsert(conn, source_customers, [row], keys=keys,
                   update=[k for k in row if k not in keys])  # fmt: skip
        if master is not None:
            self.link(source, source_id, master)

    def link(self, source: str, source_id: str, master: str) -> None:
        """Link a customer to a master (created active when new, member_count refreshed)."""
        with self.store.begin() as conn:
            seq, now = next_change_seq(conn), day(0)
            upsert(conn, master_links, [{"source": source, "source_id": source_id,
                   "master_id": master, "reason": "single", "linked_at": now,
                   "change_seq": seq}], keys=["source", "source_id"],
                   update=["master_id", "change_seq"])  # fmt: skip
            upsert(conn, masters, [{"master_id": master, "status": "active", "merged_into": None,
                   "member_count": 1, "created_at": now, "updated_at": now,
                   "change_seq": seq}], keys=["master_id"],
                   update=["status", "change_seq"])  # fmt: skip

    def merge(self, loser: str, into: str) -> None:
        """Mark ``loser`` merged into ``into`` and move its links, as resolve would."""
        with self.store.begin() as conn:
            seq = next_change_seq(conn)
            conn.execute(update(master_links).where(master_links.c.master_id == loser)
                         .values(master_id=into, change_seq=seq))  # fmt: skip
            conn.execute(update(masters).where(masters.c.master_id == loser)
                         .values(status="merged", merged_into=into, change_seq=seq))  # fmt: skip

    def run(self, **kwargs: Any) -> ProfileResult:
        return build_profiles(self.store, self.config, **kwargs)

    def profile(self, master: str) -> dict[str, Any] | None:
        with self.store.read() as conn:
            row = conn.execute(select(profiles).where(profiles.c.master_id == master)).first()
        return None if row is None else dict(row._mapping)

    def golden(self, master: str) -> dict[str, Any]:
        """Run the stage and return the master's profile (which must exist)."""
        self.run()
        found = self.profile(master)
        assert found is not None, f"no profile for {master}"
        return found
