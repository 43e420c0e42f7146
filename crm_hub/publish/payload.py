"""What one person becomes for one destination: a record to send, or nothing.

Rules (README "Publishing"), in order:

1. **Erased** people (master status ``erased``, or their e-mail in ``erasures``) are never sent;
   a destination that has them gets one erase record (``_erase``/``_deleted``, the e-mail it
   knows), and the stored payload loses every personal field.
2. **Merged away**: the destination's contact of the merged-away master is removed
   (``_deleted`` with ``merged_into``), unless it has the survivor's e-mail (then the survivor's
   upsert already lands on it); the survivor changed too, so it is sent in the same run.
3. **Consent**: with ``channel`` set, only people who granted it are sent; a withdrawal sends an
   unsubscribe (``<channel>_consent: false``) to a destination that has the person, once.
4. **Audience**: with ``segments`` set, people in none of them are not sent; one who left gets
   ``segments: []`` (tags and lists removed) or, in ``mirror`` mode, ``_deleted``.
   ``update-only`` sends only people the destination already has.
5. **No clobber**: a field whose value is now null, or whose source value is older than the one
   last sent (``profiles.provenance.at``), is left out: the destination keeps what it has.
6. **Diff**: the hash of what the destination would hold afterwards is compared with
   ``publish_state.payload_hash``; equal means nothing is sent. The provenance times kept for
   rule 5 (``at``) are not part of the hash: a value confirmed by a newer record (e.g. the
   hub's own write coming back through a source) is not a change the destination would see.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import orjson

__all__ = [
    "Outgoing",
    "Person",
    "Rules",
    "build_outgoing",
    "erasure_hash",
    "jsonable",
    "payload_hash",
]

KNOWN = ("active", "left", "unsubscribed")  # stored statuses meaning the destination has them


@dataclass(slots=True)
class Person:
    """Everything the rules need about one master, read in bulk by :mod:`changes`."""

    master_id: str
    status: str = "active"
    merged_into: str | None = None
    profile: dict[str, Any] | None = None
    traits: dict[str, Any] | None = None
    segments: list[str] = field(default_factory=list)
    previous: dict[str, Any] | None = None  # publish_state row: payload_hash, payload
    erased_email: bool = False
    survivor_email: str | None = None


@dataclass(slots=True)
class Outgoing:
    """One record to send and the state to store once the destination confirms it."""

    master_id: str
    action: str  # upsert, left, unsubscribe, delete, merge, erase; forget: store, send nothing
    record: dict[str, Any]
    payload_hash: str
    payload: dict[str, Any]


@dataclass(slots=True, frozen=True)
class Rules:
    """The parts of a destination's config the rules read."""

    fields: tuple[str, ...]
    segments: frozenset[str]
    send_segments: bool
    mode: str
    channel: str
    rename: dict[str, str]


