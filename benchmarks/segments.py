"""The built-in segments over N masters: a full evaluation, a no-op rerun, and an incremental
run after 1,000 customers changed, and the next day's run (relative dates: everyone again, few
moves). Budget: full ≤ 120 s together with traits at 1 M; incremental
after 1,000 changes ≤ 5 s.

python benchmarks/segments.py [--masters 100000 | --million] [--pg] [--pg-url URL]

Masters, profiles and traits are generated inside the database (recursive CTE on SQLite,
generate_series on PostgreSQL), then the six example segments of the project template run.
Prints seconds per segment and a ``RESULT segments`` line.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import text

from crm_hub.config.models import HubConfig
from crm_hub.segments import SegmentOutcome, evaluate_segments, load_segments
from crm_hub.store import Store, open_store
from crm_hub.store.raw import next_change_seq

TEMPLATE = Path(__file__).parents[1] / "crm_hub/templates/project/mappings/segments.yaml"
TODAY = date(2026, 3, 2)

SQLITE_FILL = """
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < :count)
INSERT INTO {table} SELECT {columns} FROM n
"""
SQLITE_COLUMNS = {
    "masters": "'m_' || printf('%026d', i), 'active', NULL, 1, '2026-01-01 00:00:00.000000', "
    "'2026-01-01 00:00:00.000000', 1, NULL",
    "profiles": "'m_' || printf('%026d', i), 'Person ' || i, NULL, NULL,"
    " 'p' || i || '@example.com', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,"
    " NULL, NULL, NULL,"
    " 'branch_' || (i % 40), NULL, NULL, '2026-01-01 00:00:00.000000', 1, NULL",
}
PG_FILL = "INSERT INTO {table} ({names}) SELECT {columns} FROM generate_series(1, :count) AS i"


def _traits_values(dialect: str) -> dict[str, str]:
    if dialect == "sqlite":
        day = "strftime('%Y-%m-%d %H:%M:%S.000000', '2026-03-02', '-' || (i % 400) || ' days')"
        first = "strftime('%Y-%m-%d %H:%M:%S.000000', '2026-03-02', '-' || (i % 900) || ' days')"
        birthday = "date('2026-03-02', '+' || (i % 365) || ' days')"
        money = "printf('%.4f', (i % 1000) * 1.5)"
        balance = "printf('%.4f', CASE WHEN i % 17 = 0 THEN 25 ELSE 0 END)"
        mid = "'m_' || printf('%026d', i)"
    else:
        day = "timestamptz '2026-03-02' - (i % 400) * interval '1 day'"
        first = "timestamptz '2026-03-02' - (i % 900) * interval '1 day'"
        birthday = "date '2026-03-02' + (i % 365)"
        money = "(i % 1000) * 1.5"
        balance = "CASE WHEN i % 17 = 0 THEN 25 ELSE 0 END"
        mid = "'m_' || lpad(i::text, 26, '0')"
    return {
        "master_id": mid,
        "orders_count": "i % 12",
        "visits_count": "i % 12",
        "first_order_at": first,
        "last_order_at": day,
        "total_spend": money,
        "next_birthday": birthday,
        "open_balance": balance,
        "consent_email": "(i % 3 = 0)" if dialect == "postgresql" else "(i % 3 = 0)",
        "unsubscribed": "(i % 50 = 0)",
        "computed_at": "'2026-01-01 00:00:00'",
        "change_seq": "1",
    }


def fill(store: Store, count: int) -> None:
    """Generate masters, profiles and traits in the database."""
    with store.begin() as conn:
        if store.dialect == "sqlite":
            for table, columns in SQLITE_COLUMNS.items():
                conn.execute(
                    text(SQLITE_FILL.format(table=table, columns=columns)), {"count": count}
                )
        else:
            conn.execute(
                text(PG_FILL.format(table="masters", names="master_id, status, member_count, "
                     "created_at, updated_at, change_seq", columns="'m_' || lpad(i::text, 26, "
                     "'0'), 'active', 1, now(), now(), 1")), {"count": count},
            )  # fmt: skip
            conn.execute(
                text(PG_FILL.format(table="profiles", names="master_id, full_name, email, "
                     "branch, updated_at, change_seq", columns="'m_' || lpad(i::text, 26, '0'), "
                     "'Person ' || i, 'p' || i || '@example.com', 'branch_' || (i % 40), now(), "
                     "1")), {"count": count},
            )  # fmt: skip
        values = _traits_values(store.dialect)
        names, columns = ", ".join(values), ", ".join(values.values())
        template = PG_FILL if store.dialect == "postgresql" else SQLITE_FILL
        if store.dialect == "sqlite":
            template = template.replace("INSERT INTO {table}", "INSERT INTO {table} ({names})")
        sql = template.format(table="traits", names=names, columns=columns)
        conn.execute(text(sql), {"count": count})
        next_change_seq(conn)
        conn.exec_driver_sql("ANALYZE")


def change(store: Store, count: int, every: int) -> None:
    """Change ``count`` customers' traits (spend and balance) with one new change_seq."""
    with store.begin() as conn:
        seq = next_change_seq(conn)
        ids = [f"m_{i:026d}" for i in range(every, every * count + 1, every)]
        conn.execute(
            text(
                "UPDATE traits SET total_spend = :spend, open_balance = :balance, "
                "change_seq = :seq WHERE master_id = :id"
            ),
            [{"spend": "900.0000", "balance": "0.0000", "seq": seq, "id": i} for i in ids],
        )


