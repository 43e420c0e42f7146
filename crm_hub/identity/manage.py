"""What people do to identities: find a person, override the matcher, decide review pairs, explain.

Overrides are rows in ``identity_overrides`` between two source records; the next resolve run
applies them (they always win). A person is named by a master id (``m_...``, merged ids follow
to the survivor), a record (``SOURCE:SOURCE_ID``), an e-mail address or a phone number.
"""

from __future__ import annotations

from collections.abc import Iterable
from itertools import product
from typing import Any

from sqlalchemy import ColumnElement, Connection, delete, func, select, update

from crm_hub.errors import ConfigError
from crm_hub.identity.overrides import RecordKey
from crm_hub.normalize.email import normalize_email
from crm_hub.normalize.phone import normalize_phone
from crm_hub.store.runs import utcnow
from crm_hub.store.schema import (
    identity_overrides,
    master_events,
    master_links,
    masters,
    profiles,
    review_queue,
    source_customers,
)
from crm_hub.store.upsert import upsert

__all__ = [
    "add_overrides",
    "decide_review",
    "explain",
    "find_masters",
    "list_overrides",
    "list_review",
    "members",
    "merge",
    "never",
    "remove_override",
    "split",
]

_CUSTOMER_FIELDS = ("full_name", "first_name", "last_name", "email", "phone", "birth_year",
                    "birth_month", "birth_day", "address_line1", "city", "postcode", "country",
                    "branch", "updated_at")  # fmt: skip


def _survivor(conn: Connection, master_id: str) -> str | None:
    """Follow merged ids to the master that holds the person now."""
    seen: set[str] = set()
    current: str | None = master_id
    while current is not None and current not in seen:
        seen.add(current)
        row = conn.execute(
            select(masters.c.status, masters.c.merged_into).where(masters.c.master_id == current)
        ).one_or_none()
        if row is None:
            return None
        if row.status != "merged":
            return current
        current = row.merged_into
    return None


def find_masters(conn: Connection, person: str, *, region: str = "GB") -> list[str]:
    """Master ids a person reference names (several when an e-mail or phone is shared)."""
    text = person.strip()
    if text.startswith("m_"):
        found = _survivor(conn, text)
        return [found] if found else []
    links = master_links.c
    record = _record_key(conn, text)
    match: ColumnElement[bool]
    if record is not None:
        match = (source_customers.c.source == record[0]) & (
            source_customers.c.source_id == record[1]
        )
    elif "@" in text:
        address = normalize_email(text).email or text.lower()
        match = func.lower(source_customers.c.email) == address.lower()
    else:
        e164 = normalize_phone(text, region).e164
        if e164 is None:
            raise ConfigError(
                f"{person!r} is not a master id (m_...), a record (SOURCE:ID), an e-mail "
                "address or a phone number"
            )
        match = source_customers.c.phone == e164
    rows = conn.execute(
        select(links.master_id)
        .join(
            source_customers,
            (source_customers.c.source == links.source)
            & (source_customers.c.source_id == links.source_id),
        )  # fmt: skip
        .where(match)
        .distinct()
        .order_by(links.master_id)
    )
    return [row.master_id for row in rows]


def members(conn: Connection, master_id: str) -> list[RecordKey]:
    """The source records of a master, in key order."""
    rows = conn.execute(
        select(master_links.c.source, master_links.c.source_id)
        .where(master_links.c.master_id == master_id)
        .order_by(master_links.c.source, master_links.c.source_id)
    )
    return [(row.source, row.source_id) for row in rows]


def _record_key(conn: Connection, text: str) -> RecordKey | None:
    """``SOURCE:SOURCE_ID`` when that source customer exists, else None."""
    source, sep, source_id = text.partition(":")
    if not sep or not source or not source_id:
        return None
    c = source_customers.c
    found = conn.execute(
        select(func.count()).where((c.source == source) & (c.source_id == source_id))
    ).scalar_one()
    return (source, source_id) if found else None


