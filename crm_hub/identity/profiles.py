"""Cluster profiles: a record's missing fields filled from the other records of its cluster.

Records of one person are often sparse in complementary ways (a till record has a phone, a
newsletter record an e-mail, neither a birth date). Once a first clustering pass has grouped
records, two clusters can be compared with everything they know: a record missing a field
borrows it from its cluster (the most common value there, ties to the smallest canonical
index, so the result does not depend on input order). Comparing the filled records of two
clusters shows agreement (the same birth date, given by different members) and disagreement
(two different birth dates) that no single pair of records shows.

Only missing fields are filled; a record's own values are never replaced.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import pandas as pd

from crm_hub.identity.records import (
    Prepared,
    either_field_name_frequencies,
    owner_frequencies,
)

__all__ = ["FILL_GROUPS", "FillGroup", "counted_by_cluster", "fill_from_clusters"]


@dataclass(frozen=True)
class FillGroup:
    """Fields filled together (they describe one thing), keyed by one code field.

    Attributes:
        key: the code field telling which value a record holds (``-1``: missing).
        fields: `Prepared` array fields copied from the donor record.
        per_record: keys of `Prepared.tf`, ``counts`` and ``shared`` copied too.
        missing: when set, the field whose ``<= 0`` / ``< 0`` marks a record as lacking the
            group (defaults to ``key`` below zero).
    """

    key: str
    fields: tuple[str, ...]
    per_record: tuple[str, ...] = ()
    missing: str | None = None


FILL_GROUPS = (
    FillGroup("first_code", ("first", "first_code", "first_groups"), ("first",)),
    FillGroup("last_code", ("last", "last_code", "last_groups", "last_phonetic"), ("last",)),
    FillGroup(
        "email_code",
        ("email_code", "email_local", "email_local_code", "email_domain_code"),
        ("email",),
    ),
    FillGroup("phone_code", ("phone_code",), ("phone",)),
    FillGroup(
        "dob_code",
        ("dob_year", "dob_month", "dob_day", "dob_code", "dob_impossible"),
        missing="dob_month",
    ),
    FillGroup(
        "postcode_code",
        (
            "address",
            "address_code",
            "number_postcode_code",
            "postcode_code",
            "city_code",
            "postcode",
            "city",
        ),
        ("address",),
        missing="postcode_code",
    ),
)
"""What is filled, group by group."""


def _donors(labels: np.ndarray, key: np.ndarray, clusters: np.ndarray | None) -> np.ndarray:
    """Per cluster label, the record holding its most common key value (``-1``: none).

    ``clusters``: when given, a mask over labels; only those clusters get a donor.
    """
    held = key >= 0
    if clusters is not None:
        held &= clusters[labels]
    present = np.flatnonzero(held)
    donors = np.full(int(labels.max(initial=-1)) + 1, -1, dtype=np.int64)
    if not len(present):
        return donors
    frame = pd.DataFrame({"c": labels[present], "k": key[present], "i": present})
    frame["n"] = frame.groupby(["c", "k"])["i"].transform("size")
    frame = frame.sort_values(["c", "n", "i"], ascending=[True, False, True], kind="stable")
    first = frame.drop_duplicates("c", keep="first")
    donors[first["c"].to_numpy()] = first["i"].to_numpy()
    return donors


def counted_by_cluster(
    prepared: Prepared, labels: np.ndarray, *, namesakes: bool = True
) -> Prepared:
    """Return a shallow copy of the records whose term frequencies count clusters, not records.

    A value held by one person's five records is not common; counted per record it looks
    five times as common, and agreeing on it weighs less than it should. A clustering stands
    in for the people (`owner_frequencies`).

    Args:
        prepared: the records.
        labels: cluster label per record (canonical order, non-negative).
        namesakes: also count, per record, the other clusters holding its full name (the
            ``cluster``, ``namesakes`` and ``namesakes_expected`` counts that weaken a
            full-name agreement); off, ``counts`` are the records' own.
    """
    counted = copy.copy(prepared)
    counted.tf = dict(prepared.tf)
    counted.tf_base = dict(prepared.tf_base)
    for name in prepared.tf:
        counted.tf[name], counted.tf_base[name] = owner_frequencies(
            getattr(prepared, f"{name}_code"), labels
        )
    if "first" in counted.tf and "last" in counted.tf:
        counted.tf["first"], counted.tf["last"] = either_field_name_frequencies(
            prepared.first, prepared.last, counted.tf["first"], counted.tf["last"]
        )
        if namesakes:
            counted.counts = {**prepared.counts, **_namesakes(counted, labels)}
    return counted


def _namesakes(counted: Prepared, labels: np.ndarray) -> dict[str, np.ndarray]:
    """Per record: how many other clusters hold its exact full name, and how many would by chance.

    Given and family names are counted apart, as if independent; but a full name held by
    several clusters (people, or duplicates not yet joined) makes agreeing on it weaker than
    its parts say. ``cluster`` is each record's label, ``namesakes`` the clusters other than
    its own holding the same (given, family) name, ``namesakes_expected`` how many other
    clusters would hold it if the parts were independent.
    """
    labels = labels.astype(np.int64)
    named = (counted.first_code >= 0) & (counted.last_code >= 0)
    width = np.int64(counted.last_code.max(initial=0) + 1)
    full = np.where(named, counted.first_code.astype(np.int64) * width + counted.last_code, -1)
    holders = np.zeros(len(labels), dtype=np.float64)
    if named.any():
        frame = pd.DataFrame({"full": full[named], "cluster": labels[named]})
        per_name = frame.drop_duplicates().groupby("full")["cluster"].size()
        holders[named] = per_name.reindex(full[named]).to_numpy(dtype=np.float64) - 1
    owners = float(len(np.unique(labels[named]))) if named.any() else 0.0
    expected = np.where(named, owners * counted.tf["first"] * counted.tf["last"], 0.0)
    return {"cluster": labels, "namesakes": holders, "namesakes_expected": expected}


def fill_from_clusters(
    prepared: Prepared,
    labels: np.ndarray,
    groups: tuple[FillGroup, ...] = FILL_GROUPS,
    *,
    needed: np.ndarray | None = None,
) -> Prepared:
    """Return a copy of the records with missing fields filled from their clusters.

    Args:
        prepared: the records.
        labels: cluster label per record (canonical order, non-negative).
        groups: which field groups to fill (default: all).
        needed: canonical indices of the records to fill (default: all); the others keep
            their gaps. A few thousand pairs to compare again need no donor search over
            every cluster of a million records.

    Returns:
        A new `Prepared`; arrays not filled are shared with ``prepared``.
    """
    # The namesake counts would be dropped below: the fill compares records, not clusters.
    filled = counted_by_cluster(prepared, labels, namesakes=False)
    filled.counts = dict(prepared.counts)
    filled.shared = dict(prepared.shared)
    labels = labels.astype(np.int64)
    targets = np.arange(prepared.n) if needed is None else np.unique(needed)
    clusters = None
    if needed is not None:
        clusters = np.zeros(int(labels.max(initial=-1)) + 1, dtype=bool)
        clusters[labels[targets]] = True
    for group in groups:
        key = getattr(prepared, group.key).astype(np.int64)
        source = np.full(prepared.n, -1, dtype=np.int64)  # donor per record
        source[targets] = _donors(labels, key, clusters)[labels[targets]]
        take = targets[_lacking(prepared, group, targets) & (source[targets] >= 0)]
        if len(take):
            _fill_group(filled, prepared, group, take, source)
    return filled


def _lacking(prepared: Prepared, group: FillGroup, targets: np.ndarray) -> np.ndarray:
    """Which of the ``targets`` records lack the group's fields."""
    if group.missing is None:
        lacking: np.ndarray = getattr(prepared, group.key)[targets] < 0
    elif group.missing == "dob_month":
        lacking = getattr(prepared, group.missing)[targets] <= 0
    else:
        lacking = getattr(prepared, group.missing)[targets] < 0
    if group.key == "postcode_code":
        lacking &= (prepared.address_code[targets] < 0) & (prepared.city_code[targets] < 0)
    return lacking


def _fill_group(
    filled: Prepared, prepared: Prepared, group: FillGroup, take: np.ndarray, source: np.ndarray
) -> None:
    """Copy the group's fields into records ``take`` from their donors ``source[take]``."""
    for name in group.fields:
        array = getattr(prepared, name).copy()
        array[take] = array[source[take]]
        setattr(filled, name, array)
    for name in group.per_record:
        for table in (filled.tf, filled.counts):
            if name in table:
                array = table[name].copy()
                array[take] = array[source[take]]
                table[name] = array
    if group.key == "phone_code":
        _copy_shared(filled, "phone", take, source)
    if group.key == "postcode_code":
        _copy_shared(filled, "address", take, source)
        _copy_shared(filled, "surname_postcode", take, source)


def _copy_shared(filled: Prepared, name: str, take: np.ndarray, source: np.ndarray) -> None:
    if name in filled.shared:
        array = filled.shared[name].copy()
        array[take] = array[source[take]]
        filled.shared[name] = array
