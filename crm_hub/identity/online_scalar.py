"""Online matching of one record without frames: the batch scores and decisions, pair by pair.

The batch path (`prepare`, then the comparisons over arrays of pairs) is built for millions of
pairs; for one record and a few candidates, building its frames costs 10-20 ms where the work
itself takes microseconds. Here each record is normalised with the scalar normalisers that
`prepare` applies per distinct value, and each shipped comparison, rule and veto is the batch
one written for a single pair. Similarities are compared in float32, as the batch path stores
them, and weights and probabilities come from the batch functions over the level matrix, so the
answer is the same to the last bit (``tests/identity/test_online_scalar.py`` checks it against
the frame path on generated records).

Only the shipped comparisons, rules and vetoes are written here: :func:`supports` tells whether
a model and the registries are exactly those; otherwise the caller uses the frame path.
"""

from __future__ import annotations

import math
import re
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import jellyfish
import numpy as np
from rapidfuzz.distance import OSA, JaroWinkler

from crm_hub.identity import comparisons, rules
from crm_hub.identity.comparisons import comparison, email_slip, same_street
from crm_hub.identity.name_agreement import member_slip
from crm_hub.identity.records import NICKNAME_SLOTS, impossible_date_digits
from crm_hub.identity.scoring import FellegiSunter, probability
from crm_hub.normalize import nickname_table
from crm_hub.normalize.address import address_line_key, house_number, postcode_key
from crm_hub.normalize.dates import parse_birth_date
from crm_hub.normalize.email import normalize_email
from crm_hub.normalize.names import first_name_key, last_name_key, parse_full_name
from crm_hub.normalize.phone import normalize_phone
from crm_hub.normalize.text import clean_text, fold

__all__ = ["Person", "person", "score_pairs", "supports"]

_F32 = np.float32
_NAN = _F32("nan")
_ONE = _F32(1.0)
_NON_DIGITS = re.compile(r"\D+")
_LETTER = re.compile(r"[^\W\d_]")
_COMPARISONS: dict[str, Callable[..., Any]] = {
    "first_name": comparisons.first_name,
    "last_name": comparisons.last_name,
    "birth_date": comparisons.birth_date,
    "email": comparisons.email,
    "contact": comparisons.contact,
}


@dataclass(frozen=True, slots=True)
class Person:
    """One record's match forms, as `prepare` computes them (``None``/0: missing)."""

    first: str | None
    last: str | None
    first_groups: tuple[int, ...]
    last_groups: tuple[int, ...]
    last_sound: str | None
    email: str | None
    phone: str | None
    year: int
    month: int
    day: int
    dob_impossible: int  # YYYYMMDD of a date-shaped value that is no date, else -1
    line: str | None  # address line key
    address: str | None  # line key | postcode (or town)
    number_postcode: str | None
    postcode: str | None
    city: str | None

    @property
    def dob_code(self) -> int:
        """``YYYYMMDD`` when year and month are known, else -1 (as `prepare`)."""
        if self.year > 0 and self.month > 0:
            return self.year * 10000 + self.month * 100 + self.day
        return -1


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _names(values: Mapping[str, Any]) -> tuple[str | None, str | None]:
    first, last = clean_text(values.get("first_name")), clean_text(values.get("last_name"))
    full = values.get("full_name")
    if first is None and last is None and not _missing(full):
        parsed = parse_full_name(full)
        first, last = parsed.first, parsed.last
    return first_name_key(first), last_name_key(last)


def _email_key(value: object) -> str | None:
    """As `email_match_keys`: stripped and lower-cased before normalising."""
    if _missing(value):
        return None
    return normalize_email(str(value).strip().lower()).match_key


def _phone(value: object, region: str) -> str | None:
    """As `normalize_phones`: the number normalised from ``+``/digits unless it has letters."""
    if _missing(value):
        return None
    text = str(value)
    digits = _NON_DIGITS.sub("", text)
    key = text
    if digits and not _LETTER.search(text):
        key = ("+" if text.lstrip().startswith("+") else "") + digits
    return normalize_phone(key, region).e164


