"""Mailchimp campaigns and their e-mail activity reports, read per campaign.

``GET /3.0/campaigns`` (``count`` ≤ 1000, ``offset``, ``since_send_time``, ``before_send_time``,
``list_id``, ``status``, ``sort_field`` create_time|send_time, ``sort_dir``) and
``GET /3.0/reports/{campaign_id}/email-activity`` (``count`` ≤ 1000, ``offset``, ``since``),
``GET /3.0/reports/{campaign_id}/sent-to`` (``count`` ≤ 1000, ``offset``) and
``GET /3.0/reports/{campaign_id}/unsubscribed`` (``count`` ≤ 1000, ``offset``).
All derive from the same seeded activity as the members' activity feed
(``mailchimp_records.seeded_activity``): every audience sent its latest
``CAMPAIGNS_PER_LIST`` campaigns; a campaign's recipients are the members whose feed has its
``sent`` (its sent-to list, a bounce making the status ``hard`` or ``soft``); their opens,
clicks and bounces are its report, their ``unsub`` its unsubscribes (always the audience's
newest campaign). Built once per table version (a member write rebuilds it at the next report
request; ``prerender`` builds it at start-up).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from connectors.sandbox import mailchimp_records as records
from connectors.sandbox.mailchimp_http import int_arg, list_index, not_found, problem
from connectors.sandbox.paging import offset_window
from connectors.sandbox.routing import Request, Response, Router, json_response
from connectors.sandbox.times import iso_seconds_offset, parse_instant

if TYPE_CHECKING:
    from connectors.sandbox.app import Context
    from connectors.sandbox.world import World

router = Router()
_REPORT_ACTIONS = ("open", "click", "bounce")  # feed types a campaign report carries
_CAMPAIGN_SORTS = ("create_time", "send_time")


@dataclass
class Recipient:
    """One recipient of a campaign and its actions, as ``(at ms, activity item)``."""

    item: dict[str, Any]
    actions: list[tuple[int, dict[str, str]]]
    latest_second_ms: int = -1  # the newest action's whole second, for ``since``
    row: int = -1  # the member's row, for the merge fields sent-to shows

    def delivery_status(self) -> str:
        """Sent-to ``status``: ``sent``, or the bounce type (``hard``/``soft``) if it bounced."""
        bounces = [a["type"] for _, a in self.actions if a["action"] == "bounce"]
        if not bounces:
            return "sent"
        return "hard" if "hard" in bounces else bounces[0]

    def sent_to(self, member: dict[str, Any]) -> dict[str, Any]:
        """The sent-to item: the recipient, its delivery status and opens (``member``: its body)."""
        opens = [a["timestamp"] for _, a in self.actions if a["action"] == "open"]
        return {
            "email_id": self.item["email_id"],
            "email_address": self.item["email_address"],
            "merge_fields": member.get("merge_fields", {}),
            "vip": bool(member.get("vip", False)),
            "status": self.delivery_status(),
            "open_count": len(opens),
            "last_open": max(opens, default=""),
            "absplit_group": "",
            "gmt_offset": 0,
            "campaign_id": self.item["campaign_id"],
            "list_id": self.item["list_id"],
            "list_is_active": self.item["list_is_active"],
        }

    def body(self, since_ms: int | None) -> dict[str, Any] | None:
        """The report item, its actions strictly after ``since_ms`` (``None``: none left)."""
        kept = [a for at, a in self.actions if since_ms is None or at // 1000 * 1000 > since_ms]
        if since_ms is not None and not kept:
            return None
        return {**self.item, "activity": kept}


@dataclass
class Campaign:
    """A sent campaign of one audience and its recipients in member order."""

    list_index: int
    k: int
    recipients: list[Recipient] = field(default_factory=list)
    unsubscribes: list[dict[str, Any]] = field(default_factory=list)

    def count(self, action: str) -> int:
        """Recipients with at least one ``action``."""
        return sum(any(a["action"] == action for _, a in r.actions) for r in self.recipients)


def _ip(email_id: str) -> str:
    return f"81.{int(email_id[:2], 16)}.{int(email_id[2:4], 16)}.{int(email_id[4:6], 16)}"


def _action(at: int, kind: str, extra: dict[str, str], ip: str) -> dict[str, str]:
    """A report's action: bounces carry their type and no IP, clicks their URL."""
    stamp = iso_seconds_offset(at)
    if kind == "bounce":
        return {"action": "bounce", "type": extra["bounce_type"], "timestamp": stamp}
    action = {"action": kind, "timestamp": stamp, "ip": ip}
    if kind == "click":
        action["url"] = extra["link_clicked"]
    return action


