"""Read API under load: 50 concurrent clients on loopback against uvicorn worker processes.

python benchmarks/api.py [--masters 1000000] [--clients 50] [--seconds 30] [--workers 2]
                         [--store-url postgresql+psycopg://postgres@127.0.0.1:5432/crm_hub_bench]

Builds (once; cached under --cache, default /tmp/crm-hub-bench-api) a SQLite store of N active
masters with profiles, traits, one source record and link each, and an online-matching model.
Starts the API as a deployment would: ``crm-hub serve --workers W`` (uvicorn worker
processes). This process is the load generator: N keep-alive
connections (asyncio, raw HTTP/1.1, so the generator spends little of the shared CPU), each
sending its next request as soon as the last answer arrived (a closed loop). Phases:

* ``single``: one client, 5 s of phone searches and profile reads: the service time, no queue;
* ``mixed``: the issue's shape, --clients clients doing phone searches and profile reads
  (``GET /customers?q=<phone>``, ``GET /customers/{id}``) for --seconds;
* ``email``: --clients clients searching by e-mail, --short-seconds;
* ``match``: --clients clients calling ``POST /match`` (service token), --short-seconds.

Prints p50/p99 latency and requests/s per kind and one ``RESULT`` line per kind with its target
(p99 <= 20 ms for phone, e-mail and id lookups; <= 50 ms for POST /match). With a closed loop
of C clients, mean latency is C / throughput (Little's law): on 2 cores the queue, not the
query, decides p99. Run it under ``flock /tmp/bench.lock`` on a shared machine. ``cpu_us`` is
the server's CPU time (every worker) per request of the phase: steadier than latency when other
work shares the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import socket
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import httpx
import numpy as np
import orjson
import psutil
from sqlalchemy import func, select

from crm_hub.api.tokens import create_token
from crm_hub.identity.comparisons import comparison, comparison_names
from crm_hub.identity.online import save_model
from crm_hub.identity.scoring import FellegiSunter
from crm_hub.store import Store, open_store
from crm_hub.store.schema import master_links, masters, profiles, source_customers, traits

NOW = datetime(2026, 3, 1, tzinfo=UTC)
BATCH = 20_000
DATA_VERSION = 2  # bump when the generated people change: the cached store is rebuilt
BRANCHES = ("north", "south", "east", "west")
TARGETS = {"phone": 20.0, "email": 20.0, "id": 20.0, "match": 50.0}


def master_id(i: int) -> str:
    return f"m_{i:026d}"


def phone(i: int) -> str:
    """A valid UK mobile for every i < 8 M (07700 2xxxxx and up are not: Ofcom's plan)."""
    return f"+44{7400000001 + i}"


def email(i: int) -> str:
    return f"person{i}@example.com"


def _batch(ids: range) -> dict[object, list[dict[str, object]]]:
    return {
        masters: [{"master_id": master_id(i), "status": "active", "member_count": 1,
                   "created_at": NOW, "updated_at": NOW, "change_seq": 1} for i in ids],
        profiles: [{"master_id": master_id(i), "full_name": f"Person {i}", "first_name": "Person",
                    "last_name": str(i), "email": email(i), "phone": phone(i),
                    "branch": BRANCHES[i % 4], "updated_at": NOW, "change_seq": 2} for i in ids],
        traits: [{"master_id": master_id(i), "orders_count": i % 50, "visits_count": i % 30,
                  "total_spend": Decimal(i % 1000), "currency": "GBP", "computed_at": NOW,
                  "change_seq": 3} for i in ids],
        source_customers: [{"source": "pos", "source_id": f"c{i}", "full_name": f"Person {i}",
                            "first_name": "Person", "last_name": str(i), "email": email(i),
                            "email_match_key": email(i), "phone": phone(i),
                            "branch": BRANCHES[i % 4], "deleted": False, "stream": "customers",
                            "raw_id": i + 1, "raw_change_seq": i + 1, "mapped_at": NOW}
                           for i in ids],
        master_links: [{"source": "pos", "source_id": f"c{i}", "master_id": master_id(i),
                        "reason": "single", "linked_at": NOW, "change_seq": 4} for i in ids],
    }  # fmt: skip


def prior_model() -> FellegiSunter:
    """The comparisons' own prior m/u: what resolve starts EM from (enough to time scoring)."""
    names = tuple(comparison_names())
    m = [np.asarray(comparison(n).prior_m, dtype=np.float64) for n in names]
    u = [np.asarray(comparison(n).prior_u, dtype=np.float64) for n in names]
    return FellegiSunter(names, m, u, [x.copy() for x in u], 0.001)


def fill(store: Store, count: int) -> None:
    """Insert ``count`` people and the online-matching model into an empty store."""
    started = time.perf_counter()
    for first in range(0, count, BATCH):
        with store.begin() as conn:
            for table, rows in _batch(range(first, min(first + BATCH, count))).items():
                conn.execute(table.insert(), rows)  # type: ignore[attr-defined]
        if first and first % 200_000 == 0:
            print(f"  {first:,} people, {time.perf_counter() - started:.0f} s", flush=True)
    with store.begin() as conn:
        save_model(conn, prior_model())
        conn.exec_driver_sql("ANALYZE")
    print(f"built {count:,} people in {time.perf_counter() - started:.0f} s", flush=True)


def build_store(path: Path, count: int) -> None:
    """Fill a new SQLite file with ``count`` people; written aside and renamed when complete."""
    partial = path.with_suffix(".partial")
    for leftover in (partial, Path(f"{partial}-wal"), Path(f"{partial}-shm")):
        leftover.unlink(missing_ok=True)
    store = open_store(f"sqlite:///{partial}")
    fill(store, count)
    store.dispose()
    partial.rename(path)


def cached_store(cache: Path, count: int) -> str:
    """The URL of a SQLite store of ``count`` people, built once under ``cache``."""
    cache.mkdir(parents=True, exist_ok=True)
    path = cache / f"api-{DATA_VERSION}-{count}.db"
    if path.exists():
        print(f"reusing {path}", flush=True)
    else:
        print(f"building {count:,} people into {path} (cached for later runs)", flush=True)
        build_store(path, count)
    return f"sqlite:///{path}"


def filled_store(url: str, count: int) -> str:
    """``url`` (a PostgreSQL database of its own: it is emptied) holding ``count`` people."""
    store = open_store(url)
    with store.read() as conn:
        present = conn.execute(select(func.count()).select_from(masters)).scalar_one()
    if present != count:
        print(f"filling {store.safe_url} with {count:,} people (kept for later runs)", flush=True)
        with store.begin() as conn:
            for table in (master_links, source_customers, traits, profiles, masters):
                conn.execute(table.delete())
        fill(store, count)
    store.dispose()
    return url


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(config: Path, port: int, workers: int) -> subprocess.Popen[bytes]:
    """``crm-hub serve --workers``, as README's deployment section runs it."""
    command = [sys.executable, "-m", "crm_hub.cli", "serve", "--config", str(config),
               "--port", str(port), "--workers", str(workers)]  # fmt: skip
    server = subprocess.Popen(command)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        if server.poll() is not None:
            raise SystemExit(f"uvicorn exited with {server.returncode}")
        time.sleep(0.2)
    server.terminate()
    raise SystemExit("uvicorn did not answer /health within 120 s")


def get(path: str, token: str) -> bytes:
    return (f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
            "Accept: application/json\r\n\r\n").encode()  # fmt: skip


def post(path: str, token: str, body: Mapping[str, object]) -> bytes:
    data = orjson.dumps(body)
    head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n")  # fmt: skip
    return head.encode() + data


@dataclass
class Requests:
    """Makes the raw request of each kind for a random person, and checks its answer."""

    count: int
    staff: str
    service: str
    rng: random.Random = field(default_factory=lambda: random.Random(7))

    def make(self, kind: str) -> tuple[bytes, Callable[[bytes], bool]]:
        i = self.rng.randrange(self.count)
        one = lambda body: len(orjson.loads(body)["items"]) == 1  # noqa: E731
        if kind == "phone":  # a till types the national format with a space
            national = "0" + phone(i)[3:]
            return get(f"/customers?q={national[:5]}%20{national[5:]}", self.staff), one
        if kind == "email":
            return get(f"/customers?q=Person{i}%40example.com", self.staff), one
        if kind == "id":
            return get(f"/customers/{master_id(i)}", self.staff), (
                lambda body: orjson.loads(body)["master_id"] == master_id(i)
            )
        record = {"first_name": "Person", "last_name": str(i), "email": email(i),
                  "phone": "0" + phone(i)[3:]}  # fmt: skip
        return post("/match", self.service, record), (
            lambda body: orjson.loads(body)["master_id"] == master_id(i)
        )


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    length = next(
        int(line.split(":", 1)[1]) for line in lines if line.lower().startswith("content-length:")
    )
    return status, await reader.readexactly(length)


@dataclass
class Tally:
    """Latencies (ms) per kind, and failures."""

    ms: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    failures: list[str] = field(default_factory=list)


async def _client(port: int, kinds: Iterator[str], requests: Requests, until: float,
                  tally: Tally, check_every: int) -> None:  # fmt: skip
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    n = 0
    while time.perf_counter() < until:
        kind = next(kinds)
        raw, check = requests.make(kind)
        started = time.perf_counter()
        writer.write(raw)
        status, body = await _read_response(reader)
        tally.ms[kind].append((time.perf_counter() - started) * 1000)
        n += 1
        if status != 200 or (n % check_every == 0 and not check(body)):
            tally.failures.append(f"{kind} {status} {body[:200]!r}")
    writer.close()


async def _phase(port: int, requests: Requests, kinds: tuple[str, ...], clients: int,
                 seconds: float) -> tuple[Tally, float]:  # fmt: skip
    tally = Tally()

    def rotation(offset: int) -> Iterator[str]:
        while True:
            for k in range(len(kinds)):
                yield kinds[(k + offset) % len(kinds)]

    started = time.perf_counter()
    until = started + seconds
    await asyncio.gather(
        *(_client(port, rotation(c), requests, until, tally, 10) for c in range(clients))
    )
    return tally, time.perf_counter() - started


def percentile(sorted_ms: list[float], share: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    return sorted_ms[max(0, min(len(sorted_ms) - 1, int(len(sorted_ms) * share + 0.5) - 1))]


def server_cpu(server: subprocess.Popen[bytes]) -> float:
    """CPU seconds the server's processes (supervisor and workers) have used so far."""
    processes = [psutil.Process(server.pid), *psutil.Process(server.pid).children(recursive=True)]
    return sum(sum(p.cpu_times()[:2]) for p in processes)


def report(
    phase: str, tally: Tally, elapsed: float, clients: int, cpu_s: float
) -> dict[str, float]:
    worst: dict[str, float] = {}
    cpu_us = cpu_s / max(1, sum(len(ms) for ms in tally.ms.values())) * 1e6
    for kind, ms in sorted(tally.ms.items()):
        ms.sort()
        p50, p99 = percentile(ms, 0.50), percentile(ms, 0.99)
        rps = len(ms) / elapsed
        print(f"{phase:<7} {kind:<6} {clients:>7} {len(ms):>9,} {rps:>8.0f} {p50:>8.2f} "
              f"{p99:>8.2f} {ms[-1]:>8.1f} {cpu_us:>7.0f}")  # fmt: skip
        worst[kind] = p99
    for failure in tally.failures[:5]:
        print(f"  FAILED {failure}")
    if tally.failures:
        raise SystemExit(f"{len(tally.failures)} requests failed in phase {phase}")
    return worst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--masters", type=int, default=1_000_000)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=30.0, help="Length of the mixed phase.")
    parser.add_argument("--short-seconds", type=float, default=10.0,
                        help="Length of the e-mail and match phases.")  # fmt: skip
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes.")
    parser.add_argument("--cache", type=Path, default=Path("/tmp/crm-hub-bench-api"))
    parser.add_argument("--build-only", action="store_true", help="Build the cached store, stop.")
    parser.add_argument("--store-url", help="Serve this store, not the cached SQLite file (a"
                        " PostgreSQL database of its own, filled once).")  # fmt: skip
    args = parser.parse_args()
    url = (filled_store(args.store_url, args.masters) if args.store_url
           else cached_store(args.cache, args.masters))  # fmt: skip
    if args.build_only:
        return
    store: Store = open_store(url)
    staff = create_token(store, name="bench-staff", role="manager").secret
    service = create_token(store, name="bench-match", role="service").secret
    store.dispose()
    config = args.cache / f"hub-{store.dialect}-{args.masters}.yaml"
    config.write_text(f"store: {url}\n", encoding="utf-8")
    port = free_port()
    server = start_server(config, port, args.workers)
    requests = Requests(args.masters, staff, service)
    phases = [("single", ("phone", "id"), 1, 5.0),
              ("mixed", ("phone", "id"), args.clients, args.seconds),
              ("email", ("email",), args.clients, args.short_seconds),
              ("match", ("match",), args.clients, args.short_seconds)]  # fmt: skip
    print(f"{args.masters:,} masters in {store.dialect}, crm-hub serve --workers {args.workers}, "
          f"{os.cpu_count()} cores")  # fmt: skip
    print(f"{'phase':<7} {'kind':<6} {'clients':>7} {'requests':>9} {'req/s':>8} {'p50 ms':>8} "
          f"{'p99 ms':>8} {'max ms':>8} {'cpu_us':>7}")  # fmt: skip
    results: dict[str, tuple[float, float, int]] = {}
    try:
        asyncio.run(_phase(port, requests, ("phone", "id", "email", "match"), 4, 2.0))  # warm-up
        for phase, kinds, clients, seconds in phases:
            cpu_before = server_cpu(server)
            tally, elapsed = asyncio.run(_phase(port, requests, kinds, clients, seconds))
            cpu_s = server_cpu(server) - cpu_before
            for kind, p99 in report(phase, tally, elapsed, clients, cpu_s).items():
                if clients == args.clients:
                    rps = len(tally.ms[kind]) / elapsed
                    results[kind] = (percentile(tally.ms[kind], 0.5), p99, round(rps))
    finally:
        server.terminate()
        server.wait(30)
    for kind, (p50, p99, rps) in results.items():
        target = TARGETS[kind]
        print(f"RESULT kind={kind} masters={args.masters} clients={args.clients} "
              f"workers={args.workers} store={store.dialect} rps={rps} p50_ms={p50:.2f} "
              f"p99_ms={p99:.2f} target_p99_ms={target:.0f} ok={p99 <= target}")  # fmt: skip


if __name__ == "__main__":
    main()
