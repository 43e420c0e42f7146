"""Why true pairs are missed (not blocked, scored low, vetoed, refused), and what false links made.

    .venv/bin/python benchmarks/identity/misses.py --n 100000
    .venv/bin/python benchmarks/identity/misses.py --febrl febrl3

Re-runs the steps of `resolve` on a benchmark data set with ground truth and sorts every true
pair the partition misses into one cause, with the most common level patterns per cause and,
for pairs never compared, which fields they agree on (what key would have caught them). Then
the false side: every link joining two different people, by reason (rule or score), by whether
the two share a household, and by level pattern.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parents[1]))

from crm_hub.identity import resolve, rules  # noqa: E402
from crm_hub.identity.blocking import candidate_pairs  # noqa: E402
from crm_hub.identity.comparisons import PairContext, comparison_names  # noqa: E402
from crm_hub.identity.profiles import counted_by_cluster  # noqa: E402
from crm_hub.identity.records import codes_of, prepare  # noqa: E402
from crm_hub.identity.scoring import (  # noqa: E402
    FellegiSunter,
    compute_levels,
    estimate_u,
    match_weights,
    probability,
    tf_adjustments,
    train,
)
from crm_hub.identity.settings import MatchSettings  # noqa: E402


def out(text: str = "") -> None:
    """Write one line of the report."""
    sys.stdout.write(text + "\n")


def _load(args: argparse.Namespace) -> tuple[pd.DataFrame, np.ndarray]:
    if args.febrl:
        from febrl import _frame
        from febrl import _load as load_febrl

        frame, truth = _frame(load_febrl(args.febrl))
        return frame, truth.to_numpy()
    from generate import ensure_dataset

    from crm_hub.identity.csvio import read_records

    path = ensure_dataset(args.n, args.seed, Path("/tmp/crm_hub_identity_bench"))
    truth = pd.read_csv(path, dtype=str, keep_default_na=False, usecols=["truth_person"])
    return read_records(path), truth["truth_person"].to_numpy()


def _true_pairs(truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    codes, _ = pd.factorize(pd.Series(truth))
    order = np.argsort(codes, kind="stable")
    lefts, rights = [], []
    sorted_codes = codes[order]
    starts = np.flatnonzero(np.r_[True, sorted_codes[1:] != sorted_codes[:-1]])
    sizes = np.diff(np.r_[starts, len(codes)])
    for start, size in zip(starts, sizes, strict=True):
        members = order[start : start + size]
        for i in range(size):
            for j in range(i + 1, size):
                lefts.append(min(members[i], members[j]))
                rights.append(max(members[i], members[j]))
    return np.array(lefts, dtype=np.int64), np.array(rights, dtype=np.int64)


def main() -> None:
    """Print the causes of missed true pairs."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--febrl", choices=["febrl3", "febrl4"])
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--examples", type=int, default=0)
    args = parser.parse_args()
    frame, truth_input = _load(args)
    settings = MatchSettings()
    resolution = resolve(frame, settings=settings)
    prepared = prepare(frame)
    truth = truth_input[prepared.input_position]
    master = resolution.records["master_id"].to_numpy()[prepared.input_position]

    candidates = candidate_pairs(prepared, settings)
    names = tuple(comparison_names())
    ctx = PairContext(prepared, candidates.left, candidates.right, settings)
    levels = compute_levels(ctx, names)
    u_random = estimate_u(prepared, names, settings)
    untrained = FellegiSunter(names, u_random, u_random, u_random, 0.5)
    tf = tf_adjustments(untrained, levels, ctx, settings)
    model = train(levels, names, u_random, settings, n_records=prepared.n, tf_weights=tf)
    if settings.cluster_tf:  # as resolve's second pass, with the final clusters as owners
        counted = counted_by_cluster(prepared, codes_of(master).astype(np.int64))
        counted_ctx = PairContext(counted, candidates.left, candidates.right, settings)
        tf = tf_adjustments(model, levels, counted_ctx, settings)
    prob = probability(match_weights(model, levels, tf))
    level_map = {name: levels[:, c] for c, name in enumerate(names)}
    vetoes = rules.active_vetoes(rules.veto_names(), dict(zip(names, model.m, strict=True)))
    fired = rules.apply(level_map, rules.rule_names(), ctx, vetoes=False)
    vetoed = rules.apply(level_map, vetoes, ctx, vetoes=True)
    out(f"active vetoes: {vetoes}")
    for name, labels in model.describe().items():
        out(f"  {name}: " + ", ".join(f"{k} m={v['m']:.3f} w={v['weight']:.1f}"
                                      for k, v in labels.items()))  # fmt: skip

    tl, tr = _true_pairs(truth)
    missed = master[tl] != master[tr]
    out(f"true pairs {len(tl)}, missed {int(missed.sum())} ({missed.mean():.2%})")
    n = np.int64(prepared.n)
    cand_code = candidates.left.astype(np.int64) * n + candidates.right
    order = np.argsort(cand_code)
    true_code = tl * n + tr
    pos = np.searchsorted(cand_code[order], true_code)
    pos = np.minimum(pos, len(order) - 1)
    found = cand_code[order][pos] == true_code
    index = np.where(found, order[pos], -1)
    causes: Counter[str] = Counter()
    patterns: dict[str, Counter[tuple[int, ...]]] = {}
    unblocked: Counter[str] = Counter()
    examples: dict[str, list[tuple[int, int]]] = {}
    p = prepared
    for k in np.flatnonzero(missed):
        i = index[k]
        a, b = int(tl[k]), int(tr[k])
        if i < 0:
            cause = "not blocked"
            tags = []
            for fname in ("first_code", "last_code", "email_code", "email_local_code",
                          "phone_code", "dob_code", "address_code", "postcode_code",
                          "number_postcode_code", "last_phonetic"):  # fmt: skip
                va, vb = getattr(p, fname)[a], getattr(p, fname)[b]
                if va >= 0 and vb >= 0:
                    tags.append(fname.removesuffix("_code") + ("=" if va == vb else "≠"))
            unblocked[" ".join(tags)] += 1
        elif vetoed[i] >= 0 and (fired[i] >= 0 or prob[i] >= settings.threshold):
            cause = f"vetoed {vetoes[vetoed[i]]}"
        elif fired[i] < 0 and prob[i] < settings.threshold:
            cause = "scored low" + (" (vetoed too)" if vetoed[i] >= 0 else "")
        else:
            cause = "accepted, not joined (refused / chain)"
        causes[cause] += 1
        if i >= 0:
            patterns.setdefault(cause, Counter())[tuple(levels[i].tolist())] += 1
        examples.setdefault(cause, []).append((a, b))
    out()
    for cause, count in causes.most_common():
        out(f"{cause}: {count} ({count / max(len(tl), 1):.2%} of true pairs)")
        for pattern, c in patterns.get(cause, Counter()).most_common(args.top):
            out(f"    {c:6d}  " + " ".join(f"{nm}={lv}" for nm, lv in
                                           zip(names, pattern, strict=True)))  # fmt: skip
        for a, b in examples[cause][: args.examples]:
            out(f"      e.g. {frame.iloc[p.input_position[a]].to_dict()}")
            out(f"           {frame.iloc[p.input_position[b]].to_dict()}")
    out()
    out("not blocked, fields present on both (= agree, ≠ differ):")
    for found_tags, count in unblocked.most_common(args.top * 2):
        out(f"    {count:6d}  {found_tags}")
    _false_links(args, resolution, frame, truth_input, names)


