"""Mailchimp records: two audiences and their members, as the Marketing API v3 writes them.

People sign themselves up: nicknames, a personal address mostly, sometimes the work one; a typo
in the domain ends as a ``cleaned`` (bounced) member. Unsubscribed members keep their reason.
Members are keyed by the MD5 of the lower-cased e-mail, which needs an e-mail → row index: it is
built on first use per audience and kept current by writes.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

from connectors.sandbox import ids, vocab
from connectors.sandbox.people import rng_for
from connectors.sandbox.times import iso_seconds_offset
from connectors.sandbox.variants import format_phone, pick_phone_style
from connectors.sandbox.world import MAILCHIMP_STATUSES

if TYPE_CHECKING:
    from connectors.sandbox.world import World

_SALT_MEMBER = 0x3C00
_FORM_PHONE_STYLES = (0.1, 0.1, 0.05, 0.3, 0.05, 0.0, 0.4)
LISTS = (
    ("Copper Kettle Friends", "Monthly news, new dishes and offers from all our kitchens."),
    ("Supper Club", "Invitations to tasting nights and chef's table evenings."),
)


def list_id(world: World, index: int) -> str:
    """Audience id (10 hex characters)."""
    return ids.hex_id(world.seed, "mailchimp.list", index, 10)


def list_index(world: World, text: str) -> int | None:
    """Audience index of a list id, or ``None``."""
    for i in range(len(LISTS)):
        if list_id(world, i) == text:
            return i
    return None


def subscriber_hash(email: str) -> str:
    """Mailchimp member id: MD5 hex of the lower-cased e-mail address."""
    return hashlib.md5(email.strip().lower().encode("utf-8")).hexdigest()  # noqa: S324 (vendor's scheme)


def seeded_email(world: World, row: int) -> str:
    """The e-mail a seeded member signed up with (cheap: no full rendering)."""
    table = world.tables["mailchimp.members"]
    person = world.person(table.get("person", row))
    rng = rng_for(world.seed, _SALT_MEMBER, row)
    email = person.work_email if person.work_email and rng.random() < 0.15 else person.email
    if MAILCHIMP_STATUSES[table.get("status", row)] == "cleaned":
        local, _, domain = email.partition("@")
        email = f"{local}@{vocab.DOMAIN_TYPOS.get(domain, domain + '.uk')}"
    return email


def member_email(world: World, row: int) -> str:
    """Current e-mail of a member row (override first)."""
    override = world.tables["mailchimp.members"].overrides.get(row)
    if override is not None:
        return str(override["email_address"])
    return seeded_email(world, row)


def render_member(world: World, row: int) -> dict[str, Any]:
    """Body of a seeded member (volatile fields are stamped by ``stamp_member``)."""
    table = world.tables["mailchimp.members"]
    person = world.person(table.get("person", row))
    created = table.get("created", row)
    rng = rng_for(world.seed, _SALT_MEMBER, row)
    rng.random()  # keep in step with seeded_email
    email = seeded_email(world, row)
    first = (
        rng.choice(person.nicknames) if person.nicknames and rng.random() < 0.4 else person.first
    )
    if rng.random() < 0.08:
        first = first.lower()
    merge: dict[str, Any] = {
        "FNAME": first,
        "LNAME": person.last if rng.random() < 0.93 else "",
        "ADDRESS": "",
        "PHONE": "",
        "BIRTHDAY": "",
    }
    if person.mobile and rng.random() < 0.4:
        merge["PHONE"] = format_phone(
            person.mobile.area, person.mobile.number, pick_phone_style(rng, _FORM_PHONE_STYLES)
        )
    if rng.random() < 0.3:
        merge["BIRTHDAY"] = f"{person.birth.month:02d}/{person.birth.day:02d}"
    if rng.random() < 0.2:
        address = person.address_at(created)
        merge["ADDRESS"] = {
            "addr1": address.line1,
            "addr2": "",
            "city": address.city,
            "state": "",
            "zip": address.postcode,
            "country": "GB",
        }
    tags = [
        {
            "id": 1000 + person.household.branch,
            "name": vocab.BRANCHES[person.household.branch].key.title(),
        }
    ]
    if rng.random() < 0.3:
        tags.append({"id": 2001, "name": "Birthday Club"})
    list_index_ = table.get("list", row)
    body: dict[str, Any] = {
        "id": subscriber_hash(email),
        "email_address": email,
        "unique_email_id": ids.hex_id(world.seed, "mailchimp.ueid", row, 10),
        "contact_id": ids.hex_id(world.seed, "mailchimp.contact", row, 32),
        "full_name": f"{merge['FNAME']} {merge['LNAME']}".strip(),
        "web_id": 100_000 + row,
        "email_type": "html",
        "merge_fields": merge,
        "stats": {
            "avg_open_rate": round(rng.random() * 0.6, 2),
            "avg_click_rate": round(rng.random() * 0.15, 2),
        },
        "ip_signup": "",
        "timestamp_signup": iso_seconds_offset(created),
        "ip_opt": f"81.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(256)}",
        "timestamp_opt": iso_seconds_offset(created),
        "member_rating": rng.randrange(1, 6),
        "language": "en",
        "vip": False,
        "email_client": rng.choice(["Gmail", "Apple Mail", "Outlook", ""]),
        "location": {
            "latitude": 0,
            "longitude": 0,
            "gmtoff": 0,
            "dstoff": 0,
            "country_code": "GB",
            "timezone": "Europe/London",
        },
        "source": rng.choice(
            ["Hosted Signup Form", "Hosted Signup Form", "API - Generic", "Admin Add", "Import"]
        ),
        "tags_count": len(tags),
        "tags": tags,
        "list_id": list_id(world, list_index_),
    }
    if MAILCHIMP_STATUSES[table.get("status", row)] == "unsubscribed":
        body["unsubscribe_reason"] = rng.choice(vocab.UNSUBSCRIBE_REASONS)
    return body


def stamp_member(world: World, row: int, body: dict[str, Any]) -> None:
    """Write ``status`` and ``last_changed`` from the columns (deleted rows read as archived)."""
    table = world.tables["mailchimp.members"]
    body["last_changed"] = iso_seconds_offset(table.get("updated", row))
    if table.get("deleted", row):
        body["status"] = "archived"
    else:
        body["status"] = MAILCHIMP_STATUSES[table.get("status", row)]


CAMPAIGNS_PER_LIST = 7  # a member has received 2..7 of the audience's latest campaigns
_CAMPAIGN_SERIES = ("Copper Kettle news", "Supper Club invitation")
_CAMPAIGN_EVERY_MS = 14 * 86_400_000


def campaign_id(world: World, list_index_: int, k: int) -> str:
    """Id of an audience's k-th latest campaign (k = 0 is the newest)."""
    return ids.hex_id(world.seed, "mailchimp.campaign", f"{list_index_}:{k}", 10)