def jsonable(value: Any) -> Any:
    """A JSON-safe value: dates as ISO text, decimals as exact text (``12.5``)."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")  # the same text whatever the column's scale
    return value


def payload_hash(payload: dict[str, Any]) -> str:
    """32 hex characters of blake2b over the canonical JSON of ``payload``."""
    data = orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def erasure_hash(value: str) -> str:
    """The ``erasures.value_hash`` of an e-mail or phone: blake2b-256 of the trimmed,
    lower-cased value (``erasure_hash(" Ann@X.com ") == erasure_hash("ann@x.com")``)."""
    return hashlib.blake2b(value.strip().lower().encode(), digest_size=32).hexdigest()


def _state(status: str, **extra: Any) -> tuple[str, dict[str, Any]]:
    payload = {"status": status, **extra}
    return payload_hash(payload), payload


def _outgoing(
    person: Person, rules: Rules, action: str, record: dict[str, Any], payload: dict[str, Any]
) -> Outgoing | None:
    digest = payload_hash({k: v for k, v in payload.items() if k != "at"})
    previous = person.previous
    if previous is not None and previous["payload_hash"] == digest:
        return None
    renamed = {rules.rename.get(k, k): v for k, v in record.items()}
    return Outgoing(person.master_id, action, {"master_id": person.master_id, **renamed}, digest,
                    payload)  # fmt: skip


def build_outgoing(person: Person, rules: Rules) -> Outgoing | None:
    """The record ``person`` needs at the destination now, or None (nothing to send)."""
    before = (person.previous or {}).get("payload") or {}
    known = before.get("status") in KNOWN
    email = (before.get("fields") or {}).get("email")
    if person.status == "erased" or person.erased_email:
        if not known:
            return None
        return _outgoing(person, rules, "erase", {"email": email, "_erase": True, "_deleted": True},
                         {"status": "erased"})  # fmt: skip
    if person.status == "merged":
        if not known:
            return None
        survivor = person.merged_into
        same = email and person.survivor_email and email.lower() == person.survivor_email.lower()
        state = {"status": "merged", "merged_into": survivor}
        if same:  # the survivor's upsert lands on this very contact: nothing to remove
            return _outgoing(person, rules, "forget", {}, state)
        record = {"email": email, "_deleted": True, "merged_into": survivor}
        return _outgoing(person, rules, "merge", record, state)
    profile = person.profile
    if profile is None:
        return None
    if rules.channel != "none":
        granted = ((profile.get("consents") or {}).get(rules.channel) or {}).get("granted")
        if granted is not True:
            if granted is False and known:
                consent = f"{rules.channel}_consent"
                record = {"email": profile.get("email") or email, consent: False}
                return _outgoing(person, rules, "unsubscribe", record,
                                 {**before, "status": "unsubscribed"})  # fmt: skip
            return None
    segments = sorted(s for s in person.segments if not rules.segments or s in rules.segments)
    exited = sorted(set(before.get("segments") or []) - set(segments))
    if rules.segments and not segments:
        if not known or before.get("status") == "left":
            return None
        if rules.mode == "mirror":
            return _outgoing(person, rules, "delete", {"email": email, "_deleted": True},
                             {"status": "deleted"})  # fmt: skip
        record = {"email": email, "segments": [], "segments_exited": exited}
        return _outgoing(
            person, rules, "left", record, {**before, "status": "left", "segments": []}
        )
    if rules.mode == "update-only" and not known:
        return None
    return _upsert(person, rules, before, segments, exited)


def _upsert(
    person: Person, rules: Rules, before: dict[str, Any], segments: list[str], exited: list[str]
) -> Outgoing | None:
    profile, traits = person.profile or {}, person.traits or {}
    provenance = profile.get("provenance") or {}
    old_fields: dict[str, Any] = before.get("fields") or {}
    old_at: dict[str, str] = before.get("at") or {}
    sent: dict[str, Any] = {}
    at: dict[str, str] = dict(old_at)
    for name in rules.fields:
        if name == "segments":
            continue
        value = jsonable(profile[name] if name in profile else traits.get(name))
        if value is None and old_fields.get(name) is not None:
            continue  # no clobber: never null over a known value
        when = (provenance.get(name) or {}).get("at")
        if isinstance(when, str) and name in old_at and when < old_at[name]:
            continue  # no clobber: never an older value over a newer one
        sent[name] = value
        if isinstance(when, str):
            at[name] = when
    fields = {**old_fields, **sent}
    payload: dict[str, Any] = {"status": "active", "fields": fields, "at": at}
    record = dict(sent)
    if rules.send_segments:
        payload["segments"] = segments
        record["segments"] = segments
        record["segments_exited"] = exited
    if rules.channel != "none":
        record[f"{rules.channel}_consent"] = True
    if "email" not in record and fields.get("email"):
        record["email"] = fields["email"]  # the targets address people by it
    return _outgoing(person, rules, "upsert", record, payload)
