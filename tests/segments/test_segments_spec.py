"""Segment files: a broken file names the line, the key and the fix; the shipped example loads."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from crm_hub.errors import ConfigError
from crm_hub.segments import check_segments, load_segments
from crm_hub.segments.spec import Group, Leaf, LoadedSegments, Negation

TEMPLATE = Path(__file__).parents[2] / "crm_hub/templates/project/mappings/segments.yaml"


def test_the_shipped_examples_load_and_compile() -> None:
    loaded = load_segments(TEMPLATE, "mappings/segments.yaml")
    assert check_segments(loaded) == 6
    assert set(loaded.spec.segments) == {
        "birthdays_this_week",
        "lapsed_regulars",
        "high_value",
        "owes_money",
        "new_this_month",
        "newsletter_by_branch",
    }
    assert loaded.spec.segments["newsletter_by_branch"].per == "branch"


def test_conditions_parse_into_a_tree(segments_file: Callable[[str], LoadedSegments]) -> None:
    loaded = segments_file(
        H + "    where:\n      any:\n"
        "        - {field: city, eq: soho}\n        - not: {field: orders_count, lt: 2}\n"
    )
    tree = loaded.conditions["s"]
    assert isinstance(tree, Group) and tree.kind == "any"
    assert tree.items[0] == Leaf("city", "eq", "soho", ("segments", "s", "where", "any", 0))
    assert isinstance(tree.items[1], Negation)


H = "version: 1\nsegments:\n  s:\n"
BROKEN: list[tuple[str, str, str]] = [
    ("yaml syntax", H + "    where: {field: city, eq: [x}\n",
     "segments.yaml:4: YAML syntax error"),
    ("unknown segment key", H + "    colour: red\n    where: {field: city, eq: x}\n",
     "segments.yaml:4 segments.s.colour: unknown key; allowed keys here: description, per, where"),
    ("missing where", H + "    description: hi\n",
     "segments.yaml:3 segments.s.where: required key is missing"),
    ("bad version", "version: 2\nsegments: {}\n", "segments.yaml:1 version"),
    ("two operators", H + "    where: {field: city, eq: x, ne: y}\n",
     "segments.yaml:4 segments.s.where: a test has exactly one operator (found eq, ne)"),
    ("unknown operator", H + "    where:\n      field: city\n      like: x\n",
     "segments.yaml:6 segments.s.where.like: unknown key 'like'"),
    ("no field", H + "    where: {eq: x}\n",
     "segments.yaml:4 segments.s.where: missing field"),
    ("all not a list", H + "    where:\n      all: {field: city, eq: x}\n",
     "segments.yaml:5 segments.s.where.all: all takes a non-empty list"),
    ("group with more", H + "    where: {all: [], field: x}\n",
     "all must be alone in its mapping"),
    ("in not a list", H + "    where: {field: city, in: soho}\n",
     "segments.yaml:4 segments.s.where.in: in takes a non-empty list"),
    ("between one value", H + "    where: {field: orders_count, between: [1]}\n",
     "between takes two values"),
    ("negative days", H + "    where: {field: last_order_at, older_than_days: -3}\n",
     "older_than_days takes a whole number of days"),
    ("bad period", H + "    where: {field: last_order_at, in_this: decade}\n",
     "in_this takes one of week, month, year"),
    ("is_null text", H + "    where: {field: city, is_null: yes please}\n",
     "is_null takes true"),
    ("eq null", H + "    where: {field: city, eq: null}\n",
     "for empty fields use is_null: true"),
    ("bad name", "version: 1\nsegments:\n  High Value:\n    where: {field: city, eq: x}\n",
     "segments.yaml:3 segments.High Value"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "message"), [b[1:] for b in BROKEN], ids=[b[0] for b in BROKEN])
def test_a_broken_file_names_line_key_and_fix(
    segments_file: Callable[[str], LoadedSegments], text: str, message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        segments_file(text)
    assert message in str(caught.value), str(caught.value)


def test_a_missing_file_says_how_to_get_one(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="mappings/segments.yaml: segments file not found"):
        load_segments(tmp_path / "nope.yaml", "mappings/segments.yaml")


def test_the_hash_ignores_the_description(
    segments_file: Callable[[str], LoadedSegments],
) -> None:
    one = segments_file(H + "    where: {field: city, eq: x}\n")
    two = segments_file(H + "    description: new words\n    where: {field: city, eq: x}\n")
    three = segments_file(H + "    where: {field: city, eq: y}\n")
    assert one.hashes["s"] == two.hashes["s"] != three.hashes["s"]
