"""`crm-hub report`: campaign, sales-funnel and retention-cohort reports: tables, JSON, charts."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from crm_hub.cli.common import ConfigOption, JsonOption, console, emit_json, handle_errors, load
from crm_hub.errors import ConfigError

report_app = typer.Typer(
    help="Reports for the owner and marketing: campaigns, the sales funnel and retention "
    "cohorts (also stored as report_* tables for BI tools)."
)

ChartOption = Annotated[
    Path | None,
    typer.Option(
        "--chart", help="Also draw a chart to this .png or .html file.", show_default=False
    ),
]
BranchOption = Annotated[
    str | None,
    typer.Option(
        "--branch",
        help="Only this branch (e.g. soho). Default: all branches summed.",
        show_default=False,
    ),  # fmt: skip
]
ByBranchOption = Annotated[
    bool, typer.Option("--by-branch", help="One row per branch instead of all branches summed.")
]
StoredOption = Annotated[
    bool,
    typer.Option("--stored", help="Show the reports as last stored; do not recompute them first."),
]
TodayOption = Annotated[
    str | None,
    typer.Option(
        "--today",
        help="Cohorts run up to this day's month, YYYY-MM-DD. Default: today.",
        show_default=False,
    ),  # fmt: skip
]
DaysOption = Annotated[
    int,
    typer.Option(
        "--days",
        help="Attribution window: a first order this many days after a "
        "campaign touch counts as its conversion.",
    ),  # fmt: skip
]
RegularOption = Annotated[
    int, typer.Option("--regular", help="Orders after the lead that make a person a regular.")
]


def register(app: typer.Typer) -> None:
    """Add the report group."""
    app.add_typer(report_app, name="report")


def _rows(
    config: Path | None, name: str, *, stored: bool, today: str | None, days: int, regular: int,
    branch: str | None,
) -> list[dict[str, Any]]:  # fmt: skip
    from crm_hub.analytics import compute_reports, read_report

    hub, store = load(config)
    try:
        if not stored:
            compute_reports(store, hub, today=_day(today), attribution_days=days,
                            regular_orders=regular)  # fmt: skip
        with store.read() as conn:
            return read_report(conn, name, branch=branch)
    finally:
        store.dispose()


def _day(text: str | None) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"--today {text!r} is not a date; write it as YYYY-MM-DD") from None


def _show(rows: list[dict[str, Any]], columns: list[str], title: str) -> None:
    table = Table(title=title)
    for column in columns:
        left = column in ("campaign_id", "channel", "period", "branch", "cohort")
        table.add_column(column.replace("_", " "), justify="left" if left else "right")
    for row in rows:
        table.add_row(*(_cell(column, row.get(column)) for column in columns))
    console.print(table, highlight=False)
    if not rows:
        console.print("No data yet: run the pipeline (crm-hub run) first.", highlight=False)


def _cell(column: str, value: Any) -> str:
    if value is None:
        return "-"
    if column.endswith("rate") or column == "retention":
        return f"{value:.1%}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _finish(name: str, rows: list[dict[str, Any]], columns: list[str], title: str,
            chart: Path | None, json_output: bool) -> None:  # fmt: skip
    written = None
    if chart is not None:
        from crm_hub.analytics.charts import write_chart

        written = write_chart(name, rows, chart, title=title)
    if json_output:
        emit_json(rows)
        return
    _show(rows, columns, title)
    if written is not None:
        console.print(f"chart: {written}", highlight=False)


@report_app.command("campaigns")
@handle_errors
def campaigns_command(
    config: ConfigOption = None,
    days: DaysOption = 30,
    chart: ChartOption = None,
    stored: StoredOption = False,
    json_output: JsonOption = False,
) -> None:
    """Per e-mail campaign and web-form UTM tag: reached, engaged, converted, revenue, CPA."""
    rows = _rows(config, "campaigns", stored=stored, today=None, days=days, regular=5,
                 branch=None)  # fmt: skip
    columns = ["channel", "campaign_id", "reached", "engaged", "converted", "conversion_rate",
               "revenue", "currency", "cost", "cost_per_acquisition"]  # fmt: skip
    _finish("campaigns", rows, columns, f"Campaigns (first order within {days} days)", chart,
            json_output)  # fmt: skip


@report_app.command("funnel")
@handle_errors
def funnel_command(
    config: ConfigOption = None,
    period: Annotated[
        str, typer.Option("--period", help="Group leads by month, quarter or year.")
    ] = "month",
    branch: BranchOption = None,
    by_branch: ByBranchOption = False,
    regular: RegularOption = 5,
    chart: ChartOption = None,
    stored: StoredOption = False,
    json_output: JsonOption = False,
) -> None:
    """Sales funnel: form lead → first order → repeat customer → regular, per period and branch."""
    from crm_hub.analytics.compute import regroup_funnel

    stored_rows = _rows(config, "funnel", stored=stored, today=None, days=30, regular=regular,
                        branch=branch)  # fmt: skip
    rows = regroup_funnel(stored_rows, period=period, by_branch=by_branch or branch is not None)
    columns = ["period", "branch", "leads", "first_orders", "repeat_customers", "regulars",
               "lead_to_order_rate", "order_to_repeat_rate", "repeat_to_regular_rate"]  # fmt: skip
    title = f"Sales funnel by {period}" + (f", branch {branch}" if branch else "")
    _finish("funnel", rows, columns, title, chart, json_output)


@report_app.command("cohorts")
@handle_errors
def cohorts_command(
    config: ConfigOption = None,
    branch: BranchOption = None,
    by_branch: ByBranchOption = False,
    today: TodayOption = None,
    chart: ChartOption = None,
    stored: StoredOption = False,
    json_output: JsonOption = False,
) -> None:
    """Retention cohorts: of the people whose first order fell in a month, who ordered again."""
    from crm_hub.analytics.compute import regroup_cohorts

    stored_rows = _rows(config, "cohorts", stored=stored, today=today, days=30, regular=5,
                        branch=branch)  # fmt: skip
    rows = regroup_cohorts(stored_rows, by_branch=by_branch or branch is not None)
    columns = ["cohort", "branch", "months_since", "cohort_size", "active", "retention"]
    title = "Retention by month of first order" + (f", branch {branch}" if branch else "")
    _finish("cohorts", rows, columns, title, chart, json_output)
