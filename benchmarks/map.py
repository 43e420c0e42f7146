"""Map N raw customer records on SQLite and PostgreSQL; target >= 30,000 records/s.

python benchmarks/map.py [--rows 1000000] [--skip-pg] [--pg postgresql://...] [--workers N]
    [--digest]

Raw records are landed directly (land_batch, the sync stage's write path) from
benchmarks/gen_customers.py rows, then `map_source` runs on them with a mapping that uses the
normalisers (e-mail, UK phone, names, birth date, address, consent). A second run with nothing
changed must read nothing. Prints records/s per database, and one line per database:

    RESULT map <database> rows=<N> seconds=<s> rate=<records/s> workers=<N> rerun_read=<0>
        peak_mb=<the benchmark's own peak RSS> worker_peak_mb=<the largest map worker's>
        cpu_us=<CPU microseconds per record: this process and the map workers, not the server>
        own_cpu_us=<this process's share of it: reading, writing (and SQLite's work)>
        server_cpu_us=<PostgreSQL only: the local server's CPU microseconds per record>

(--workers 1 maps in the benchmark's own process; the default lets map_source decide.) On a
machine shared with other work, cpu_us is steadier than rate: two cores reach 30,000 records/s
when it is below about 66 (PostgreSQL's own work comes on top). Peak
memory is the high-water mark so far: run --rows 100000 and 1000000 to see it stay flat.
--digest also prints a hash of the mapped customers in (source, source_id) order, lineage
times and run ids left out, to compare what two versions of the code wrote.
"""

from __future__ import annotations

import argparse
import hashlib
import resource
import sys
import tempfile
import time
import uuid
from pathlib import Path

import orjson
import psutil
import psycopg
from sqlalchemy import select

sys.path.insert(0, str(Path(__file__).parent))
from gen_customers import COLUMNS, rows  # noqa: E402

from crm_hub.config import load_config  # noqa: E402
from crm_hub.mapping import map_source  # noqa: E402
from crm_hub.store import open_store  # noqa: E402
from crm_hub.store.engine import Store  # noqa: E402
from crm_hub.store.raw import land_batch  # noqa: E402
from crm_hub.store.runs import utcnow  # noqa: E402
from crm_hub.store.schema import source_customers  # noqa: E402

MAPPING = """\
version: 1
phone_region: GB
timezone: Europe/London
streams:
  customers:
    target: customer
    id: id
    fields:
      first_name: first_name
      last_name: last_name
      email: email
      phone: phone
      birth_date: birth_date
      address_line1: address_line1
      city: city
      postcode: postcode
      country: country
      branch: {path: branch, transforms: [lower]}
      consent.email: marketing_opt_in
      updated_at: updated_at
"""


def land(url: str, count: int) -> float:
    store = open_store(url)
    started = time.perf_counter()
    batch: dict[str, tuple[str, str, bool]] = {}
    for values in rows(count, seed=1):
        payload = orjson.dumps(dict(zip(COLUMNS, values, strict=True)), option=orjson.OPT_SORT_KEYS)
        digest = hashlib.blake2b(payload, digest_size=16).hexdigest()
        batch[values[0]] = (digest, payload.decode(), False)
        if len(batch) == 50_000:
            with store.begin() as conn:
                land_batch(
                    conn, "bench", "customers", batch, run_id="bench", now=utcnow(), assume_new=True
                )
            batch = {}
    if batch:
        with store.begin() as conn:
            land_batch(
                conn, "bench", "customers", batch, run_id="bench", now=utcnow(), assume_new=True
            )
    store.dispose()
    return time.perf_counter() - started


