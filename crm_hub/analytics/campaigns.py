"""Campaign analysis: who each e-mail campaign or web-form UTM tag reached, who engaged, who
placed a first order within the attribution window, the revenue and the cost per acquisition.

Attribution is any-touch: a first order counts for every campaign that reached the person in the
``attribution_days`` before it. Revenue is what converted people spent within that window.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Mapping
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection

from crm_hub.analytics._inputs import first_orders, form_responses, orders_of, touches
from crm_hub.config.models import CampaignConfig

__all__ = ["ENGAGED_KINDS", "NOT_REACHED_KINDS", "UTM_ATTRIBUTES", "campaign_rows"]

# E-mail event kinds: a bounce never reached the person, even when a "sent" of the same campaign
# was recorded too (a recipient list read before the bounce came in); a click is engagement.
NOT_REACHED_KINDS = frozenset({"bounced"})
ENGAGED_KINDS = frozenset({"clicked"})
# Form answers naming the campaign, first found wins (Typeform hidden field "source" maps to
# attributes.utm_source in the vendor mapping).
UTM_ATTRIBUTES = ("utm_campaign", "utm_source")

_CENT = Decimal("0.01")


def _tag(attributes: Mapping[str, Any]) -> str | None:
    for key in UTM_ATTRIBUTES:
        value = attributes.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()[:255]
    return None


def campaign_rows(
    conn: Connection,
    costs: Mapping[str, CampaignConfig],
    form_sources: Collection[str],
    *,
    attribution_days: int,
) -> list[dict[str, Any]]:
    """One row per (channel, campaign id), in the shape of ``report_campaigns``."""
    reached: dict[tuple[str, str], dict[str, datetime]] = defaultdict(dict)
    engaged: dict[tuple[str, str], set[str]] = defaultdict(set)
    email_touches = touches(conn)
    not_reached = {(m, c) for m, c, kind in email_touches if kind in NOT_REACHED_KINDS}
    for (master_id, campaign_id, kind), at in email_touches.items():
        if (master_id, campaign_id) in not_reached:
            continue
        people = reached["email", campaign_id]
        if master_id not in people or at < people[master_id]:
            people[master_id] = at
        if kind in ENGAGED_KINDS:
            engaged["email", campaign_id].add(master_id)
    for response in form_responses(conn, form_sources):  # oldest first: the first touch stays
        tag = _tag(response.attributes)
        if tag is not None:
            reached["form", tag].setdefault(response.master_id, response.at)
            engaged["form", tag].add(response.master_id)

    window = timedelta(days=attribution_days)
    firsts = first_orders(conn)
    converted: dict[tuple[str, str], dict[str, datetime]] = {}
    for key, people in reached.items():
        converted[key] = {
            m: at
            for m, at in people.items()
            if m in firsts and at <= firsts[m].placed_at <= at + window
        }
    history = orders_of(conn, {m for people in converted.values() for m in people})

    rows = []
    for (channel, campaign_id), people in sorted(reached.items()):
        revenue: dict[str, Decimal] = defaultdict(Decimal)
        for master_id, at in converted[channel, campaign_id].items():
            for order in history.get(master_id, []):
                if at <= order.placed_at <= at + window and order.total is not None:
                    revenue[order.currency or "XXX"] += order.total
        revenue = {c: v.quantize(_CENT) for c, v in revenue.items()}
        cost = costs.get(campaign_id)
        currency = cost.currency if cost else max(revenue, key=revenue.__getitem__, default=None)
        count = len(converted[channel, campaign_id])
        rows.append(
            {
                "channel": channel,
                "campaign_id": campaign_id,
                "reached": len(people),
                "engaged": len(engaged[channel, campaign_id]),
                "converted": count,
                "conversion_rate": rate(count, len(people)),
                "revenue": revenue.get(currency, Decimal(0)) if currency else None,
                "currency": currency,
                "revenue_by_currency": {c: str(v) for c, v in sorted(revenue.items())} or None,
                "cost": cost.cost if cost else None,
                "cost_currency": cost.currency if cost else None,
                "cost_per_acquisition": (cost.cost / count).quantize(_CENT)
                if cost and count
                else None,
                "attribution_days": attribution_days,
                "first_touch_at": min(people.values()),
                "last_touch_at": max(people.values()),
            }
        )
    return rows


def rate(part: int, whole: int) -> float | None:
    """``part / whole`` rounded to 4 places; None when nothing to divide by."""
    return round(part / whole, 4) if whole else None
