"""Write N synthetic customer rows (13 columns) as CSV, fast and deterministic.

python benchmarks/gen_customers.py OUT.csv --rows 1000000 [--seed 1]
"""

from __future__ import annotations

import argparse
import csv
import random
from pathlib import Path

FIRST = ["Ann", "Bob", "Cara", "Dev", "Eli", "Fay", "Gus", "Hana", "Ivo", "Jo", "Kai", "Lea"]
LAST = ["Smith", "Jones", "Brown", "Taylor", "Wilson", "Evans", "Thomas", "Roberts", "Khan"]
CITIES = ["London", "Leeds", "York", "Bath", "Hull", "Derby", "Ely", "Wells"]
COLUMNS = [
    "id",
    "first_name",
    "last_name",
    "email",
    "phone",
    "birth_date",
    "address_line1",
    "city",
    "postcode",
    "country",
    "branch",
    "marketing_opt_in",
    "updated_at",
]


def rows(count: int, seed: int, start: int = 0):
    """Yield ``count`` customer rows as lists, ids from ``start``."""
    rng = random.Random(seed)
    for i in range(start, start + count):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        yield [
            str(i),
            first,
            last,
            f"{first.lower()}.{last.lower()}{i}@example.org",
            f"+44 7{rng.randrange(100_000_000, 999_999_999)}",
            f"{rng.randrange(1940, 2006)}-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d}",
            f"{rng.randrange(1, 300)} {rng.choice(LAST)} Street",
            rng.choice(CITIES),
            f"AB{rng.randrange(1, 99)} {rng.randrange(1, 9)}CD",
            "GB",
            f"branch-{rng.randrange(1, 12)}",
            rng.choice(["true", "false"]),
            f"2026-{rng.randrange(1, 12):02d}-{rng.randrange(1, 29):02d}T12:00:00Z",
        ]


def write(path: Path, count: int, seed: int = 1) -> Path:
    """Write the CSV with a header."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        writer.writerows(rows(count, seed))
    return path


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out", type=Path)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    write(args.out, args.rows, args.seed)