def campaigns(world: World) -> dict[str, Campaign]:
    """Every sent campaign by id, with its report (cached until the members table changes)."""
    table = world.tables["mailchimp.members"]
    cached = world.caches.get("mailchimp.campaigns")
    if cached is not None and cached[0] == table.version:
        return dict(cached[1])
    built: dict[str, Campaign] = {
        records.campaign_id(world, index, k): Campaign(index, k)
        for index in range(len(records.LISTS))
        for k in range(records.CAMPAIGNS_PER_LIST)
    }
    lists = table.col("list")
    for row in range(len(table)):
        index = int(lists[row])
        email = records.member_email(world, row)
        email_id = records.subscriber_hash(email)
        by_k: dict[int, Recipient] = {}
        for at, kind, k, extra in sorted(records.seeded_activity(world, row)):
            if kind == "sent":
                by_k[k] = Recipient(
                    {
                        "campaign_id": records.campaign_id(world, index, k),
                        "list_id": records.list_id(world, index),
                        "list_is_active": True,
                        "email_id": email_id,
                        "email_address": email,
                    },
                    [],
                    row=row,
                )
            elif kind in _REPORT_ACTIONS:
                by_k[k].actions.append((at, _action(at, kind, extra, _ip(email_id))))
                by_k[k].latest_second_ms = max(by_k[k].latest_second_ms, at // 1000 * 1000)
            elif kind == "unsub":
                unsubscribe = {**by_k[k].item, "timestamp": iso_seconds_offset(at)}
                unsubscribe["reason"] = table.body(row).get("unsubscribe_reason", "")
                built[records.campaign_id(world, index, k)].unsubscribes.append(unsubscribe)
        for k, recipient in by_k.items():
            built[records.campaign_id(world, index, k)].recipients.append(recipient)
    world.caches["mailchimp.campaigns"] = (table.version, built)
    return dict(built)


def _campaign_json(world: World, campaign_id: str, campaign: Campaign) -> dict[str, Any]:
    sent = len(campaign.recipients)
    opens, clicks = campaign.count("open"), campaign.count("click")
    send_ms = records.campaign_send_ms(world, campaign.k)
    title = records.campaign_title(campaign.list_index, campaign.k)
    return {
        "id": campaign_id,
        "web_id": 9000 + campaign.list_index * 100 + campaign.k,
        "type": "regular",
        "create_time": iso_seconds_offset(send_ms - 86_400_000),
        "status": "sent",
        "emails_sent": sent,
        "send_time": iso_seconds_offset(send_ms),
        "content_type": "template",
        "recipients": {
            "list_id": records.list_id(world, campaign.list_index),
            "list_is_active": True,
            "list_name": records.LISTS[campaign.list_index][0],
            "segment_text": "",
            "recipient_count": sent,
        },
        "settings": {
            "subject_line": title,
            "title": title,
            "from_name": "Copper Kettle",
            "reply_to": "hello@copperkettle.example",
        },
        "tracking": {"opens": True, "html_clicks": True, "text_clicks": False},
        "report_summary": {
            "opens": opens,
            "unique_opens": opens,
            "open_rate": round(opens / sent, 4) if sent else 0,
            "clicks": clicks,
            "subscriber_clicks": clicks,
            "click_rate": round(clicks / sent, 4) if sent else 0,
        },
    }


def _instant_arg(request: Request, name: str) -> int | Response | None:
    """An ISO 8601 query argument in whole-second milliseconds, ``None`` or a 400 problem."""
    raw = request.arg(name)
    if not raw:
        return None
    try:
        return parse_instant(raw) // 1000 * 1000
    except ValueError:
        return problem(400, "Invalid Resource", f"{name} must be an ISO 8601 time, got {raw!r}.")


def _page_args(ctx: Context, request: Request) -> tuple[int, int] | Response:
    count = int_arg(request, "count", 10, ctx.config.page_limits.mailchimp_count)
    if isinstance(count, Response):
        return count
    offset = int_arg(request, "offset", 0)
    return offset if isinstance(offset, Response) else (count, offset)


def _selected_campaigns(
    ctx: Context, request: Request
) -> list[tuple[int, str, Campaign]] | Response:
    """``(send ms, id, campaign)`` of the campaigns the query selects, unsorted."""
    bounds = {n: _instant_arg(request, n) for n in ("since_send_time", "before_send_time")}
    for bound in bounds.values():
        if isinstance(bound, Response):
            return bound
    since, before = bounds["since_send_time"], bounds["before_send_time"]
    wanted_list = request.arg("list_id")
    status = request.arg("status")
    selected = []
    for campaign_id, campaign in campaigns(ctx.world).items():
        at = records.campaign_send_ms(ctx.world, campaign.k)
        if wanted_list and list_index(ctx, wanted_list) != campaign.list_index:
            continue
        if status not in (None, "", "sent"):
            continue
        if (isinstance(since, int) and at < since) or (isinstance(before, int) and at >= before):
            continue
        selected.append((at, campaign_id, campaign))
    return selected


@router.route("GET", "/3.0/campaigns")
def get_campaigns(ctx: Context, request: Request, params: dict[str, str]) -> Response:
    """Sent campaigns of every audience, offset-paged (no drafts or schedules here)."""
    page = _page_args(ctx, request)
    if isinstance(page, Response):
        return page
    sort_field = request.arg("sort_field") or "create_time"
    sort_dir = (request.arg("sort_dir") or "ASC").upper()
    if sort_field not in _CAMPAIGN_SORTS or sort_dir not in ("ASC", "DESC"):
        return problem(
            400,
            "Invalid Resource",
            f"sort_field must be one of {list(_CAMPAIGN_SORTS)}, sort_dir ASC or DESC.",
        )
    selected = _selected_campaigns(ctx, request)
    if isinstance(selected, Response):
        return selected
    selected.sort(key=lambda c: (c[0], c[1]), reverse=sort_dir == "DESC")
    start, stop = offset_window(len(selected), page[1], page[0], empty=request.empty_page)
    body = [_campaign_json(ctx.world, cid, c) for _, cid, c in selected[start:stop]]
    return json_response(200, {"campaigns": body, "total_items": len(selected)})


def _report(
    ctx: Context, request: Request, params: dict[str, str]
) -> tuple[Campaign, tuple[int, int]] | Response:
    """The campaign a report path names and the ``(count, offset)`` asked, or a problem."""
    campaign = campaigns(ctx.world).get(params["campaign_id"])
    if campaign is None:
        return not_found()
    page = _page_args(ctx, request)
    return page if isinstance(page, Response) else (campaign, page)


@router.route("GET", "/3.0/reports/{campaign_id}/email-activity")
def get_email_activity(ctx: Context, request: Request, params: dict[str, str]) -> Response:
    """Each recipient of a campaign with its opens, clicks and bounces, offset-paged.

    ``since`` keeps the actions strictly after it (whole seconds) and the recipients left with
    any; without it every recipient is listed, most with an empty ``activity``.
    """
    found = _report(ctx, request, params)
    if isinstance(found, Response):
        return found
    since = _instant_arg(request, "since")
    if isinstance(since, Response):
        return since
    campaign, (count, offset) = found
    recipients = campaign.recipients
    if since is not None:
        recipients = [r for r in recipients if r.latest_second_ms > since]
    start, stop = offset_window(len(recipients), offset, count, empty=request.empty_page)
    emails = [r.body(since) for r in recipients[start:stop]]
    return json_response(
        200,
        {"emails": emails, "campaign_id": params["campaign_id"], "total_items": len(recipients)},
    )


@router.route("GET", "/3.0/reports/{campaign_id}/sent-to")
def get_sent_to(ctx: Context, request: Request, params: dict[str, str]) -> Response:
    """Everyone a campaign was sent to, in member order, offset-paged.

    Mailchimp offers no time filter here: a sent campaign's recipients are fixed, only their
    ``status`` (a late bounce) and opens move.
    """
    found = _report(ctx, request, params)
    if isinstance(found, Response):
        return found
    campaign, (count, offset) = found
    members = ctx.world.tables["mailchimp.members"]
    recipients = campaign.recipients
    start, stop = offset_window(len(recipients), offset, count, empty=request.empty_page)
    sent_to = [r.sent_to(members.body(r.row)) for r in recipients[start:stop]]
    return json_response(
        200,
        {"sent_to": sent_to, "campaign_id": params["campaign_id"], "total_items": len(recipients)},
    )


@router.route("GET", "/3.0/reports/{campaign_id}/unsubscribed")
def get_unsubscribed(ctx: Context, request: Request, params: dict[str, str]) -> Response:
    """The members who unsubscribed through a campaign, offset-paged."""
    found = _report(ctx, request, params)
    if isinstance(found, Response):
        return found
    campaign, (count, offset) = found
    rows = campaign.unsubscribes
    start, stop = offset_window(len(rows), offset, count, empty=request.empty_page)
    unsubscribes = [dict(u) for u in rows[start:stop]]
    return json_response(
        200,
        {
            "unsubscribes": unsubscribes,
            "campaign_id": params["campaign_id"],
            "total_items": len(rows),
        },
    )
