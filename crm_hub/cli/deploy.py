"""`crm-hub deploy`: hub.yaml ``schedules:`` as Prefect deployments (flows/deployments.py)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from crm_hub.cli.common import (
    ConfigOption,
    JsonOption,
    config_path,
    console,
    emit_json,
    handle_errors,
)


def register(app: typer.Typer) -> None:
    """Add deploy."""
    app.command("deploy")(deploy_command)


@handle_errors
def deploy_command(
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run", help="Print the deployments (flow, cron, time zone, next runs); no server."
        ),
    ] = False,
    config: ConfigOption = None,
    json_output: JsonOption = False,
) -> None:
    """Turn hub.yaml's schedules into Prefect deployments and run them until Ctrl-C.

    One deployment per `schedules:` entry (cron in its `timezone`): `run: run` runs the whole
    pipeline, `run: sync` only syncs. Needs a Prefect server: set PREFECT_API_URL (e.g.
    http://127.0.0.1:4200/api after `prefect server start`). Keep it running (a service): it
    starts each scheduled run. `--dry-run` only shows what it would deploy.
    """
    # Prefect is imported only here: it is slow to import and other commands never need it.
    from flows.deployments import plan_deployments, serve

    path = config_path(config)
    plans = plan_deployments(path)
    if dry_run:
        if json_output:
            emit_json(
                [
                    {
                        "deployment": f"{plan.flow}/{plan.name}",
                        "cron": plan.cron,
                        "timezone": plan.timezone,
                        "parameters": plan.parameters,
                        "next_runs": [t.isoformat() for t in plan.next_runs()],
                    }
                    for plan in plans
                ]
            )
            return
        table = Table(title=f"deployments from {path}")
        for column in ("deployment", "cron", "time zone", "sources", "next run"):
            table.add_column(column, no_wrap=True)
        for plan in plans:
            table.add_row(
                f"{plan.flow}/{plan.name}",
                plan.cron,
                plan.timezone,
                ", ".join(plan.parameters.get("sources", [])) or "all enabled",
                f"{plan.next_runs(1)[0]:%Y-%m-%d %H:%M %Z}",
            )
        console.print(table)
        if not plans:
            console.print("no schedules in hub.yaml: nothing to deploy")
        return
    serve(path)
