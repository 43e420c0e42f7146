"""The phone and e-mail fast paths give exactly what the libraries alone give.

``_normalize(value, ..., fast=False)`` is the reference: phonenumbers or email-validator for every
value. The fast paths (compiled metadata patterns, "+CC digits" found invalid without parsing, a
plain-ASCII address pattern) must agree with it on every input, valid or not.
"""

from __future__ import annotations

import random
import re

import phonenumbers
import pytest
from email_validator import SPECIAL_USE_DOMAIN_NAMES
from hypothesis import example, given, settings
from hypothesis import strategies as st

from crm_hub.normalize import NormalizedEmail, NormalizedPhone
from crm_hub.normalize import address as address_module
from crm_hub.normalize import email as email_module
from crm_hub.normalize import phone as phone_module
from crm_hub.normalize import text as text_module

_CODES = sorted(phonenumbers.COUNTRY_CODE_TO_REGION_CODE)
_REGIONS = ["GB", "US", "FR", "DE", "IT", "AR", "MX", "RU", "KZ", "BR", "IN", "CN", "JP", "AU",
            "NL", "ES", "CH", "IE", "SG"]  # fmt: skip
_SEPARATORS = ["", "", "", " ", "-", ".", "(", ")", "/"]


def _prefixes(code: int) -> list[str]:
    return [f"+{code}", f"+{code} ", f"00{code}", f"011{code}", f"{code}", "0", "", f"+{code} (0)",
            f"+{code}0", "+0", "+", f"+0{code}", "00"]  # fmt: skip


def _agrees_phone(raw: str, region: str) -> None:
    fast = phone_module._normalize(raw, region)
    assert fast == phone_module._normalize(raw, region, fast=False), (raw, region)


@st.composite
def _phone_texts(draw: st.DrawFn) -> str:
    code = draw(st.sampled_from(_CODES))
    prefix = draw(st.sampled_from(_prefixes(code)))
    digits = draw(st.text("0123456789", min_size=3, max_size=14))
    separators = draw(st.lists(st.sampled_from(_SEPARATORS), min_size=len(digits),
                               max_size=len(digits)))  # fmt: skip
    return prefix + "".join(d + s for d, s in zip(digits, separators, strict=True))


@settings(max_examples=3_000, deadline=None)
@given(_phone_texts(), st.sampled_from(_REGIONS))
def test_phone_fast_paths_give_what_phonenumbers_gives(raw: str, region: str) -> None:
    _agrees_phone(raw, region)


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=30), st.sampled_from(_REGIONS))
@example("20¼¼", "DE")  # Unicode normalisation turns ¼ into digits phonenumbers refuses
def test_phone_fast_paths_agree_on_any_text(raw: str, region: str) -> None:
    _agrees_phone(raw, region)


def test_phone_fast_paths_agree_on_20000_seeded_numbers() -> None:
    rng = random.Random(20_000)
    for _ in range(20_000):
        code = rng.choice(_CODES)
        digits = "".join(rng.choice("0123456789") for _ in range(rng.randint(4, 13)))
        spaced = "".join(d + rng.choice(_SEPARATORS) for d in digits)
        raw = rng.choice(_prefixes(code)) + rng.choice([digits, spaced])
        _agrees_phone(raw, rng.choice(_REGIONS))


@pytest.mark.parametrize("region", ["GB", "US", "DE"])
def test_phone_fast_paths_agree_on_plus_numbers_of_every_country(region: str) -> None:
    rng = random.Random(region)
    for code in _CODES:
        for length in range(5, 13):
            digits = str(rng.randint(1, 9)) + "".join(rng.choices("0123456789", k=length))
            _agrees_phone(f"+{code} {digits}", region)