def _grouped(outcomes: list[SegmentOutcome]) -> list[tuple[str, str, int, int, int, float]]:
    """One line per defined segment (a per segment's values summed)."""
    lines: dict[str, list[Any]] = {}
    for s in outcomes:
        name = s.name.split(":")[0] + (":*" if ":" in s.name else "")
        line = lines.setdefault(name, [name, s.mode, 0, 0, 0, 0.0])
        line[2] += s.members
        line[3] += s.entered
        line[4] += s.exited
        line[5] += s.seconds
    return [tuple(line) for line in lines.values()]  # type: ignore[misc]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--masters", type=int, default=100_000)
    parser.add_argument("--million", action="store_true")
    parser.add_argument("--pg", action="store_true")
    parser.add_argument("--pg-url", default="postgresql://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    count = 1_000_000 if args.million else args.masters
    with tempfile.TemporaryDirectory() as folder:
        schema = None
        if args.pg:
            schema = f"bench_{uuid.uuid4().hex[:8]}"
            with psycopg.connect(args.pg_url, autocommit=True) as conn:
                conn.execute(f'CREATE SCHEMA "{schema}"')
            url = args.pg_url.replace("postgresql://", "postgresql+psycopg://", 1)
            url += f"?options=-csearch_path%3D{schema}"
        else:
            url = f"sqlite:///{folder}/bench.db"
        store = open_store(url)
        try:
            started = time.monotonic()
            fill(store, count)
            print(f"generated {count:,} masters in {time.monotonic() - started:.1f} s")
            hub = HubConfig(base_dir=TEMPLATE.parent, segments=TEMPLATE.name)
            loaded = load_segments(TEMPLATE)
            runs = []
            steps = (
                ("full", None, TODAY),
                ("rerun", None, TODAY),
                ("1,000 changed", 1000, TODAY),
                ("next day", None, TODAY + timedelta(days=1)),
            )
            for label, before, day in steps:
                if before:
                    change(store, before, max(1, count // before))
                started = time.monotonic()
                result = evaluate_segments(store, hub, today=day, definitions=loaded)
                seconds = time.monotonic() - started
                runs.append((label, seconds))
                moved = sum(s.entered + s.exited for s in result.segments)
                print(f"\n{label}: {seconds:.2f} s, {moved:,} moves")
                for name, mode, members, entered, exited, secs in _grouped(result.segments):
                    print(f"  {name:36} {mode:12} members {members:>9,}  "
                          f"+{entered:<9,} -{exited:<9,} {secs:6.2f} s")  # fmt: skip
            print(
                f"RESULT segments {store.dialect} masters={count} "
                + " ".join(f"{label.replace(' ', '_')}={s:.2f}s" for label, s in runs)
            )
        finally:
            store.dispose()
            if schema:
                with psycopg.connect(args.pg_url, autocommit=True) as conn:
                    conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


if __name__ == "__main__":
    main()
