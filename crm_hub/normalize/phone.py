"""Phone numbers: E.164 via phonenumbers, with placeholder detection.

Validity is phonenumbers' own: a number is valid when its national significant number matches
the metadata of a region of its country code. The vectorised path applies that same metadata
with compiled patterns to the common shapes (``+CC...``, international prefix, national prefix);
a ``+CC digits`` number they find invalid is invalid without parsing where phonenumbers would
read those same digits; anything else goes to ``phonenumbers.parse``, because a call per value
dominates at a million rows. Tests pin the fast paths to phonenumbers alone
(``_normalize(..., fast=False)``) on every shape.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache

import pandas as pd
import phonenumbers
from phonenumbers import NumberParseException, PhoneMetadata, PhoneNumberFormat

from crm_hub.normalize.text import clean_text, spread, unique_apply

__all__ = [
    "PHONE_FLAGS",
    "NormalizedPhone",
    "normalize_phone",
    "normalize_phones",
]

PHONE_FLAGS = ("missing", "invalid", "junk")
"""Flags a phone can carry; ``None`` means usable."""

_NON_DIGITS = re.compile(r"\D+")
# What the fast paths read: ASCII digits and common separators. Anything else ("20¼", which
# Unicode normalisation makes "201⁄4") goes to phonenumbers, whose punctuation rules decide it.
_FAST_TEXT = re.compile(r"[0-9 +()./\-]*")
_JUNK_RAW = frozenset({"unknown", "no phone", "nophone", "refused", "ex-directory", "ex directory"})
_SEQUENCES = ("01234567890123456789", "98765432109876543210")
# Mobile and fixed-line numbers first: most numbers are one of them, and whether a number fully
# matches an alternation does not depend on the order of its alternatives.
_TYPE_DESCS = (
    "mobile", "fixed_line", "premium_rate", "toll_free", "shared_cost", "voip",
    "personal_number", "pager", "uan", "voicemail",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class NormalizedPhone:
    """One phone number after normalisation.

    Attributes:
        e164: the number in E.164 (``+447911123456``), or ``None`` when missing/invalid/junk.
        flag: ``None`` when usable, else one of ``missing``, ``invalid``, ``junk``.
    """

    e164: str | None
    flag: str | None


_SET_E164, _SET_FLAG = vars(NormalizedPhone)["e164"].__set__, vars(NormalizedPhone)["flag"].__set__


def _usable(e164: str) -> NormalizedPhone:
    """``NormalizedPhone(e164, None)`` for a third less: the frozen ``__init__`` sets each slot
    through ``object.__setattr__``; this sets them directly, with the same result."""
    made = object.__new__(NormalizedPhone)
    _SET_E164(made, e164)
    _SET_FLAG(made, None)
    return made


_MISSING = NormalizedPhone(None, "missing")
_INVALID = NormalizedPhone(None, "invalid")
_JUNK = NormalizedPhone(None, "junk")


def _is_junk_digits(digits: str) -> bool:
    # One repeated digit in the last seven (or in all of them: implied), or a run like 123456.
    tail = digits[-7:]
    if not tail or tail.count(tail[0]) == len(tail):
        return True
    if len(digits) < 6:
        return False
    up, down = _SEQUENCES
    rest = digits[1:]  # part of ``digits``: in a run whenever ``digits`` is
    return rest in up or rest in down


def _pattern_and_lengths(desc: object) -> tuple[str, tuple[int, ...]] | None:
    pattern = getattr(desc, "national_number_pattern", None)
    if desc is None or not pattern:
        return None
    lengths = tuple(getattr(desc, "possible_length", ()) or ())
    if lengths == (-1,):
        return None
    return pattern, lengths


def _never(nsn: str) -> bool:
    return False


@lru_cache(maxsize=512)
def _region_validator(region: str) -> Callable[[str], bool]:
    """Validity as phonenumbers decides it: general pattern, then any number type's pattern.

    Per number length, one expression checks both: the general pattern as a lookahead over the
    whole number, then the type patterns merged (metadata patterns have no capturing groups, so
    merging them renumbers no back-reference).
    """
    metadata = PhoneMetadata.metadata_for_region(region)
    general = _pattern_and_lengths(metadata.general_desc) if metadata else None
    if metadata is None or general is None:
        return _never
    types = [
        t for t in (_pattern_and_lengths(getattr(metadata, n, None)) for n in _TYPE_DESCS) if t
    ]
    general_pattern, general_lengths = general

    def compile_for(length: int) -> re.Pattern[str] | None:
        parts = [p for p, lengths in types if not lengths or length in lengths]
        if not parts:
            return None
        merged = "|".join(f"(?:{p})" for p in parts)
        return re.compile(f"(?=(?:{general_pattern})\\Z)(?:{merged})")

    if general_lengths:  # every other length is invalid: no pattern
        by_length = {length: compile_for(length) for length in general_lengths}

        def valid(nsn: str) -> bool:
            pattern = by_length.get(len(nsn))
            return pattern is not None and pattern.fullmatch(nsn) is not None

        return valid
    lazy: dict[int, re.Pattern[str] | None] = {}

    def valid_any_length(nsn: str) -> bool:
        length = len(nsn)
        if length not in lazy:
            lazy[length] = compile_for(length)
        pattern = lazy[length]
        return pattern is not None and pattern.fullmatch(nsn) is not None

    return valid_any_length


@lru_cache(maxsize=512)
def _country_validator(country_code: int) -> Callable[[str], bool]:
    """Mirror phonenumbers' region choice for a country code shared by several regions."""
    regions = phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(country_code, ())
    steps: list[tuple[re.Pattern[str] | None, Callable[[str], bool]]] = []
    for region in regions:
        metadata = PhoneMetadata.metadata_for_region(region)
        if metadata is None:
            continue
        leading = re.compile(metadata.leading_digits) if metadata.leading_digits else None
        steps.append((leading, _region_validator(region)))
    if len(steps) == 1 and steps[0][0] is None:  # one region: its check alone
        return steps[0][1]

    def valid(nsn: str) -> bool:
        for leading, check in steps:
            if leading is not None:
                if leading.match(nsn):
                    return check(nsn)
            elif check(nsn):
                return True
        return False

    return valid


