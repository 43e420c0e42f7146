"""The publish stage: push what changed to each destination of hub.yaml.

Guarantees (DESIGN.md, README "Publishing"):

- **Diff-based.** The change set is every master whose profile, traits, memberships, masters
  row or merge events changed since the destination's watermark (``publish_watermarks``), plus
  those with an open publish rejection; each is turned into the record the destination needs
  (:mod:`payload`) and sent only when its hash differs from ``publish_state``. A rerun with no
  change sends nothing.
- **Resumable.** ``publish_state`` is committed batch by batch as the destination confirms; the
  watermark moves only when every record sent was settled (landed or rejected). A killed push
  is settled from its in-flight rows in the store by the next one (Singer targets: the target
  and its recorder outlive the hub), so what landed is not re-sent.
- **Rejected rows kept.** A record the destination refuses goes to ``rejected_records`` (stage
  ``publish``, source = destination) with its reason, and is retried next push; one that lands
  later resolves it.
- **Echoes known.** For a destination a source reads back (``source:``), what landed is kept in
  the echo ledger (:mod:`echoes`) in the same transaction, for the map stage to recognise.

One push per destination at a time (lease ``publish:<name>``).
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

import orjson
from sqlalchemy import and_, select

from crm_hub.config.models import HubConfig
from crm_hub.errors import ConfigError, CrmHubError
from crm_hub.logging import get_logger, redact
from crm_hub.publish.changes import changed_masters, current_seq, load_watermark, read_people
from crm_hub.publish.driver import DRIVERS, DriverContext, Outcome
from crm_hub.publish.echoes import EchoLedger, echo_ledger
from crm_hub.publish.payload import Outgoing, Rules, build_outgoing
from crm_hub.store.engine import Store
from crm_hub.store.rejected import Rejection, resolve_rejections, save_rejections
from crm_hub.store.runs import new_run_id, utcnow
from crm_hub.store.schema import publish_state, publish_watermarks, traits
from crm_hub.store.stage_run import run_stage
from crm_hub.store.upsert import upsert

__all__ = ["CHUNK", "PublishResult", "publish", "publish_destination"]

log = get_logger(__name__)
CHUNK = 2_000  # masters read per query round
# PostgreSQL: after settling this many records, ANALYZE publish_state at once. Before autovacuum
# gets to it, the next diff's lookup by (destination, master id IN chunk) was planned on the
# destination alone and compared each of a million rows with the chunk: 54 s at 1 M profiles.
ANALYZE_AFTER = 10_000
_SELF_ADDRESSED = ("mailchimp", "hubspot")  # their mapping goes into the target's config


@dataclass(slots=True)
class PublishResult:
    """How one destination's push ended."""

    destination: str
    run_id: str
    status: str = "succeeded"  # succeeded, incomplete, failed, dry_run
    considered: int = 0  # masters in the change set
    sent: int = 0  # records that differed from what the destination has
    confirmed: int = 0
    rejected: int = 0
    unchanged: int = 0  # considered, nothing to send
    recovered: int = 0  # settled from an interrupted earlier push
    actions: dict[str, int] = field(default_factory=dict)
    diff_seconds: float = 0.0
    seconds: float = 0.0
    error: str | None = None
    config_error: bool = False
    records: list[dict[str, Any]] = field(default_factory=list)  # dry run only

    def counts(self) -> dict[str, Any]:
        """The counts as stored in the runs table."""
        data = asdict(self)
        for key in ("destination", "run_id", "status", "error", "records", "config_error"):
            data.pop(key)
        return data


