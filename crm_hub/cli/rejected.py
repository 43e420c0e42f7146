"""`crm-hub rejected list`: what a stage could not use, and why; `replay`: map it again."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from crm_hub.cli.common import ConfigOption, JsonOption, console, emit_json, handle_errors, load
from crm_hub.store.rejected import list_rejected

rejected_app = typer.Typer(
    help="Records a stage rejected, with the reason and where they came from."
)


def register(app: typer.Typer) -> None:
    """Add the rejected group."""
    app.add_typer(rejected_app, name="rejected")


@rejected_app.command("list")
@handle_errors
def list_command(
    stage: Annotated[
        str | None, typer.Option(help="Only this stage: sync, map, publish...")
    ] = None,
    source: Annotated[str | None, typer.Option(help="Only this source.")] = None,
    reason: Annotated[
        str | None, typer.Option(help="Only this reason code, e.g. not_a_decimal.")
    ] = None,
    all_: Annotated[bool, typer.Option("--all", help="Include resolved rejections.")] = False,
    limit: Annotated[int, typer.Option(min=1, help="At most this many, newest first.")] = 50,
    config: ConfigOption = None,
    json_output: JsonOption = False,
) -> None:
    """List rejected records: stage, source, where (file:line), reason and message."""
    _, store = load(config)
    with store.read() as conn:
        rows = list_rejected(
            conn, stage=stage, source=source, reason=reason, include_resolved=all_, limit=limit
        )
    if json_output:
        emit_json(rows)
        return
    table = Table(title=f"{len(rows)} rejected record(s)")
    for column in ("stage", "source", "where", "reason", "message", "last seen"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(
            row["stage"],
            row["source"],
            row["location"] or row["record_key"] or "-",
            row["reason_code"],
            row["message"],
            f"{row['last_seen_at']:%Y-%m-%d %H:%M}",
        )
    console.print(table)


@rejected_app.command("replay")
@handle_errors
def replay_command(
    source: Annotated[list[str] | None, typer.Option(help="Only this source (repeatable).")] = None,
    reason: Annotated[str | None, typer.Option(help="Only this reason code.")] = None,
    config: ConfigOption = None,
    json_output: JsonOption = False,
) -> None:
    """Map again the records the map stage rejected, after fixing the mapping or the data.

    Records that now map leave the ledger; the others stay with their (new) reason.
    """
    from crm_hub.cli.mapping import map_table
    from crm_hub.mapping import replay_rejected

    hub, store = load(config)
    names = source or [name for name, s in hub.sources.items() if s.mapping]
    results = [replay_rejected(store, hub, name, reason=reason) for name in names]
    if json_output:
        emit_json([{"source": r.source, "run_id": r.run_id, **r.counts()} for r in results])
        return
    console.print(map_table(results))
