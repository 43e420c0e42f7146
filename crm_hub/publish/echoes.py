"""The echo ledger: what the hub wrote into a destination that one of its sources reads back.

A destination with ``source:`` (e.g. the Mailchimp audience the ``mailchimp`` source syncs)
sees the hub's own writes come back at the next sync. As each batch lands, the publish stage
keeps one ``publish_echoes`` row per person there: the source, the hash of the e-mail the
destination knows them by, the consent and the labels (tags) it wrote; the field values are
the destination's ``publish_state`` payload. The map stage (``crm_hub.mapping.echoes``) reads
both to tell an echo from a genuine edit. Removing a person (erase, merge, mirror) forgets them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, delete, select

from crm_hub.publish.payload import Outgoing
from crm_hub.store.erasures import value_hash
from crm_hub.store.schema import publish_echoes

__all__ = ["EchoLedger", "echo_ledger"]

_KEEPS = ("upsert", "left", "unsubscribe")  # actions after which the destination has the person


@dataclass(slots=True, frozen=True)
class EchoLedger:
    """Writes the echo rows of one destination read back by ``source``."""

    destination: str
    source: str
    channel: str
    tag_prefix: str

    def record(self, conn: Connection, confirmed: list[Outgoing], now: datetime) -> None:
        """Replace the rows of the people of ``confirmed`` by what the hub just wrote."""
        if not confirmed:
            return
        e = publish_echoes
        ids = [o.master_id for o in confirmed]
        mine = and_(e.c.destination == self.destination, e.c.master_id.in_(ids))
        labels: dict[str, set[str]] = {}
        for master_id, written in conn.execute(select(e.c.master_id, e.c.written).where(mine)):
            labels.setdefault(master_id, set()).update((written or {}).get("labels") or [])
        conn.execute(delete(e).where(mine))
        rows = [row for o in confirmed if (row := self._row(o, labels, now)) is not None]
        if rows:
            conn.execute(e.insert(), rows)

    def _row(
        self, item: Outgoing, labels: dict[str, set[str]], now: datetime
    ) -> dict[str, Any] | None:
        if item.action not in _KEEPS:
            return None  # erased, merged away or removed: nothing of theirs comes back
        email = (item.payload.get("fields") or {}).get("email") or item.record.get("email")
        if not isinstance(email, str) or not email.strip():
            return None
        record = item.record
        named = [*(record.get("segments") or []), *(record.get("segments_exited") or [])]
        written_labels = labels.get(item.master_id, set()) | {
            f"{self.tag_prefix}{name}" for name in named
        }
        written: dict[str, Any] = {"labels": sorted(written_labels)}
        if self.channel != "none":
            written["consent"] = {self.channel: item.action != "unsubscribe"}
        return {
            "source": self.source, "email_hash": value_hash(email), "destination": self.destination,
            "master_id": item.master_id, "written": written, "sent_at": now,
        }  # fmt: skip


def echo_ledger(name: str, config: Any) -> EchoLedger | None:
    """The ledger of destination ``name``, or None when no source reads it back."""
    if getattr(config, "source", None) is None:
        return None
    return EchoLedger(name, config.source, config.channel, getattr(config, "tag_prefix", ""))