def _own_code_typed(region: str, digits: str, rest: str) -> bool:
    """Whether phonenumbers reads national ``digits`` as the region's country code typed
    without "+" and ``rest``: only when ``digits`` do not fit the region's numbers and ``rest``
    (or ``rest`` without a national prefix) does."""
    general, national_prefix = _region_general(region)
    if general is None or general.fullmatch(digits):
        return False
    if general.fullmatch(rest):
        return True
    if not national_prefix or not rest.startswith(national_prefix):
        return False
    return general.fullmatch(rest[len(national_prefix) :]) is not None


@lru_cache(maxsize=64)
def _region_general(region: str) -> tuple[re.Pattern[str] | None, str | None]:
    """The region's general number pattern and its national prefix."""
    metadata = PhoneMetadata.metadata_for_region(region)
    if metadata is None:
        return None, None
    pattern = getattr(metadata.general_desc, "national_number_pattern", None)
    return (re.compile(pattern) if pattern else None), metadata.national_prefix


@lru_cache(maxsize=64)
def _region_parts(region: str) -> tuple[int, str | None, re.Pattern[str] | None]:
    metadata = PhoneMetadata.metadata_for_region(region)
    if metadata is None:
        return 0, None, None
    intl = re.compile(metadata.international_prefix) if metadata.international_prefix else None
    return metadata.country_code or 0, metadata.national_prefix, intl


# Country codes by their digits: a code never starts with 0, so the text of one is its digits.
_CODES_BY_TEXT = {str(code): code for code in phonenumbers.COUNTRY_CODE_TO_REGION_CODE}


