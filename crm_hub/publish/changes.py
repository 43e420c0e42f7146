"""The change set of one destination: masters whose profile, traits, memberships, masters row or
merge/split events changed since its watermark, plus those with an open publish rejection
(retried every run); then each master's rows, read in bulk for :mod:`payload`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sqlalchemy import Connection, and_, func, select, text

from crm_hub.publish.payload import Person, erasure_hash
from crm_hub.store.schema import (
    erasures,
    master_events,
    masters,
    profiles,
    publish_state,
    publish_watermarks,
    rejected_records,
    segment_history,
    segment_memberships,
    traits,
)

__all__ = ["changed_masters", "current_seq", "load_watermark", "read_people"]


def current_seq(conn: Connection) -> int:
    """The store's latest change number (everything at or below it is committed)."""
    value = conn.execute(text("SELECT value FROM counters WHERE name = 'change_seq'")).scalar()
    return int(value or 0)


def load_watermark(conn: Connection, destination: str) -> int:
    """The destination's last fully pushed change number (0: never pushed)."""
    value = conn.execute(
        select(publish_watermarks.c.change_seq).where(
            publish_watermarks.c.destination == destination
        )
    ).scalar()
    return int(value or 0)


def changed_masters(conn: Connection, destination: str, since: int) -> list[str]:
    """Sorted ids of every master that may need sending (see the module docstring)."""
    found: set[str] = set()
    for table in (profiles, traits, segment_memberships, segment_history, masters):
        query = select(table.c.master_id).where(table.c.change_seq > since)
        found.update(conn.execute(query).scalars())
    events = select(master_events.c.master_id, master_events.c.other_ids).where(
        master_events.c.change_seq > since
    )
    for master_id, others in conn.execute(events):
        found.add(master_id)
        found.update(str(o) for o in others or [] if isinstance(o, str))
    r = rejected_records
    retry = select(r.c.record_key).where(
        and_(r.c.stage == "publish", r.c.source == destination, r.c.resolved_at.is_(None))
    )
    found.update(key for key in conn.execute(retry).scalars() if key)
    return sorted(found)


def read_people(
    conn: Connection, destination: str, ids: list[str], *, with_traits: bool
) -> Iterator[Person]:
    """One :class:`Person` per id (ids of a chunk: a few thousand at most)."""
    people = {i: Person(i) for i in ids}
    for row in conn.execute(select(masters).where(masters.c.master_id.in_(ids))).mappings():
        person = people[row["master_id"]]
        person.status, person.merged_into = row["status"], row["merged_into"]
    for row in conn.execute(select(profiles).where(profiles.c.master_id.in_(ids))).mappings():
        people[row["master_id"]].profile = dict(row)
    if with_traits:
        for row in conn.execute(select(traits).where(traits.c.master_id.in_(ids))).mappings():
            people[row["master_id"]].traits = dict(row)
    m = segment_memberships
    for segment, master_id in conn.execute(
        select(m.c.segment, m.c.master_id).where(m.c.master_id.in_(ids))
    ):
        people[master_id].segments.append(segment)
    s = publish_state
    for row in conn.execute(
        select(s.c.master_id, s.c.payload_hash, s.c.payload).where(
            and_(s.c.destination == destination, s.c.master_id.in_(ids))
        )
    ).mappings():
        people[row["master_id"]].previous = dict(row)
    _mark_erased(conn, people)
    _survivor_emails(conn, people)
    yield from people.values()


def _mark_erased(conn: Connection, people: dict[str, Person]) -> None:
    by_hash: dict[str, list[Person]] = {}
    for person in people.values():
        email = (person.profile or {}).get("email")
        if email:
            by_hash.setdefault(erasure_hash(email), []).append(person)
    if not by_hash:
        return
    has_any = conn.execute(select(func.count()).select_from(erasures)).scalar()
    if not has_any:
        return
    query = select(erasures.c.value_hash).where(
        and_(erasures.c.kind == "email", erasures.c.value_hash.in_(list(by_hash)))
    )
    for value_hash in conn.execute(query).scalars():
        for person in by_hash[value_hash]:
            person.erased_email = True


def _survivor_emails(conn: Connection, people: dict[str, Person]) -> None:
    wanted: dict[str, list[Person]] = {}
    for person in people.values():
        if person.status == "merged" and person.merged_into:
            wanted.setdefault(person.merged_into, []).append(person)
    if not wanted:
        return
    rows: Any = conn.execute(
        select(profiles.c.master_id, profiles.c.email).where(profiles.c.master_id.in_(wanted))
    )
    for master_id, email in rows:
        for person in wanted[master_id]:
            person.survivor_email = email
