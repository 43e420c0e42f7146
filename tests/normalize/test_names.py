from __future__ import annotations

import pytest

from crm_hub.normalize import (
    are_nicknames,
    canonical_names,
    first_name_key,
    last_name_key,
    nickname_table,
    normalize_names,
    parse_full_name,
)


@pytest.mark.parametrize(
    ("raw", "first", "last"),
    [
        ("John Smith", "John", "Smith"),
        ("Smith, John", "John", "Smith"),
        ("Mr John Smith", "John", "Smith"),
        ("Dr. Mary-Ann van der Berg Jr.", "Mary-Ann", "van der Berg"),
        ("Smith", None, "Smith"),
    ],
    ids=["plain", "comma", "title", "particles-suffix", "surname-only"],
)
def test_full_names_split(raw: str, first: str | None, last: str) -> None:
    parsed = parse_full_name(raw)
    assert (parsed.first, parsed.last) == (first, last)


@pytest.mark.parametrize("raw", ["test", "N/A", "  ", "Customer"])
def test_placeholder_names_are_empty(raw: str) -> None:
    assert parse_full_name(raw).last is None


def test_match_forms_fold_case_accents_and_punctuation() -> None:
    assert first_name_key("  JOSÉ ") == "jose"
    assert first_name_key("Mary Ann") == "mary"
    assert first_name_key("Mr") is None
    assert last_name_key("O'Brien-Smith") == "obriensmith"
    assert last_name_key("Zoë") == "zoe"


@pytest.mark.parametrize(
    ("a", "b"),
    [("Bob", "Robert"), ("Bill", "William"), ("Liz", "Elizabeth"), ("Kate", "Katherine"),
     ("Jim", "James"), ("Peggy", "Margaret"), ("Paco", "Francisco"), ("Sasha", "Aleksandr")],
)  # fmt: skip
def test_nickname_pairs(a: str, b: str) -> None:
    assert are_nicknames(a, b)


def test_different_names_are_not_nicknames() -> None:
    assert not are_nicknames("John", "Jane")
    assert not are_nicknames("Mary", "Margaret")


def test_table_is_shipped_and_sizeable() -> None:
    assert len(nickname_table()) >= 250
    assert canonical_names("Bill") == ("william",)


def test_full_name_fills_missing_first_and_last() -> None:
    frame = normalize_names(["Bob", None], ["Smith", None], [None, "Jones, Liz"])
    assert list(frame["first_key"]) == ["bob", "liz"]
    assert list(frame["last_key"]) == ["smith", "jones"]
