"""Echo suppression: the hub's own writes coming back through a source are not new evidence.

When a destination is read back by a source (``source:`` of the destination in hub.yaml, e.g.
the Mailchimp audience the ``mailchimp`` source syncs), the publish stage keeps what it wrote
there (``publish_echoes``: e-mail hash, consent, labels; the values are the destination's
``publish_state`` payload). Here, in the map stage's write transaction, each customer of that
source whose e-mail the hub wrote is compared with its previous canonical row, column by
column:

- a difference equal to what the hub wrote (a field it sent, the consent it set) is an
  **echo**; one equal to a label it wrote (a tag) is one too, and, not being a fact about the
  person (a tag is no branch), it is always put back to the previous value;
- any other difference (``updated_at``, lineage and derived keys aside) is a **genuine edit**.

A record with nothing but echoes is treated as unchanged and not written: a known record keeps
its row and its ``raw_change_seq`` (resolve, profile and publish do no work); a record the hub
itself created (a new member) is not written until it holds something the hub did not write
(until then it is no evidence of anything: not of consent, not of a name, not even of one more
record with that e-mail for resolve to weigh). A record with a genuine edit is written as the
source has it (the echoed values in it agree with the golden ones).

Cost: while the hub never wrote to this source, one indexed query per batch; none for a batch
without customers.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection, and_, select

from crm_hub.mapping.batches import Batch
from crm_hub.store.erasures import value_hash
from crm_hub.store.schema import CANONICAL_TABLES, publish_echoes, publish_state, source_customers

__all__ = ["suppress_echoes"]

_TABLE = "source_customers"
# Never compared: lineage, the record's own times, and keys derived from compared columns.
_NEUTRAL = frozenset({
    "source", "source_id", "attributes", "deleted", "stream", "raw_id", "raw_change_seq",
    "mapped_at", "run_id", "created_at", "updated_at", "time_offset", "consents",
    "email", "email_match_key", "email_flag", "emails",
    "phone_raw", "phone_flag", "phones", "address_key", "postcode_key", "full_name",
})  # fmt: skip
# Put back together with the column (a record the hub created: to these empty values).
_GROUPS: dict[str, dict[str, Any]] = {
    "phone": {"phone": None, "phone_raw": None, "phones": None, "phone_flag": "missing"},
    "first_name": {"first_name": None, "full_name": None},
    "last_name": {"last_name": None, "full_name": None},
    "address_line1": {"address_line1": None, "address_key": None},
    "address_line2": {"address_line2": None, "address_key": None},
    "postcode": {"postcode": None, "postcode_key": None},
}


@dataclass(slots=True)
class _Written:
    """What the hub wrote for one e-mail (over every destination this source reads)."""

    fields: list[dict[str, Any]] = field(default_factory=list)
    consent: dict[str, set[bool]] = field(default_factory=dict)
    labels: set[str] = field(default_factory=set)

    def sent(self, column: str, value: Any) -> bool:
        plain = _plain(value)
        return any(column in f and _plain(f[column]) == plain for f in self.fields)

    def label(self, value: Any) -> bool:
        if isinstance(value, str):
            return value.casefold() in self.labels
        if isinstance(value, list) and value:
            return all(isinstance(v, str) and v.casefold() in self.labels for v in value)
        return False


def suppress_echoes(conn: Connection, source: str, batch: Batch) -> int:
    """Drop or neutralise the echoes among ``batch``'s customers (see the module docstring).

    Runs in the map stage's write transaction, before the rows are written. Returns how many
    records were echoes only.
    """
    if not (batch.rows.get(_TABLE) or batch.values.get(_TABLE) or batch.encoded.get(_TABLE)):
        return 0
    if not _hub_writes_to(conn, source):
        return 0
    batch.decode(conn.dialect)  # worker-made rows, bound for the store: read them
    rows = _customer_rows(batch)
    written = _written(conn, source, [r for r in rows if r.get("email")])
    matched = [r for r in rows if r.get("email") and value_hash(r["email"]) in written]
    if not matched:
        return 0
    before = _previous(conn, source, [r["source_id"] for r in matched])
    echoes = {
        row["source_id"]
        for row in matched
        if not _genuine(row, before.get(row["source_id"]), written[value_hash(row["email"])])
    }
    _write_back(batch, rows, dropped=echoes)
    return len(echoes)


def _genuine(row: dict[str, Any], old: dict[str, Any] | None, hub: _Written) -> bool:
    """Whether ``row`` holds anything the hub did not write (labels it wrote are put back to
    the previous value in place, in any case)."""
    previous = old or {}
    genuine = False
    for column in _compared():
        value, was = row.get(column), previous.get(column)
        if _plain(value) == _plain(was):
            continue
        if hub.label(value):
            _restore(row, column, previous, old is None)
        elif not hub.sent(column, value):
            genuine = True
    genuine = _settle_attributes(row, previous, hub) or genuine
    return genuine or _consent_is_news(row.get("consents"), previous.get("consents"), hub)


def _settle_attributes(row: dict[str, Any], previous: dict[str, Any], hub: _Written) -> bool:
    """Put back attributes that changed only by the hub's labels; True: another one changed."""
    new, old = row.get("attributes") or {}, previous.get("attributes") or {}
    if not previous or not isinstance(new, dict) or not isinstance(old, dict):
        return False  # a new record's attributes are the vendor's defaults: not compared
    other = False
    for key in set(new) | set(old):
        value, was = new.get(key), old.get(key)
        if _plain(value) == _plain(was):
            continue
        difference = _as_set(value) ^ _as_set(was)
        if difference and all(v.casefold() in hub.labels for v in difference):
            if key in old:
                new[key] = was
            else:
                new.pop(key, None)
        else:
            other = True
    return other


