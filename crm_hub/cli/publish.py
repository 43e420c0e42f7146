"""`crm-hub publish`: push what changed to the destinations of hub.yaml."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import orjson
import typer
from rich.table import Table

from crm_hub.cli.common import ConfigOption, JsonOption, console, emit_json, handle_errors, load

if TYPE_CHECKING:
    from crm_hub.publish import PublishResult


def register(app: typer.Typer) -> None:
    """Add the publish command."""
    app.command("publish")(publish_command)


@handle_errors
def publish_command(
    destinations: Annotated[
        list[str] | None,
        typer.Argument(help="Destinations to push to (default: every enabled one)."),
    ] = None,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="Print the records that would be sent; send nothing."),
    ] = False,
    config: ConfigOption = None,
    json_output: JsonOption = False,
) -> None:
    """Push profiles and segment memberships that changed since each destination's last push.

    Only what differs from what the destination last confirmed is sent; people without consent
    for the destination's channel, and erased people, never are. Refused records are kept
    (`crm-hub rejected list --stage publish`) and retried next push. Exit code 1 when a push
    failed or left records unconfirmed, 2 on a configuration error.
    """
    from crm_hub.publish import publish

    hub, store = load(config)
    results = publish(store, hub, destinations or None, dry_run=dry_run)
    _render(results, json_output, dry_run)
    if any(r.config_error for r in results):
        raise typer.Exit(2)
    if any(r.status in ("failed", "incomplete") for r in results):
        raise typer.Exit(1)


def _render(results: list[PublishResult], json_output: bool, dry_run: bool) -> None:
    if json_output:
        emit_json(
            [
                {"destination": r.destination, "run_id": r.run_id, "status": r.status,
                 "error": r.error, **r.counts(), **({"records": r.records} if dry_run else {})}
                for r in results
            ]
        )  # fmt: skip
        return
    if dry_run:
        for r in results:
            console.print(
                f"[bold]{r.destination}[/]: would send {r.sent:,} record(s) "
                f"({r.considered:,} changed, nothing sent)",
                highlight=False,
            )
            for record in r.records:
                console.print(orjson.dumps(record).decode(), highlight=False, soft_wrap=True)
        return
    table = Table(title="publish")
    for column in ("destination", "status", "changed", "sent", "landed", "rejected", "seconds"):
        table.add_column(column, justify="left" if column in ("destination", "status") else "right")
    for r in results:
        table.add_row(r.destination, r.status, f"{r.considered:,}", f"{r.sent:,}",
                      f"{r.confirmed:,}", f"{r.rejected:,}", f"{r.seconds:.1f}")  # fmt: skip
    console.print(table, highlight=False)
    for r in results:
        if r.error:
            console.print(f"[red]{r.destination}:[/] {r.error}", highlight=False, soft_wrap=True)
