"""Comparison levels for single record pairs on tiny inline data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crm_hub.identity import MatchSettings
from crm_hub.identity.comparisons import PairContext, comparison
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
