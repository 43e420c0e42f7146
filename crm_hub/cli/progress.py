"""Rich progress bars for long stages (only on a terminal; pipes get none)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from crm_hub.cli.common import err_console
from crm_hub.sync import SyncProgress

__all__ = ["sync_progress"]


@contextmanager
def sync_progress(enabled: bool = True) -> Iterator[Callable[[SyncProgress], None] | None]:
    """A callback drawing one bar per source: bytes, records, records/s, ETA."""
    if not enabled or not err_console.is_terminal:
        yield None
        return
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TextColumn("{task.fields[records]:>12,} records  {task.fields[rate]:>9,.0f}/s"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    tasks: dict[str, TaskID] = {}
    with Progress(*columns, console=err_console, transient=False) as bars:

        def update(p: SyncProgress) -> None:
            if p.source not in tasks:
                tasks[p.source] = bars.add_task(p.source, total=p.total, records=0, rate=0.0)
            task_id = tasks[p.source]
            elapsed = bars.tasks[task_id].elapsed or 0.0
            rate = p.read / elapsed if elapsed > 0 else 0.0
            bars.update(task_id, completed=p.done, total=p.total, records=p.read, rate=rate)

        yield update