def _records_of(conn: Connection, person: str) -> list[RecordKey]:
    """The records a reference names: one record, or every record of the master(s)."""
    record = _record_key(conn, person.strip())
    if record is not None:
        return [record]
    found = find_masters(conn, person)
    if len(found) != 1:
        what = "nobody" if not found else f"{len(found)} people ({', '.join(found)})"
        raise ConfigError(f"{person!r} names {what}; name one master id or record")
    return members(conn, found[0])


def add_overrides(
    conn: Connection,
    kind: str,
    pairs: Iterable[tuple[RecordKey, RecordKey]],
    *,
    origin: str,
    note: str | None = None,
    by: str | None = None,
) -> int:
    """Store overrides (pairs in key order, repeats ignored; an opposite override is replaced)."""
    now = utcnow()
    rows = []
    for a, b in pairs:
        if a == b:
            continue
        left, right = sorted((a, b))
        rows.append({"kind": kind, "left_source": left[0], "left_source_id": left[1],
                     "right_source": right[0], "right_source_id": right[1], "origin": origin,
                     "note": note, "created_by": by, "created_at": now})  # fmt: skip
    opposite = "cannot_link" if kind == "must_link" else "must_link"
    o = identity_overrides.c
    for row in rows:
        conn.execute(delete(identity_overrides).where(
            (o.kind == opposite) & (o.left_source == row["left_source"])
            & (o.left_source_id == row["left_source_id"]) & (o.right_source == row["right_source"])
            & (o.right_source_id == row["right_source_id"])))  # fmt: skip
    if rows:
        upsert(conn, identity_overrides, rows,
               keys=["kind", "left_source", "left_source_id", "right_source", "right_source_id"],
               update=["note", "origin", "created_by"])  # fmt: skip
    return len(rows)


def merge(conn: Connection, a: str, b: str, *, note: str | None = None) -> int:
    """Declare two people one: a must-link between one record of each."""
    left, right = _records_of(conn, a), _records_of(conn, b)
    return add_overrides(conn, "must_link", [(left[0], right[0])], origin="cli", note=note)


def never(conn: Connection, a: str, b: str, *, note: str | None = None) -> int:
    """Declare two people different: a cannot-link between every record of one and the other."""
    left, right = _records_of(conn, a), _records_of(conn, b)
    if set(left) & set(right):
        raise ConfigError(f"{a!r} and {b!r} share a record; use `identity split` instead")
    return add_overrides(conn, "cannot_link", product(left, right), origin="cli", note=note)


def split(
    conn: Connection, master: str, records: list[RecordKey], *, note: str | None = None
) -> int:
    """Take ``records`` out of a master into a person of their own."""
    found = find_masters(conn, master)
    if len(found) != 1:
        raise ConfigError(f"{master!r} names {len(found)} masters; name one master id")
    current = members(conn, found[0])
    unknown = [f"{s}:{i}" for s, i in records if (s, i) not in current]
    if unknown:
        raise ConfigError(f"{', '.join(unknown)} not in master {found[0]}; see `crm-hub explain`")
    rest = [key for key in current if key not in records]
    if not rest:
        raise ConfigError("a split must leave at least one record in the master")
    count = add_overrides(conn, "cannot_link", product(records, rest), origin="split", note=note)
    together = [(records[0], other) for other in records[1:]]
    return count + add_overrides(conn, "must_link", together, origin="split", note=note)


def list_overrides(conn: Connection) -> list[dict[str, Any]]:
    """Every override, oldest first."""
    rows = conn.execute(select(identity_overrides).order_by(identity_overrides.c.id))
    return [dict(row._mapping) for row in rows]


def remove_override(conn: Connection, override_id: int) -> None:
    """Delete one override; the next resolve no longer applies it."""
    gone = conn.execute(delete(identity_overrides).where(identity_overrides.c.id == override_id))
    if not gone.rowcount:
        raise ConfigError(f"no override with id {override_id}; see `crm-hub identity overrides`")


