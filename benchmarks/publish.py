"""The publish diff at scale: N profiles pushed once to a file destination, then 1 % of them
changed (and another 0.5 % touched without a real change); the second push must compute its
diff within budget (≤ 10 s at 1 M) and send exactly the changed ones.

python benchmarks/publish.py [--masters 1000000] [--pg-url postgresql+psycopg://...]

Masters and profiles are generated inside the database (recursive CTE on SQLite,
generate_series on PostgreSQL). Prints the first push, the diff and a ``RESULT publish`` line.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import orjson
from sqlalchemy import text

from crm_hub.config.destinations import FileDestination
from crm_hub.config.models import HubConfig
from crm_hub.publish import publish
from crm_hub.store import Store, open_store
from crm_hub.store.raw import next_change_seq

CONSENT = '{"email": {"granted": true, "at": "2026-01-01T00:00:00+00:00", "source": "bench"}}'
STAMP = "2026-01-01 00:00:00.000000"


def fill(store: Store, count: int) -> None:
    """Masters and profiles m_0..0001 … (consenting, with an e-mail and a name)."""
    sqlite = store.dialect == "sqlite"
    mid = "'m_' || printf('%026d', i)" if sqlite else "'m_' || lpad(i::text, 26, '0')"
    rows = (
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < :count) "
        "SELECT {columns} FROM n"
        if sqlite
        else "SELECT {columns} FROM generate_series(1, :count) AS i"
    )
    stamp = f"'{STAMP}'" if sqlite else "timestamptz '2026-01-01'"
    consent = f"'{CONSENT}'" if sqlite else f"'{CONSENT}'::jsonb"
    with store.begin() as conn:
        seq = next_change_seq(conn)
        conn.execute(
            text(
                "INSERT INTO masters (master_id, status, member_count, created_at, updated_at, "
                "change_seq) " + rows.format(columns=f"{mid}, 'active', 1, {stamp}, {stamp}, {seq}")
            ),
            {"count": count},
        )
        conn.execute(
            text(
                "INSERT INTO profiles (master_id, first_name, last_name, email, consents, "
                "updated_at, change_seq) "
                + rows.format(
                    columns=f"{mid}, 'Person', 'N' || i, 'p' || i || '@example.com', {consent}, "
                    f"{stamp}, {seq}"
                )
            ),
            {"count": count},
        )


def change(store: Store, count: int) -> set[str]:
    """Rename every 100th person (1 %); touch every 200th+1 without changing it (0.5 %)."""
    with store.begin() as conn:
        seq = next_change_seq(conn)
        changed = conn.execute(
            text(
                "UPDATE profiles SET first_name = 'Renamed', change_seq = :seq "
                "WHERE CAST(substr(master_id, 3) AS INTEGER) % 100 = 0 RETURNING master_id"
            ),
            {"seq": seq},
        ).scalars()
        ids = set(changed)
        conn.execute(
            text(
                "UPDATE profiles SET change_seq = :seq "
                "WHERE CAST(substr(master_id, 3) AS INTEGER) % 200 = 1"
            ),
            {"seq": seq},
        )
    return ids


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--masters", type=int, default=1_000_000)
    parser.add_argument("--pg-url", help="Run on this PostgreSQL (an empty schema) instead.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="crm-hub-bench-") as folder:
        base = Path(folder)
        store = open_store(args.pg_url or f"sqlite:///{base / 'store.db'}")
        dest = FileDestination(
            type="file",
            path="out/{run_id}.jsonl",
            channel="email",
            fields=["email", "first_name", "last_name"],
            batch_size=10_000,
        )
        hub = HubConfig(base_dir=base, destinations={"drop": dest})
        began = time.perf_counter()
        fill(store, args.masters)
        print(f"filled {args.masters:,} profiles in {time.perf_counter() - began:.1f} s")
        [first] = publish(store, hub)
        print(f"first push: {first.sent:,} sent in {first.seconds:.1f} s "
              f"(diff {first.diff_seconds:.1f} s)")  # fmt: skip
        changed = change(store, args.masters)
        [second] = publish(store, hub)
        files = sorted((base / "out").glob("*.jsonl"), key=lambda p: p.stat().st_mtime)
        sent = {orjson.loads(line)["master_id"] for line in files[-1].read_bytes().splitlines()}
        exact = sent == changed and second.sent == len(changed)
        budget = 10.0 * args.masters / 1_000_000
        print(f"second push: {second.considered:,} in the change set, {second.sent:,} sent "
              f"in {second.seconds:.2f} s (diff {second.diff_seconds:.2f} s)")  # fmt: skip
        print(
            f"RESULT publish db={store.dialect} masters={args.masters} changed={len(changed)} "
            f"sent={second.sent} exact={exact} diff_seconds={second.diff_seconds:.2f} "
            f"first_push_seconds={first.seconds:.1f} budget={budget:.1f} "
            f"ok={exact and second.diff_seconds <= budget}"
        )
        store.dispose()


if __name__ == "__main__":
    main()
