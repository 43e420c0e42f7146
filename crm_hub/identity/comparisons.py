"""Comparisons: how two records agree on one aspect, as an ordered level per candidate pair.

A comparison is a function of a `PairContext` returning one ``int8`` level per pair: ``-1``
when either side lacks the data (no evidence either way), ``0`` for a clear disagreement, and
higher values for closer agreement. Comparisons are registered by name
(`register_comparison`) with a label per level; `explain` and the review queue show the labels.

All work is on whole arrays of pairs: equal codes are compared with numpy, and strings only for
the distinct value pairs that differ, with rapidfuzz's batch ``cpdist`` on both cores.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import numpy as np
from rapidfuzz import fuzz, process
from rapidfuzz.distance import OSA, JaroWinkler

from crm_hub.identity.arrays import distinct_pairs
from crm_hub.identity.context import (
    Comparison,
    Levels,
    PairContext,
    comparison,
    comparison_names,
    register_comparison,
)
from crm_hub.identity.name_agreement import keyboard_slip, names, nickname_typo

__all__ = [
    "Comparison",
    "PairContext",
    "comparison",
    "comparison_names",
    "email_slip",
    "register_comparison",
]


@register_comparison(
    "first_name",
    ("different", "initial", "similar", "very similar", "nickname", "exact"),
    tf_fields={5: "first"},
    prior_m=(0.02, 0.03, 0.03, 0.05, 0.12, 0.75),
    prior_u=(0.9, 0.03, 0.04, 0.01, 0.005, 0.015),
)
def first_name(ctx: PairContext) -> Levels:
    """Given names: exact, nickname, Jaro-Winkler ≥ 0.92 / ≥ 0.80, initial, different.

    Example pairs: ``Robert``/``Robert`` → exact; ``Bob``/``Robert`` → nickname;
    ``Jonathon``/``Jonathan`` → very similar; ``J``/``John`` or ``B``/``Rebecca`` (Becky) →
    initial; ``Ann``/``Paul`` → different.
    """
    agreement = names(ctx)
    sim = agreement.first
    level = np.zeros(len(ctx), dtype=np.int8)
    level[agreement.first_initial] = 1
    level[sim >= 0.80] = 2
    level[nickname_typo(ctx, agreement, level)] = 2
    level[sim >= 0.92] = 3
    level[agreement.first_nickname] = 4
    level[sim >= 1.0] = 5
    level[np.isnan(sim)] = -1
    return level


@register_comparison(
    "last_name", ("different", "similar", "sounds alike", "very similar", "exact"),
    tf_fields={4: "last"},
    prior_m=(0.02, 0.02, 0.03, 0.05, 0.88),
    prior_u=(0.95, 0.04, 0.005, 0.003, 0.002),
)  # fmt: skip
def last_name(ctx: PairContext) -> Levels:
    """Family names: exact, Jaro-Winkler ≥ 0.92, same metaphone, Jaro-Winkler ≥ 0.80.

    Example pairs: ``Smith``/``Smith`` → exact; ``Smith``/``Smyth`` → very similar;
    ``Thompson``/``Tomson`` → sounds alike; ``Smith``/``Jones`` → different.
    """
    agreement = names(ctx)
    sim = agreement.last
    a, b = ctx.codes("last_phonetic")
    level = np.zeros(len(ctx), dtype=np.int8)
    level[sim >= 0.80] = 1
    level[(a == b) & (a >= 0) & ~agreement.crossed] = 2
    level[(sim >= 0.92) | agreement.last_nickname] = 3
    level[sim >= 1.0] = 4
    level[np.isnan(sim)] = -1
    return level


# --- birth date ------------------------------------------------------------------------------


def _digits(codes: np.ndarray) -> np.ndarray:
    powers = 10 ** np.arange(7, -1, -1, dtype=np.int64)
    result: np.ndarray = (codes.astype(np.int64)[:, None] // powers) % 10
    return result


@register_comparison(
    "birth_date",
    ("different", "one typo", "same birthday", "exact"),
    prior_m=(0.02, 0.03, 0.15, 0.8),
    prior_u=(0.996, 0.0005, 0.003, 0.0001),
)
def birth_date(ctx: PairContext) -> Levels:
    """Birth dates: exact, same day and month when a year is missing, one typo, different.

    Example pairs: ``1984-07-02``/``1984-07-02`` → exact; ``--07-02``/``1984-07-02`` → same
    birthday; ``1984-07-02``/``1984-02-07`` (day and month swapped) or ``1984-07-03`` → one
    typo, and so is a day apart (``1984-07-03``, also against ``--07-03``: dates entered
    across midnight or time zones); so is an impossible date one slip from the other
    (``1984-07-32``, else missing); ``1984-07-02``/``1990-01-15`` → different.
    """
    p = ctx.prepared
    ml, mr = p.dob_month[ctx.left], p.dob_month[ctx.right]
    dl, dr = p.dob_day[ctx.left], p.dob_day[ctx.right]
    yl, yr = p.dob_year[ctx.left], p.dob_year[ctx.right]
    level = np.zeros(len(ctx), dtype=np.int8)
    present = (ml > 0) & (mr > 0)
    full = present & (yl > 0) & (yr > 0)
    same_md = (ml == mr) & (dl == dr)
    next_day = (ml == mr) & (np.abs(dl.astype(np.int16) - dr.astype(np.int16)) == 1)
    level[present & ~full & next_day] = 1
    level[present & ~full & same_md] = 2
    idx = np.flatnonzero(full & ~((yl == yr) & same_md))
    if len(idx):
        slip = _digit_slip(p.dob_code[ctx.left[idx]], p.dob_code[ctx.right[idx]])
        dm_swap = (yl[idx] == yr[idx]) & (ml[idx] == dr[idx]) & (dl[idx] == mr[idx])
        one_day = (yl[idx] == yr[idx]) & next_day[idx]
        level[idx[slip | dm_swap | one_day]] = 1
    level[full & (yl == yr) & same_md] = 3
    level[~present] = -1
    level[_impossible_slips(ctx)] = 1
    return level


def _digit_slip(codes_left: np.ndarray, codes_right: np.ndarray) -> np.ndarray:
    """Whether ``YYYYMMDD`` codes differ in one digit or two neighbouring digits swapped."""
    da, db = _digits(codes_left), _digits(codes_right)
    differs = da != db
    hamming = differs.sum(axis=1)
    adjacent = (hamming == 2) & (differs[:, :-1] & differs[:, 1:]).any(axis=1)
    swap_ok = adjacent & (np.sort(da, axis=1) == np.sort(db, axis=1)).all(axis=1)
    result: np.ndarray = (hamming <= 1) | swap_ok
    return result


def _impossible_slips(ctx: PairContext) -> np.ndarray:
    """Pairs where one side's impossible date (``1979-02-81``) is a slip of the other's date."""
    p = ctx.prepared
    full = (p.dob_year > 0) & (p.dob_month > 0)
    hit = np.zeros(len(ctx), dtype=bool)
    for one, other in ((ctx.left, ctx.right), (ctx.right, ctx.left)):
        rows = np.flatnonzero((p.dob_impossible[one] >= 0) & full[other])
        hit[rows[_digit_slip(p.dob_impossible[one[rows]], p.dob_code[other[rows]])]] = True
    return hit


# --- e-mail ----------------------------------------------------------------------------------


def email_slip(a: str, b: str) -> bool:
    """Whether two mailbox names (local parts, 6+ characters) are one keystroke apart past the
    first character: two neighbours swapped, a key next to the right one, or a character
    doubled or undoubled (``jsutin.humden``, ``angela.smirh``, ``martha.jarrvis``).

    A character dropped or changed far from its key is as often another person's mailbox
    (``annsmith``/``annesmith``, ``mwilson41``/``mwilson91``), and the first character is
    often the given name's initial (``rthomas``/``dthomas`` share a home), so neither counts.
    """
    if min(len(a), len(b)) < 6 or a[0] != b[0] or not keyboard_slip(a, b):
        return False
    if len(a) == len(b):
        return True
    short, long = sorted((a, b), key=len)
    at = len(os.path.commonprefix([short, long]))
    # the extra character sits at ``at``, after the rest of its run: doubled if one precedes it
    return long[at] == long[at - 1]


def _email_slips(ctx: PairContext, rows: np.ndarray) -> np.ndarray:
    """The pairs of ``rows`` (one domain, mailboxes differ) whose mailboxes are an
    `email_slip`: the edit distance once per distinct pair of mailboxes, the keystroke check
    on the few one edit apart."""
    close = rows[_scores_by_value(ctx, rows, "email_local", OSA.distance, 1) <= 1]
    local = ctx.prepared.email_local
    pairs = zip(local[ctx.left[close]], local[ctx.right[close]], strict=True)
    slips = np.fromiter((email_slip(a, b) for a, b in pairs), dtype=bool, count=len(close))
    result: np.ndarray = close[slips]
    return result


@register_comparison(
    "email",
    ("different", "one slip", "exact"),
    tf_fields={2: "email"},
    prior_m=(0.43, 0.02, 0.55),
    prior_u=(0.99999, 0.000001, 0.00001),
)
def email(ctx: PairContext) -> Levels:
    """E-mail match keys: exact, one keystroke slip in one domain (`email_slip`), different.

    There is no broader "similar" level on purpose: local parts are built from names, so two
    people called Gemma Smith have similar addresses (``gemma.smith@``, ``gemma.smith75@``)
    and a similarity level would count the name twice. Example pairs:
    ``j.smith@gmail.com``/``jsmith+x@googlemail.com`` → exact;
    ``barbara.hookgate@sky.com``/``barbara.hookgaet@sky.com`` → one slip;
    ``jsmith84@gmail.com``/``jsmith84@yahoo.co.uk`` → different.
    """
    level = ctx.equal_codes("email_code")
    level[level == 1] = 2
    rows = np.flatnonzero(level == 0)
    domain = ctx.prepared.email_domain_code
    rows = rows[domain[ctx.left[rows]] == domain[ctx.right[rows]]]
    if len(rows):
        level[_email_slips(ctx, rows)] = 1
    return level


# --- contact: phone and address together -----------------------------------------------------


def _scores_by_value(
    ctx: PairContext, rows: np.ndarray, field: str, scorer: Callable[..., float], cutoff: float
) -> np.ndarray:
    """``scorer`` of the pairs ``rows`` on a field of `Prepared` (its ``*_code`` too), each
    distinct pair of values once, read from a record pair holding it."""
    codes, values = getattr(ctx.prepared, f"{field}_code"), getattr(ctx.prepared, field)
    left, right = ctx.left[rows], ctx.right[rows]
    _, _, inverse = distinct_pairs(codes[left], codes[right])
    _, holder = np.unique(inverse, return_index=True)
    scores = process.cpdist(values[left[holder]], values[right[holder]], scorer=scorer,
                            score_cutoff=cutoff, workers=ctx.settings.workers)  # fmt: skip
    result: np.ndarray = np.asarray(scores)[inverse]
    return result


def _slipped_town(ctx: PairContext, postcode: Levels, city: Levels) -> np.ndarray:
    """Pairs whose towns are alike (JW ≥ 0.9) and whose postcodes, of one length, differ by one
    character or two neighbours swapped."""
    out = np.zeros(len(ctx), dtype=bool)
    todo = np.flatnonzero((postcode == 0) & (city >= 0))
    town = _scores_by_value(ctx, todo, "city", JaroWinkler.normalized_similarity, 0.0)
    todo = todo[town.astype(np.float32) >= 0.9]
    slips = _scores_by_value(ctx, todo, "postcode", OSA.distance, 1) <= 1
    a, b = ctx.prepared.postcode[ctx.left[todo]], ctx.prepared.postcode[ctx.right[todo]]
    same_length = np.fromiter(map(len, a), np.int64, len(a)) == np.fromiter(
        map(len, b), np.int64, len(b)
    )
    out[todo[slips & same_length]] = True
    return out


def same_street(a: str, b: str) -> bool:
    """Whether two address line keys name one street, in any order or with more on one side.

    The words of one line (two at least, one of them a name of three letters or more) must
    all be in the other: ``3 Concept, Bradfield St``/``3 Bradfield St, Concept`` (lines
    swapped), ``60 Larkin Cl``/``60 Larkin Cl, Moline Village`` (a building only one gives),
    ``Murray Cres``/``15 Murray Cres`` (the number left out). The level is that of lines
    alike letter by letter, which ``12 High St``/``14 High St`` already reach.
    """
    short, long = sorted((a.split(), b.split()), key=len)
    named = any(len(t) >= 3 and t.isalpha() for t in short)
    return len(short) >= 2 and named and set(short) <= set(long)


def _same_street_lines(ctx: PairContext, rows: np.ndarray) -> np.ndarray:
    """`same_street` for the pairs ``rows``, each distinct pair of lines once."""
    (codes,), strings = ctx.vocabulary("address", "address")
    low, high, inverse = distinct_pairs(codes[ctx.left[rows]], codes[ctx.right[rows]])
    a, b = strings[low], strings[high]
    # The token-set ratio is 100 exactly when one line's words are a subset of the other's.
    ratio = np.asarray(process.cpdist(a, b, scorer=fuzz.token_set_ratio, score_cutoff=100,
                                      workers=ctx.settings.workers))  # fmt: skip
    found = np.zeros(len(low), dtype=bool)
    for k in np.flatnonzero(ratio >= 100):
        found[k] = same_street(a[k], b[k])
    result: np.ndarray = found[inverse]
    return result


@register_comparison(
    "contact",
    ("different", "same postcode", "similar address", "same address", "same phone",
     "same phone and address"),
    tf_fields={5: "phone", 4: "phone", 3: "address"},
    prior_m=(0.35, 0.1, 0.02, 0.15, 0.28, 0.1),
    prior_u=(0.9995, 0.0004, 0.00005, 0.00004, 0.000005, 0.000001),
)  # fmt: skip
def contact(ctx: PairContext) -> Levels:
    """Phone and address as one comparison, because they agree together within a household.

    Treating them as independent fields would multiply their weights for people who merely
    live together. Example pairs: same E.164 phone and address → same phone and address;
    ``12 High St, SW1A 1AA``/``12 High Street, SW1A1AA`` → same address; ``12 High St``/
    ``12 Hihg St`` in one postcode → similar address.
    """
    phone = ctx.equal_codes("phone_code")
    address = ctx.equal_codes("address_code")
    house = ctx.equal_codes("number_postcode_code")
    postcode = ctx.equal_codes("postcode_code")
    city = ctx.equal_codes("city_code")
    (line_codes,), strings = ctx.vocabulary("address", "address")
    ll, lr = line_codes[ctx.left], line_codes[ctx.right]
    # One street line in one town is one address, even when only one record has the postcode.
    same_line = (ll == lr) & (ll >= 0) & ((postcode == 1) | ((postcode < 0) & (city == 1)))
    same_address = (address == 1) | (house == 1) | same_line
    # A postcode one slip from the other's in one town (``4152``/``4153``, also across a slip
    # in the town: ``2121 White Patch``/``2211 White Paltch``) is the same postcode mistyped.
    slipped = _slipped_town(ctx, postcode, city)
    level = np.zeros(len(ctx), dtype=np.int8)
    level[(postcode == 1) | slipped] = 1
    # Nor must such a slip, or a missing postcode in one town, hide the same street address.
    same_town = ((postcode <= 0) & (city == 1)) | slipped
    near = np.flatnonzero(((postcode == 1) | same_town) & ~same_address)
    if len(near):
        sim = ctx.similarity(line_codes[ctx.left[near]], line_codes[ctx.right[near]], strings)
        level[near[sim >= 0.9]] = 2
        rest = near[sim < 0.9]  # both lines present, not alike letter by letter
        level[rest[_same_street_lines(ctx, rest)]] = 2
    level[same_address] = 3
    level[phone == 1] = 4
    level[(phone == 1) & same_address] = 5
    comparable = (phone >= 0) | (address >= 0) | (postcode >= 0) | (house >= 0)
    level[~comparable] = -1
    return level
