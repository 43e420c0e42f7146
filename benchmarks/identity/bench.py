"""Identity benchmark: crm-hub's matcher against Splink 5 on the same synthetic CSV.

    .venv/bin/python benchmarks/identity/bench.py --n 100000
    .venv/bin/python benchmarks/identity/bench.py --n 1000000 --skip-splink

Each matcher runs in its own subprocess, so its time and peak memory are its own. Scores are
pairwise (pairs counted from cluster sizes), plus exact person recovery and the household
false-merge rate. Prints a table and a final ``RESULT identity ...`` line.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parents[1]))

from generate import ensure_dataset  # noqa: E402

DEFAULT_DATA = Path(os.environ.get("CRM_HUB_BENCH_DIR", "/tmp/crm_hub_identity_bench"))


def out(text: str = "") -> None:
    """Write one line of the report to stdout."""
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_ours(path: Path, out: Path) -> dict[str, object]:
    """Read the CSV and resolve it, as `crm-hub match` does; write labels."""
    from crm_hub.identity import resolve
    from crm_hub.identity.csvio import read_records

    start = time.perf_counter()
    records = read_records(path)
    read_s = time.perf_counter() - start
    resolution = resolve(records)
    seconds = time.perf_counter() - start
    resolution.records[["master_id"]].to_csv(out, index=False)
    stats = resolution.stats
    return {
        "seconds": seconds,
        "read_seconds": read_s,
        "peak_mb": _peak_mb(),
        "steps": stats.seconds,
        "candidates": stats.candidates,
        "pairs_per_key": stats.blocking.pairs_per_key,
        "skipped_blocks": stats.blocking.skipped_blocks,
        "rule_links": stats.rule_links,
        "score_links": stats.score_links,
        "vetoed": stats.vetoed,
        "review": stats.review,
        "refused": stats.refused,
    }


def _splink_frame(path: Path) -> pd.DataFrame:
    """Standardise as Splink's tutorials assume: lower case, simple splits, digits only."""
    raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    full = raw["full_name"].str.strip()
    comma = full.str.contains(",")
    parts = full.str.replace(",", " ").str.split()
    first_from_full = np.where(comma, parts.str[-1], parts.str[0])
    last_from_full = np.where(comma, parts.str[0], parts.str[-1])
    first = raw["first_name"].where(raw["first_name"] != "", first_from_full)
    last = raw["last_name"].where(raw["last_name"] != "", last_from_full)

    def clean(series: pd.Series) -> pd.Series:
        series = pd.Series(series, dtype="string").str.lower().str.strip()
        return series.mask(series == "")

    # The same placeholder removal crm-hub does (test@example.com, 0000000000, 1900-01-01):
    # Splink's tutorial data has none, and left in they chain thousands of records together.
    from crm_hub.normalize import normalize_birth_dates, normalize_emails, normalize_phones

    emails = normalize_emails(raw["email"])
    raw["email"] = raw["email"].where(emails["flag"].isna().to_numpy(), "")
    phones = normalize_phones(raw["phone"])
    raw["phone"] = raw["phone"].where(phones["flag"].isna().to_numpy(), "")
    dates = normalize_birth_dates(raw["birth_date"])
    full_date = dates["flag"].isna().to_numpy() & (dates["year"].to_numpy() > 0)
    dob = raw["birth_date"].where(full_date, "").str[:10]
    phone = raw["phone"].str.replace(r"\D", "", regex=True).str[-10:]
    return pd.DataFrame(
        {
            "unique_id": np.arange(len(raw)),
            "first_name": clean(first),
            "surname": clean(last),
            "dob": clean(dob),
            "email": clean(raw["email"]),
            "phone": clean(phone),
            "postcode": clean(raw["postcode"].str.replace(" ", "")),
            "address": clean(raw["address_line1"]),
            "city": clean(raw["city"]),
        }
    )