def _city(value: object) -> str | None:
    return None if clean_text(value) is None else fold(str(value))


def _groups(key: str | None) -> tuple[int, ...]:
    return nickname_table().groups(key)[:NICKNAME_SLOTS] if key is not None else ()


def person(values: Mapping[str, Any], region: str) -> Person:
    """The match forms of one record (hub field names; ``birth_date`` as ISO text)."""
    first, last = _names(values)
    born = parse_birth_date(values.get("birth_date"))
    key1 = address_line_key(values.get("address_line1"))
    key2 = address_line_key(values.get("address_line2"))
    line = None if key1 is None else key1 if key2 is None else f"{key1} {key2}"
    postcode = postcode_key(values.get("postcode"))
    place = postcode if postcode is not None else _city(values.get("city"))
    number = house_number(line)
    return Person(
        first=first,
        last=last,
        first_groups=_groups(first),
        last_groups=_groups(last),
        last_sound=(jellyfish.metaphone(last) or None) if last is not None else None,
        email=_email_key(values.get("email")),
        phone=_phone(values.get("phone"), region),
        year=(born.year or 0) if born else 0,
        month=born.month if born else 0,
        day=born.day if born else 0,
        dob_impossible=-1 if born else impossible_date_digits(values.get("birth_date")),
        line=line,
        address=None if line is None or place is None else f"{line}|{place}",
        number_postcode=None if number is None or postcode is None else f"{number}|{postcode}",
        postcode=postcode,
        city=_city(values.get("city")),
    )


# --- what the batch path counts over the query and its candidates ----------------------------


def _household_person(one: Person) -> tuple[str, object] | None:
    """Who a record is for `shared_contacts`: its first nickname group, else its metaphone."""
    if one.first is None or len(one.first) <= 1:
        return None
    if one.first_groups:
        return "group", one.first_groups[0]
    return "sound", jellyfish.metaphone(one.first)


def _shared(people: Sequence[Person], keys: Sequence[object | None]) -> list[bool]:
    """Per record: is its key held by records of two or more given names (a household)?"""
    holders: dict[object, set[object]] = {}
    for one, key in zip(people, keys, strict=True):
        who = _household_person(one)
        if key is not None and who is not None:
            holders.setdefault(key, set()).add(who)
    return [key is not None and len(holders.get(key, ())) >= 2 for key in keys]


@dataclass(frozen=True, slots=True)
class _Batch:
    """Per record, the counts and household flags the rules read."""

    email_count: list[int]
    phone: list[bool]
    address: list[bool]
    surname_postcode: list[bool]

    @classmethod
    def of(cls, people: Sequence[Person]) -> _Batch:
        emails = [p.email for p in people]
        count = {key: emails.count(key) for key in set(emails) if key is not None}
        surname = [(p.last, p.postcode) if p.last is not None and p.postcode is not None else None
               for p in people]  # fmt: skip
        # The street line in its town too: records with and without the postcode share it.
        line_town = [(p.line, p.city) if p.line is not None and p.city is not None else None
                     for p in people]  # fmt: skip
        address = _shared(people, [p.address for p in people])
        return cls(
            [count.get(key, 0) if key is not None else 0 for key in emails],
            _shared(people, [p.phone for p in people]),
            [a or b for a, b in zip(address, _shared(people, line_town), strict=True)],
            _shared(people, surname),
        )


# --- names -------------------------------------------------------------------------------------


def _similarity(a: str | None, b: str | None) -> np.float32:
    if a is None or b is None:
        return _NAN
    if a == b:
        return _ONE
    return _F32(JaroWinkler.normalized_similarity(a, b))


@lru_cache(maxsize=4096)
def _variants(name: str) -> tuple[str, ...]:
    return nickname_table().variants(name)


@lru_cache(maxsize=4096)
def _variant_initials(name: str) -> frozenset[str]:
    return frozenset(v[0] for v in _variants(name) if "a" <= v[0] <= "z")