def _consent_is_news(new: Any, old: Any, hub: _Written) -> bool:
    """True when a channel's decision changed to one the hub did not write (a new ``at``
    alone is the vendor stamping the hub's write)."""
    new, old = new or {}, old or {}
    for channel, entry in new.items():
        granted = entry.get("granted") if isinstance(entry, dict) else None
        before = (old.get(channel) or {}).get("granted") if isinstance(old, dict) else None
        if (
            granted is not None
            and granted != before
            and granted not in hub.consent.get(channel, ())
        ):
            return True
    return False


def _restore(row: dict[str, Any], column: str, previous: dict[str, Any], empty: bool) -> None:
    group = _GROUPS.get(column, {column: None})
    for name, blank in group.items():
        row[name] = blank if empty else previous.get(name)


def _as_set(value: Any) -> set[str]:
    if isinstance(value, str):
        return {value}
    if isinstance(value, list):
        return {str(v) for v in value}
    return set()


def _plain(value: Any) -> Any:
    """Comparable form: dates as ISO text, decimals as exact text, empty text as None."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    if value == "":
        return None
    return value


@lru_cache(maxsize=1)
def _compared() -> tuple[str, ...]:
    return tuple(c.name for c in source_customers.columns if c.name not in _NEUTRAL | {"id"})


@lru_cache(maxsize=1)
def _names() -> tuple[str, ...]:
    return tuple(c.name for c in CANONICAL_TABLES[_TABLE].columns if c.name != "id")


def _customer_rows(batch: Batch) -> list[dict[str, Any]]:
    rows = list(batch.rows.get(_TABLE, {}).values())
    names = _names()
    rows.extend(dict(zip(names, v, strict=True)) for v in batch.values.get(_TABLE, []))
    return rows


def _write_back(batch: Batch, rows: list[dict[str, Any]], dropped: set[str]) -> None:
    """Drop the echo-only known records; copy changed values into worker-made lists."""
    by_id = batch.rows.get(_TABLE)
    if by_id is not None:
        batch.rows[_TABLE] = {k: r for k, r in by_id.items() if k not in dropped}
    if _TABLE in batch.values:
        names = _names()
        listed = rows[len(by_id or {}) :]
        batch.values[_TABLE] = [
            [row.get(n) for n in names] for row in listed if row["source_id"] not in dropped
        ]


def _hub_writes_to(conn: Connection, source: str) -> bool:
    e = publish_echoes
    return conn.execute(select(e.c.source).where(e.c.source == source).limit(1)).first() is not None


def _written(conn: Connection, source: str, rows: Iterable[dict[str, Any]]) -> dict[str, _Written]:
    hashes = sorted({value_hash(r["email"]) for r in rows})
    e, s = publish_echoes, publish_state
    found: dict[str, _Written] = {}
    for start in range(0, len(hashes), 500):
        query = (
            select(e.c.email_hash, e.c.written, s.c.payload)
            .select_from(e.outerjoin(s, and_(s.c.destination == e.c.destination,
                                             s.c.master_id == e.c.master_id)))
            .where(e.c.source == source, e.c.email_hash.in_(hashes[start : start + 500]))
        )  # fmt: skip
        for email_hash, written, payload in conn.execute(query):
            entry = found.setdefault(email_hash, _Written())
            entry.fields.append(dict((payload or {}).get("fields") or {}))
            for channel, granted in ((written or {}).get("consent") or {}).items():
                entry.consent.setdefault(channel, set()).add(bool(granted))
            entry.labels.update(str(x).casefold() for x in (written or {}).get("labels") or [])
    return found


def _previous(conn: Connection, source: str, ids: list[str]) -> dict[str, dict[str, Any]]:
    c = source_customers.c
    found: dict[str, dict[str, Any]] = {}
    for start in range(0, len(ids), 500):
        query = select(source_customers).where(
            c.source == source, c.source_id.in_(ids[start : start + 500])
        )
        for row in conn.execute(query).mappings():
            found[row["source_id"]] = dict(row)
    return found
