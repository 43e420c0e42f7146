"""`crm-hub match`: resolve a CSV of customer records into master ids, without a store."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from crm_hub.errors import CrmHubError

log = logging.getLogger(__name__)


def match(
    input_csv: Annotated[Path, typer.Argument(help="UTF-8 CSV with a `source_id` column.")],
    out: Annotated[Path, typer.Option("--out", help="Where to write one row per record.")],
    review: Annotated[
        Path | None, typer.Option("--review", help="Where to write pairs for a person to check.")
    ] = None,
    threshold: Annotated[
        float | None,
        typer.Option(
            "--threshold", min=0.0, max=1.0, help="Match probability to link. [default: 0.9]"
        ),
    ] = None,
    region: Annotated[
        str | None,
        typer.Option(
            "--region", help="Region assumed for phones without country code. [default: GB]"
        ),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress bar.")] = False,
) -> None:
    """Find which records are the same person; write `source,source_id,master_id,...`."""
    # Imported here: the engine pulls in numpy, pandas and scipy, which every other command
    # would otherwise pay for at start-up.
    from crm_hub.identity import MatchSettings, resolve
    from crm_hub.identity.csvio import read_records, write_records, write_review

    err = Console(stderr=True)
    threshold = MatchSettings.threshold if threshold is None else threshold
    settings = MatchSettings(
        threshold=threshold,
        review_threshold=min(MatchSettings.review_threshold, threshold),
        default_region=region or MatchSettings.default_region,
    )
    try:
        with Progress(
            TextColumn("{task.description:<10}"),
            BarColumn(),
            TimeElapsedColumn(),
            console=err,
            disable=quiet,
            transient=True,
        ) as bar:
            task = bar.add_task("read", total=1.0)
            records = read_records(input_csv)
            resolution = resolve(
                records,
                settings=settings,
                progress=lambda step, done: bar.update(task, description=step, completed=done),
            )
        write_records(resolution, out)
        if review is not None:
            write_review(resolution, review)
    except CrmHubError as error:
        err.print(f"[red]error:[/red] {error.message}", highlight=False, soft_wrap=True)
        raise typer.Exit(error.exit_code) from error
    stats = resolution.stats
    err.print(
        f"{stats.records} records → {stats.clusters} people; "
        f"{len(resolution.links)} links, {stats.review} pairs to review; wrote {out}",
        highlight=False,
    )


def register(app: typer.Typer) -> None:
    """Add the `match` command to the CLI."""
    app.command("match")(match)
