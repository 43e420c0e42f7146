"""`crm-hub map`: raw records to canonical rows; `--preview` shows the result without writing.

The map stage imports the normalisers (pandas): imported inside the commands, so every other
command starts fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import orjson
import typer
from rich.table import Table

from crm_hub.cli.common import (
    ConfigOption,
    JsonOption,
    console,
    emit_json,
    err_console,
    handle_errors,
    load,
)
from crm_hub.errors import ConfigError

if TYPE_CHECKING:
    from crm_hub.mapping import MapResult
    from crm_hub.mapping.stage import PreviewItem


def register(app: typer.Typer) -> None:
    """Add map."""
    app.command("map")(map_command)


@handle_errors
def map_command(
    sources: Annotated[
        list[str] | None,
        typer.Argument(help="Sources to map (default: every enabled one with a mapping)."),
    ] = None,
    preview: Annotated[
        bool,
        typer.Option(
            "--preview", help="Show what the first records become; write nothing (one SOURCE)."
        ),
    ] = False,
    limit: Annotated[int, typer.Option(min=1, help="Records to preview.")] = 10,
    schema: Annotated[
        bool, typer.Option("--schema", help="Print the JSON Schema of mapping files and exit.")
    ] = False,
    wait: Annotated[
        float, typer.Option(help="Seconds to wait when another map of a source is running.")
    ] = 0.0,
    config: ConfigOption = None,
    json_output: JsonOption = False,
) -> None:
    """Turn raw records into canonical customers, orders, invoices, payments and events.

    Incremental: only raw records changed since the last map are read; a changed mapping file
    re-maps its source. Records that cannot be mapped go to `crm-hub rejected list`.
    """
    if schema:
        from crm_hub.mapping.jsonschema import mapping_json_schema

        emit_json(mapping_json_schema())
        return
    hub, store = load(config)
    if preview:
        if not sources or len(sources) != 1:
            raise ConfigError("--preview needs exactly one SOURCE, e.g. crm-hub map --preview pos")
        from crm_hub.mapping import preview_source

        _render_preview(preview_source(store, hub, sources[0], limit=limit), json_output)
        return
    from crm_hub.mapping import map_all

    summary = map_all(store, hub, sources or None, wait=wait)
    if json_output:
        emit_json(
            {
                "ok": not summary.failures,
                "map": [_result_json(r) for r in summary.results],
                "skipped": summary.skipped,
                "failures": summary.failures,
            }
        )
    else:
        console.print(map_table(summary.results))
        if summary.skipped:
            console.print(f"No mapping (skipped): {', '.join(summary.skipped)}", highlight=False)
        for failure in summary.failures:
            err_console.print(f"[bold red]failed:[/] {failure}", highlight=False)
        if any(r.rejected for r in summary.results):
            console.print("Rejected records: [bold]crm-hub rejected list --stage map[/]")
    if summary.failures:
        raise typer.Exit(ConfigError.exit_code if summary.config_error else 1)


def _result_json(result: MapResult) -> dict[str, Any]:
    return {"source": result.source, "run_id": result.run_id, "status": result.status,
            **result.counts()}  # fmt: skip


def map_table(results: list[MapResult]) -> Table:
    """One row per source: read, accepted, rejected, deleted, rows per table, speed."""
    table = Table(title="map")
    for column in ("source", "read", "accepted", "rejected", "deleted", "rows", "seconds"):
        table.add_column(column, justify="left" if column in ("source", "rows") else "right")
    for r in results:
        rows = ", ".join(f"{name} {n:,}" for name, n in sorted(r.tables.items())) or "-"
        note = " (mapping changed: from the start)" if r.remapped else ""
        table.add_row(r.source + note, f"{r.read:,}", f"{r.accepted:,}", f"{r.rejected:,}",
                      f"{r.deleted:,}", rows, f"{r.seconds:.2f}")  # fmt: skip
    return table


def _plain(value: Any) -> Any:
    return orjson.loads(orjson.dumps(value, default=str, option=orjson.OPT_NON_STR_KEYS))


def _render_preview(items: list[PreviewItem], json_output: bool) -> None:
    if json_output:
        emit_json(
            [
                {
                    "stream": item.stream,
                    "record_key": item.record_key,
                    "source_record": item.payload,
                    "table": item.mapped.table if item.mapped else None,
                    "row": _plain(item.mapped.row) if item.mapped else None,
                    "lines": _plain(item.mapped.lines) if item.mapped else [],
                    "rejected": None
                    if item.rejection is None
                    else {"reason": item.rejection.reason_code, "message": item.rejection.message},
                }
                for item in items
            ]
        )
        return
    table = Table(title=f"preview of {len(items)} record(s): nothing is written", show_lines=True)
    for column in ("source record", "becomes"):
        table.add_column(column, overflow="fold", ratio=1)
    for item in items:
        source = orjson.dumps(item.payload, default=str, option=orjson.OPT_INDENT_2).decode()
        if item.rejection is not None:
            result = f"[red]rejected[/] {item.rejection.reason_code}: {item.rejection.message}"
        elif item.mapped is not None:
            shown = {k: v for k, v in item.mapped.row.items() if v is not None}
            if item.mapped.lines:
                shown["lines"] = item.mapped.lines
            body = orjson.dumps(_plain(shown), option=orjson.OPT_INDENT_2).decode()
            result = f"[green]{item.mapped.table}[/]\n{body}"
        else:
            result = "deleted in the source: its canonical rows are marked deleted"
        table.add_row(f"{item.stream} {item.record_key}\n{source}", result)
    console.print(table, highlight=False)