def bench(label: str, url: str, count: int, work: Path, workers: int | None, digest: bool) -> None:
    (work / "mappings").mkdir(parents=True, exist_ok=True)
    (work / "mappings" / "bench.yaml").write_text(MAPPING)
    hub = work / "hub.yaml"
    hub.write_text(
        f"store: {url}\nsources:\n  bench:\n    type: file\n    path: none.csv\n"
        "    stream: customers\n    primary_key: [id]\n    mapping: mappings/bench.yaml\n"
    )
    landed = land(url, count)
    config = load_config(hub)
    store = open_store(config.store)
    cpu_before, own_before = _cpu_seconds(), _cpu_seconds(_WHO[:1])
    server_before = _server_cpu() if label == "postgresql" else {}
    first = map_source(store, config, "bench", batch_size=5_000, workers=workers)
    cpu, own_cpu = _cpu_seconds() - cpu_before, _cpu_seconds(_WHO[:1]) - own_before
    server = _server_cpu_since(server_before) if label == "postgresql" else 0.0
    again = map_source(store, config, "bench", workers=workers)
    if digest:
        print(f"DIGEST map {label} customers={_digest(store)}")
    store.dispose()
    rate = first.read / first.seconds if first.seconds else 0.0
    print(
        f"{label:<10} landed {count:,} in {landed:.1f}s; mapped {first.read:,} "
        f"(accepted {first.accepted:,}, rejected {first.rejected:,}) in {first.seconds:.1f}s "
        f"= {rate:,.0f} rec/s; rerun read {again.read} in {again.seconds:.2f}s"
    )
    own, workers_peak = (resource.getrusage(who).ru_maxrss // 1024 for who in _WHO)  # KiB
    print(
        f"RESULT map {label} rows={first.read} seconds={first.seconds:.2f} rate={rate:.0f} "
        f"workers={workers or 'auto'} rerun_read={again.read} peak_mb={own} "
        f"worker_peak_mb={workers_peak} cpu_us={cpu / max(first.read, 1) * 1e6:.1f} "
        f"own_cpu_us={own_cpu / max(first.read, 1) * 1e6:.1f} "
        f"server_cpu_us={server / max(first.read, 1) * 1e6:.1f}"
    )


def _digest(store: Store) -> str:
    """sha256 of the mapped customers, in key order, without id, mapped_at and run_id."""
    names = [c.name for c in source_customers.columns if c.name not in _UNCOMPARED]
    query = select(*(source_customers.c[n] for n in names)).order_by(
        source_customers.c.source, source_customers.c.source_id
    )
    found = hashlib.sha256()
    with store.read() as conn:
        for row in conn.execute(query.execution_options(yield_per=10_000)):
            found.update(repr(tuple(row)).encode())
    return found.hexdigest()


_UNCOMPARED = frozenset({"id", "mapped_at", "run_id"})


def _cpu_seconds(who: tuple[int, ...] | None = None) -> float:
    """CPU time of this process and its finished children (map workers), not the database's."""
    return sum(usage.ru_utime + usage.ru_stime for usage in map(resource.getrusage, who or _WHO))


_WHO = (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)


def _server_cpu() -> dict[int, float]:
    """CPU seconds so far of each local PostgreSQL server process (by pid)."""
    seconds = {}
    for process in psutil.process_iter(["name", "cpu_times"]):
        times = process.info["cpu_times"]
        if process.info["name"] == "postgres" and times is not None:
            seconds[process.pid] = times.user + times.system
    return seconds


def _server_cpu_since(before: dict[int, float]) -> float:
    """The server's CPU seconds since ``before`` (processes that started and ended in between,
    such as parallel index builders, are missed)."""
    return sum(now - before.get(pid, 0.0) for pid, now in _server_cpu().items())


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--skip-pg", action="store_true")
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--workers", type=int, default=None, help="map processes (default: auto)")
    parser.add_argument("--digest", action="store_true", help="print a hash of the customers")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        bench(
            "sqlite",
            f"sqlite:///{work / 'bench.db'}",
            args.rows,
            work / "sqlite",
            args.workers,
            args.digest,
        )
        if not args.skip_pg:
            schema = f"bench_{uuid.uuid4().hex[:8]}"
            with psycopg.connect(args.pg, autocommit=True) as conn:
                conn.execute(f'CREATE SCHEMA "{schema}"')
            try:
                url = args.pg.replace("postgresql://", "postgresql+psycopg://", 1)
                options = f"?options=-csearch_path%3D{schema}"
                bench(
                    "postgresql", url + options, args.rows, work / "pg", args.workers, args.digest
                )
            finally:
                with psycopg.connect(args.pg, autocommit=True) as conn:
                    conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


if __name__ == "__main__":
    main()
