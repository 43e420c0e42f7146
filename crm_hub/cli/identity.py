"""`crm-hub resolve`, `identity ...` overrides, `review ...` decisions and `explain PERSON`.

The engine (pandas, numpy) loads inside the commands, never at CLI start-up.
"""

from __future__ import annotations

import getpass
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from crm_hub.cli.common import ConfigOption, JsonOption, console, emit_json, handle_errors, load

if TYPE_CHECKING:
    from crm_hub.identity.stage import ResolveResult
    from crm_hub.store import Store

identity_app = typer.Typer(
    help="Correct the matcher: merge two people, keep two apart, split records out. "
    "Overrides are stored and always win over rules and scores."
)
review_app = typer.Typer(help="Pairs the matcher was unsure about, for a person to decide.")

PERSON_HELP = "A master id (m_...), a record (SOURCE:SOURCE_ID), an e-mail or a phone number."
Person = Annotated[str, typer.Argument(help=PERSON_HELP)]
Note = Annotated[str | None, typer.Option(help="Why, for the next person reading it.")]
NoResolve = Annotated[
    bool, typer.Option("--no-resolve", help="Store the override only; apply it on the next run.")
]


def register(app: typer.Typer) -> None:
    """Add resolve, explain and the identity and review groups."""
    app.command("resolve")(resolve_command)
    app.command("explain")(explain_command)
    app.add_typer(identity_app, name="identity")
    app.add_typer(review_app, name="review")


def _resolve(store: Store, *, force: bool = False) -> ResolveResult:
    from crm_hub.identity.stage import resolve_store

    return resolve_store(store, force=force)


def _report(result: ResolveResult, json_output: bool) -> None:
    if json_output:
        emit_json({"ok": True, "run_id": result.run_id, **result.counts()})
        return
    if result.skipped:
        console.print("resolve: nothing changed since the last run")
        return
    console.print(
        f"resolve: {result.records:,} records → {result.masters:,} people "
        f"({result.created:,} new, {result.merged:,} merged, {result.split:,} split, "
        f"{result.retired:,} retired); {result.links_written:,} links written; "
        f"{result.review_open:,} pair(s) to review; {result.seconds:.1f} s"
    )


@handle_errors
def resolve_command(
    force: Annotated[
        bool, typer.Option("--force", help="Re-resolve even when nothing changed.")
    ] = False,
    config: ConfigOption = None,
    json_output: JsonOption = False,
) -> None:
    """Match every source customer into people (masters); only changes are written.

    Runs as part of `crm-hub run`; on its own after editing overrides or settings.
    """
    _, store = load(config)
    _report(_resolve(store, force=force), json_output)


@handle_errors
def explain_command(
    person: Person,
    region: Annotated[
        str, typer.Option(help="Country assumed for a phone number without +code.")
    ] = "GB",
    config: ConfigOption = None,
    json_output: JsonOption = False,
) -> None:
    """Why these records are one person: records, links with rule or score, golden values."""
    from crm_hub.identity.manage import explain, find_masters

    _, store = load(config)
    with store.read() as conn:
        found = find_masters(conn, person, region=region)
        traces = [explain(conn, master) for master in found]
    if not traces:
        from crm_hub.errors import ConfigError

        raise ConfigError(f"nobody in the store matches {person!r}")
    if json_output:
        emit_json(traces if len(traces) > 1 else traces[0])
        return
    for trace in traces:
        _print_trace(trace)


def _print_trace(trace: dict[str, Any]) -> None:
    redirect = (
        "" if trace["asked_for"] in (trace["master_id"],) else f" (from {trace['asked_for']})"
    )
    console.print(f"[bold]{trace['master_id']}[/]{redirect} · {trace['status']} · "
                  f"{len(trace['records'])} record(s)")  # fmt: skip
    records = Table(title="Source records and the link that joined each")
    for column in ("record", "name", "e-mail", "phone", "birth", "link", "p", "evidence"):
        records.add_column(column, overflow="fold")
    for record in trace["records"]:
        link = record["link"]
        evidence = link["evidence"] or {}
        levels = ", ".join(f"{k}={v}" for k, v in (evidence.get("levels") or {}).items())
        linked = "/".join(evidence.get("linked_to") or [])
        name = record.get("full_name") or " ".join(
            filter(None, (record.get("first_name"), record.get("last_name")))
        )
        birth = "-".join(str(record[k]) for k in ("birth_year", "birth_month", "birth_day")
                         if k in record)  # fmt: skip
        probability = "" if link["probability"] is None else f"{link['probability']:.3f}"
        records.add_row(f"{record['source']}:{record['source_id']}", name, record.get("email", ""),
                        record.get("phone", ""), birth, link["reason"], probability,
                        f"with {linked}: {levels}" if linked else "")  # fmt: skip
    console.print(records)
    if trace["golden"]:
        golden = Table(title="Golden values and where they came from")
        for column in ("field", "value", "from", "rule", "at"):
            golden.add_column(column, overflow="fold")
        for name, value in trace["golden"].items():
            golden.add_row(name, str(value.get("value")),
                           f"{value.get('source', '')}:{value.get('source_id', '')}",
                           str(value.get("rule", "")), str(value.get("at", ""))[:16])  # fmt: skip
        console.print(golden)
    for event in trace["events"]:
        others = ", ".join(event["other_ids"] or [])
        console.print(f"  {event['occurred_at']:%Y-%m-%d %H:%M} {event['kind']} "
                      f"{event['master_id']} {others}")  # fmt: skip
    for override in trace["overrides"]:
        console.print(f"  override #{override['id']} {override['kind']} "
                      f"{override['left_source']}:{override['left_source_id']} ~ "
                      f"{override['right_source']}:{override['right_source_id']} "
                      f"({override['origin']})")  # fmt: skip


