"""Every registered transform: what it makes of a value, and what it rejects (with a reason)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

import pytest

from crm_hub.errors import BadRecordError
from crm_hub.mapping.spec import TransformCall
from crm_hub.mapping.transforms import TRANSFORMS, apply_transform


def run(step: Any, value: Any) -> Any:
    call = TransformCall.parse(step)
    return apply_transform(TRANSFORMS[call.name], value, call.args)


CASES = [
    ("trim", "  Ann ", "Ann"),
    ("trim", None, None),
    ("lower", "Ann@X.COM", "ann@x.com"),
    ("upper", "gbp", "GBP"),
    ({"split_name": {"part": "first"}}, "Dr. Mary-Ann van der Berg", "Mary-Ann"),
    ({"split_name": {"part": "last"}}, "Smith, John", "Smith"),
    ({"split_name": {"part": "title"}}, "Mr John Smith", "Mr"),
    ({"concat": {"sep": ", "}}, ["12 Mill Lane", None, " Flat 2 "], "12 Mill Lane, Flat 2"),
    ("concat", [None, ""], None),
    ("coalesce", [None, "", "x"], ""),
    ("first_non_empty", [None, "  ", "x"], "x"),
    ({"regex_extract": {"pattern": r"\d+"}}, "Table 12, seat 3", "12"),
    ({"regex_extract": {"pattern": r"(?P<code>[A-Z]{3}) \d", "group": "code"}}, "EUR 5", "EUR"),
    ({"regex_extract": {"pattern": "x"}}, "abc", None),
    ({"lookup": {"table": {"subscribed": True, "cleaned": False}}}, " Subscribed ", True),
    ({"lookup": {"table": {"a": 1}, "default": 0}}, "zzz", 0),
    ({"lookup": {"table": {"a": 1}, "keep_unknown": True}}, "zzz", "zzz"),
    ("decimal", "12.50", Decimal("12.50")),
    ("decimal", 7, Decimal(7)),
    ("decimal", "", None),
    ({"decimal": {"decimal_comma": True}}, "1.234,50", Decimal("1234.50")),
    ("cents_to_decimal", 1250, Decimal("12.50")),
    ("cents_to_decimal", "-5", Decimal("-0.05")),
    ("sum", ["12.50", None, 3], Decimal("15.50")),
    ("sum", [], None),
    ({"parse_date": {"format": "%d/%m/%Y"}}, "21/07/1990", date(1990, 7, 21)),
    ({"parse_date": {"format": "%m/%d"}}, "03/12", "--03-12"),
    (
        {"parse_date": {"format": "%d.%m.%Y %H:%M"}},
        "01.02.2026 10:30",
        datetime(2026, 2, 1, 10, 30),
    ),
    ("normalise_email", " Bob@Example.ORG ", "Bob@example.org"),
    ("normalise_phone", "020 7946 0101", "+442079460101"),
    ({"normalise_phone": {"region": "DE"}}, "030 901820", "+4930901820"),
    ("normalise_phone", "not a phone", "not a phone"),
    ("normalise_name", "  Ann   Lee ", "Ann Lee"),
    ("normalise_address", " 12  Mill   Lane ", "12 Mill Lane"),
    ("normalise_postcode", "sw1a1aa", "SW1A 1AA"),
    ("trim", [" a ", " b"], ["a", "b"]),  # a list from a path with [] maps element by element
]


@pytest.mark.parametrize(
    ("step", "value", "expected"), CASES, ids=[str(c[0]) + "-" + repr(c[1]) for c in CASES]
)
def test_transform_turns_value_into(step: Any, value: Any, expected: Any) -> None:
    assert run(step, value) == expected


REJECTS = [
    ("decimal", "12,50 EUR", "not_a_decimal"),
    ("decimal", {"a": 1}, "not_a_decimal"),
    ("decimal", True, "not_a_decimal"),
    ("cents_to_decimal", "12.5", "not_an_integer"),
    ("cents_to_decimal", 1.5, "not_an_integer"),
    ("sum", ["1", "x"], "not_a_decimal"),
    ({"parse_date": {"format": "%d/%m/%Y"}}, "1990-07-21", "not_a_date"),
    ({"lookup": {"table": {"subscribed": True}}}, "pending", "unknown_value"),
    ({"regex_extract": {"pattern": "(a)", "group": 3}}, "a", "bad_transform"),
]


@pytest.mark.parametrize(
    ("step", "value", "code"), REJECTS, ids=[f"{c[0]}-{c[1]!r}" for c in REJECTS]
)
def test_transform_rejects_with_a_reason(step: Any, value: Any, code: str) -> None:
    with pytest.raises(BadRecordError) as caught:
        run(step, value)
    assert caught.value.reason_code == code
    assert caught.value.message


def test_lookup_rejection_lists_the_known_values() -> None:
    with pytest.raises(
        BadRecordError, match=r'"pending" is not in the lookup table \(known: cleaned, subscribed\)'
    ):
        run({"lookup": {"table": {"subscribed": True, "cleaned": False}}}, "pending")


def test_every_transform_is_exercised_here() -> None:
    used = {TransformCall.parse(c[0]).name for c in CASES + REJECTS}
    assert used == set(TRANSFORMS)


@pytest.mark.parametrize(
    ("step", "message"),
    [
        ("eval", "unknown transform 'eval'; allowed: cents_to_decimal, coalesce, concat"),
        ({"split_name": {"part": "nick"}}, "split_name: part"),
        ({"regex_extract": {"pattern": "("}}, "not a valid regular expression"),
        ({"trim": {"side": "left"}}, "trim takes no options"),
        ({"parse_date": {}}, "parse_date: format: Field required"),
    ],
    ids=["unknown", "bad-option-value", "bad-regex", "options-to-plain", "missing-option"],
)
def test_bad_transform_in_yaml_is_explained(step: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        TransformCall.parse(step)
