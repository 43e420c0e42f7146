"""Cluster profiles: gaps filled from a record's cluster, and frequencies counted per cluster."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crm_hub.identity.profiles import FILL_GROUPS, counted_by_cluster, fill_from_clusters
from crm_hub.identity.records import Prepared, prepare

# Two people of two records each, one record of each without e-mail and phone, and a loner.
ROWS = [
    {"source_id": "a1", "first_name": "Ada", "last_name": "Quist", "email": "aq@gmail.com",
     "phone": "07911 123456", "birth_date": "1980-01-02"},
    {"source_id": "a2", "first_name": "Ada", "last_name": "Quist"},
    {"source_id": "b1", "first_name": "Bo", "last_name": "Quist", "email": "bq@gmail.com",
     "phone": "07911 654321", "postcode": "SW1A 1AA", "address_line1": "12 High Street"},
    {"source_id": "b2", "first_name": "Bo", "last_name": "Quist"},
    {"source_id": "c1", "first_name": "Cy", "last_name": "Quist"},
]  # fmt: skip
PEOPLE = {"a1": 0, "a2": 0, "b1": 1, "b2": 1, "c1": 2}


def _prepared() -> tuple[Prepared, np.ndarray, dict[str, int]]:
    prepared = prepare(pd.DataFrame(ROWS))
    index = {str(sid): i for i, sid in enumerate(prepared.source_id)}
    labels = np.array([PEOPLE[str(sid)] for sid in prepared.source_id], dtype=np.int64)
    return prepared, labels, index


_FIELDS = sorted({name for group in FILL_GROUPS for name in group.fields})


def _at(prepared: Prepared, name: str, row: int) -> list[object]:
    """One record's value of a field (a list: some fields hold several values per record)."""
    values: list[object] = np.atleast_1d(getattr(prepared, name)[row]).tolist()
    return values


def test_fill_of_needed_records_matches_the_full_fill_for_them() -> None:
    prepared, labels, index = _prepared()
    full = fill_from_clusters(prepared, labels)
    needed = np.array([index["a2"]])
    part = fill_from_clusters(prepared, labels, needed=needed)
    for name in _FIELDS:
        assert _at(part, name, index["a2"]) == _at(full, name, index["a2"]), name
    for table in ("tf", "counts", "shared"):
        for key, values in getattr(full, table).items():
            assert getattr(part, table)[key][index["a2"]] == values[index["a2"]], (table, key)
    assert part.email_code[index["a2"]] == prepared.email_code[index["a1"]]
    assert part.dob_code[index["a2"]] == prepared.dob_code[index["a1"]]


def test_fill_leaves_records_not_needed_with_their_gaps() -> None:
    prepared, labels, index = _prepared()
    part = fill_from_clusters(prepared, labels, needed=np.array([index["a2"]]))
    assert prepared.email_code[index["b2"]] < 0
    assert part.email_code[index["b2"]] < 0  # b2 was not asked for
    assert part.phone_code[index["b2"]] < 0
    full = fill_from_clusters(prepared, labels)
    assert full.email_code[index["b2"]] == prepared.email_code[index["b1"]]
    assert full.address_code[index["b2"]] == prepared.address_code[index["b1"]]


def test_fill_never_replaces_a_records_own_values() -> None:
    prepared, labels, index = _prepared()
    needed = np.arange(prepared.n)
    part = fill_from_clusters(prepared, labels, needed=needed)
    for name in _FIELDS:
        own = getattr(prepared, name)
        for sid in ("a1", "b1"):
            assert _at(part, name, index[sid]) == np.atleast_1d(own[index[sid]]).tolist()
    assert part.email_code[index["c1"]] < 0  # a loner has no one to borrow from


def test_counting_by_cluster_without_namesakes_keeps_the_records_counts() -> None:
    prepared, labels, _ = _prepared()
    with_names = counted_by_cluster(prepared, labels)
    without = counted_by_cluster(prepared, labels, namesakes=False)
    assert "namesakes" in with_names.counts
    assert "namesakes" not in without.counts
    assert without.counts.keys() == prepared.counts.keys()
    for name, values in with_names.tf.items():
        np.testing.assert_array_equal(without.tf[name], values)
    assert without.tf_base == pytest.approx(with_names.tf_base)