@dataclass(frozen=True, slots=True)
class _Tokens:
    similarity: np.float32
    nickname: bool
    initial: bool

    def score(self) -> np.float32:
        best = max(self.similarity, _F32(0.95)) if self.nickname else self.similarity
        return max(best, _F32(0.85)) if self.initial else best


def _tokens(a: str | None, b: str | None, ga: tuple[int, ...], gb: tuple[int, ...]) -> _Tokens:
    similarity = _similarity(a, b)
    if a is None or b is None:
        return _Tokens(similarity, False, False)
    nickname = bool(set(ga) & set(gb))
    initial = a[0] == b[0] and (len(a) == 1 or len(b) == 1)
    initial = initial or (len(a) == 1 and a in _variant_initials(b))
    initial = initial or (len(b) == 1 and b in _variant_initials(a))
    return _Tokens(similarity, nickname, initial)


def _zero_nan(value: np.float32) -> np.float32:
    return _F32(0.0) if math.isnan(value) else value


@dataclass(frozen=True, slots=True)
class _Names:
    """`NameAgreement` of one pair."""

    first: np.float32
    last: np.float32
    first_nickname: bool
    last_nickname: bool
    first_initial: bool
    swapped: bool
    right_swapped: bool

    @property
    def crossed(self) -> bool:
        """One record's names read swapped (`NameAgreement.crossed`)."""
        return self.swapped or self.right_swapped

    def given(self, q: Person, c: Person) -> tuple[str | None, str | None]:
        """The two given names, swaps undone (`given_names`)."""
        return (q.last if self.swapped else q.first, c.last if self.right_swapped else c.first)


def _names_agree(q: Person, c: Person) -> _Names:
    first = _tokens(q.first, c.first, q.first_groups, c.first_groups)
    last = _tokens(q.last, c.last, q.last_groups, c.last_groups)
    straight_first, straight_last = first.score(), last.score()
    straight = _zero_nan(straight_first) + _zero_nan(straight_last)
    crossable = (q.first is not None and c.last is not None) or (
        q.last is not None and c.first is not None
    )
    if crossable and straight < _F32(1.8):
        as_first = _tokens(q.last, c.first, q.last_groups, c.first_groups)
        as_last = _tokens(q.first, c.last, q.first_groups, c.last_groups)
        score_first, score_last = as_first.score(), as_last.score()
        cross = _zero_nan(score_first) + _zero_nan(score_last)
        weakest = np.fmin(score_first, score_last)
        unlike = np.fmax(straight_first, straight_last) < _F32(0.8)
        half = unlike and np.fmax(score_first, score_last) >= _ONE
        if cross > straight + _F32(0.1) and (weakest >= _F32(0.85) or half):
            if weakest < _F32(0.85) and score_first >= _ONE:  # the right record is swapped
                return _Names(as_last.similarity, as_first.similarity, as_last.nickname,
                              as_first.nickname, as_last.initial, False, True)  # fmt: skip
            return _Names(as_first.similarity, as_last.similarity, as_first.nickname,
                          as_last.nickname, as_first.initial, True, False)  # fmt: skip
    return _Names(first.similarity, last.similarity, first.nickname, last.nickname,
                  first.initial, False, False)  # fmt: skip


def _equal(a: object, b: object) -> int:
    """`PairContext.equal_codes` for one pair: 1 same, 0 different, -1 either missing."""
    if a is None or b is None:
        return -1
    return 1 if a == b else 0


def _email(a: str | None, b: str | None) -> int:
    """`comparisons.email` for one pair of match keys: 2 same, 1 one slip in one domain."""
    if a is None or b is None:
        return -1
    if a == b:
        return 2
    local_a, _, domain_a = a.partition("@")
    local_b, _, domain_b = b.partition("@")
    return 1 if domain_a == domain_b and email_slip(local_a, local_b) else 0