def test_plus_numbers_are_decided_without_parsing(monkeypatch: pytest.MonkeyPatch) -> None:
    """The common shapes never reach phonenumbers.parse: valid and invalid alike."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("phonenumbers.parse was called")

    monkeypatch.setattr(phone_module.phonenumbers, "parse", refuse)
    assert phone_module._normalize("+44 7911 123456", "GB").e164 == "+447911123456"
    assert phone_module._normalize("+44 7642544369", "GB").flag == "invalid"
    assert phone_module._normalize("07911 123456", "GB").e164 == "+447911123456"


def test_plus_zero_is_left_to_phonenumbers() -> None:
    """No country code starts with 0: "+044..." is not "+44..." (phonenumbers says invalid)."""
    assert phone_module._normalize("+049585798", "US").flag == "invalid"
    assert phone_module._normalize("+0447911123456", "GB").e164 is None


@settings(max_examples=500, deadline=None)
@given(st.text("0123456789 +()./-", max_size=30))
def test_separators_are_dropped_as_the_pattern_drops_them(text: str) -> None:
    assert phone_module._fast_digits(text) == phone_module._NON_DIGITS.sub("", text)


@settings(max_examples=500, deadline=None)
@given(st.text("0123456789", max_size=8))
def test_country_codes_are_split_as_their_numbers_are(digits: str) -> None:
    """The text lookup of a country code agrees with reading it as a number (zeros first too)."""
    assert phone_module._split_international(digits) == (
        phone_module._split_international_slow(digits)
    )


# --- e-mail -------------------------------------------------------------------------------

_ALPHA = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
_TLDS = ["com", "org", "co.uk", "de", "io", "museum", "c0m", "123", "xn--p1ai", "COM", "x",
         "abcdefghijklmnopqrstuvwxyz", "internal", *SPECIAL_USE_DOMAIN_NAMES]  # fmt: skip


def _agrees_email(raw: str) -> None:
    fast = email_module._normalize(raw)
    assert fast == email_module._normalize(raw, fast=False), raw


@st.composite
def _addresses(draw: st.DrawFn) -> str:
    local = draw(st.text(_ALPHA + "._%+-'!#$&*=?^`{|}~é", min_size=1, max_size=70))
    labels = draw(st.lists(st.text(_ALPHA + "--é_", min_size=1, max_size=65), min_size=1,
                           max_size=3))  # fmt: skip
    domain = ".".join([*labels, draw(st.sampled_from(_TLDS))])
    address = draw(st.sampled_from([f"{local}@{domain}", f" {local}@{domain} ",
                                    f"{local}@@{domain}", f"{local}@{domain}."]))  # fmt: skip
    return address


@settings(max_examples=3_000, deadline=None)
@given(_addresses())
@example("INFO@0.com")  # an RFC 2142 role mailbox: email-validator lower-cases its local part
def test_email_fast_path_gives_what_email_validator_gives(raw: str) -> None:
    _agrees_email(raw)


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=40))
def test_email_fast_path_agrees_on_any_text(raw: str) -> None:
    _agrees_email(raw)


def test_email_fast_path_agrees_on_20000_seeded_addresses() -> None:
    rng = random.Random(20_000)

    def part(chars: str, longest: int) -> str:
        return "".join(rng.choice(chars) for _ in range(rng.randint(1, longest)))

    for _ in range(20_000):
        local = part(_ALPHA + rng.choice([".+-_", "._%+-'!#$&*=?^`{|}~"]), rng.choice([5, 20, 70]))
        labels = [part(_ALPHA + "-" * rng.randint(0, 3), rng.choice([3, 10, 70]))
                  for _ in range(rng.randint(1, 3))]  # fmt: skip
        _agrees_email(f"{local}@{'.'.join([*labels, rng.choice(_TLDS)])}")


def test_special_use_domains_are_single_labels() -> None:
    """The fast path compares the last label with email-validator's list: it must stay so."""
    assert all("." not in name for name in SPECIAL_USE_DOMAIN_NAMES)


# --- shortcuts pinned to their definitions ------------------------------------------------


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=20) | st.sampled_from(["O'Brien", "Zoë", "ÉMILE", "Mary-Ann", "ǅ", "ß"]))
def test_letters_key_of_plain_words_is_the_folded_letters(word: str) -> None:
    assert text_module.letters_key(word) == text_module._NON_LETTERS.sub("", text_module.fold(word))


@settings(max_examples=500, deadline=None)
@given(st.text("abcSWAW019 -\t\n.éÉ", max_size=12) | st.text(max_size=12))
@example("sw1a1aa")
@example("ÉC1A 1BB")
def test_postcode_key_is_the_letters_and_digits_of_the_postcode(value: str) -> None:
    shown = address_module.normalize_postcode(value)
    expected = None if shown is None else re.sub(r"[^A-Z0-9]", "", shown) or None
    assert address_module._postcode_key(value) == expected


def test_results_made_without_init_equal_constructed_ones() -> None:
    made, built = phone_module._usable("+447911123456"), NormalizedPhone("+447911123456", None)
    assert (made, repr(made), hash(made)) == (built, repr(built), hash(built))
    made_email = email_module._make("A@b.com", "a@b.com", "b.com", None)
    built_email = NormalizedEmail("A@b.com", "a@b.com", "b.com", None)
    assert (made_email, repr(made_email)) == (built_email, repr(built_email))
