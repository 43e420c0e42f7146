"""Traits (+ segments) at scale: full computation, then an incremental one after 1,000 changes.

python benchmarks/profile.py [--masters 1000000] [--orders 10000000] [--skip-pg] [--skip-sqlite]
    [--cache DIR [--generate-only]]

Generates masters, profiles (a home branch; 80% with an e-mail), source customers (10% also
in a newsletter source, same master), orders (skewed: a few regulars order a lot; 10% of
masters never order; 3% refunded, 2% cancelled, 2% in EUR), 1-2 lines each, invoices with
payments and newsletter events directly into the store with bulk inserts (COPY on
PostgreSQL), then times:

- full: ``compute_traits(full=True)`` + the first evaluation of the project template's
  segments (``crm_hub/templates/project/mappings/segments.yaml``: birthdays this week, lapsed
  regulars, high value, owes money, new this month, newsletter by branch), target <= 120 s;
- incremental: 1,000 customers' orders re-mapped (new total, newer raw_change_seq), then
  ``compute_traits()`` + the segments again (incremental), target <= 5 s.

``--cache DIR`` keeps the generated store (SQLite: a file in DIR; PostgreSQL: a schema named
after the size) and reuses it next time after emptying what the timed stages write (traits,
segments, their state): generating 10 M orders takes longer than computing them.

Prints a table and a ``RESULT`` line.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import psycopg

sys.path.insert(0, str(Path(__file__).parents[1]))
from crm_hub.config.models import HubConfig  # noqa: E402
from crm_hub.profile.traits import compute_traits  # noqa: E402
from crm_hub.segments import evaluate_segments, load_segments  # noqa: E402
from crm_hub.store import Store, open_store  # noqa: E402
from crm_hub.store.raw import next_change_seq  # noqa: E402

PG_DSN = os.environ.get("CRM_HUB_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
TODAY = date(2026, 6, 15)
EPOCH_TODAY = int(pd.Timestamp(TODAY).timestamp())
BRANCHES = [f"branch_{i:02d}" for i in range(12)]
PRODUCTS = [f"item {i:02d}" for i in range(60)]
CATEGORIES = ["coffee", "tea", "bakery", "breakfast", "lunch", "drinks"]
LINEAGE = {"deleted": False, "stream": "bench", "raw_id": 1, "raw_change_seq": 1}
STAMP = "2026-06-15 06:00:00.000000"
SEGMENTS = Path(__file__).parents[1] / "crm_hub/templates/project/mappings/segments.yaml"
# What the timed stages write: emptied before a cached store is reused.
DERIVED = ("traits", "segment_memberships", "segment_history", "segments")
DERIVED_STATE = ("traits_watermark", "traits_model")
GENERATE_ONLY = False  # --generate-only


def segments_step(store: Store, today: date) -> tuple[float, int]:
    """Evaluate the template's segments after the traits: seconds taken, members in all."""
    hub = HubConfig(base_dir=SEGMENTS.parent, segments=SEGMENTS.name)
    started = time.perf_counter()
    result = evaluate_segments(store, hub, today=today, definitions=load_segments(SEGMENTS))
    return time.perf_counter() - started, sum(s.members for s in result.segments)


def _stamps(epochs: np.ndarray) -> pd.Series:
    return pd.to_datetime(epochs, unit="s").strftime("%Y-%m-%d %H:%M:%S.000000")