def _nickname_typo(q: Person, c: Person, names: _Names) -> bool:
    support = _equal(q.email, c.email) == 1 or _equal(q.phone, c.phone) == 1
    support = support or _equal(q.address, c.address) == 1
    support = support or (q.dob_code >= 0 and q.dob_code == c.dob_code)
    if not support or math.isnan(names.first):
        return False
    a, b = names.given(q, c)
    if a is None or b is None:
        return False
    return any(
        len(one) >= 4 and any(OSA.distance(one, name) <= 1 for name in _variants(other))
        for one, other in ((a, b), (b, a))
    )


# --- the shipped comparisons, one pair ---------------------------------------------------------


def _first_name(q: Person, c: Person, names: _Names) -> int:
    sim = names.first
    level = 1 if names.first_initial else 0
    if sim >= _F32(0.80):
        level = 2
    if level == 0 and _nickname_typo(q, c, names):
        level = 2
    if sim >= _F32(0.92):
        level = 3
    if names.first_nickname:
        level = 4
    if sim >= _ONE:
        level = 5
    return -1 if math.isnan(sim) else level


def _last_name(q: Person, c: Person, names: _Names) -> int:
    sim = names.last
    level = 1 if sim >= _F32(0.80) else 0
    if q.last_sound is not None and q.last_sound == c.last_sound and not names.crossed:
        level = 2
    if sim >= _F32(0.92) or names.last_nickname:
        level = 3
    if sim >= _ONE:
        level = 4
    return -1 if math.isnan(sim) else level


