"""Blocking keys and term frequencies on tiny inline data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crm_hub.identity import MatchSettings
from crm_hub.identity.blocking import block_pairs, blocking_key_names, candidate_pairs
from crm_hub.identity.profiles import counted_by_cluster
from crm_hub.identity.records import owner_frequencies, prepare


def _pairs(rows: list[dict[str, str]], **settings: object) -> set[tuple[str, str]]:
    prepared = prepare(pd.DataFrame(rows))
    found = candidate_pairs(prepared, MatchSettings(**settings))  # type: ignore[arg-type]
    ids = prepared.source_id
    return {(ids[a], ids[b]) for a, b in zip(found.left, found.right, strict=True)}


@pytest.mark.parametrize(
    ("given", "typo"),
    [("Jason", "Jqson"), ("Robert", "R"), ("Deborah", "Dbe")],
    ids=["typo-changes-sound", "initial", "nickname-typo"],
)
def test_given_name_typo_with_same_surname_is_compared(given: str, typo: str) -> None:
    rows = [
        {"source_id": "1", "first_name": given, "last_name": "Lockkingsbourne",
         "email": "one@example.org"},
        {"source_id": "2", "first_name": typo, "last_name": "Lockkingsbourne",
         "phone": "07700 900123"},
    ]  # fmt: skip
    assert _pairs(rows) == {("1", "2")}
    others = tuple(name for name in blocking_key_names() if name != "surname_initial")
    assert _pairs(rows, blocking_keys=others) == set()


def test_records_sharing_only_a_full_birth_date_are_compared() -> None:
    # FEBRL-style duplicate: both names and the address rewritten, the birth date intact.
    rows = [
        {"source_id": "1", "first_name": "Madison", "last_name": "Dixon",
         "birth_date": "1922-06-09", "postcode": "5047"},
        {"source_id": "2", "first_name": "Kylie", "last_name": "Boxhall",
         "birth_date": "1922-06-09", "postcode": "4703"},
        {"source_id": "3", "first_name": "Lena", "last_name": "Ortiz",
         "birth_date": "--06-09", "postcode": "2000"},  # no year: no full date, no pair
    ]  # fmt: skip
    assert _pairs(rows) == {("1", "2")}
    others = tuple(name for name in blocking_key_names() if name != "dob")
    assert _pairs(rows, blocking_keys=others) == set()


def test_surname_initial_blocks_skip_giant_blocks() -> None:
    rows = [{"source_id": str(i), "first_name": f"J{'a' * (i % 7 + 2)}n", "last_name": "Smith"}
            for i in range(12)]  # fmt: skip
    assert _pairs(rows, blocking_keys=("surname_initial",), max_block_size=10) == set()
    assert len(_pairs(rows, blocking_keys=("surname_initial",), max_block_size=12)) == 66


def test_a_persons_duplicates_do_not_make_a_value_common() -> None:
    # value 0: one owner's four records; values 1 and 2: one record each.
    codes = np.array([0, 0, 0, 0, 1, 2])
    owners = np.array([7, 7, 7, 7, 8, 9])
    shares, chance = owner_frequencies(codes, owners)
    assert shares.tolist() == [0.5] * 6
    assert chance == pytest.approx(0.5)


def test_a_value_several_owners_hold_stays_common() -> None:
    codes = np.array([0, 0, 0, 1, 2, -1])
    owners = np.array([1, 2, 3, 4, 5, 6])
    shares, chance = owner_frequencies(codes, owners)
    assert shares.tolist() == pytest.approx([0.5, 0.5, 0.5, 0.25, 0.25, 0.0])
    assert chance == pytest.approx((3 * 2 + 1 + 1) / (5 * 4))


def test_namesakes_duplicates_count_once_per_name() -> None:
    rows = [
        {"source_id": str(i), "first_name": "Ada", "last_name": "Quist",
         "address_line1": "1 Mill Lane", "postcode": "AB1 2CD"}
        for i in range(3)
    ] + [
        {"source_id": "x", "first_name": "Bo", "last_name": "Ng",
         "address_line1": "9 Elm Road", "postcode": "EF3 4GH"},
        {"source_id": "y", "first_name": "Cy", "last_name": "Oz",
         "address_line1": "5 Oak Road", "postcode": "EF3 4GH"},
    ]  # fmt: skip
    prepared = prepare(pd.DataFrame(rows))
    address = prepared.tf["address"]
    assert len(set(address.tolist())) == 1  # Ada's three records hold one address once


def test_counting_by_cluster_collapses_a_clusters_records() -> None:
    people = [("Ada", "aq@gmail.com"), ("Adda", "aq@gmail.com"), ("Ade", "aq@gmail.com"),
              ("Bo", "bq@gmail.com")]  # fmt: skip
    rows = [{"source_id": str(i), "first_name": name, "last_name": "Quist", "email": mail}
            for i, (name, mail) in enumerate(people)]  # fmt: skip
    prepared = prepare(pd.DataFrame(rows))
    assert prepared.tf["email"][0] > prepared.tf["email"][3]  # three given names, three owners
    counted = counted_by_cluster(prepared, np.array([0, 0, 0, 3]))
    assert counted.tf["email"][0] == counted.tf["email"][3]
    assert prepared.tf["email"][0] > prepared.tf["email"][3]  # the original is untouched


def test_block_pairs_match_every_pair_within_each_block() -> None:
    rng = np.random.default_rng(3)
    rows = np.repeat(np.arange(300), 2)
    keys = rng.integers(-1, 40, len(rows))
    left, right, skipped, skipped_rows = block_pairs(rows, keys, max_block_size=12)
    members: dict[int, set[int]] = {}
    for row, key in zip(rows.tolist(), keys.tolist(), strict=True):
        if key >= 0:
            members.setdefault(key, set()).add(row)
    expected = sorted(
        (a, b)
        for block in members.values()
        if len(block) <= 12
        for a in block
        for b in block
        if a < b
    )
    assert sorted(zip(left.tolist(), right.tolist(), strict=True)) == expected
    assert skipped == sum(len(b) > 12 for b in members.values())
    assert skipped_rows == sum(len(b) for b in members.values() if len(b) > 12)


def test_a_family_name_written_as_given_name_counts_as_common() -> None:
    # "Smith Fatima" read as given name smith: agreeing on it is as common as on Smith.
    rows = [{"source_id": str(i), "first_name": name, "last_name": "Smith"}
            for i, name in enumerate(["Ann", "Bob", "Cleo", "Dan", "Eve", "Finn"])]  # fmt: skip
    rows += [{"source_id": "x", "first_name": "Smith", "last_name": "Fatima"},
             {"source_id": "y", "first_name": "Zed", "last_name": "Quorn"}]  # fmt: skip
    prepared = prepare(pd.DataFrame(rows))
    index = {sid: i for i, sid in enumerate(prepared.source_id)}
    smith_as_given = prepared.tf["first"][index["x"]]
    assert smith_as_given == pytest.approx(prepared.tf["last"][index["0"]])
    assert smith_as_given > prepared.tf["first"][index["y"]]


def test_namesakes_in_other_clusters_weaken_a_full_name_agreement() -> None:
    from crm_hub.identity.comparisons import PairContext
    from crm_hub.identity.scoring import _namesake_adjustment

    rows = [{"source_id": str(i), "first_name": "Bruce", "last_name": "Hatherbourne"}
            for i in range(5)]  # fmt: skip
    rows += [{"source_id": f"o{i}", "first_name": f"Given{chr(97 + i)}",
              "last_name": f"Family{chr(97 + i)}"} for i in range(20)]  # fmt: skip
    prepared = prepare(pd.DataFrame(rows))
    names = ("first_name", "last_name")
    levels = np.array([[5, 4]], dtype=np.int8)

    def adjustment(labels: list[int]) -> float:
        order = np.argsort(prepared.input_position)  # canonical index of each input row
        canonical = np.arange(prepared.n)
        canonical[order[:5]] = labels
        canonical[order[5:]] = 5 + np.arange(prepared.n - 5)
        counted = counted_by_cluster(prepared, canonical)
        pair = np.sort(order[:2]).astype(np.int32)
        ctx = PairContext(counted, pair[:1], pair[1:])
        return float(_namesake_adjustment(names, levels, ctx)[0])

    assert adjustment([0, 1, 1, 1, 1]) == 0.0  # only the two clusters the pair joins
    assert adjustment([0, 1, 2, 3, 4]) < -1.0  # three other Bruce Hatherbournes
    assert adjustment([0, 0, 2, 3, 4]) < adjustment([0, 1, 2, 3, 4]) < 0  # one pair, one person