def publish(
    store: Store, config: HubConfig, names: list[str] | None = None, *, dry_run: bool = False
) -> list[PublishResult]:
    """Push to the named destinations (default: every enabled one); one failing does not stop
    the others (its result says why).

    Raises:
        ConfigError: a name is not a destination of hub.yaml.
    """
    unknown = [n for n in names or [] if n not in config.destinations]
    if unknown:
        known = ", ".join(sorted(config.destinations)) or "none"
        raise ConfigError(
            f"no destination named {', '.join(unknown)} in hub.yaml (destinations: {known})"
        )
    chosen = names or [n for n, d in config.destinations.items() if d.enabled]
    results = []
    for name in chosen:
        try:
            results.append(publish_destination(store, config, name, dry_run=dry_run))
        except CrmHubError as exc:
            failed = PublishResult(name, "", status="failed", error=exc.message)
            failed.config_error = isinstance(exc, ConfigError)
            results.append(failed)
    return results


def _rules(config: Any) -> Rules:
    return Rules(
        fields=tuple(config.fields),
        segments=frozenset(config.segments),
        send_segments=bool(config.segments) or "segments" in config.fields,
        mode=config.mode,
        channel=config.channel,
        rename={} if config.type in _SELF_ADDRESSED else dict(config.mapping),
    )


def _diff(
    store: Store, name: str, config: Any, ids: list[str], result: PublishResult,
    forget: list[Outgoing] | None,
) -> Iterator[Outgoing]:  # fmt: skip
    """The records to send, chunk by chunk (``forget`` collects state-only changes)."""
    rules = _rules(config)
    with_traits = any(f in traits.c for f in config.fields)
    for start in range(0, len(ids), CHUNK):
        began = time.perf_counter()
        with store.read() as conn:
            people = list(read_people(conn, name, ids[start : start + CHUNK],
                                      with_traits=with_traits))  # fmt: skip
        found = []
        for person in people:
            item = build_outgoing(person, rules)
            if item is None:
                result.unchanged += 1
                continue
            result.actions[item.action] = result.actions.get(item.action, 0) + 1
            if item.action == "forget":
                if forget is not None:
                    forget.append(item)
                continue
            found.append(item)
        result.diff_seconds += time.perf_counter() - began
        yield from found


def _batched(
    items: Iterator[Outgoing], size: int, result: PublishResult
) -> Iterator[list[Outgoing]]:
    batch: list[Outgoing] = []
    for item in items:
        batch.append(item)
        result.sent += 1
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _reason_code(reason: str) -> str:
    match = re.match(r"HTTP (\d{3})", reason)
    return f"http_{match.group(1)}" if match else "refused_by_destination"


class _Committer:
    """Commits settled batches: publish_state, resolved and new rejections (thread-safe)."""

    def __init__(self, store: Store, name: str, stream: str, run_id: str,
                 result: PublishResult, echoes: EchoLedger | None = None) -> None:  # fmt: skip
        self.store, self.name, self.stream, self.run_id = store, name, stream, run_id
        self.result, self.echoes = result, echoes
        self.lock = threading.Lock()
        self.settled = 0

    def settle_recovered(self, outcome: Outcome) -> None:
        """Settle what a killed push left; records its hub already committed are not counted."""
        keys = [o.master_id for o in outcome.confirmed]
        with self.store.read() as conn:
            done = set(
                conn.execute(
                    select(publish_state.c.master_id, publish_state.c.payload_hash).where(
                        and_(publish_state.c.destination == self.name,
                             publish_state.c.master_id.in_(keys))
                    )
                ).tuples()
            )  # fmt: skip
        fresh = [o for o in outcome.confirmed if (o.master_id, o.payload_hash) not in done]
        self.settle(Outcome(confirmed=fresh, rejected=outcome.rejected))

    def settle(self, outcome: Outcome) -> None:
        now = utcnow()
        rows = [
            {"destination": self.name, "master_id": o.master_id, "payload_hash": o.payload_hash,
             "payload": o.payload, "remote_id": None, "sent_at": now, "run_id": self.run_id}
            for o in outcome.confirmed
        ]  # fmt: skip
        rejections = [
            Rejection(
                stream=self.stream,
                reject_key=o.master_id,
                reason_code=_reason_code(reason),
                message=redact(reason)[:2000],
                payload=redact(orjson.dumps(o.record).decode())[:10_000],
                record_key=o.master_id,
            )
            for o, reason in outcome.rejected
        ]
        keys = [o.master_id for o in outcome.confirmed]
        with self.lock, self.store.begin() as conn:
            for start in range(0, max(len(rows), 1), CHUNK):  # bounded statement size
                upsert(conn, publish_state, rows[start : start + CHUNK],
                       keys=["destination", "master_id"],
                       update=["payload_hash", "payload", "sent_at", "run_id"])  # fmt: skip
                chunk = keys[start : start + CHUNK]
                resolve_rejections(conn, "publish", self.name, self.stream, chunk, now)
            if rejections:
                save_rejections(conn, "publish", self.name, rejections, run_id=self.run_id, now=now)
            if self.echoes is not None:
                self.echoes.record(conn, outcome.confirmed, now)
            self.settled += len(rows) + len(rejections)
            self.result.confirmed += len(rows)
            self.result.rejected += len(rejections)