def _false_links(
    args: argparse.Namespace,
    resolution: object,
    frame: pd.DataFrame,
    truth: np.ndarray,
    names: tuple[str, ...],
) -> None:
    """Print the links that join two different people, grouped by reason and level pattern."""
    links = resolution.links  # type: ignore[attr-defined]
    rows = resolution.link_rows  # type: ignore[attr-defined]
    household = _households(args, len(frame))
    wrong = truth[rows[:, 0]] != truth[rows[:, 1]]
    same_home = (household[rows[:, 0]] == household[rows[:, 1]]) & (household[rows[:, 0]] != "")
    out()
    in_home = int((wrong & same_home).sum())
    out(f"false links {int(wrong.sum())} of {len(links)} (same household {in_home})")
    kinds: Counter[tuple[str, str]] = Counter()
    patterns: dict[tuple[str, str], Counter[tuple[int, ...]]] = {}
    shown: dict[tuple[str, str], list[int]] = {}
    reasons = links["reason"].to_numpy()
    level_table = links[list(names)].to_numpy()
    for k in np.flatnonzero(wrong):
        kind = (str(reasons[k]), "household" if same_home[k] else "strangers")
        kinds[kind] += 1
        patterns.setdefault(kind, Counter())[tuple(level_table[k].tolist())] += 1
        shown.setdefault(kind, []).append(k)
    for kind, count in kinds.most_common():
        out(f"{kind[0]} / {kind[1]}: {count}")
        for pattern, c in patterns[kind].most_common(args.top):
            out(f"    {c:6d}  " + " ".join(f"{nm}={lv}" for nm, lv in
                                           zip(names, pattern, strict=True)))  # fmt: skip
        for k in shown[kind][: args.examples]:
            out(f"      e.g. p={links['probability'].iloc[k]} {frame.iloc[rows[k, 0]].to_dict()}")
            out(f"           {frame.iloc[rows[k, 1]].to_dict()}")


def _households(args: argparse.Namespace, n: int) -> np.ndarray:
    if args.febrl:
        return np.full(n, "", dtype=object)
    from generate import ensure_dataset

    path = ensure_dataset(args.n, args.seed, Path("/tmp/crm_hub_identity_bench"))
    found = pd.read_csv(path, dtype=str, keep_default_na=False, usecols=["truth_household"])
    return found["truth_household"].to_numpy()


if __name__ == "__main__":
    main()