def campaign_title(list_index_: int, k: int) -> str:
    """Title of an audience's k-th latest campaign."""
    return f"{_CAMPAIGN_SERIES[list_index_]} #{40 - k}"


def campaign_send_ms(world: World, k: int) -> int:
    """Nominal send time of the k-th latest campaign (every audience sends fortnightly)."""
    return world.anchor_ms - (k + 1) * _CAMPAIGN_EVERY_MS


def seeded_activity(world: World, row: int) -> list[tuple[int, str, int, dict[str, str]]]:
    """A member's activity as ``(at ms, type, campaign k, extra fields)``, in the order drawn.

    The one source of both the member activity feed and the campaign e-mail-activity reports,
    so the two always agree. Send times are per member (relative to its last change).
    """
    table = world.tables["mailchimp.members"]
    rng = rng_for(world.seed, _SALT_MEMBER ^ 0xA, row)
    status = MAILCHIMP_STATUSES[table.get("status", row)]
    updated = table.get("updated", row)
    events: list[tuple[int, str, int, dict[str, str]]] = []
    for k in range(rng.randrange(2, CAMPAIGNS_PER_LIST + 1)):
        at = updated - (k + 1) * _CAMPAIGN_EVERY_MS - rng.randrange(86_400_000)
        events.append((at, "sent", k, {}))
        if status == "cleaned" and k == 0:
            events.append((at + 60_000, "bounce", k, {"bounce_type": "hard"}))
        elif rng.random() < 0.45:
            events.append((at + 3_600_000, "open", k, {}))
            if rng.random() < 0.25:
                link = {"link_clicked": "https://copperkettle.example/menu"}
                events.append((at + 3_700_000, "click", k, link))
    if status == "unsubscribed":
        events.append((updated, "unsub", 0, {}))
    return events


def render_activity(world: World, row: int) -> list[dict[str, Any]]:
    """A member's recent e-mail activity, newest first (sent, open, click, bounce, unsub)."""
    list_index_ = world.tables["mailchimp.members"].get("list", row)
    events = [
        {
            "activity_type": kind,
            "created_at_timestamp": iso_seconds_offset(at),
            "campaign_id": campaign_id(world, list_index_, k),
            "campaign_title": campaign_title(list_index_, k),
            **extra,
        }
        for at, kind, k, extra in seeded_activity(world, row)
    ]
    events.sort(key=lambda e: e["created_at_timestamp"], reverse=True)
    return events


def email_index(world: World, list_index_: int) -> dict[str, int]:
    """Subscriber hash → row for one audience (built once, then kept current by writes)."""
    cache: dict[int, dict[str, int]] = world.caches.setdefault("mailchimp.email_index", {})
    index = cache.get(list_index_)
    if index is None:
        table = world.tables["mailchimp.members"]
        lists = table.col("list")
        index = {}
        for row in range(len(table)):
            if int(lists[row]) == list_index_:
                index[subscriber_hash(member_email(world, row))] = row
        cache[list_index_] = index
    return index