def _apply(store: Store, count: int, no_resolve: bool, json_output: bool) -> None:
    if not json_output:
        console.print(f"{count} override(s) stored")
    if no_resolve:
        if json_output:
            emit_json({"ok": True, "overrides": count})
        return
    _report(_resolve(store), json_output)


def _override(
    config: Path | None,
    change: Callable[..., int],
    *args: Any,
    no_resolve: bool,
    json_output: bool,
    **kwargs: Any,
) -> None:
    """Store an override with ``change(conn, *args, **kwargs)``, then re-resolve."""
    _, store = load(config)
    with store.begin() as conn:
        count = change(conn, *args, **kwargs)
    _apply(store, count, no_resolve, json_output)


@identity_app.command("merge")
@handle_errors
def merge_command(
    a: Person,
    b: Person,
    note: Note = None,
    no_resolve: NoResolve = False,
    config: ConfigOption = None,
    json_output: JsonOption = False,
) -> None:
    """Declare A and B the same person (a must-link), then re-resolve."""
    from crm_hub.identity.manage import merge

    _override(config, merge, a, b, note=note, no_resolve=no_resolve, json_output=json_output)


@identity_app.command("never")
@handle_errors
def never_command(
    a: Person,
    b: Person,
    note: Note = None,
    no_resolve: NoResolve = False,
    config: ConfigOption = None,
    json_output: JsonOption = False,
) -> None:
    """Declare A and B different people, for good (cannot-links), then re-resolve."""
    from crm_hub.identity.manage import never

    _override(config, never, a, b, note=note, no_resolve=no_resolve, json_output=json_output)


@identity_app.command("split")
@handle_errors
def split_command(
    master: Annotated[str, typer.Argument(help="The master to split (m_..., e-mail, phone).")],
    records: Annotated[
        list[str],
        typer.Argument(help="Records to take out, as SOURCE:SOURCE_ID; they stay together."),
    ],
    note: Note = None,
    no_resolve: NoResolve = False,
    config: ConfigOption = None,
    json_output: JsonOption = False,
) -> None:
    """Take records out of a person into a new person, then re-resolve."""
    from crm_hub.identity.manage import split
    from crm_hub.identity.stage import record_keys

    _override(config, split, master, record_keys(records), note=note, no_resolve=no_resolve,
              json_output=json_output)  # fmt: skip


@identity_app.command("overrides")
@handle_errors
def overrides_command(config: ConfigOption = None, json_output: JsonOption = False) -> None:
    """List every stored override (id, kind, the two records, origin, note)."""
    from crm_hub.identity.manage import list_overrides

    _, store = load(config)
    with store.read() as conn:
        rows = list_overrides(conn)
    if json_output:
        emit_json(rows)
        return
    table = Table(title=f"{len(rows)} override(s)")
    for column in ("id", "kind", "left", "right", "origin", "note", "created"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(str(row["id"]), row["kind"], f"{row['left_source']}:{row['left_source_id']}",
                      f"{row['right_source']}:{row['right_source_id']}", row["origin"],
                      row["note"] or "", f"{row['created_at']:%Y-%m-%d %H:%M}")  # fmt: skip
    console.print(table)


@identity_app.command("remove")
@handle_errors
def remove_command(
    override_id: Annotated[int, typer.Argument(help="Override id from `identity overrides`.")],
    no_resolve: NoResolve = False,
    config: ConfigOption = None,
    json_output: JsonOption = False,
) -> None:
    """Delete an override, then re-resolve (the matcher decides that pair again)."""
    from crm_hub.identity.manage import remove_override

    _, store = load(config)
    with store.begin() as conn:
        remove_override(conn, override_id)
    _apply(store, 0, no_resolve, json_output)


@review_app.command("list")
@handle_errors
def review_list_command(
    limit: Annotated[int, typer.Option(min=1, help="At most this many, most likely first.")] = 50,
    config: ConfigOption = None,
    json_output: JsonOption = False,
) -> None:
    """Open pairs: the two records side by side with the match probability."""
    from crm_hub.identity.manage import list_review

    _, store = load(config)
    with store.read() as conn:
        rows = list_review(conn, limit=limit)
    if json_output:
        emit_json(rows)
        return
    table = Table(title=f"{len(rows)} pair(s) to review")
    for column in ("id", "p", "left", "right", "why"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(str(row["id"]), f"{row['probability']:.3f}", _side(row["left"]),
                      _side(row["right"]), row["reason"])  # fmt: skip
    console.print(table)
    if rows:
        console.print("decide with: crm-hub review decide ID --same | --different")


def _side(record: dict[str, Any]) -> str:
    fields = [record.get("full_name") or " ".join(
        filter(None, (record.get("first_name"), record.get("last_name"))))]  # fmt: skip
    fields += [str(record[k]) for k in ("email", "phone", "city", "postcode") if k in record]
    return f"{record['source']}:{record['source_id']}\n" + "\n".join(f for f in fields if f)


@review_app.command("decide")
@handle_errors
def review_decide_command(
    review_id: Annotated[int, typer.Argument(help="Pair id from `crm-hub review list`.")],
    same: Annotated[
        bool | None,
        typer.Option("--same/--different", help="Same person (merge) or different (keep apart)."),
    ] = None,
    no_resolve: NoResolve = False,
    config: ConfigOption = None,
    json_output: JsonOption = False,
) -> None:
    """Decide a pair; the decision becomes a permanent override."""
    from crm_hub.errors import ConfigError
    from crm_hub.identity.manage import decide_review

    if same is None:
        raise ConfigError("say --same or --different")
    _, store = load(config)
    with store.begin() as conn:
        decide_review(conn, review_id, same=same, by=getpass.getuser())
    _apply(store, 1, no_resolve, json_output)