def run_splink(path: Path, out: Path) -> dict[str, object]:
    """Splink 5 as its tutorials configure it: DuckDB, u by sampling, EM, threshold 0.9."""
    import splink.comparison_library as cl
    from splink import DuckDBAPI, Linker, SettingsCreator, block_on

    start = time.perf_counter()
    frame = _splink_frame(path)
    settings = SettingsCreator(
        link_type="dedupe_only",
        comparisons=[
            cl.NameComparison("first_name").configure(term_frequency_adjustments=True),
            cl.NameComparison("surname").configure(term_frequency_adjustments=True),
            cl.DateOfBirthComparison("dob", input_is_string=True),
            cl.EmailComparison("email"),
            cl.ExactMatch("phone"),
            cl.PostcodeComparison("postcode"),
            cl.JaroWinklerAtThresholds("address", [0.9]),
            cl.ExactMatch("city").configure(term_frequency_adjustments=True),
        ],
        blocking_rules_to_generate_predictions=[
            block_on("first_name", "surname"),
            block_on("surname", "dob"),
            block_on("first_name", "dob"),
            block_on("email"),
            block_on("postcode", "first_name"),
        ],
        retain_intermediate_calculation_columns=False,
    )
    linker = Linker(DuckDBAPI().register(frame), settings)
    linker.training.estimate_probability_two_random_records_match(
        [block_on("first_name", "surname", "dob"), block_on("email")], recall=0.7
    )
    linker.training.estimate_u_using_random_sampling(max_pairs=5e6, seed=1)
    linker.training.estimate_parameters_using_expectation_maximisation(
        block_on("first_name", "surname")
    )
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("dob"))
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("email"))
    predictions = linker.inference.predict(threshold_match_probability=0.9)
    clusters = linker.clustering.cluster_pairwise_predictions_at_threshold(
        predictions, threshold_match_probability=0.9
    )
    labels = clusters.as_pandas_dataframe()[["unique_id", "cluster_id"]]
    seconds = time.perf_counter() - start
    labels = labels.sort_values("unique_id")
    pd.DataFrame({"master_id": labels["cluster_id"].astype(str).to_numpy()}).to_csv(
        out, index=False
    )
    return {"seconds": seconds, "peak_mb": _peak_mb()}


def _worker(args: argparse.Namespace) -> None:
    runner = {"ours": run_ours, "splink": run_splink}[args.worker]
    result = runner(args.data, args.labels)
    args.result.write_text(json.dumps(result))


def _spawn(kind: str, data: Path, workdir: Path) -> tuple[dict[str, object], np.ndarray]:
    labels, result = workdir / f"{kind}.labels.csv", workdir / f"{kind}.json"
    command = [sys.executable, __file__, "--worker", kind, "--data", str(data),
               "--labels", str(labels), "--result", str(result)]  # fmt: skip
    subprocess.run(command, check=True)
    found = json.loads(result.read_text())
    return found, pd.read_csv(labels, dtype=str)["master_id"].to_numpy()


def _order_check(data: Path, orders: int, seed: int) -> str:
    """Resolve shuffled copies of the input; compare partitions and ids."""
    from crm_hub.identity import resolve
    from crm_hub.identity.csvio import read_records

    records = read_records(data)
    base = resolve(records).records.set_index(["source", "source_id"])["master_id"]
    rng = np.random.default_rng(seed)
    same = 0
    for _ in range(orders):
        shuffled = records.iloc[rng.permutation(len(records))].reset_index(drop=True)
        again = resolve(shuffled).records.set_index(["source", "source_id"])["master_id"]
        same += bool(again.reindex(base.index).equals(base))
    return f"{same}/{orders} shuffled orders gave identical ids"


