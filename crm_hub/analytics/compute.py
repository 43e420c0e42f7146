"""The entry point: compute every report and store it whole, in one transaction."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Table, delete, select, text

from crm_hub.analytics.campaigns import campaign_rows, rate
from crm_hub.analytics.lifecycle import FUNNEL_COUNTS, cohort_rows, funnel_rates, funnel_rows
from crm_hub.config.models import HubConfig
from crm_hub.errors import ConfigError
from crm_hub.logging import get_logger
from crm_hub.store import Store
from crm_hub.store.schema import report_campaigns, report_cohorts, report_funnel

__all__ = [
    "FORM_SOURCE_TYPES",
    "PERIODS",
    "compute_reports",
    "form_sources_of",
    "read_report",
    "regroup_cohorts",
    "regroup_funnel",
]

# hub.yaml source types whose customers are web-form responses (leads).
FORM_SOURCE_TYPES = frozenset({"typeform"})
PERIODS = ("month", "quarter", "year")
REPORT_TABLES: dict[str, Table] = {
    "campaigns": report_campaigns,
    "funnel": report_funnel,
    "cohorts": report_cohorts,
}
_CENT = Decimal("0.01")
_LOCK = 7_451_228_908  # pg advisory lock id: one report writer at a time
_log = get_logger(__name__)


def form_sources_of(config: HubConfig) -> list[str]:
    """Names of the sources in hub.yaml whose records are web-form responses."""
    return sorted(name for name, source in config.sources.items()
                  if source.type in FORM_SOURCE_TYPES)  # fmt: skip


def compute_reports(
    store: Store,
    config: HubConfig,
    *,
    today: date | None = None,
    attribution_days: int = 30,
    regular_orders: int = 5,
    form_sources: Collection[str] | None = None,
) -> dict[str, list[dict[str, Any]]]:
    """Compute the campaign, funnel and cohort reports and replace ``report_*`` with them.

    Args:
        store: The store to read canonical rows from and write the reports to.
        config: hub.yaml: campaign costs (``campaigns:``) and which sources are web forms.
        today: Cohorts run up to this day's month. Default: today (UTC).
        attribution_days: A first order this many days after a touch converts the campaign.
        regular_orders: Orders after the lead that make a person a regular.
        form_sources: Sources whose records are form leads. Default: typeform sources.

    Returns:
        ``{"campaigns": rows, "funnel": rows, "cohorts": rows}`` as stored.

    Raises:
        ConfigError: a parameter is out of range.
    """
    if attribution_days < 1:
        raise ConfigError(f"attribution days must be 1 or more, not {attribution_days}")
    if regular_orders < 2:
        raise ConfigError(f"a regular needs 2 or more orders, not {regular_orders}")
    today = today or datetime.now(UTC).date()
    forms = sorted(form_sources) if form_sources is not None else form_sources_of(config)
    computed_at = datetime.now(UTC)
    with store.read() as conn:
        reports = {
            "campaigns": campaign_rows(
                conn, config.campaigns, forms, attribution_days=attribution_days
            ),
            "funnel": funnel_rows(conn, forms, regular_orders=regular_orders),
            "cohorts": cohort_rows(conn, today=today),
        }
    for rows in reports.values():
        for row in rows:
            row["computed_at"] = computed_at
    with store.begin() as conn:
        if store.dialect == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _LOCK})
        for name, table in REPORT_TABLES.items():
            conn.execute(delete(table))
            if reports[name]:
                conn.execute(table.insert(), reports[name])
    _log.info(
        "reports computed",
        campaigns=len(reports["campaigns"]),
        funnel=len(reports["funnel"]),
        cohorts=len(reports["cohorts"]),
    )
    return reports


def read_report(conn: Connection, name: str, *, branch: str | None = None) -> list[dict[str, Any]]:
    """The stored rows of one report (optionally one branch), in key order; money in cents."""
    table = REPORT_TABLES[name]
    query = select(table).order_by(*table.primary_key.columns)
    if branch is not None and "branch" in table.c:
        query = query.where(table.c.branch == branch)
    return [
        {k: v.quantize(_CENT) if isinstance(v, Decimal) else v for k, v in row.items()}
        for row in conn.execute(query).mappings()
    ]  # money in cents on both dialects (PostgreSQL gives back 4 places)


def period_of(month: str, period: str) -> str:
    """``YYYY-MM`` as its month, quarter (``YYYY-Qn``) or year."""
    if period == "month":
        return month
    if period == "quarter":
        return f"{month[:4]}-Q{(int(month[5:7]) - 1) // 3 + 1}"
    if period == "year":
        return month[:4]
    raise ConfigError(f"period {period!r} is not one of {', '.join(PERIODS)}")


def regroup_funnel(
    rows: list[dict[str, Any]], *, period: str = "month", by_branch: bool = False
) -> list[dict[str, Any]]:
    """Sum funnel rows by period (and branch, or all branches as ``all``); rates recomputed."""
    sums: dict[tuple[str, str], dict[str, int]] = defaultdict(
        lambda: dict.fromkeys(FUNNEL_COUNTS, 0)
    )
    for row in rows:
        key = (period_of(row["period"], period), row["branch"] if by_branch else "all")
        for count in FUNNEL_COUNTS:
            sums[key][count] += row[count]
    return [funnel_rates({"period": p, "branch": b, **counts})
            for (p, b), counts in sorted(sums.items())]  # fmt: skip


def regroup_cohorts(rows: list[dict[str, Any]], *, by_branch: bool = False) -> list[dict[str, Any]]:
    """Sum cohort rows over branches (unless ``by_branch``); retention recomputed."""
    sums: dict[tuple[str, str, int], list[int]] = defaultdict(lambda: [0, 0])
    for row in rows:
        key = (row["cohort"], row["branch"] if by_branch else "all", row["months_since"])
        sums[key][0] += row["cohort_size"]
        sums[key][1] += row["active"]
    return [{"cohort": c, "branch": b, "months_since": k, "cohort_size": size, "active": active,
             "retention": rate(active, size)}
            for (c, b, k), (size, active) in sorted(sums.items())]  # fmt: skip