def _split_international(digits: str) -> tuple[int, str] | None:
    if digits[:1] == "0":  # int() would drop the zero: "07..." reads as code 7
        return _split_international_slow(digits)
    for width in (1, 2, 3):
        if len(digits) > width:
            code = _CODES_BY_TEXT.get(digits[:width])
            if code is not None:
                return code, digits[width:]
    return None


def _split_international_slow(digits: str) -> tuple[int, str] | None:
    for width in (1, 2, 3):
        code = int(digits[:width]) if len(digits) > width else 0
        if code in phonenumbers.COUNTRY_CODE_TO_REGION_CODE:
            return code, digits[width:]
    return None


def _fast_e164(text: str, digits: str, region: str) -> str | None:
    country_code, national_prefix, intl = _region_parts(region)
    international = text.startswith("+")
    if not international and intl is not None:
        found = intl.match(digits)
        if found and found.end() > 0:
            digits, international = digits[found.end() :], True
    candidates: list[tuple[int, str]] = []
    typed: tuple[int, str] | None = None  # the country code as typed, and the digits after it
    if international:
        if digits[:1] == "0":  # no country code starts with 0: phonenumbers reads it otherwise
            return None
        typed = _split_international(digits)
        if typed is None:
            return None
    elif country_code:
        own = str(country_code)
        if national_prefix and digits.startswith(national_prefix):
            candidates.append((country_code, digits[len(national_prefix) :]))
        candidates.append((country_code, digits))
        if digits.startswith(own) and _own_code_typed(region, digits, digits[len(own) :]):
            typed = (country_code, digits[len(own) :])
    if typed is not None:
        code, nsn = typed
        candidates.append(typed)
        # "+44 (0)20 ...": a national prefix kept after the country code
        prefix = _region_parts_for_code(code)
        if prefix and nsn.startswith(prefix):
            candidates.append((code, nsn[len(prefix) :]))
    for code, nsn in candidates:
        if _country_validator(code)(nsn):
            return f"+{code}{nsn}"
    return None


_PLUS_DIGITS = re.compile(r"\+[0-9][0-9 \-]*")


def _invalid_as_typed(text: str, digits: str) -> bool:
    """True when ``+CC digits`` is invalid for phonenumbers too, without asking it.

    phonenumbers reads such a number as the country code and the digits after it (no
    extension, no letters), strips a national prefix only where the country's prefix pattern
    matches the start of those digits, and restores a leading zero; when none of that applies
    it checks exactly the digits :func:`_fast_e164` found invalid, against the same metadata.
    """
    if not _PLUS_DIGITS.fullmatch(text) or digits[0] == "0":
        return False
    split = _split_international(digits)
    if split is None:
        return False
    code, nsn = split
    decided, parsing_prefix = _parsing_prefix(code)
    return (
        decided
        and nsn[:1] not in ("", "0")
        and (parsing_prefix is None or parsing_prefix.match(nsn) is None)
    )


@lru_cache(maxsize=512)
def _parsing_prefix(country_code: int) -> tuple[bool, re.Pattern[str] | None]:
    """Whether :func:`_country_validator` decides this code as phonenumbers does (not for a
    region without metadata, nor for one region with leading digits, e.g. +800), and the
    national prefix pattern phonenumbers strips after it (None: none)."""
    regions = phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(country_code, ())
    found = [PhoneMetadata.metadata_for_region(region) for region in regions]
    metadata = [m for m in found if m is not None]
    if not metadata or len(metadata) < len(found):
        return False, None
    if len(metadata) == 1 and metadata[0].leading_digits:
        return False, None
    pattern = metadata[0].national_prefix_for_parsing
    return True, re.compile(pattern) if pattern else None


@lru_cache(maxsize=512)
def _region_parts_for_code(country_code: int) -> str | None:
    regions = phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(country_code, ())
    if not regions:
        return None
    metadata = PhoneMetadata.metadata_for_region(regions[0])
    return metadata.national_prefix if metadata is not None else None


