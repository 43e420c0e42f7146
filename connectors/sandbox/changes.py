"""What changed since an instant: the sandbox's own count of the records a sync should read.

``GET /_sandbox/changes?since=<epoch ms>`` answers, per table, the rows stamped at or after
``since`` (changed, added or deleted: every write stamps ``updated``; QuickBooks' deleted
invoices and payments also on their own), and for Mailchimp the
records its derived streams hold for those members: their tag rows, the opens, clicks and
bounces of their campaign reports, their unsubscribes, and the recipients of campaigns sent
since (the sandbox derives a member's activity from its last change, so a changed member's
activity is new too). A benchmark holds an incremental read against these figures.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from connectors.sandbox import mailchimp_records, mailchimp_reports

if TYPE_CHECKING:
    from connectors.sandbox.world import World

_REPORT_ACTIONS = ("open", "click", "bounce")


def changed_rows(world: World, table: str, since_ms: int) -> np.ndarray:
    """Rows of ``table`` stamped at or after ``since_ms``."""
    return np.flatnonzero(world.tables[table].col("updated") >= since_ms)


def changes_since(world: World, since_ms: int) -> dict[str, int]:
    """Records changed at or after ``since_ms``, by table (and Mailchimp's derived streams)."""
    counts = {name: len(changed_rows(world, name, since_ms)) for name in world.tables}
    counts.update(_mailchimp_derived(world, since_ms))
    for table, stream in (("invoices", "deleted_invoices"), ("payments", "deleted_payments")):
        rows = changed_rows(world, f"quickbooks.{table}", since_ms)
        deleted = world.tables[f"quickbooks.{table}"].col("deleted")[rows]
        counts[f"quickbooks.{stream}"] = int(np.count_nonzero(deleted))
    return counts


def _mailchimp_derived(world: World, since_ms: int) -> dict[str, int]:
    members = world.tables["mailchimp.members"]
    tags = actions = unsubscribes = 0
    for row in (int(r) for r in changed_rows(world, "mailchimp.members", since_ms)):
        tags += len(members.body(row).get("tags") or [])
        events = mailchimp_records.seeded_activity(world, row)
        actions += sum(kind in _REPORT_ACTIONS for _, kind, _, _ in events)
        unsubscribes += sum(kind == "unsub" for _, kind, _, _ in events)
    recipients = sum(
        len(campaign.recipients)
        for campaign in mailchimp_reports.campaigns(world).values()
        if mailchimp_records.campaign_send_ms(world, campaign.k) >= since_ms
    )
    return {
        "mailchimp.member_tags": tags,
        "mailchimp.email_activity": actions,
        "mailchimp.unsubscribes": unsubscribes,
        "mailchimp.sent_to": recipients,
    }


__all__ = ["changed_rows", "changes_since"]