def generate(masters: int, orders: int, seed: int = 7) -> Iterator[tuple[str, pd.DataFrame]]:
    """(table, rows) frames, in insertion order."""
    rng = np.random.default_rng(seed)
    ids = pd.Series([f"m_{i:026d}" for i in range(masters)])
    yield (
        "masters",
        pd.DataFrame(
            {
                "master_id": ids,
                "status": "active",
                "member_count": 1,
                "created_at": STAMP,
                "updated_at": STAMP,
                "change_seq": 1,
            }
        ),
    )
    yield (
        "profiles",
        pd.DataFrame(
            {
                "master_id": ids,
                "email": np.where(rng.random(masters) < 0.8, "p" + ids + "@example.com", None),
                "branch": np.array(BRANCHES)[rng.integers(0, len(BRANCHES), masters)],
                "updated_at": STAMP,
                "change_seq": 1,
            }
        ),
    )
    news = rng.random(masters) < 0.10
    born = rng.random(masters) < 0.3
    years = np.where(rng.random(masters) < 0.5, rng.integers(1950, 2008, masters), -1)
    customers = pd.DataFrame({
        "source": "pos", "source_id": "c" + pd.Series(np.arange(masters)).astype(str),
        "birth_year": pd.array(np.where(born & (years > 0), years, -1), dtype="Int64"),
        "birth_month": pd.array(np.where(born, rng.integers(1, 13, masters), -1), dtype="Int64"),
        "birth_day": pd.array(np.where(born, rng.integers(1, 29, masters), -1), dtype="Int64"),
        "consents": np.where(rng.random(masters) < 0.2,
                             '{"email":{"granted":true,"at":"2026-01-01T00:00:00+00:00"}}', None),
        "attributes": np.where(rng.random(masters) < 0.05,
                               '{"allergies":"nuts","favourite_dish":"soup","notes":"x"}', None),
        "updated_at": STAMP, "master": ids,
    })  # fmt: skip
    for col in ("birth_year", "birth_month", "birth_day"):
        customers[col] = customers[col].mask(customers[col] < 0)
    newsletter = pd.DataFrame({
        "source": "news", "source_id": "n" + pd.Series(np.flatnonzero(news)).astype(str),
        "consents": '{"email":{"granted":true,"at":"2025-06-01T00:00:00+00:00"}}',
        "updated_at": STAMP, "master": ids[news].to_numpy(),
    })  # fmt: skip
    both = pd.concat([customers, newsletter], ignore_index=True)
    yield "source_customers", both.drop(columns="master").assign(**LINEAGE, mapped_at=STAMP)
    yield "master_links", pd.DataFrame({"source": both["source"], "source_id": both["source_id"],
                                        "master_id": both["master"], "reason": "single",
                                        "linked_at": STAMP, "change_seq": 1})  # fmt: skip

    buyers = int(masters * 0.9)
    who = (rng.random(orders) ** 2 * buyers).astype(np.int64)  # skewed: low numbers order more
    placed = EPOCH_TODAY - rng.integers(3600, 3 * 365 * 86400, orders)
    status = rng.choice(["completed", "refunded", "cancelled"], orders, p=[0.95, 0.03, 0.02])
    total = rng.integers(300, 6000, orders) / 100
    order_ids = "o" + pd.Series(np.arange(orders)).astype(str)
    yield "orders", pd.DataFrame({
        "source": "pos", "source_id": order_ids,
        "customer_source_id": "c" + pd.Series(who).astype(str),
        "branch": np.array(BRANCHES)[rng.integers(0, len(BRANCHES), orders)],
        "channel": "in_store", "status": status, "placed_at": _stamps(placed),
        "placed_at_offset": np.where(rng.random(orders) < 0.5, "+00:00", "+01:00"),
        "currency": np.where(rng.random(orders) < 0.02, "EUR", "GBP"), "total": total,
        **LINEAGE, "mapped_at": STAMP,
    })  # fmt: skip
    two = rng.random(orders) < 0.5
    first_amount = np.where(two, np.round(total / 2, 2), total)
    line_order = np.concatenate([np.arange(orders), np.flatnonzero(two)])
    line_no = np.concatenate([np.ones(orders, dtype=np.int64), np.full(two.sum(), 2)])
    amount = np.concatenate([first_amount, (total - first_amount)[two]])
    n_lines = len(line_order)
    yield "order_lines", pd.DataFrame({
        "source": "pos", "order_source_id": order_ids.to_numpy()[line_order], "line_no": line_no,
        "product": np.array(PRODUCTS)[rng.integers(0, len(PRODUCTS), n_lines)],
        "amount": np.round(amount, 2), "currency": "GBP",
        "attributes": pd.Series(np.array(CATEGORIES)[rng.integers(0, 6, n_lines)]).map(
            lambda c: f'{{"category":"{c}"}}'),
    })  # fmt: skip

    debtors = rng.choice(masters, max(1, masters // 50), replace=False)
    inv = np.repeat(debtors, 2)
    n_inv = len(inv)
    yield "invoices", pd.DataFrame({
        "source": "pos", "source_id": "i" + pd.Series(np.arange(n_inv)).astype(str),
        "customer_source_id": "c" + pd.Series(inv).astype(str), "status": "open",
        "currency": "GBP", "amount": 100.0, "balance": np.where(rng.random(n_inv) < 0.5, 0, 40.0),
        "due_date": pd.to_datetime(EPOCH_TODAY - rng.integers(-60, 120, n_inv) * 86400,
                                   unit="s").strftime("%Y-%m-%d"),
        **LINEAGE, "mapped_at": STAMP,
    })  # fmt: skip
    yield "payments", pd.DataFrame({
        "source": "pos", "source_id": "p" + pd.Series(np.arange(n_inv)).astype(str),
        "invoice_source_id": "i" + pd.Series(np.arange(n_inv)).astype(str),
        "status": "completed", "currency": "GBP", "amount": 60.0, **LINEAGE, "mapped_at": STAMP,
    })  # fmt: skip
    readers = np.repeat(np.flatnonzero(news), 5)
    n_ev = len(readers)
    yield "events", pd.DataFrame({
        "source": "news", "source_id": "e" + pd.Series(np.arange(n_ev)).astype(str),
        "customer_source_id": "n" + pd.Series(readers).astype(str),
        "kind": rng.choice(["opened", "clicked", "unsubscribed"], n_ev, p=[0.7, 0.28, 0.02]),
        "occurred_at": _stamps(EPOCH_TODAY - rng.integers(3600, 365 * 86400, n_ev)),
        **LINEAGE, "mapped_at": STAMP,
    })  # fmt: skip


_TIMES = ("created_at", "updated_at", "linked_at", "mapped_at", "placed_at", "occurred_at")


def load(store: Store, masters: int, orders: int) -> float:
    started = time.perf_counter()
    for table, frame in generate(masters, orders):
        columns = list(frame.columns)
        with store.begin() as conn:
            raw = conn.connection.driver_connection
            cursor = raw.cursor()
            if store.dialect == "postgresql":
                out = frame.copy()
                for col in _TIMES:
                    if col in out:
                        out[col] = out[col].astype(str) + "+00"
                for start in range(0, len(out), 1_000_000):
                    buffer = io.StringIO()
                    out.iloc[start : start + 1_000_000].to_csv(buffer, header=False, index=False)
                    with cursor.copy(
                        f"COPY {table} ({', '.join(columns)}) FROM STDIN WITH CSV"
                    ) as copy:
                        copy.write(buffer.getvalue())
                cursor.execute(f"ANALYZE {table}")
            else:
                marks = ", ".join("?" for _ in columns)
                sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})"
                data = frame.astype(object).where(frame.notna(), None)
                cursor.executemany(sql, data.itertuples(index=False, name=None))
            cursor.close()
        print(f"  {table}: {len(frame):,} rows", flush=True)
    with store.begin() as conn:
        next_change_seq(conn)
    return time.perf_counter() - started