def normalize_phone(value: object, region: str = "GB", *, cached: bool = True) -> NormalizedPhone:
    """Normalise one phone number to E.164 (text is remembered: the answer depends on it alone).

    Args:
        value: the raw value, in any format a person types.
        region: the ISO 3166 region assumed for numbers written without a country code.
        cached: remember the answer for this text. A long-running server's searches rarely
            repeat, and 65,536 remembered answers are objects its collector walks again and
            again while the cache fills (a 4-7 ms pause every few seconds under load).

    Returns:
        The E.164 number, or ``None`` with flag ``missing``, ``invalid`` or ``junk``
        (all zeros, one repeated digit, ``123456789``...).

    Example:
        >>> normalize_phone("07911 123-456").e164
        '+447911123456'
        >>> normalize_phone("0000 000000").flag
        'junk'
    """
    if cached and type(value) is str and type(region) is str:
        return _normalize_text(value, region)
    return _normalize(value, region)


@lru_cache(maxsize=65_536)
def _normalize_text(value: str, region: str) -> NormalizedPhone:
    return _normalize(value, region)


def _normalize(value: object, region: str, fast: bool = True) -> NormalizedPhone:
    """``fast=False``: phonenumbers alone, the reference the fast paths must agree with."""
    text = clean_text(value)
    if text is None:
        return _MISSING
    if text.lower() in _JUNK_RAW:
        return _JUNK
    fast_text = fast and _FAST_TEXT.fullmatch(text) is not None
    digits = _fast_digits(text) if fast_text else _NON_DIGITS.sub("", text)
    if len(digits) < 6:
        return _INVALID if digits else _JUNK
    if _is_junk_digits(digits):
        return _JUNK
    if fast_text:
        found = _fast_e164(text.lstrip(), digits, region)
        if found is not None:
            nsn = found[-min(len(found) - 1, 10) :]
            return _JUNK if _is_junk_digits(nsn) else _usable(found)
        if _invalid_as_typed(text, digits):
            return _INVALID
    return _by_library(text, region)


def _fast_digits(text: str) -> str:
    """``_NON_DIGITS.sub("", text)`` at half its cost, for text that ``_FAST_TEXT`` matched."""
    return (
        text.replace(" ", "").replace("+", "").replace("(", "").replace(")", "")
        .replace(".", "").replace("/", "").replace("-", "")
    )  # fmt: skip


def _by_library(text: str, region: str) -> NormalizedPhone:
    try:
        parsed = phonenumbers.parse(text, region)
    except NumberParseException:
        return _INVALID
    if not phonenumbers.is_valid_number(parsed):
        return _INVALID
    e164 = phonenumbers.format_number(parsed, PhoneNumberFormat.E164)
    if _is_junk_digits(str(parsed.national_number)):
        return _JUNK
    return _usable(e164)


def normalize_phones(values: Iterable[object] | pd.Series, region: str = "GB") -> pd.DataFrame:
    """Normalise a column of phone numbers, once per distinct value.

    Args:
        values: the raw column.
        region: the region assumed for numbers without a country code.

    Returns:
        A frame with columns ``e164`` and ``flag`` in input order.
    """
    series = pd.Series(values, dtype=object) if not isinstance(values, pd.Series) else values
    text = series.astype("string")
    digits = text.str.replace(_NON_DIGITS.pattern, "", regex=True)
    plus = text.str.lstrip().str.startswith("+")
    # Format variants of one number share a key; values with letters ("ext. 12") keep theirs.
    lettered = text.str.contains(r"[^\W\d_]", regex=True)
    key = (plus.map({True: "+", False: ""}, na_action="ignore") + digits).where(~lettered, text)
    key = key.where(digits.str.len() > 0, text).astype(object).where(text.notna(), None)
    codes, results = unique_apply(key, lambda value: normalize_phone(value, region))
    return pd.DataFrame(
        {
            "e164": spread(codes, [r.e164 for r in results]),
            "flag": spread(codes, [r.flag for r in results]),
        }
    )
