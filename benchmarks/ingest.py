"""Ingest benchmark: 1 M customer rows (13 columns) from CSV into the store, end to end.

Runs the real CLI (`crm-hub sync`, CLI start to commit) as a subprocess into SQLite and into
PostgreSQL, then re-syncs the unchanged file (skipped by size and mtime), re-reads it after a
touch (every row hashed and diffed, 0 rows written), and loads the same file with dlt into
SQLite for comparison (merge on the primary key: the same upsert semantics as crm-hub).

    python benchmarks/ingest.py [--rows 1000000] [--skip-dlt] [--skip-pg]

Targets (issue 3): >= 50,000 records/s on each store, peak RSS < 1 GB, >= 4x dlt, and a second
sync of the unchanged file >= 150,000 records/s writing 0 rows. Needs the `bench` extra (dlt).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import psycopg
from sqlalchemy import func, select

sys.path.insert(0, str(Path(__file__).parent))
from gen_customers import write  # noqa: E402

from crm_hub.store import open_store  # noqa: E402
from crm_hub.store.schema import raw_records  # noqa: E402

PG_DSN = os.environ.get("CRM_HUB_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/test")


@dataclass
class Measure:
    """One timed subprocess."""

    name: str
    rows: int
    seconds: float
    peak_mb: float
    written: int | None = None

    @property
    def rps(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0


def timed(name: str, rows: int, cmd: list[str], cwd: Path, env: dict[str, str]) -> Measure:
    """Run ``cmd``; wall time and the child's own peak RSS (wait4, not the group max)."""
    started = time.perf_counter()
    process = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{name}: {' '.join(cmd)} failed with {status}")
    return Measure(name, rows, seconds, usage.ru_maxrss / 1024)


def hub_yaml(folder: Path, store: str, csv_path: Path) -> Path:
    path = folder / "hub.yaml"
    path.write_text(
        f"store: {store}\nsources:\n  pos:\n    type: file\n    path: {csv_path}\n"
        "    stream: customers\n    primary_key: [id]\n"
    )
    return path


def raw_state(store_url: str) -> tuple[int, int]:
    """(rows in raw, highest change_seq): a re-sync that writes nothing leaves both alone."""
    store = open_store(store_url)
    try:
        with store.read() as conn:
            count = conn.execute(select(func.count()).select_from(raw_records)).scalar_one()
            seq = conn.execute(select(func.max(raw_records.c.change_seq))).scalar()
        return int(count), int(seq or 0)
    finally:
        store.dispose()


def bench_store(label: str, store_url: str, csv_path: Path, rows: int, work: Path) -> list[Measure]:
    """First sync, unchanged re-sync, and touched re-read into one store."""
    folder = work / label
    folder.mkdir()
    hub = hub_yaml(folder, store_url, csv_path)
    env = {**os.environ, "CRM_HUB_CONFIG": str(hub)}
    cli = [sys.executable, "-m", "crm_hub.cli", "sync"]
    first = timed(f"{label} first sync", rows, cli, folder, env)
    landed, seq = raw_state(store_url)
    assert landed == rows, f"{label}: {landed} rows landed, expected {rows}"
    again = timed(f"{label} re-sync, unchanged file", rows, cli, folder, env)
    os.utime(csv_path)
    reread = timed(f"{label} re-read after touch (hash diff)", rows, cli, folder, env)
    after = raw_state(store_url)
    again.written = reread.written = (after[0] - landed) + (after[1] - seq)
    assert again.written == 0, f"{label}: the re-sync wrote rows"
    return [first, again, reread]


DLT_SCRIPT = """
import csv, sys, dlt
path, db = sys.argv[1], sys.argv[2]

@dlt.resource(name="customers", primary_key="id", write_disposition="merge")
def customers():
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        batch = []
        for row in reader:
            batch.append(row)
            if len(batch) == 10_000:
                yield batch
                batch = []
        if batch:
            yield batch

pipeline = dlt.pipeline(
    pipeline_name="ingest_bench", pipelines_dir=sys.argv[3],
    destination=dlt.destinations.sqlalchemy(credentials=f"sqlite:///{db}"),
    dataset_name="bench",
)
pipeline.run(customers())
"""


def bench_dlt(csv_path: Path, rows: int, work: Path) -> Measure:
    folder = work / "dlt"
    folder.mkdir()
    script = folder / "load.py"
    script.write_text(DLT_SCRIPT)
    env = {
        **os.environ,
        "RUNTIME__LOG_LEVEL": "WARNING",
        "DLT_TELEMETRY": "false",
        "RUNTIME__DLTHUB_TELEMETRY": "false",
    }
    cmd = [sys.executable, str(script), str(csv_path), str(folder / "dlt.db"), str(folder / "p")]
    return timed("dlt merge into SQLite", rows, cmd, folder, env)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--skip-dlt", action="store_true")
    parser.add_argument("--skip-pg", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="crm-hub-ingest-") as tmp:
        work = Path(tmp)
        csv_path = write(work / "customers.csv", args.rows)
        print(f"{args.rows:,} rows, 13 columns, {csv_path.stat().st_size / 1e6:.0f} MB CSV")
        measures = bench_store("sqlite", f"sqlite:///{work / 'hub.db'}", csv_path, args.rows, work)
        if not args.skip_pg:
            schema = f"bench_{uuid.uuid4().hex[:8]}"
            with psycopg.connect(PG_DSN, autocommit=True) as conn:
                conn.execute(f"CREATE SCHEMA {schema}")
            try:
                url = (
                    PG_DSN.replace("postgresql://", "postgresql+psycopg://")
                    + f"?options=-csearch_path%3D{schema}"
                )
                os.utime(csv_path)
                measures += bench_store("postgresql", url, csv_path, args.rows, work)
            finally:
                with psycopg.connect(PG_DSN, autocommit=True) as conn:
                    conn.execute(f"DROP SCHEMA {schema} CASCADE")
        if not args.skip_dlt:
            measures.append(bench_dlt(csv_path, args.rows, work))
    print(f"\n{'run':44} {'seconds':>8} {'records/s':>11} {'peak MB':>8} {'written':>8}")
    for m in measures:
        written = "-" if m.written is None else str(m.written)
        print(f"{m.name:44} {m.seconds:8.2f} {m.rps:11,.0f} {m.peak_mb:8.0f} {written:>8}")
    by_name = {m.name: m for m in measures}
    sqlite_rps = by_name["sqlite first sync"].rps
    pg = by_name.get("postgresql first sync")
    dlt = by_name.get("dlt merge into SQLite")
    resync = min(m.rps for m in measures if "unchanged" in m.name)
    reread = min(m.rps for m in measures if "touch" in m.name)
    peak = max(m.peak_mb for m in measures if not m.name.startswith("dlt"))
    print(
        f"RESULT ingest sqlite_rps={sqlite_rps:.0f} pg_rps={pg.rps if pg else 0:.0f} "
        f"dlt_rps={dlt.rps if dlt else 0:.0f} resync_rps={resync:.0f} reread_rps={reread:.0f} "
        f"peak_mb={peak:.0f} vs_dlt={sqlite_rps / dlt.rps if dlt else 0:.1f}x"
    )


if __name__ == "__main__":
    main()
