"""`crm-hub segments`: list, check, preview and run the segments of mappings/segments.yaml."""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from crm_hub.cli.common import (
    ConfigOption,
    JsonOption,
    config_path,
    console,
    emit_json,
    handle_errors,
    load,
)
from crm_hub.errors import ConfigError

if TYPE_CHECKING:
    from crm_hub.segments import SegmentPreview, SegmentsResult

segments_app = typer.Typer(
    help="Segments: groups of customers defined in mappings/segments.yaml, with who joined "
    "and who left."
)

TodayOption = Annotated[
    str | None,
    typer.Option(
        "--today",
        help="Count relative dates (within_next_days, older_than_days, in_this) from this day, "
        "YYYY-MM-DD. Default: today (UTC).",
        show_default=False,
    ),
]


def register(app: typer.Typer) -> None:
    """Add the segments group."""
    app.add_typer(segments_app, name="segments")


def _day(text: str | None) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"--today {text!r} is not a date; write it as YYYY-MM-DD") from None


@segments_app.command("list")
@handle_errors
def list_command(config: ConfigOption = None, json_output: JsonOption = False) -> None:
    """List defined and stored segments: name, description, members, when last evaluated."""
    from sqlalchemy import select

    from crm_hub.segments import load_definitions
    from crm_hub.store.schema import segments

    hub, store = load(config)
    loaded = load_definitions(hub)
    with store.read() as conn:
        stored = {r["name"]: dict(r) for r in conn.execute(select(segments)).mappings()}
    rows: list[dict[str, Any]] = []
    for name, spec in loaded.spec.segments.items():
        subs = sorted(n for n in stored if n.startswith(f"{name}:")) if spec.per else []
        for shown in [name, *subs] if spec.per else [name]:
            row = stored.get(shown, {})
            rows.append(
                {
                    "name": shown,
                    "description": row.get("description") or spec.description,
                    "members": row.get("member_count") if shown in stored else None,
                    "evaluated_at": row.get("evaluated_at"),
                    "defined": True,
                }
            )
    listed = {r["name"] for r in rows}
    for name, row in sorted(stored.items()):
        if name not in listed:  # no longer defined: its members leave at the next run
            rows.append({"name": name, "description": row["description"], "members":
                         row["member_count"], "evaluated_at": row["evaluated_at"],
                         "defined": False})  # fmt: skip
    if json_output:
        emit_json(rows)
        return
    table = Table(title=f"{len(loaded.spec.segments)} segment(s) in {loaded.display}")
    for column in ("name", "description", "members", "evaluated at"):
        table.add_column(column, justify="right" if column == "members" else "left")
    for r in rows:
        note = "" if r["defined"] else " [yellow](removed: exits at next run)[/]"
        when = r["evaluated_at"]
        table.add_row(
            r["name"] + note,
            r["description"] or "",
            "-" if r["members"] is None else f"{r['members']:,}",
            f"{when:%Y-%m-%d %H:%M}" if when else "never",
        )
    console.print(table, highlight=False)


@segments_app.command("check")
@handle_errors
def check_command(config: ConfigOption = None, json_output: JsonOption = False) -> None:
    """Validate the segments file: shape, fields, operators and values, every problem at once."""
    from crm_hub.config import load_config
    from crm_hub.segments import check_segments, load_definitions

    loaded = load_definitions(load_config(config_path(config)))
    count = check_segments(loaded)
    if json_output:
        emit_json({"ok": True, "file": loaded.display, "segments": count})
    else:
        console.print(f"{loaded.display}: {count} segment(s), all valid.", highlight=False)


@segments_app.command("preview")
@handle_errors
def preview_command(
    name: Annotated[str, typer.Argument(help="The segment to preview.")],
    sample: Annotated[int, typer.Option(min=0, help="People to show in each sample.")] = 10,
    today: TodayOption = None,
    config: ConfigOption = None,
    json_output: JsonOption = False,
) -> None:
    """Show who segment NAME selects now, and who would enter or exit; writes nothing.

    Prints the count, a sample with name and e-mail, and the difference from the membership
    recorded by the last `crm-hub segments run`.
    """
    from crm_hub.segments import preview_segment

    hub, store = load(config)
    previews = preview_segment(store, hub, name, sample=sample, today=_day(today))
    _render_previews(previews, json_output)


@segments_app.command("run")
@handle_errors
def run_command(
    names: Annotated[
        list[str] | None,
        typer.Argument(help="Segments to evaluate (default: all; removed ones then empty out)."),
    ] = None,
    today: TodayOption = None,
    wait: Annotated[
        float, typer.Option(help="Seconds to wait when another segments run is going on.")
    ] = 0.0,
    config: ConfigOption = None,
    json_output: JsonOption = False,
) -> None:
    """Evaluate segments and record who entered and who exited, with the cause.

    Incremental: only people whose profile or traits changed are looked at, unless the
    definition changed or relative dates moved to a new day.
    """
    from crm_hub.segments import evaluate_segments

    hub, store = load(config)
    result = evaluate_segments(store, hub, names=names or None, today=_day(today), wait=wait)
    _render_result(result, json_output)


def _render_result(result: SegmentsResult, json_output: bool) -> None:
    if json_output:
        emit_json(
            {
                "ok": result.status == "succeeded",
                "run_id": result.run_id,
                **result.counts(),
                "segments": [
                    {"name": s.name, "mode": s.mode, "entered": s.entered, "exited": s.exited,
                     "members": s.members, "seconds": s.seconds, "values": s.values}
                    for s in result.segments
                ],
            }
        )  # fmt: skip
        return
    table = Table(title="segments")
    for column in ("segment", "mode", "entered", "exited", "members", "seconds"):
        table.add_column(column, justify="left" if column in ("segment", "mode") else "right")
    for s in result.segments:
        name = s.name if s.values is None else f"{s.name} ({len(s.values)} values)"
        table.add_row(name, s.mode, f"{s.entered:,}", f"{s.exited:,}", f"{s.members:,}",
                      f"{s.seconds:.2f}")  # fmt: skip
    console.print(table, highlight=False)


def _render_previews(previews: list[SegmentPreview], json_output: bool) -> None:
    if json_output:
        emit_json(
            [
                {"name": p.name, "members": p.members, "current": p.current,
                 "would_enter": p.would_enter, "would_exit": p.would_exit, "sample": p.sample,
                 "entering": p.entering, "exiting": p.exiting}
                for p in previews
            ]
        )  # fmt: skip
        return
    if not previews:
        console.print("Nobody: the segment selects no one (nothing is written).")
    for p in previews:
        console.print(
            f"[bold]{p.name}[/]: {p.members:,} member(s) now; currently recorded {p.current:,}; "
            f"would enter {p.would_enter:,}, would exit {p.would_exit:,} (nothing is written)",
            highlight=False,
        )
        for title, people in (("sample", p.sample), ("would enter", p.entering),
                              ("would exit", p.exiting)):  # fmt: skip
            if not people:
                continue
            table = Table(title=title)
            for column in ("master_id", "name", "email"):
                table.add_column(column)
            for person in people:
                table.add_row(person["master_id"], person["full_name"] or "",
                              person["email"] or "")  # fmt: skip
            console.print(table, highlight=False)