def list_review(conn: Connection, *, status: str = "open", limit: int = 50) -> list[dict[str, Any]]:
    """Review pairs, most likely first, with both records' key fields."""
    q = review_queue.c
    rows = conn.execute(
        select(review_queue).where(q.status == status)
        .order_by(q.probability.desc(), q.id).limit(limit)
    ).all()  # fmt: skip
    out = []
    for row in rows:
        item = dict(row._mapping)
        item["left"] = _customer(conn, (row.left_source, row.left_source_id))
        item["right"] = _customer(conn, (row.right_source, row.right_source_id))
        out.append(item)
    return out


def decide_review(conn: Connection, review_id: int, *, same: bool, by: str | None = None) -> None:
    """Record a person's decision on a review pair as a permanent override."""
    row = conn.execute(select(review_queue).where(review_queue.c.id == review_id)).one_or_none()
    if row is None:
        raise ConfigError(f"no review pair {review_id}; see `crm-hub review list`")
    pair = ((row.left_source, row.left_source_id), (row.right_source, row.right_source_id))
    kind = "must_link" if same else "cannot_link"
    add_overrides(conn, kind, [pair], origin="review", by=by)
    conn.execute(update(review_queue).where(review_queue.c.id == review_id).values(
        status="merged" if same else "kept_apart", decided_at=utcnow(), decided_by=by))  # fmt: skip


def _customer(conn: Connection, key: RecordKey) -> dict[str, Any]:
    c = source_customers.c
    row = conn.execute(
        select(*(c[name] for name in _CUSTOMER_FIELDS))
        .where((c.source == key[0]) & (c.source_id == key[1]))
    ).one_or_none()  # fmt: skip
    record = {"source": key[0], "source_id": key[1]}
    if row is not None:
        record.update({k: v for k, v in row._mapping.items() if v is not None})
    return record


def explain(conn: Connection, master_id: str) -> dict[str, Any]:
    """The one-person trace: master, records, links with evidence, golden values, events."""
    survivor = _survivor(conn, master_id)
    if survivor is None:
        raise ConfigError(f"no master {master_id!r} in the store")
    master = conn.execute(select(masters).where(masters.c.master_id == survivor)).one()
    links = conn.execute(
        select(master_links).where(master_links.c.master_id == survivor)
        .order_by(master_links.c.source, master_links.c.source_id)
    ).all()  # fmt: skip
    records = []
    for link in links:
        record = _customer(conn, (link.source, link.source_id))
        record["link"] = {"reason": link.reason, "probability": link.probability,
                          "evidence": link.evidence, "linked_at": link.linked_at}  # fmt: skip
        records.append(record)
    profile = conn.execute(select(profiles).where(profiles.c.master_id == survivor)).one_or_none()
    golden = {}
    if profile is not None:
        provenance = profile.provenance or {}
        golden = {name: {"value": getattr(profile, name), **provenance.get(name, {})}
                  for name in provenance}  # fmt: skip
    absorbed = conn.execute(select(masters.c.master_id).where(masters.c.merged_into == survivor))
    ids = [survivor, *(row.master_id for row in absorbed)]
    e = master_events.c
    history = [
        dict(row._mapping)
        for row in conn.execute(
            select(e.kind, e.master_id, e.other_ids, e.occurred_at)
            .where(e.master_id.in_(ids)).order_by(e.id)
        )
    ]  # fmt: skip
    keys = {(link.source, link.source_id) for link in links}
    overrides = [
        row for row in list_overrides(conn)
        if (row["left_source"], row["left_source_id"]) in keys
        or (row["right_source"], row["right_source_id"]) in keys
    ]  # fmt: skip
    return {
        "master_id": survivor,
        "asked_for": master_id,
        "status": master.status,
        "created_at": master.created_at,
        "records": records,
        "golden": golden,
        "events": history,
        "overrides": overrides,
    }
