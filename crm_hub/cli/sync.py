"""`crm-hub sync`, `crm-hub run`, `crm-hub status`."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table
from sqlalchemy import func, select

from crm_hub.cli.common import (
    ConfigOption,
    JsonOption,
    console,
    emit_json,
    err_console,
    handle_errors,
    load,
)
from crm_hub.cli.progress import sync_progress
from crm_hub.pipeline import RunSummary, run_pipeline, sync_sources
from crm_hub.store import Store
from crm_hub.store.leases import lease_holders
from crm_hub.store.rejected import count_open
from crm_hub.store.runs import last_runs
from crm_hub.store.schema import raw_records, sync_state


def register(app: typer.Typer) -> None:
    """Add sync, run and status."""
    app.command("sync")(sync_command)
    app.command("run")(run_command)
    app.command("status")(status_command)


@handle_errors
def sync_command(
    sources: Annotated[
        list[str] | None, typer.Argument(help="Sources to sync (default: every enabled one).")
    ] = None,
    wait: Annotated[
        float,
        typer.Option(help="Seconds to wait when another sync of a source is running."),
    ] = 0.0,
    config: ConfigOption = None,
    json_output: JsonOption = False,
) -> None:
    """Pull new and changed records from sources into the store's raw tables.

    Incremental: only what changed since the last sync is read, and only records whose content
    changed are written. Safe to interrupt: the next sync resumes from the last checkpoint.
    """
    hub, store = load(config)
    with sync_progress(not json_output) as progress:
        summary = sync_sources(store, hub, sources or None, wait=wait, on_progress=progress)
    _render(summary, json_output)


@handle_errors
def run_command(config: ConfigOption = None, json_output: JsonOption = False) -> None:
    """Run the whole loop once: every stage in order (sync, map, resolve, ...)."""
    hub, store = load(config)
    with sync_progress(not json_output) as progress:
        summary = run_pipeline(store, hub, on_progress=progress)
    if not summary.ok:
        from crm_hub.alerts import Alert, send_failure_alert

        alert = Alert(run="crm-hub run", failures=summary.failures, project=str(hub.base_dir))
        for problem in send_failure_alert(hub.alerts, alert):
            err_console.print(f"[yellow]alert not sent:[/] {problem}", highlight=False)
    _render(summary, json_output)


def _render(summary: RunSummary, json_output: bool) -> None:
    if json_output:
        emit_json(
            {
                "ok": summary.ok,
                "sync": [
                    {"source": r.source, "run_id": r.run_id, "status": r.status, **r.counts()}
                    for r in summary.sync
                ],
                "map": [
                    {"source": r.source, "run_id": r.run_id, "status": r.status, **r.counts()}
                    for r in summary.map
                ],
                "stages": summary.stages,
                "failures": summary.failures,
            }
        )
    else:
        table = Table(title="sync")
        for column in (
            "source",
            "read",
            "new",
            "changed",
            "unchanged",
            "rejected",
            "seconds",
            "rec/s",
        ):
            table.add_column(column, justify="left" if column == "source" else "right")
        for r in summary.sync:
            rate = r.read / r.seconds if r.seconds else 0
            table.add_row(
                r.source,
                f"{r.read:,}",
                f"{r.inserted:,}",
                f"{r.updated:,}",
                f"{r.unchanged:,}",
                f"{r.rejected:,}",
                f"{r.seconds:.2f}",
                f"{rate:,.0f}",
            )
        console.print(table)
        if summary.map:
            from crm_hub.cli.mapping import map_table

            console.print(map_table(summary.map))
        for name, counts in summary.stages.items():
            if counts.get("skipped"):
                console.print(f"[bold]{name}[/]: nothing changed since the last run")
                continue
            shown = ", ".join(
                f"{k} {v:,}" if isinstance(v, int) else f"{k} {v}"
                for k, v in counts.items()
                if not isinstance(v, dict | bool)
            )
            console.print(f"[bold]{name}[/]: {shown}", highlight=False)
        for failure in summary.failures:
            err_console.print(f"[bold red]failed:[/] {failure}", highlight=False)
        if any(r.rejected for r in summary.sync) or any(r.rejected for r in summary.map):
            console.print("Rejected records: [bold]crm-hub rejected list[/]")
    if not summary.ok:
        raise typer.Exit(1)


def source_status(store: Store, names: list[str]) -> list[dict[str, Any]]:
    """Per source: last run, raw row count, open rejections, state, and who runs it now."""
    with store.read() as conn:
        runs = last_runs(conn, "sync")
        rows = dict(
            conn.execute(select(raw_records.c.source, func.count()).group_by(raw_records.c.source))
            .tuples()
            .all()
        )
        states: dict[str, dict[str, Any]] = {}
        for source, stream, state in conn.execute(
            select(sync_state.c.source, sync_state.c.stream, sync_state.c.state)
        ):
            states.setdefault(source, {})[stream] = state
        rejected = count_open(conn, "sync")
    holders = lease_holders(store)
    report = []
    for name in names:
        run = runs.get(name) or {}
        holder = holders.get(f"sync:{name}")
        report.append(
            {
                "source": name,
                "running": bool(holder),
                "running_pid": holder["pid"] if holder else None,
                "last_run_id": run.get("id"),
                "last_status": run.get("status"),
                "last_started_at": run.get("started_at"),
                "last_finished_at": run.get("finished_at"),
                "last_counts": run.get("counts") or {},
                "last_error": run.get("error"),
                "raw_records": rows.get(name, 0),
                "open_rejections": rejected.get(name, 0),
                "state": {
                    stream: {k: v for k, v in s.items() if k != "files"}
                    for stream, s in states.get(name, {}).items()
                },
            }
        )
    return report


@handle_errors
def status_command(config: ConfigOption = None, json_output: JsonOption = False) -> None:
    """Show each source: last run and its counts, raw records, rejections, saved state."""
    hub, store = load(config)
    report = source_status(store, list(hub.sources))
    if json_output:
        emit_json({"store": store.safe_url, "sources": report})
        return
    table = Table(title=f"sources in {store.safe_url}")
    for column in ("source", "status", "last run", "read", "new", "changed", "raw", "rejected"):
        table.add_column(
            column,
            no_wrap=True,
            justify="left" if column in ("source", "status", "last run") else "right",
        )
    short = {"succeeded": "[green]ok[/]", "failed": "[red]failed[/]"}
    notes: list[str] = []
    for item in report:
        counts = item["last_counts"]
        started = item["last_started_at"]
        status = (
            "[yellow]running[/]" if item["running"] else short.get(item["last_status"], "never run")
        )
        cursors = [str(s["cursor"]) for s in item["state"].values() if s.get("cursor")]
        table.add_row(
            item["source"],
            status,
            f"{started:%m-%d %H:%M}" if started else "-",
            f"{counts.get('read', 0):,}",
            f"{counts.get('inserted', 0):,}",
            f"{counts.get('updated', 0):,}",
            f"{item['raw_records']:,}",
            f"{item['open_rejections']:,}",
        )
        if cursors:
            notes.append(f"{item['source']}: cursor at {', '.join(cursors)}")
    console.print(table)
    for note in notes:
        console.print(note, highlight=False)
    for item in report:
        if item["last_error"]:
            console.print(f"[red]{item['source']}[/]: {item['last_error']}", highlight=False)
