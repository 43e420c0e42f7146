"""The vendor demo: the whole loop on the four native connectors against the loopback sandbox.

`run_vendor_demo` starts the vendor sandbox in this process (Square, Mailchimp, Typeform and
QuickBooks over real HTTP on 127.0.0.1), writes the vendor project (`crm-hub init DIR
--vendors`: ``crm_hub/templates/vendors``), runs every stage and scores the people the hub
found against the sandbox's ground truth of who is who. `write_vendor_project` is the
project writer the CLI uses.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crm_hub.errors import ConfigError

if TYPE_CHECKING:
    from crm_hub.config import HubConfig
    from crm_hub.pipeline import RunSummary
    from crm_hub.store import Store

__all__ = [
    "SANDBOX_URL_VARIABLE",
    "VENDOR_SOURCES",
    "run_vendor_demo",
    "truth_scores",
    "write_vendor_project",
]

SANDBOX_URL_VARIABLE = "CRM_HUB_SANDBOX_URL"
"""The environment variable the vendor hub.yaml reads the sandbox's base URL from."""

VENDOR_SOURCES = ("square", "mailchimp", "typeform", "quickbooks")
"""The sources of the vendor project (named like their connector type)."""

# Shared with the example project: the editor schema of mapping files and the segments.
_SHARED = ("mappings/mapping.schema.json", "mappings/segments.yaml")


def _template_files() -> Iterator[tuple[str, Path]]:
    """(relative path, file) of every file the vendor project is made of."""
    root = resources.files("crm_hub") / "templates"
    with resources.as_file(root) as templates:
        base = Path(templates)
        vendors = base / "vendors"
        for path in sorted(p for p in vendors.rglob("*") if p.is_file()):
            yield path.relative_to(vendors).as_posix(), path
        for relative in _SHARED:
            if not (vendors / relative).exists():
                yield relative, base / "project" / relative


def write_vendor_project(directory: Path, *, force: bool = False) -> list[str]:
    """Write the vendor demo project (hub.yaml and mappings) into ``directory``.

    Nothing is written when a file exists and ``force`` is false.

    Args:
        directory: the project folder (created when missing).
        force: overwrite files that already exist.

    Returns:
        The relative paths written, e.g. ``["hub.yaml", "mappings/square.yaml", ...]``.

    Raises:
        ConfigError: a file already exists and ``force`` is false.
    """
    files = list(_template_files())
    if not force:
        existing = [rel for rel, _ in files if (directory / rel).exists()]
        if existing:
            shown = ", ".join(existing[:3]) + (", ..." if len(existing) > 3 else "")
            raise ConfigError(
                f"{directory}: {len(existing)} file(s) of the vendor project already exist "
                f"({shown}); pass --force to overwrite them",
                problems=[f"{directory / rel} already exists" for rel in existing],
            )
    for relative, source in files:
        target = directory / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
    return [relative for relative, _ in files]


@contextlib.contextmanager
def _environment(name: str, value: str) -> Iterator[None]:
    """Set one environment variable for the block, then put back what was there."""
    before = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = before


def load_vendor_config(hub_yaml: Path, sandbox_url: str, list_id: str | None = None) -> HubConfig:
    """Load the vendor project's hub.yaml with ``CRM_HUB_SANDBOX_URL`` set to ``sandbox_url``
    (and ``MAILCHIMP_LIST_ID``, the audience the hub pushes to, to ``list_id`` when given: the
    sandbox's audience ids depend on its seed)."""
    from crm_hub.config import load_config

    with contextlib.ExitStack() as stack:
        stack.enter_context(_environment(SANDBOX_URL_VARIABLE, sandbox_url.rstrip("/")))
        if list_id is not None:
            stack.enter_context(_environment("MAILCHIMP_LIST_ID", list_id))
        return load_config(hub_yaml)


def truth_scores(
    store: Store, config: HubConfig, truth: Iterable[tuple[str, str, str]]
) -> dict[str, Any]:
    """Pairwise precision and recall of the masters against a ground truth.

    Args:
        store: the store resolve wrote ``master_links`` into.
        config: hub.yaml (a source's ``type`` is the truth's system, e.g. ``square``).
        truth: ``(system, record_id, person_id)`` per people record.

    Returns:
        ``precision``, ``recall``, ``f1``, the pair counts, ``records`` scored and
        ``unscored`` (linked records the truth does not know).
    """
    from sqlalchemy import select

    from crm_hub.identity import pairwise_scores
    from crm_hub.store.schema import master_links

    person = {(system, record): who for system, record, who in truth}
    system_of = {name: source.type for name, source in config.sources.items()}
    with store.read() as conn:
        links = conn.execute(
            select(master_links.c.source, master_links.c.source_id, master_links.c.master_id)
        ).all()
    predicted, actual, unscored = [], [], 0
    for source, source_id, master_id in links:
        who = person.get((system_of.get(source, source), source_id))
        if who is None:
            unscored += 1
            continue
        predicted.append(master_id)
        actual.append(who)
    scores = pairwise_scores(predicted, actual)
    return {
        "precision": round(scores.precision, 4),
        "recall": round(scores.recall, 4),
        "f1": round(scores.f1, 4),
        "true_positives": scores.true_positives,
        "predicted_pairs": scores.predicted_pairs,
        "true_pairs": scores.true_pairs,
        "records": len(predicted),
        "unscored": unscored,
    }


def _people(store: Store) -> tuple[int, int]:
    """(source customers linked to a person, active people)."""
    from sqlalchemy import func, select

    from crm_hub.store.schema import master_links, masters

    with store.read() as conn:
        linked = conn.execute(select(func.count()).select_from(master_links)).scalar_one()
        active = conn.execute(
            select(func.count()).select_from(masters).where(masters.c.status == "active")
        ).scalar_one()
    return int(linked), int(active)


