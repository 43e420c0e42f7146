from __future__ import annotations

import datetime as dt

import pytest

from crm_hub.normalize import (
    BirthDate,
    address_line_key,
    normalize_addresses,
    normalize_birth_dates,
    normalize_postcode,
    parse_birth_date,
    postcode_key,
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("1984-07-02", BirthDate(1984, 7, 2)), ("19840702", BirthDate(1984, 7, 2)),
     ("--07-02", BirthDate(None, 7, 2)), ("1984-07-02T00:00:00Z", BirthDate(1984, 7, 2))],
    ids=["iso", "basic", "no-year", "with-time"],
)  # fmt: skip
def test_birth_dates_parse(raw: str, expected: BirthDate) -> None:
    assert parse_birth_date(raw) == expected


@pytest.mark.parametrize("raw", ["1985-02-30", "1984-13-01", "1900-01-01", "2999-01-01", "x"])
def test_impossible_and_placeholder_dates_are_none(raw: str) -> None:
    assert parse_birth_date(raw, today=dt.date(2026, 1, 1)) is None


def test_today_is_asked_again_once_its_day_is_over() -> None:
    from crm_hub.normalize.dates import _Today

    today = _Today()
    assert today() == dt.date.today()
    today.date, today.ends = dt.date(2001, 1, 1), 0.0  # as if remembered on a day long gone
    assert today() == dt.date.today()
    assert today.ends > dt.datetime.now().timestamp()


def test_a_date_after_today_is_none_without_a_given_today() -> None:
    tomorrow = dt.date.today() + dt.timedelta(days=1)
    assert parse_birth_date(tomorrow.isoformat()) is None
    assert parse_birth_date(dt.date.today().isoformat()) is not None


def test_birth_date_column_flags() -> None:
    frame = normalize_birth_dates(["1984-07-02", "1985-02-30", "1900-01-01", None])
    assert list(frame["flag"]) == [None, "invalid", "junk", "missing"]
    assert list(frame["year"]) == [1984, 0, 0, 0]


def test_address_abbreviations_share_a_key() -> None:
    assert address_line_key("12 High Street") == address_line_key("12, HIGH ST.")
    assert address_line_key("5 Park Avenue") == address_line_key("5 Park Ave")
    assert address_line_key("3 Mill Road") == address_line_key("3 Mill Rd")


def test_postcodes_normalise() -> None:
    assert normalize_postcode("sw1a1aa") == "SW1A 1AA"
    assert postcode_key(" SW1A 1AA ") == "SW1A1AA"


def test_address_columns() -> None:
    frame = normalize_addresses(["12 High St", None], ["Flat 2", None], ["sw1a1aa", None])
    assert frame.loc[0, "line_key"] == "12 high st flat 2"
    assert frame.loc[0, "number"] == "12"
    assert frame.loc[1, "line_key"] is None