def publish_destination(
    store: Store, config: HubConfig, name: str, *, dry_run: bool = False
) -> PublishResult:
    """Push what changed to destination ``name`` (see the module docstring).

    With ``dry_run`` nothing is sent or written: the result's ``records`` are what would go.

    Raises:
        ConfigError: no such destination, or its driver cannot be set up.
        BusyError: another push to it is running.
    """
    dest = config.destinations.get(name)
    if dest is None:
        raise ConfigError(f"no destination named {name!r} in hub.yaml")
    if dry_run:
        result, began = PublishResult(name, new_run_id()), time.monotonic()
        with store.read() as conn:
            ids = changed_masters(conn, name, load_watermark(conn, name))
        result.considered = len(ids)
        result.records = [item.record for item in _diff(store, name, dest, ids, result, None)]
        result.sent, result.status = len(result.records), "dry_run"
        result.seconds = time.monotonic() - began
        return result

    def work(result: PublishResult) -> None:
        committer = _Committer(store, name, dest.stream, result.run_id, result,
                               echo_ledger(name, dest))  # fmt: skip
        try:
            context = DriverContext(name, dest, config.base_dir, result.run_id, store)
            driver = DRIVERS[dest.type](context)
            driver.recover(committer.settle_recovered)
            result.recovered = result.confirmed + result.rejected
            result.confirmed = result.rejected = committer.settled = 0
            began_diff = time.perf_counter()
            with store.read() as conn:
                high = current_seq(conn)
                ids = changed_masters(conn, name, load_watermark(conn, name))
            result.diff_seconds += time.perf_counter() - began_diff
            result.considered = len(ids)
            forget: list[Outgoing] = []
            items = _diff(store, name, dest, ids, result, forget)
            driver.send(_batched(items, dest.batch_size, result), committer.settle)
            if forget:
                committer.settle(Outcome(confirmed=forget))
            _finish(store, result, committer, high, len(forget))
        except CrmHubError as exc:  # recorded in the result: one destination never stops the rest
            result.status, result.error = "failed", exc.message
            result.config_error = isinstance(exc, ConfigError)

    return run_stage(store, "publish", lambda run_id: PublishResult(name, run_id), work,
                     source=name)  # fmt: skip


def _finish(
    store: Store, result: PublishResult, committer: _Committer, high: int, forgotten: int
) -> None:
    """Move the watermark when every record sent was settled; else say what is missing."""
    if store.dialect == "postgresql" and committer.settled >= ANALYZE_AFTER:
        with store.begin() as conn:
            conn.exec_driver_sql("ANALYZE publish_state")
    missing = result.sent + forgotten - committer.settled
    if missing > 0:
        result.status = "incomplete"
        result.error = (
            f"{missing} record(s) were sent but the target confirmed neither their landing nor "
            "their rejection; they are sent again next push"
        )
        return
    with store.begin() as conn:
        upsert(conn, publish_watermarks,
               [{"destination": result.destination, "change_seq": high, "updated_at": utcnow(),
                 "run_id": result.run_id}],
               keys=["destination"], update=["change_seq", "updated_at", "run_id"])  # fmt: skip