def _rejections(store: Store) -> dict[str, Any]:
    """Open rejections: how many, by stage/source/reason, and a few examples."""
    from sqlalchemy import func, select

    from crm_hub.store.rejected import list_rejected
    from crm_hub.store.schema import rejected_records as t

    with store.read() as conn:
        grouped = conn.execute(
            select(t.c.stage, t.c.source, t.c.reason_code, func.count())
            .where(t.c.resolved_at.is_(None))
            .group_by(t.c.stage, t.c.source, t.c.reason_code)
        ).all()
        examples = list_rejected(conn, limit=5)
    return {
        "total": sum(int(n) for *_, n in grouped),
        "by_reason": {f"{stage}/{source}/{reason}": int(n) for stage, source, reason, n in grouped},
        "examples": [str(row["message"]) for row in examples],
    }


def _per_source(summary: RunSummary) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for sync in summary.sync:
        out[sync.source] = {
            "read": sync.read,
            "streams": dict(sync.streams),
            "sync_seconds": sync.seconds,
            "sync_status": sync.status,
        }
    for mapped in summary.map:
        entry = out.setdefault(mapped.source, {})
        entry.update(
            mapped=mapped.accepted,
            rejected=mapped.rejected,
            tables=dict(mapped.tables),
            map_seconds=mapped.seconds,
        )
    return out


def _segment_sizes(store: Store) -> dict[str, int]:
    """Members per segment, as the segments stage left them."""
    from sqlalchemy import select

    from crm_hub.store.schema import segments

    with store.read() as conn:
        rows = conn.execute(
            select(segments.c.name, segments.c.member_count).order_by(segments.c.name)
        )
        return {name: int(count) for name, count in rows}


def _pushes(store: Store) -> dict[str, dict[str, Any]]:
    """Per destination, what its last push sent, landed and had refused."""
    from sqlalchemy import select

    from crm_hub.store.schema import runs

    query = select(runs.c.source, runs.c.status, runs.c.counts).where(runs.c.stage == "publish")
    with store.read() as conn:
        rows = conn.execute(query.order_by(runs.c.started_at)).all()
    keys = ("sent", "confirmed", "rejected")
    return {
        name: {"status": status, **{k: int((counts or {}).get(k, 0)) for k in keys}}
        for name, status, counts in rows
    }  # the last run of each destination wins


def run_vendor_demo(workdir: Path, *, customers: int = 2000, seed: int = 7) -> dict[str, Any]:
    """Run the whole loop on the four vendor connectors against an in-process sandbox.

    ``workdir`` gets the vendor project (its hub.yaml and mappings are overwritten) and a fresh
    store, ``crm-hub.db`` (an older one there is replaced: every demo starts from nothing).

    Args:
        workdir: folder for the project and its SQLite store.
        customers: people in the sandbox world (2,000 runs in well under a minute).
        seed: the sandbox seed (same seed, same data, same figures).

    Returns:
        A summary: ``sources`` (per source: records read per stream, mapped, rejected, rows per
        table), ``records_in``, ``source_customers``, ``people`` (masters found),
        ``duplicates_merged`` (source customers folded into another's person), ``truth``
        (pairwise precision/recall against the sandbox's ground truth), ``rejected`` (count,
        by stage/source/reason, examples), ``pushed`` (per destination: status, records sent,
        landed, refused), ``rerun`` (a second run straight after: records read back, how many
        were the hub's own echoes, records sent), ``failures``, ``seconds`` and
        ``pipeline_seconds`` (the first run).
    """
    from connectors.sandbox import SandboxServer, mailchimp_records, truth_rows
    from crm_hub.pipeline import run_pipeline
    from crm_hub.store import open_store

    started = time.perf_counter()
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    write_vendor_project(workdir, force=True)
    for suffix in ("", "-wal", "-shm", "-journal"):
        (workdir / f"crm-hub.db{suffix}").unlink(missing_ok=True)
    with SandboxServer(customers=customers, seed=seed) as sandbox:
        audience = mailchimp_records.list_id(sandbox.sandbox.world, 0)
        config = load_vendor_config(workdir / "hub.yaml", sandbox.url, audience)
        store = open_store(config.store)
        try:
            summary = run_pipeline(store, config)
            ran = time.perf_counter() - started
            truth = [
                (row.system, row.record_id, row.person_id)
                for row in truth_rows(sandbox.sandbox.world, set(VENDOR_SOURCES))
            ]
            scores = truth_scores(store, config, truth)
            linked, people = _people(store)
            rejected = _rejections(store)
            segments = _segment_sizes(store)
            pushes = _pushes(store)
            again = run_pipeline(store, config)  # what came back is the hub's own echo
        finally:
            store.dispose()
    sources = _per_source(summary)
    tables: Counter[str] = Counter()
    for entry in sources.values():
        tables.update(entry.get("tables", {}))
    return {
        "project": str(workdir),
        "customers": customers,
        "seed": seed,
        "sources": sources,
        "records_in": sum(int(entry.get("read", 0)) for entry in sources.values()),
        "tables": dict(tables),
        "source_customers": linked,
        "people": people,
        "duplicates_merged": linked - people,
        "truth": scores,
        "rejected": rejected,
        "resolve": summary.stages.get("resolve", {}),
        "stages": dict(summary.stages),
        "segments": segments,
        "pushed": pushes,
        "rerun": {
            "read": sum(r.read for r in again.map),
            "echoes": sum(r.echoes for r in again.map),
            "sent": int(again.stages.get("publish", {}).get("sent", 0)),
            "failures": list(again.failures),
        },
        "failures": list(summary.failures),
        "seconds": round(time.perf_counter() - started, 2),
        "pipeline_seconds": round(ran, 2),
    }
