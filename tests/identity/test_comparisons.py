"""Comparison levels for single record pairs on tiny inline data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crm_hub.identity import MatchSettings
from crm_hub.identity.comparisons import PairContext, comparison
from crm_hub.identity.name_agreement import keyboard_slip
from crm_hub.identity.records import prepare

NICKNAME, INITIAL, DIFFERENT = 4, 1, 0


def _first_name_level(a: str, b: str) -> int:
    rows = [{"source_id": str(i), "first_name": name, "last_name": "Hadfield"}
            for i, name in enumerate((a, b))]  # fmt: skip
    ctx = PairContext(prepare(pd.DataFrame(rows)), np.array([0]), np.array([1]), MatchSettings())
    return int(comparison("first_name").function(ctx)[0])


@pytest.mark.parametrize(
    ("a", "b", "level"),
    [
        ("Rick", "Patrick", NICKNAME),  # rick is in six nickname groups, Patrick's the fourth
        ("Bert", "Herbert", NICKNAME),
        ("B", "Rebecca", INITIAL),  # Becky
        ("D", "Richard", INITIAL),  # Dick
        ("R", "Richard", INITIAL),
        ("B", "Anne", DIFFERENT),
        ("Rick", "Anne", DIFFERENT),
    ],
)
def test_first_name_knows_every_nickname_and_its_initial(a: str, b: str, level: int) -> None:
    assert _first_name_level(a, b) == level
    assert _first_name_level(b, a) == level


def _contact_level(a: dict[str, str], b: dict[str, str]) -> int:
    rows = [{"source_id": str(i), **fields} for i, fields in enumerate((a, b))]
    ctx = PairContext(prepare(pd.DataFrame(rows)), np.array([0]), np.array([1]), MatchSettings())
    return int(comparison("contact").function(ctx)[0])


SIMILAR_ADDRESS = 2


@pytest.mark.parametrize(
    ("b", "level"),
    [
        # a postcode typo in one town hides nothing: similar address
        ({"address_line1": "12 Mullan Street", "postcode": "4153", "city": "Mansfield"},
         SIMILAR_ADDRESS),
        ({"address_line1": "12 Mullan St", "postcode": "4153", "city": "MANSFIELD"},
         SIMILAR_ADDRESS),
        # another town, or another street in the town: different
        ({"address_line1": "12 Mullan Street", "postcode": "2150", "city": "Parramatta"}, 0),
        ({"address_line1": "7 Ocean Parade", "postcode": "4153", "city": "Mansfield"}, 0),
    ],
)  # fmt: skip
def test_same_street_address_across_a_postcode_typo_in_one_town(
    b: dict[str, str], level: int
) -> None:
    a = {"address_line1": "12 Mullan Street", "postcode": "4152", "city": "Mansfield"}
    assert _contact_level(a, b) == level
    assert _contact_level(b, a) == level


@pytest.mark.parametrize(
    ("a", "b", "slip"),
    [
        ("grace", "grsce", True),  # neighbouring key
        ("john", "jonh", True),  # swapped neighbours
        ("annette", "anette", True),  # dropped letter
        ("joan", "john", False),  # h is far from a: another name
        ("mary", "mark", False),
        ("ann", "anne", False),  # too short to tell
    ],
)
def test_keyboard_slip(a: str, b: str, slip: bool) -> None:
    assert keyboard_slip(a, b) is slip
    assert keyboard_slip(b, a) is slip


@pytest.mark.parametrize(
    "b",
    [
        {"address_line1": "12 Mullan St", "city": "Mansfield"},  # no postcode on one side
        {"address_line1": "12 MULLAN STREET", "city": "MANSFIELD"},
    ],
)
def test_same_street_line_in_one_town_without_a_postcode_is_the_same_address(
    b: dict[str, str],
) -> None:
    a = {"address_line1": "12 Mullan Street", "postcode": "4152", "city": "Mansfield"}
    assert _contact_level(a, b) == SAME_ADDRESS
    assert _contact_level(b, a) == SAME_ADDRESS
    elsewhere = {**b, "city": "Parramatta"}
    assert _contact_level(a, elsewhere) == 0


SAME_ADDRESS = 3