def main() -> None:
    """Run the benchmark and print the table and the RESULT line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--skip-splink", action="store_true")
    parser.add_argument(
        "--orders",
        type=int,
        default=None,
        help="shuffled input orders to check (default 2 up to 100k, else 0)",
    )
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--worker", choices=["ours", "splink"], help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--labels", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        _worker(args)
        return

    from crm_hub.identity.blocking import candidate_pairs
    from crm_hub.identity.csvio import read_records
    from crm_hub.identity.evaluation import (
        blocking_recall,
        exact_recovery,
        household_false_merge_rate,
        pairwise_scores,
    )
    from crm_hub.identity.records import prepare
    from crm_hub.identity.settings import MatchSettings

    started = time.perf_counter()
    data = ensure_dataset(args.n, args.seed, args.data_dir)
    truth_frame = pd.read_csv(data, dtype=str, keep_default_na=False,
                              usecols=["truth_person", "truth_household"])  # fmt: skip
    truth = truth_frame["truth_person"].to_numpy()
    household = truth_frame["truth_household"].replace("", None).to_numpy()
    people = len(np.unique(truth))
    households = pd.Series(household).nunique()
    in_households = pd.Series(truth[pd.notna(household)]).nunique()
    out(f"data {data} ({time.perf_counter() - started:.0f} s): {len(truth)} records, "
          f"{people} people, {households} households holding {in_households} people "
          f"({100 * in_households / people:.1f} %)")  # fmt: skip

    prepared = prepare(read_records(data))
    candidates = candidate_pairs(prepared, MatchSettings())
    direct, reachable = blocking_recall(
        candidates.left, candidates.right, truth[prepared.input_position]
    )
    out(f"blocking: {len(candidates)} candidate pairs, recall {direct:.4f} direct, "
          f"{reachable:.4f} reachable through candidate pairs")  # fmt: skip
    del prepared, candidates

    workdir = args.data_dir / f"run_n{args.n}"
    workdir.mkdir(parents=True, exist_ok=True)
    rows = []
    ours, labels = _spawn("ours", data, workdir)
    rows.append(("crm-hub", ours, labels))
    splink: dict[str, object] | None = None
    if not args.skip_splink:
        splink, splink_labels = _spawn("splink", data, workdir)
        rows.append(("splink 5", splink, splink_labels))

    out()
    out(f"{'matcher':<10} {'F1':>7} {'P':>7} {'R':>7} {'exact':>7} {'hh_merge':>9} "
          f"{'seconds':>8} {'peak_MB':>8}")  # fmt: skip
    scores = {}
    for name, result, found in rows:
        s = pairwise_scores(found, truth)
        scores[name] = s
        exact = exact_recovery(found, truth)
        hh = household_false_merge_rate(found, truth, household)
        out(f"{name:<10} {s.f1:7.4f} {s.precision:7.4f} {s.recall:7.4f} {exact:7.4f} "
              f"{100 * hh:8.2f}% {result['seconds']:8.1f} {result['peak_mb']:8.0f}")  # fmt: skip
    out()
    out(f"crm-hub steps (s): {ours['steps']}; read {ours['read_seconds']:.1f} s")
    out(f"crm-hub pairs per key: {ours['pairs_per_key']}")
    out(
        f"crm-hub links: rules {ours['rule_links']}, score {ours['score_links']}, "
        f"vetoed {ours['vetoed']}, review {ours['review']}, refused {ours['refused']}"
    )
    orders = args.orders if args.orders is not None else (2 if args.n <= 100_000 else 0)
    if orders:
        out(f"order independence: {_order_check(data, orders, args.seed)}")
    mine = scores["crm-hub"]
    theirs = scores.get("splink 5")
    out(
        f"RESULT identity n={args.n} f1={mine.f1:.4f} p={mine.precision:.4f} "
        f"r={mine.recall:.4f} seconds={ours['seconds']:.1f} peak_mb={ours['peak_mb']:.0f} "
        f"splink_f1={theirs.f1 if theirs else float('nan'):.4f} "
        f"splink_s={splink['seconds'] if splink else float('nan'):.1f}"
    )


if __name__ == "__main__":
    main()
