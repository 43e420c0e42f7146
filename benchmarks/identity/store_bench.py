"""The resolve stage over a real store: full resolve, 1,000 new customers, online matching.

    .venv/bin/python benchmarks/identity/store_bench.py --n 100000
    .venv/bin/python benchmarks/identity/store_bench.py --n 1000000 --store postgresql+psycopg://postgres@127.0.0.1:5432/test

Loads the synthetic people (benchmarks/identity/generate.py) into ``source_customers`` as the map
stage would (normalised keys included), holding 1,000 back; runs `resolve_store`; times 1,000
online matches (`OnlineMatcher`) of held-back records; then adds the 1,000 and resolves again.
Prints a table (with the resolve's steps: read, match, write, and ``locked``, the seconds its
write transaction held the store) and ``RESULT identity_store ...``; peak memory is given for
the full resolve alone (Linux: measured from just before it) and for the whole process.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parents[1]))

from generate import ensure_dataset  # noqa: E402

from crm_hub.identity.online import OnlineMatcher  # noqa: E402
from crm_hub.identity.stage import resolve_store  # noqa: E402
from crm_hub.normalize import normalize_addresses, normalize_birth_dates, normalize_phones  # noqa: E402
from crm_hub.normalize.email import normalize_emails  # noqa: E402
from crm_hub.store import Store, open_store  # noqa: E402
from crm_hub.store.runs import utcnow  # noqa: E402
from crm_hub.store.schema import metadata, source_customers  # noqa: E402

HELD_BACK = 1_000
COLUMNS = ("source", "source_id", "first_name", "last_name", "email", "phone", "address_line1",
           "address_line2", "city", "region", "postcode", "country")  # fmt: skip


def out(text: str = "") -> None:
    """Write one line of the report."""
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def canonical_rows(frame: pd.DataFrame, seq: int) -> list[dict[str, object]]:
    """What the map stage would write for these records."""
    emails = normalize_emails(frame["email"])
    phones = normalize_phones(frame["phone"])
    dates = normalize_birth_dates(frame["birth_date"])
    places = normalize_addresses(frame["address_line1"], frame["address_line2"],
                                 frame["postcode"], frame["city"])  # fmt: skip
    now = utcnow()
    data = frame[list(COLUMNS)].astype(object).where(frame[list(COLUMNS)].notna(), None)
    data["email"] = emails["email"].to_numpy(dtype=object)
    data["email_match_key"] = emails["match_key"].to_numpy(dtype=object)
    data["phone"] = phones["e164"].to_numpy(dtype=object)
    data["postcode_key"] = places["postcode_key"].to_numpy(dtype=object)
    for part in ("year", "month", "day"):
        values = dates[part].to_numpy().astype(object)
        values[values == 0] = None
        data[f"birth_{part}"] = values
    data["country"] = None
    rows = data.to_dict("records")
    for row in rows:
        row.update(stream="customers", raw_id=0, raw_change_seq=seq, mapped_at=now,
                   deleted=False)  # fmt: skip
        for key, value in row.items():
            if isinstance(value, np.integer):
                row[key] = int(value)
    return rows


def load(store: Store, frame: pd.DataFrame, seq: int) -> None:
    """Insert the records as canonical rows, 50,000 per statement (few in memory at once)."""
    with store.begin() as conn:
        for start in range(0, len(frame), 50_000):
            conn.execute(source_customers.insert(),
                         canonical_rows(frame.iloc[start : start + 50_000], seq))  # fmt: skip


def peak_since_reset() -> float:
    """Peak resident memory (MB) since `reset_peak` (Linux), else of the whole process."""
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    line = next(line for line in status.splitlines() if line.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024


def reset_peak() -> None:
    """Start measuring peak memory afresh (Linux: clear_refs 5 resets VmHWM)."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def fresh_store(url: str | None, workdir: Path) -> Store:
    """A new empty store: a SQLite file, or a fresh PostgreSQL schema."""
    if url is None:
        return open_store(f"sqlite:///{workdir}/bench.db")
    store = open_store(url)
    with store.begin() as conn:
        for table in reversed(metadata.sorted_tables):
            conn.execute(table.delete())
    return store


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000, help="records (default 100,000)")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--store", default=None, help="store URL (default: a temp SQLite file)")
    parser.add_argument("--queries", type=int, default=1_000)
    args = parser.parse_args()

    data_dir = Path(os.environ.get("CRM_HUB_BENCH_DIR", "/tmp/crm_hub_identity_bench"))
    frame = pd.read_csv(
        ensure_dataset(args.n, args.seed, data_dir), dtype=str, keep_default_na=False
    )
    frame = frame.replace("", None)
    known_count, new = len(frame) - HELD_BACK, frame.iloc[-HELD_BACK:].copy()
    with tempfile.TemporaryDirectory() as tmp:
        store = fresh_store(args.store, Path(tmp))
        clock = time.perf_counter()
        load(store, frame.iloc[:-HELD_BACK], 1)
        load_s = time.perf_counter() - clock
        del frame  # the resolve's memory is what is measured, not the CSV's
        gc.collect()

        reset_peak()
        clock = time.perf_counter()
        first = resolve_store(store)
        resolve_s = time.perf_counter() - clock
        resolve_peak = peak_since_reset()

        matcher = OnlineMatcher(store)
        queries = new.head(args.queries).to_dict("records")
        matcher.match(queries[0])  # loads the model
        latencies = []
        for query in queries:
            started = time.perf_counter()
            matcher.match(query)
            latencies.append((time.perf_counter() - started) * 1000)
        p50, p99 = np.percentile(latencies, [50, 99])

        load(store, new, 2)
        clock = time.perf_counter()
        second = resolve_store(store)
        incremental_s = time.perf_counter() - clock
        store.dispose()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    backend = "sqlite" if args.store is None else "postgresql"
    out(f"{'step':<34}{'value':>14}")
    out(f"{'load ' + str(known_count) + ' customers (s)':<34}{load_s:>14.1f}")
    out(f"{'full resolve (s)':<34}{resolve_s:>14.1f}")
    out(f"{'  people':<34}{first.masters:>14,}")
    out(f"{'  steps (s)':<34}{str(first.steps):>14}")
    out(f"{'  peak memory of the resolve (MB)':<34}{resolve_peak:>14.0f}")
    out(f"{'online match p50 (ms)':<34}{p50:>14.1f}")
    out(f"{'online match p99 (ms)':<34}{p99:>14.1f}")
    out(f"{'+1,000 new, resolve again (s)':<34}{incremental_s:>14.1f}")
    out(f"{'  links written':<34}{second.links_written:>14,}")
    out(f"{'  steps (s)':<34}{str(second.steps):>14}")
    out(f"{'peak memory, whole process (MB)':<34}{peak:>14.0f}")
    out(f"RESULT identity_store backend={backend} n={args.n} resolve_s={resolve_s:.1f} "
        f"online_p50_ms={p50:.1f} online_p99_ms={p99:.1f} incremental_s={incremental_s:.1f} "
        f"peak_mb={peak:.0f} resolve_peak_mb={resolve_peak:.0f}")  # fmt: skip


if __name__ == "__main__":
    main()
