"""Erase a person (GDPR right to erasure): ``crm-hub erase PERSON``.

In one transaction: tombstones (hashes only) of every e-mail and phone the person had and of
each of their records; their raw records, canonical rows (customers, and the orders, lines,
invoices, payments and events pointing at them), links, profile, traits, memberships and
history, review pairs, overrides and rejected payloads are deleted; the master row stays with
status ``erased`` (so destinations and redirects know), with a ``master_events`` row ``erased``
under a new ``change_seq``, so the next publish sends each destination that has the person an
erase. Until then ``publish_state`` keeps, per such destination, only the e-mail the
destination knows them by (it needs it to find the contact), and so does a killed push's
``publish_inflight`` row, which the next publish settles first; the publish stage replaces it with
``{"status": "erased"}`` once the destination confirmed.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import Connection, Table, delete, exists, func, or_, select, tuple_, update

from crm_hub.errors import ConfigError
from crm_hub.identity.manage import find_masters
from crm_hub.store.engine import Store
from crm_hub.store.erasures import record_hash, save_tombstones, source_record_hash, value_hash
from crm_hub.store.raw import next_change_seq
from crm_hub.store.runs import utcnow
from crm_hub.store.schema import (
    events,
    identity_overrides,
    invoices,
    master_events,
    master_links,
    masters,
    order_lines,
    orders,
    payments,
    profiles,
    publish_echoes,
    publish_inflight,
    publish_state,
    raw_records,
    rejected_records,
    review_queue,
    segment_history,
    segment_memberships,
    segments,
    source_customers,
    traits,
)

__all__ = ["EraseResult", "erase_person", "preview_erase"]

Key = tuple[str, str]
_KNOWN = ("active", "left", "unsubscribed")  # publish_state statuses: the destination has them


@dataclass(slots=True)
class EraseResult:
    """What an erasure did (counts per table; ``pending`` destinations still to be told)."""

    master_id: str
    already_erased: bool = False
    records: int = 0
    tombstones: int = 0
    deleted: dict[str, int] = field(default_factory=dict)
    pending: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return asdict(self)


def _resolve(conn: Connection, person: str) -> str:
    found = find_masters(conn, person)
    if not found:
        raise ConfigError(f"{person!r} names nobody in the store (nothing to erase)")
    if len(found) > 1:
        raise ConfigError(
            f"{person!r} names {len(found)} people ({', '.join(found)}): erase them one by one "
            "by master id after checking which one asked"
        )
    return found[0]


def _family(conn: Connection, master_id: str) -> list[str]:
    """The master and every master merged (directly or not) into it."""
    family, frontier = [master_id], [master_id]
    while frontier:
        found = conn.execute(
            select(masters.c.master_id).where(
                masters.c.merged_into.in_(frontier), masters.c.master_id.notin_(family)
            )
        ).scalars()
        frontier = list(found)
        family.extend(frontier)
    return family


def preview_erase(store: Store, person: str) -> tuple[str, list[Key]]:
    """The master id ``person`` names and its records (for the confirmation prompt)."""
    with store.read() as conn:
        master_id = _resolve(conn, person)
        ids = _family(conn, master_id)
        rows = conn.execute(
            select(master_links.c.source, master_links.c.source_id)
            .where(master_links.c.master_id.in_(ids))
            .order_by(master_links.c.source, master_links.c.source_id)
        )
        return master_id, [(r.source, r.source_id) for r in rows]


def erase_person(store: Store, person: str, *, reason: str | None = None) -> EraseResult:
    """Erase ``person`` everywhere in the store and block their re-ingestion (one transaction).

    Raises:
        ConfigError: ``person`` names nobody, or several people (name one master id).
    """
    with store.begin() as conn:
        master_id = _resolve(conn, person)
        status = conn.execute(
            select(masters.c.status).where(masters.c.master_id == master_id)
        ).scalar_one()
        result = EraseResult(master_id, already_erased=status == "erased")
        ids = _family(conn, master_id)
        _Eraser(conn, ids, result, reason).run()
        return result


class _Eraser:
    """One erasure, inside the caller's transaction."""

    def __init__(
        self, conn: Connection, ids: list[str], result: EraseResult, reason: str | None
    ) -> None:
        self.conn, self.ids, self.result, self.reason = conn, ids, result, reason
        self.now = utcnow()
        self.tombstones: set[tuple[str, str]] = set()
        self.emails: set[str] = set()
        self.phones: set[str] = set()  # E.164
        self.typed: set[str] = set()  # phones as sources typed them: searched for, not hashed

    def run(self) -> None:
        conn, ids = self.conn, self.ids
        keys = [
            (r.source, r.source_id)
            for r in conn.execute(
                select(master_links.c.source, master_links.c.source_id).where(
                    master_links.c.master_id.in_(ids)
                )
            )
        ]
        self.result.records = len(keys)
        self._collect_values(keys)
        self._publish_state()
        self._publish_inflight()
        raw_ids = self._canonical(keys)
        self._raw(raw_ids, keys)
        self._identity(keys)
        self._golden()
        self.tombstones.update(("source_record", source_record_hash(*k)) for k in keys)
        self.tombstones.update(("email", value_hash(e)) for e in self.emails)
        self.tombstones.update(("phone", value_hash(p)) for p in self.phones)
        self.result.tombstones = save_tombstones(
            conn, self.tombstones, now=self.now, reason=self.reason
        )
        self._mark_erased()

    def _count(self, name: str, deleted: int) -> None:
        if deleted:
            self.result.deleted[name] = self.result.deleted.get(name, 0) + deleted

    def _delete(self, table: Table, *where: Any) -> int:
        found = self.conn.execute(delete(table).where(*where)).rowcount
        self._count(table.name, found)
        return int(found)

    def _collect_values(self, keys: list[Key]) -> None:
        """Every e-mail and phone of the person: their customers' and their golden profile's."""
        c = source_customers.c
        rows: list[dict[str, Any]] = []
        if keys:
            rows = [
                dict(r)
                for r in self.conn.execute(
                    select(c.email, c.emails, c.phone, c.phones, c.phone_raw).where(
                        tuple_(c.source, c.source_id).in_(keys)
                    )
                ).mappings()
            ]
        p = profiles.c
        rows.extend(
            dict(r)
            for r in self.conn.execute(
                select(p.email, p.emails, p.phone, p.phones).where(p.master_id.in_(self.ids))
            ).mappings()
        )
        for row in rows:
            for item in [row.get("email"), *(row.get("emails") or [])]:
                address = item.get("email") if isinstance(item, dict) else item
                if isinstance(address, str) and address.strip():
                    self.emails.add(address.strip().lower())
            for item in [row.get("phone"), *(row.get("phones") or [])]:
                phone = item.get("e164") if isinstance(item, dict) else item
                if isinstance(phone, str) and phone.strip():
                    self.phones.add(phone.strip())
                if isinstance(item, dict) and item.get("raw"):
                    self.typed.add(str(item["raw"]).strip())
            if row.get("phone_raw"):
                self.typed.add(str(row["phone_raw"]).strip())

    def _canonical(self, keys: list[Key]) -> dict[str, set[int]]:
        """Delete their canonical rows; the raw ids behind them, by source."""
        raw_ids: dict[str, set[int]] = {}
        conn = self.conn

        def take(table: Table, where: Any) -> None:
            for source, raw_id in conn.execute(select(table.c.source, table.c.raw_id).where(where)):
                raw_ids.setdefault(source, set()).add(int(raw_id))

        if keys:
            c = source_customers.c
            take(source_customers, tuple_(c.source, c.source_id).in_(keys))
            for table in (orders, invoices, payments, events):
                where = self._pointing_at(table, keys)
                if table is orders:
                    order_keys = [tuple(r) for r in conn.execute(
                        select(orders.c.source, orders.c.source_id).where(where))]  # fmt: skip
                    if order_keys:
                        ol = order_lines.c
                        self._delete(order_lines, tuple_(ol.source, ol.order_source_id).in_(
                            order_keys))  # fmt: skip
                for source, customer in conn.execute(
                    select(table.c.source, table.c.customer_source_id).where(where).distinct()
                ):
                    self.tombstones.add(("source_record", source_record_hash(source, customer)))
                take(table, where)
                self._delete(table, where)
            self._delete(source_customers, tuple_(c.source, c.source_id).in_(keys))
        if self.emails:
            where = func.lower(events.c.email).in_(sorted(self.emails))
            take(events, where)
            self._delete(events, where)
        return raw_ids

    @staticmethod
    def _pointing_at(table: Table, keys: list[Key]) -> Any:
        """Rows of ``table`` naming one of ``keys`` as their customer: in the same source, or
        in a source without customers of its own by that id (a till's orders file naming the
        till's customer export, e.g. ``pos_orders`` -> ``pos_export``)."""
        own = tuple_(table.c.source, table.c.customer_source_id).in_(keys)
        sc = source_customers.alias("sc")
        elsewhere = table.c.customer_source_id.in_(sorted({i for _, i in keys})) & ~exists().where(
            sc.c.source == table.c.source, sc.c.source_id == table.c.customer_source_id
        )
        return or_(own, elsewhere)

    def _raw(self, raw_ids: dict[str, set[int]], keys: list[Key]) -> None:
        """Delete raw records behind their rows and behind rejections of their records."""
        conn, t, r = self.conn, raw_records, rejected_records
        needles = sorted(self.emails | self.phones | self.typed)
        mentions = [func.lower(r.c.payload).contains(n, autoescape=True) for n in needles]
        rejected_where = or_(
            *mentions,
            *[(r.c.source == s) & (r.c.record_key == k) for s, k in keys],
            (r.c.stage == "publish") & r.c.record_key.in_(self.ids),
        )
        rejected = conn.execute(
            select(r.c.source, r.c.stream, r.c.record_key).where(rejected_where, r.c.stage == "map")
        ).all()
        self._delete(r, rejected_where)
        wanted = [(s, st, k) for s, st, k in rejected if k is not None]
        for source, ids in raw_ids.items():
            found = conn.execute(
                select(t.c.stream, t.c.record_key).where(t.c.source == source, t.c.id.in_(ids))
            ).all()
            wanted.extend((source, stream, key) for stream, key in found)
        if wanted:
            self._delete(t, tuple_(t.c.source, t.c.stream, t.c.record_key).in_(wanted))
        self.tombstones.update(("raw_record", record_hash(*w)) for w in wanted)

    def _identity(self, keys: list[Key]) -> None:
        if not keys:
            return
        links = master_links.c
        self._delete(master_links, tuple_(links.source, links.source_id).in_(keys))
        for table in (identity_overrides, review_queue):
            c = table.c
            self._delete(
                table,
                or_(
                    tuple_(c.left_source, c.left_source_id).in_(keys),
                    tuple_(c.right_source, c.right_source_id).in_(keys),
                ),
            )

    def _golden(self) -> None:
        ids, m = self.ids, segment_memberships
        left = self.conn.execute(
            select(m.c.segment, func.count()).where(m.c.master_id.in_(ids)).group_by(m.c.segment)
        ).all()
        for segment, count in left:
            self.conn.execute(
                update(segments)
                .where(segments.c.name == segment)
                .values(
                    member_count=func.max(segments.c.member_count - count, 0)
                    if self.conn.dialect.name == "sqlite"
                    else func.greatest(segments.c.member_count - count, 0)
                )  # fmt: skip
            )
        self._delete(m, m.c.master_id.in_(ids))
        self._delete(segment_history, segment_history.c.master_id.in_(ids))
        self._delete(traits, traits.c.master_id.in_(ids))
        self._delete(profiles, profiles.c.master_id.in_(ids))

    def _publish_state(self) -> None:
        """Keep, per destination that has them, only what the erase needs: the e-mail."""
        s = publish_state.c
        rows = self.conn.execute(
            select(s.destination, s.master_id, s.payload).where(s.master_id.in_(self.ids))
        ).all()
        for destination, master_id, payload in rows:
            before = payload or {}
            known = before.get("status") in _KNOWN
            email = (before.get("fields") or {}).get("email")
            if known:
                kept: dict[str, Any] = {"status": before["status"], "fields": {"email": email}}
                if master_id == self.result.master_id or email:
                    self.result.pending.append(destination)
            else:
                kept = {"status": before.get("status") or "erased"}
            self.conn.execute(
                update(publish_state)
                .where(s.destination == destination, s.master_id == master_id)
                .values(payload=kept)
            )
            if isinstance(email, str):
                self.emails.add(email.strip().lower())
        self.result.pending = sorted(set(self.result.pending))
        self._delete(publish_echoes, publish_echoes.c.master_id.in_(self.ids))

    def _publish_inflight(self) -> None:
        """A push killed mid-way keeps what it sent until the next publish settles it: keep
        only the e-mail, so settling it stores no more than :meth:`_publish_state` keeps."""
        t = publish_inflight.c
        rows = self.conn.execute(
            select(t.destination, t.run_id, t.master_id, t.payload, t.record)
            .where(t.master_id.in_(self.ids))
        ).all()  # fmt: skip
        for destination, run_id, master_id, payload, record in rows:
            email = (record or {}).get("email")
            kept = {"master_id": master_id, **({"email": email} if email else {})}
            status = (payload or {}).get("status")
            slim = {"status": status, "fields": kept} if payload else None
            self.conn.execute(
                update(publish_inflight)
                .where(t.destination == destination, t.run_id == run_id, t.master_id == master_id)
                .values(record=kept, payload=slim)
            )  # fmt: skip
            if status in _KNOWN:  # settling the push tells the hub the destination has them
                self.result.pending.append(destination)
            if isinstance(email, str):
                self.emails.add(email.strip().lower())
        self.result.pending = sorted(set(self.result.pending))

    def _mark_erased(self) -> None:
        seq = next_change_seq(self.conn)
        main = self.result.master_id
        self.conn.execute(
            update(masters)
            .where(masters.c.master_id.in_(self.ids))
            .values(status="erased", member_count=0, updated_at=self.now, change_seq=seq)
        )
        detail = {"records": self.result.records, "tombstones": self.result.tombstones}
        others = [i for i in self.ids if i != main]
        self.conn.execute(
            master_events.insert().values(
                kind="erased",
                master_id=main,
                other_ids=others or None,
                detail=detail,
                occurred_at=self.now,
                change_seq=seq,
            )  # fmt: skip
        )
