from __future__ import annotations

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crm_hub.normalize import normalize_phone, normalize_phones


@pytest.mark.parametrize(
    "raw",
    ["07911 123456", "+44 7911 123456", "0044 7911 123456", "(07911) 123-456",
     "+44 (0)7911 123456", "447911123456", "7911123456"],
    ids=["national", "plus", "idd", "brackets", "plus-with-0", "cc-no-plus", "no-prefix"],
)  # fmt: skip
def test_format_variants_give_one_e164(raw: str) -> None:
    assert normalize_phone(raw, "GB").e164 == "+447911123456"


def test_default_region_applies_to_national_numbers() -> None:
    assert normalize_phone("(650) 253-0000", "US").e164 == "+16502530000"
    assert normalize_phone("+1 650 253 0000", "GB").e164 == "+16502530000"


@pytest.mark.parametrize("raw", ["0000000000", "07000 000000", "1234567890", "9999999999", "n/a"])
def test_placeholder_numbers_are_junk(raw: str) -> None:
    result = normalize_phone(raw)
    assert result.e164 is None
    assert result.flag in {"junk", "missing"}


def test_invalid_number_is_flagged() -> None:
    result = normalize_phone("01632 960123", "GB")  # a drama number: not assigned
    assert result == type(result)(None, "invalid")


def test_column_form_matches_scalar_form() -> None:
    values = ["07911 123456", None, "+447911123456", "abc"]
    frame = normalize_phones(values, "GB")
    assert list(frame["e164"]) == [normalize_phone(v).e164 for v in values]


def _reference(raw: str, region: str) -> str | None:
    try:
        parsed = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


_digits = st.text("0123456789", min_size=9, max_size=11)


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(["0", "+44", "+1", "+33", "0044", "44", "+49 ", ""]), _digits,
       st.sampled_from(["GB", "US", "FR"]))  # fmt: skip
def test_fast_path_agrees_with_phonenumbers(prefix: str, digits: str, region: str) -> None:
    raw = prefix + digits
    result = normalize_phone(raw, region)
    if result.flag == "junk":
        return
    assert result.e164 == _reference(raw, region)
