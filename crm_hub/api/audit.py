"""The audit log: one row per customer whose personal data a request read (or tried to).

Rows say who (token id, role, branch), what (action, path without the query string: a search
term is itself personal data), which customer and the answer's status. A search that returns
five customers writes five rows; a denied read writes one row with the id asked for, so probing
shows up too.
"""

from __future__ import annotations

from collections.abc import Iterable

from crm_hub.api.policy import Principal
from crm_hub.store import Store
from crm_hub.store.runs import utcnow
from crm_hub.store.schema import audit_log

__all__ = ["record_reads"]


def record_reads(
    store: Store,
    principal: Principal,
    *,
    action: str,
    path: str,
    status: int,
    master_ids: Iterable[str | None],
) -> None:
    """Write one audit row per master id (None: a read not about one customer)."""
    now = utcnow()
    rows = [
        {
            "occurred_at": now,
            "token_id": principal.token_id,
            "role": principal.role,
            "branch": principal.branch,
            "action": action,
            "path": path[:2000],
            "master_id": master_id,
            "status": status,
        }
        for master_id in dict.fromkeys(master_ids)
    ]
    if not rows:
        return
    with store.begin() as conn:
        conn.execute(audit_log.insert(), rows)
