"""Golden profiles for N masters of 1-3 source customers each; target >= 20,000 masters/s.

python benchmarks/profile_golden.py [--masters 100000 | --million] [--pg] [--pg-url URL]

Source customers, links and masters are written directly into a fresh store (SQLite by
default; PostgreSQL with --pg), with a survivorship.yaml using every rule. Then: a first
profile run (every master), a second one (must write nothing), and one after changing 1% of
the source customers (must rewrite about 1% of the profiles). Prints masters/s per run and a
``RESULT profile_golden`` line for the first run.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import update

from crm_hub.config import load_config
from crm_hub.profile import build_profiles
from crm_hub.store import Store, open_store
from crm_hub.store.raw import next_change_seq
from crm_hub.store.schema import master_links, masters, source_customers

SOURCES = ("pos", "web", "news")
SURVIVORSHIP = """\
version: 1
default: most_recent
fields:
  email: {rule: source_priority, sources: [news, pos]}
  phone: {rule: source_priority, sources: [pos], fallback: [most_recent]}
  birth_date: most_frequent
  full_name: longest
  branch: most_frequent
"""
FIRST = ("Ann", "Bob", "Cy", "Dee", "Eve", "Finn", "Gus", "Hana", "Ivo", "Jo", "Kim", "Lea")
LAST = ("Smith", "Jones", "Taylor", "Brown", "Wilson", "Evans", "Khan", "Lee", "Walker")
CITIES = ("Leeds", "York", "Hull", "Bath", "Derby")
CHUNK = 20_000


def customer(rng: random.Random, n: int, source: str, k: int, seq: int) -> dict[str, Any]:
    first, last = rng.choice(FIRST), rng.choice(LAST)
    email = f"{first.lower()}.{last.lower()}{n}@example.com" if rng.random() < 0.8 else None
    phone = f"+4477009{n % 100000:05d}" if rng.random() < 0.6 else None
    updated = datetime(2024, 1, 1, tzinfo=UTC) + timedelta(minutes=rng.randrange(900_000))
    consent = rng.random() < 0.5
    return {
        "source": source, "source_id": f"{source}-{n}-{k}", "stream": "customers",
        "full_name": f"{first} {last}" if rng.random() < 0.7 else f"{first[0]}. {last}",
        "first_name": first, "last_name": last, "email": email, "email_flag": None,
        "emails": [{"email": email, "match_key": email, "flag": None}] if email else None,
        "phone": phone, "phone_flag": None,
        "phones": [{"e164": phone, "raw": phone, "flag": None}] if phone else None,
        "birth_year": 1960 + n % 40, "birth_month": 1 + n % 12, "birth_day": 1 + n % 28,
        "address_line1": f"{n % 200} High Street", "city": rng.choice(CITIES),
        "postcode": "LS1 1AA", "country": "GB", "branch": rng.choice(("leeds", "york")),
        "consents": {"email": {"granted": rng.random() < 0.7, "source": source,
                               "at": updated.isoformat()}} if consent else None,  # fmt: skip
        "created_at": updated, "updated_at": updated, "deleted": False,
        "raw_id": n, "raw_change_seq": seq, "mapped_at": updated,
    }  # fmt: skip


def build(store: Store, count: int) -> float:
    """Write ``count`` masters with 1-3 source customers each; returns seconds taken."""
    rng, started = random.Random(7), time.perf_counter()
    now = datetime.now(UTC)
    for low in range(0, count, CHUNK):
        rows, links, heads = [], [], []
        with store.begin() as conn:
            seq = next_change_seq(conn)
            for n in range(low, min(low + CHUNK, count)):
                master = f"m_{n:026d}"
                for k in range(rng.choice((1, 1, 2, 2, 3))):
                    row = customer(rng, n, SOURCES[k], k, seq)
                    rows.append(row)
                    links.append({"source": row["source"], "source_id": row["source_id"],
                                  "master_id": master, "reason": "single", "linked_at": now,
                                  "change_seq": seq})  # fmt: skip
                heads.append({"master_id": master, "status": "active", "member_count": 1,
                              "created_at": now, "updated_at": now, "change_seq": seq})  # fmt: skip
            conn.execute(source_customers.insert(), rows)
            conn.execute(master_links.insert(), links)
            conn.execute(masters.insert(), heads)
    return time.perf_counter() - started


def touch(store: Store, count: int) -> None:
    """Change 1% of the pos customers: a new first name, a newer update time."""
    with store.begin() as conn:
        seq = next_change_seq(conn)
        ids = [f"pos-{n}-0" for n in range(0, count, 100)]
        for start in range(0, len(ids), 5_000):
            conn.execute(
                update(source_customers)
                .where(source_customers.c.source_id.in_(ids[start : start + 5_000]))
                .values(
                    first_name="Changed",
                    raw_change_seq=seq,
                    updated_at=datetime(2030, 1, 1, tzinfo=UTC),
                )  # fmt: skip
            )


def bench(label: str, url: str, count: int, work: Path) -> None:
    work.mkdir(parents=True, exist_ok=True)
    (work / "mappings").mkdir(exist_ok=True)
    (work / "mappings" / "survivorship.yaml").write_text(SURVIVORSHIP)
    sources = "".join(
        f"  {s}:\n    type: file\n    path: {s}.csv\n    stream: customers\n    primary_key: [id]\n"
        for s in SOURCES
    )
    (work / "hub.yaml").write_text(f"store: {url}\nsources:\n{sources}")
    config = load_config(work / "hub.yaml")
    store = open_store(config.store)
    built = build(store, count)
    cpu = time.process_time()
    first = build_profiles(store, config)
    cpu = time.process_time() - cpu
    again = build_profiles(store, config)
    touch(store, count)
    third = build_profiles(store, config)
    store.dispose()
    rate = first.masters_read / first.seconds if first.seconds else 0.0
    print(
        f"{label:<10} built {count:,} masters in {built:.1f}s; first run {first.masters_read:,} "
        f"masters, wrote {first.profiles_written:,} in {first.seconds:.1f}s = {rate:,.0f}/s; "
        f"rerun wrote {again.profiles_written} in {again.seconds:.2f}s; after 1% change read "
        f"{third.masters_read:,}, wrote {third.profiles_written:,} in {third.seconds:.2f}s; "
        f"first run used {cpu:.1f}s of CPU (this process) = {count / cpu:,.0f}/s"
    )
    print(
        f"RESULT profile_golden db={label} n={count} seconds={first.seconds:.2f} rate={rate:.0f} "
        f"cpu_seconds={cpu:.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--masters", type=int, default=100_000)
    parser.add_argument("--million", action="store_true", help="1,000,000 masters")
    parser.add_argument("--pg", action="store_true", help="also run on PostgreSQL")
    parser.add_argument("--pg-url", default="postgresql://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    count = 1_000_000 if args.million else args.masters
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        bench("sqlite", f"sqlite:///{work / 'bench.db'}", count, work / "sqlite")
        if args.pg:
            schema = f"bench_{uuid.uuid4().hex[:8]}"
            with psycopg.connect(args.pg_url, autocommit=True) as conn:
                conn.execute(f'CREATE SCHEMA "{schema}"')
            try:
                url = args.pg_url.replace("postgresql://", "postgresql+psycopg://", 1)
                bench("postgresql", f"{url}?options=-csearch_path%3D{schema}", count, work / "pg")
            finally:
                with psycopg.connect(args.pg_url, autocommit=True) as conn:
                    conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


if __name__ == "__main__":
    main()
