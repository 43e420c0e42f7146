"""Order independence and idempotence, on generated small data sets."""

from __future__ import annotations

import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crm_hub.identity import resolve

FIRST = ["John", "Jon", "Jane", "Robert", "Bob", "Liz", "Elizabeth", "J", "Ann", "Anne"]
LAST = ["Smith", "Smyth", "Okafor", "Lee", "Patel"]
EMAIL = ["", "", "js@gmail.com", "j.s@gmail.com", "ann@lee.org", "test@example.com"]
PHONE = ["", "", "07911 123456", "+44 7911 123456", "020 7946 0018", "0000000000"]
DOB = ["", "", "1980-01-02", "1980-02-01", "--01-02", "1990-05-05"]


@st.composite
def frames(draw: st.DrawFn) -> pd.DataFrame:
    size = draw(st.integers(min_value=2, max_value=14))
    rows = []
    for i in range(size):
        rows.append(
            {
                "source": draw(st.sampled_from(["pos", "news", "forms"])),
                "source_id": str(i),
                "first_name": draw(st.sampled_from(FIRST)),
                "last_name": draw(st.sampled_from(LAST)),
                "email": draw(st.sampled_from(EMAIL)),
                "phone": draw(st.sampled_from(PHONE)),
                "birth_date": draw(st.sampled_from(DOB)),
                "postcode": draw(st.sampled_from(["", "SW1A 1AA", "M1 1AE"])),
            }
        )
    return pd.DataFrame(rows)


def _ids(frame: pd.DataFrame) -> pd.Series:
    records = resolve(frame).records
    return records.set_index(["source", "source_id"])["master_id"].sort_index()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frames(), st.randoms(use_true_random=False))
def test_row_order_changes_neither_partition_nor_ids(frame: pd.DataFrame, rnd: object) -> None:
    order = list(range(len(frame)))
    rnd.shuffle(order)  # type: ignore[attr-defined]
    shuffled = frame.iloc[order].reset_index(drop=True)
    assert _ids(frame).equals(_ids(shuffled))


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frames())
def test_resolving_twice_gives_the_same_result(frame: pd.DataFrame) -> None:
    assert _ids(frame).equals(_ids(frame))


def test_twenty_orders_of_a_small_crm_give_one_answer() -> None:
    rows = []
    for i in range(60):
        rows.append({"source": ["pos", "news"][i % 2], "source_id": f"r{i}",
                     "first_name": FIRST[i % len(FIRST)], "last_name": LAST[(i // 3) % len(LAST)],
                     "email": EMAIL[i % len(EMAIL)], "phone": PHONE[(i // 2) % len(PHONE)],
                     "birth_date": DOB[i % len(DOB)]})  # fmt: skip
    frame = pd.DataFrame(rows)
    expected = _ids(frame)
    for seed in range(20):
        shuffled = frame.sample(frac=1.0, random_state=seed).reset_index(drop=True)
        assert _ids(shuffled).equals(expected)