def _digits(code: int) -> list[int]:
    return [(code // 10**power) % 10 for power in range(7, -1, -1)]


def _digit_slip(a: int, b: int) -> bool:
    """One digit differs, or two neighbouring digits are swapped (``YYYYMMDD`` codes)."""
    da, db = _digits(a), _digits(b)
    differs = [x != y for x, y in zip(da, db, strict=True)]
    hamming = sum(differs)
    adjacent = hamming == 2 and any(x and y for x, y in zip(differs, differs[1:], strict=False))
    return hamming <= 1 or (adjacent and sorted(da) == sorted(db))


def _impossible_slip(q: Person, c: Person) -> bool:
    """One side's impossible date is a slip of the other's full date."""
    return any(
        one.dob_impossible >= 0 and other.dob_code >= 0 and other.year > 0
        and _digit_slip(one.dob_impossible, other.dob_code)
        for one, other in ((q, c), (c, q))
    )  # fmt: skip


def _birth_date(q: Person, c: Person) -> int:
    if not (q.month > 0 and c.month > 0):
        return 1 if _impossible_slip(q, c) else -1
    full = q.year > 0 and c.year > 0
    same_md = q.month == c.month and q.day == c.day
    next_day = q.month == c.month and abs(q.day - c.day) == 1
    if not full:
        return 2 if same_md else 1 if next_day else 0
    same_year = q.year == c.year
    if same_year and same_md:
        return 3
    dm_swap = same_year and q.month == c.day and q.day == c.month
    slip = _digit_slip(q.dob_code, c.dob_code)
    return 1 if slip or dm_swap or (same_year and next_day) else 0


def _contact(q: Person, c: Person) -> int:
    phone = _equal(q.phone, c.phone)
    address = _equal(q.address, c.address)
    house = _equal(q.number_postcode, c.number_postcode)
    postcode = _equal(q.postcode, c.postcode)
    if phone < 0 and address < 0 and postcode < 0 and house < 0:
        return -1
    city = _equal(q.city, c.city)
    # One street line in one town is one address, even when only one record has the postcode.
    same_line = (
        q.line is not None and q.line == c.line and (postcode == 1 or (postcode < 0 and city == 1))
    )
    same_address = address == 1 or house == 1 or same_line
    if phone == 1:
        return 5 if same_address else 4
    if same_address:
        return 3
    slipped = _slipped_town(q, c, postcode, city)  # a postcode typo in one town
    level = 1 if postcode == 1 or slipped else 0
    # that, or a missing postcode in one town
    same_town = (postcode <= 0 and city == 1) or slipped
    if (level or same_town) and _alike_lines(q.line, c.line):
        return 2
    return level


def _alike_lines(a: str | None, b: str | None) -> bool:
    if a is None or b is None:
        return False
    return bool(_similarity(a, b) >= _F32(0.9)) or same_street(a, b)


def _slipped_town(q: Person, c: Person, postcode: int, city: int) -> bool:
    if postcode != 0 or city < 0:
        return False
    a, b = q.postcode, c.postcode
    assert a is not None and b is not None  # postcode 0: both present
    one_slip = len(a) == len(b) and OSA.distance(a, b) <= 1
    return one_slip and bool(_similarity(q.city, c.city) >= _F32(0.9))


def _levels(q: Person, c: Person, names: Sequence[str]) -> list[int]:
    agreement = _names_agree(q, c)
    found = {
        "first_name": lambda: _first_name(q, c, agreement),
        "last_name": lambda: _last_name(q, c, agreement),
        "birth_date": lambda: _birth_date(q, c),
        "email": lambda: _email(q.email, c.email),
        "contact": lambda: _contact(q, c),
    }
    return [found[name]() for name in names]


# --- the shipped rules and vetoes, one pair -----------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Pair:
    levels: dict[str, int]
    batch: _Batch
    left: int
    right: int
    given: tuple[str | None, str | None]  # the given names, a swap undone (`given_names`)

    def either(self, flags: list[bool]) -> bool:
        return flags[self.left] or flags[self.right]


def _email_and_name(p: _Pair) -> bool:
    first, last = p.levels["first_name"], p.levels["last_name"]
    named = first >= 2 or last >= 3
    compatible = (first >= 2 or first == -1 or (first == 1 and last >= 3)) and (
        last >= 1 or last == -1
    )
    return p.levels["email"] == 2 and named and compatible and p.levels["birth_date"] != 0


def _email_no_conflict(p: _Pair) -> bool:
    counts = p.batch.email_count
    return (
        p.levels["email"] == 2
        and max(counts[p.left], counts[p.right]) <= 4
        and p.levels["first_name"] != 0
        and p.levels["last_name"] != 0
        and p.levels["birth_date"] != 0
    )


def _phone_name_birthday(p: _Pair) -> bool:
    lv = p.levels
    return (
        lv["contact"] >= 4
        and lv["first_name"] >= 3
        and lv["last_name"] >= 3
        and lv["birth_date"] >= 2
    )


def _different_given_name(p: _Pair) -> bool:
    return p.levels["first_name"] == 0


def _different_birth_date(p: _Pair) -> bool:
    lv = p.levels
    strong = lv["email"] == 2 and lv["first_name"] >= 4 and lv["last_name"] >= 3
    return lv["birth_date"] == 0 and not strong


def _ambiguous_household(p: _Pair) -> bool:
    lv, contact = p.levels, p.levels["contact"]
    if contact >= 4:
        household = p.either(p.batch.phone)
    elif contact == 3:
        household = p.either(p.batch.address)
    else:
        # without a given name, surname and postcode cannot tell the member either
        nameless = lv["first_name"] < 0
        household = contact in (1, 2) and (p.either(p.batch.surname_postcode) or nameless)
    vetoed = lv["first_name"] <= 2 and lv["email"] != 2 and lv["birth_date"] < 2 and household
    if vetoed and lv["first_name"] == 2:
        a, b = p.given
        return not (a is not None and b is not None and member_slip(a, b))
    return vetoed


_RULES: dict[str, Callable[[_Pair], bool]] = {
    "email_and_name": _email_and_name,
    "email_no_conflict": _email_no_conflict,
    "phone_name_birthday": _phone_name_birthday,
}
_VETOES: dict[str, Callable[[_Pair], bool]] = {
    "different_given_name": _different_given_name,
    "different_birth_date": _different_birth_date,
    "ambiguous_household": _ambiguous_household,
}
_SHIPPED = {
    # the batch functions these stand for: a re-registered name falls back to the frame path
    "email_and_name": rules._email_and_name,
    "email_no_conflict": rules._email_no_conflict,
    "phone_name_birthday": rules._phone_name_birthday,
    "different_given_name": rules._different_given_name,
    "different_birth_date": rules._different_birth_date,
    "ambiguous_household": rules._ambiguous_household,
}


def supports(names: Sequence[str]) -> bool:
    """Whether the model's comparisons and the registered rules are all the shipped ones."""
    registered = {**rules._RULES, **rules._VETOES}
    return (
        bool(names)
        and all(n in _COMPARISONS and comparison(n).function is _COMPARISONS[n] for n in names)
        and set(registered) == set(_SHIPPED)
        and all(registered[n].function is _SHIPPED[n] for n in registered)
    )


def _first_fired(
    chosen: Sequence[str], table: Mapping[str, Callable[[_Pair], bool]], pair: _Pair, veto: bool
) -> int:
    """`rules.apply` for one pair: index of the first rule in ``chosen`` that fires, else -1."""
    for index, name in enumerate(chosen):
        needed = rules.requires(name, veto)
        if all(n in pair.levels for n in needed) and table[name](pair):
            return index
    return -1


@dataclass(frozen=True, slots=True)
class Scored:
    """One candidate's levels, probability and rule outcome."""

    levels: dict[str, int]
    probability: float
    rule: str | None  # the match rule that fired
    veto: str | None  # the veto that fired


def score_pairs(model: FellegiSunter, query: Person, candidates: Sequence[Person]) -> list[Scored]:
    """Score ``query`` against each candidate, as the batch path scores the same pairs.

    Call only when :func:`supports` the model's comparisons.
    """
    names = tuple(model.names)
    people = [query, *candidates]
    batch = _Batch.of(people)
    matrix = [_levels(query, c, names) for c in candidates]
    prob = probability(_match_weights(model, matrix))
    rule_names = rules.rule_names()
    veto_names = _active_vetoes(model)
    out = []
    for k, row in enumerate(matrix):
        c = candidates[k]
        given = _names_agree(query, c).given(query, c)
        pair = _Pair(dict(zip(names, row, strict=True)), batch, 0, k + 1, given)
        fired = _first_fired(rule_names, _RULES, pair, veto=False)
        vetoed = _first_fired(veto_names, _VETOES, pair, veto=True)
        out.append(Scored(pair.levels, float(prob[k]),
                          rule_names[fired] if fired >= 0 else None,
                          veto_names[vetoed] if vetoed >= 0 else None))  # fmt: skip
    return out


def _match_weights(model: FellegiSunter, matrix: list[list[int]]) -> np.ndarray:
    """:func:`~crm_hub.identity.scoring.match_weights` of a few pairs, in Python floats: the
    same float64 additions in the same order (prior, then each comparison's level weight, 0.0
    for a missing level), without a dozen numpy calls on arrays of one to three values."""
    prior, tables = _weight_tables(model)
    weights = []
    for row in matrix:
        weight = prior
        for table, level in zip(tables, row, strict=True):
            weight += table[level]
        weights.append(weight)
    return np.array(weights, dtype=np.float64)


def _weight_tables(model: FellegiSunter) -> tuple[float, list[list[float]]]:
    """The model's prior log-odds and level weights, each table ending in the 0.0 a missing
    level (-1) picks; computed once per model object."""
    found = _WEIGHTS.get(id(model))
    if found is None or found[0]() is not model:
        if len(_WEIGHTS) > 32:
            _WEIGHTS.clear()
        prior = float(np.log2(model.prior / (1 - model.prior)))
        tables = [[*map(float, table), 0.0] for table in model.weights()]
        found = _WEIGHTS[id(model)] = (weakref.ref(model), prior, tables)
    return found[1], found[2]


_WEIGHTS: dict[int, tuple[weakref.ref[FellegiSunter], float, list[list[float]]]] = {}


def _active_vetoes(model: FellegiSunter) -> tuple[str, ...]:
    return rules.active_vetoes(rules.veto_names(), dict(zip(model.names, model.m, strict=True)))