def change_customers(store: Store, count: int, orders: int) -> None:
    """The map stage re-mapping one order of each of ``count`` customers (spread out)."""
    step = max(1, orders // count)
    ids = [f"o{i}" for i in range(0, orders, step)][:count]
    p = "%s" if store.dialect == "postgresql" else "?"
    with store.begin() as conn:
        after = conn.exec_driver_sql("SELECT MAX(raw_change_seq) FROM orders").scalar() or 0
        cursor = conn.connection.driver_connection.cursor()
        cursor.executemany(
            f"UPDATE orders SET total = {p}, raw_change_seq = {p} "
            f"WHERE source = 'pos' AND source_id = {p}",
            [("77.00" if store.dialect == "sqlite" else 77, after + 1 + i, oid)
             for i, oid in enumerate(ids)],
        )  # fmt: skip
        cursor.close()


def reset(store: Store) -> None:
    """Empty what the timed stages wrote into a cached store."""
    p = "%s" if store.dialect == "postgresql" else "?"
    with store.begin() as conn:
        if store.dialect == "postgresql":  # no dead rows left behind to slow the next run
            conn.exec_driver_sql(f"TRUNCATE {', '.join(DERIVED)}")
        else:
            for table in DERIVED:
                conn.exec_driver_sql(f"DELETE FROM {table}")
        conn.exec_driver_sql(f"DELETE FROM identity_state WHERE name IN ({p}, {p})", DERIVED_STATE)
        conn.exec_driver_sql("ANALYZE")


def prepare(store: Store, name: str, masters: int, orders: int, cached: bool) -> float:
    """Generate the data (seconds taken), or empty the derived tables of a cached store (0)."""
    if cached:
        print(f"{name}: reusing the cached {masters:,} masters, {orders:,} orders", flush=True)
        reset(store)
        return 0.0
    print(f"{name}: generating {masters:,} masters, {orders:,} orders", flush=True)
    return load(store, masters, orders)


def bench(name: str, url: str, masters: int, orders: int, cached: bool) -> dict[str, float]:
    store = open_store(url)
    try:
        loaded = prepare(store, name, masters, orders, cached)
        if GENERATE_ONLY:
            return {"load": loaded, "full": 0.0, "incremental": 0.0}
        started = time.perf_counter()
        full = compute_traits(store, full=True, today=TODAY)
        full_traits = time.perf_counter() - started
        full_segments, members = segments_step(store, TODAY)
        print(f"  full: {full.masters:,} masters, written {full.written:,}, CLV {full.clv_model}, "
              f"traits {full_traits:.1f} s, phases {full.timings}, "
              f"segments {full_segments:.1f} s ({members:,} memberships)", flush=True)  # fmt: skip
        change_customers(store, 1_000, orders)
        started = time.perf_counter()
        inc = compute_traits(store, today=TODAY)
        inc_traits = time.perf_counter() - started
        inc_segments, members = segments_step(store, TODAY)
        print(f"  incremental: {inc.masters:,} masters, written {inc.written:,}, "
              f"traits {inc_traits:.2f} s, phases {inc.timings}, "
              f"segments {inc_segments:.2f} s", flush=True)  # fmt: skip
        return {"load": loaded, "full": full_traits + full_segments,
                "incremental": inc_traits + inc_segments}  # fmt: skip
    finally:
        store.dispose()


def run_sqlite(masters: int, orders: int, cache: Path | None) -> dict[str, float]:
    if cache is None:
        with tempfile.TemporaryDirectory() as folder:
            url = f"sqlite:///{Path(folder) / 'bench.db'}"
            return bench("sqlite", url, masters, orders, cached=False)
    cache.mkdir(parents=True, exist_ok=True)
    path = cache / f"profile_{masters}_{orders}.db"
    cached = path.exists()
    try:
        return bench("sqlite", f"sqlite:///{path}", masters, orders, cached)
    except BaseException:
        if not cached:  # a half-generated store must not be reused
            path.unlink(missing_ok=True)
        raise


def run_postgresql(masters: int, orders: int, cache: bool) -> dict[str, float]:
    schema = f"bench_profile_{masters}_{orders}" if cache else f"bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_DSN, autocommit=True) as conn:
        cached = (
            conn.execute(
                "SELECT 1 FROM information_schema.schemata WHERE schema_name = %s", (schema,)
            ).fetchone()
            is not None
        )
        if not cached:
            conn.execute(f'CREATE SCHEMA "{schema}"')
    keep = False
    try:
        base = PG_DSN.replace("postgresql://", "postgresql+psycopg://", 1)
        url = f"{base}?options=-csearch_path%3D{schema}"
        result = bench("postgresql", url, masters, orders, cached)
        keep = cache
        return result
    finally:
        if not keep:
            with psycopg.connect(PG_DSN, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--masters", type=int, default=1_000_000)
    parser.add_argument("--orders", type=int, default=10_000_000)
    parser.add_argument("--skip-pg", action="store_true")
    parser.add_argument("--skip-sqlite", action="store_true")
    parser.add_argument("--cache", type=Path, help="keep and reuse the generated stores")
    parser.add_argument("--generate-only", action="store_true", help="fill --cache and stop")
    args = parser.parse_args()
    global GENERATE_ONLY
    GENERATE_ONLY = args.generate_only and args.cache is not None
    results: dict[str, dict[str, float]] = {}
    if not args.skip_sqlite:
        results["sqlite"] = run_sqlite(args.masters, args.orders, args.cache)
    if not args.skip_pg:
        results["postgresql"] = run_postgresql(args.masters, args.orders, args.cache is not None)
    if GENERATE_ONLY:
        return 0
    full_target = 120 * args.orders / 10_000_000
    print(f"\n{'store':<12}{'load s':>10}{'full s':>10}{'incr s':>10}")
    ok = True
    for name, r in results.items():
        print(f"{name:<12}{r['load']:>10.1f}{r['full']:>10.1f}{r['incremental']:>10.2f}")
        ok = ok and r["full"] <= full_target and r["incremental"] <= 5.0
    summary = " ".join(
        f"{n}_full_s={r['full']:.1f} {n}_incremental_s={r['incremental']:.2f}"
        for n, r in results.items()
    )
    print(f"RESULT masters={args.masters} orders={args.orders} {summary} "
          f"full_target_s={full_target:.0f} incremental_target_s=5 "
          f"{'PASS' if ok else 'FAIL'}")  # fmt: skip
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
