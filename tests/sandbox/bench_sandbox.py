"""Benchmark the sandbox: world build time and a full Square customer walk over HTTP.

Not collected by pytest (the name does not start with ``test_``). Run::

    .venv/bin/python tests/sandbox/bench_sandbox.py --customers 100000
"""

from __future__ import annotations

import argparse
import resource
import time

import httpx

from connectors.sandbox import SandboxConfig, SandboxProcess, SandboxServer, build_world


def walk_square_customers(url: str) -> tuple[int, int]:
    """Page through every Square customer (limit 100); returns (customers, pages)."""
    seen: set[str] = set()
    pages = 0
    headers = {"Authorization": "Bearer sandbox-square-token"}
    with httpx.Client(base_url=url, headers=headers, timeout=30) as client:
        cursor = None
        while True:
            params = {"limit": 100, **({"cursor": cursor} if cursor else {})}
            answer = client.get("/square/v2/customers", params=params)
            answer.raise_for_status()
            page = answer.json()
            pages += 1
            ids = [c["id"] for c in page.get("customers", [])]
            if seen.intersection(ids):
                raise AssertionError("a customer was served twice")
            seen.update(ids)
            cursor = page.get("cursor")
            if not cursor:
                return len(seen), pages


def main() -> None:
    """Measure and report."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--subprocess",
        action="store_true",
        help="serve from a child process, so the client does not share this process's GIL",
    )
    args = parser.parse_args()

    started = time.perf_counter()
    world = build_world(args.seed, args.customers)
    built = time.perf_counter() - started
    rows = sum(len(t) for t in world.tables.values())
    print(f"build_world({args.customers:,}): {built:.2f} s, {rows:,} rows")  # noqa: T201

    if args.subprocess:
        options = ("--no-rate-limits",)
        with SandboxProcess(customers=args.customers, seed=args.seed, extra_args=options) as proc:
            expected = proc.info["tables"]["square.customers"]
            started = time.perf_counter()
            count, pages = walk_square_customers(proc.url)
            walked = time.perf_counter() - started
    else:
        config = SandboxConfig(seed=args.seed, customers=args.customers, enforce_rate_limits=False)
        with SandboxServer(config) as server:
            expected = len(server.sandbox.world.tables["square.customers"])
            started = time.perf_counter()
            count, pages = walk_square_customers(server.url)
            walked = time.perf_counter() - started
    if count != expected:
        raise AssertionError(f"walked {count} customers, expected {expected}")
    rate = count / walked
    print(f"paged {count:,} Square customers in {pages} pages: {walked:.2f} s ({rate:,.0f}/s)")  # noqa: T201
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS of this process {peak:.0f} MB")  # noqa: T201


if __name__ == "__main__":
    main()
