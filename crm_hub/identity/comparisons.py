"""Comparisons: how two records agree on one aspect, as an ordered level per candidate pair.

A comparison is a function of a `PairContext` returning one ``int8`` level per pair: ``-1``
when either side lacks the data (no evidence either way), ``0`` for a clear disagreement, and
higher values for closer agreement. Comparisons are registered by name
(`register_comparison`) with a label per level; `explain` and the review queue show the labels.

All work is on whole arrays of pairs: equal codes are compared with numpy, and strings only for
the distinct value pairs that differ, with rapidfuzz's batch ``cpdist`` on both cores.
"""

from __future__ import annotations

import numpy as np

from crm_hub.identity.context import (
    Comparison,
    Levels,
    PairContext,
    comparison,
    comparison_names,
    register_comparison,
)
from crm_hub.identity.name_agreement import names, nickname_typo

__all__ = [
    "Comparison",
    "PairContext",
    "comparison",
    "comparison_names",
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
    level[(a == b) & (a >= 0) & ~agreement.swapped] = 2
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
    across midnight or time zones); ``1984-07-02``/``1990-01-15`` → different.
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
        cl, cr = p.dob_code[ctx.left[idx]], p.dob_code[ctx.right[idx]]
        da, db = _digits(cl), _digits(cr)
        differs = da != db
        hamming = differs.sum(axis=1)
        adjacent = (hamming == 2) & (differs[:, :-1] & differs[:, 1:]).any(axis=1)
        swap_ok = adjacent & (np.sort(da, axis=1) == np.sort(db, axis=1)).all(axis=1)
        dm_swap = (yl[idx] == yr[idx]) & (ml[idx] == dr[idx]) & (dl[idx] == mr[idx])
        one_day = (yl[idx] == yr[idx]) & next_day[idx]
        level[idx[(hamming <= 1) | swap_ok | dm_swap | one_day]] = 1
    level[full & (yl == yr) & same_md] = 3
    level[~present] = -1
    return level


# --- e-mail ----------------------------------------------------------------------------------


@register_comparison(
    "email",
    ("different", "exact"),
    tf_fields={1: "email"},
    prior_m=(0.45, 0.55),
    prior_u=(0.99999, 0.00001),
)
def email(ctx: PairContext) -> Levels:
    """E-mail match keys: exact or different.

    There is no "similar" level on purpose: local parts are built from names, so two people
    called Gemma Smith have similar addresses (``gemma.smith@``, ``gemma.smith75@``) and a
    similarity level would count the name twice. Example pairs:
    ``j.smith@gmail.com``/``jsmith+x@googlemail.com`` → exact;
    ``jsmith84@gmail.com``/``jsmith84@yahoo.co.uk`` → different.
    """
    return ctx.equal_codes("email_code")


# --- contact: phone and address together -----------------------------------------------------


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
    level = np.zeros(len(ctx), dtype=np.int8)
    level[postcode == 1] = 1
    # A postcode typo (``4152``/``4153``) or a missing one in one town must not hide the same
    # street address.
    same_town = (postcode <= 0) & (city == 1)
    near = np.flatnonzero(((postcode == 1) | same_town) & ~same_address)
    if len(near):
        sim = ctx.similarity(line_codes[ctx.left[near]], line_codes[ctx.right[near]], strings)
        level[near[sim >= 0.9]] = 2
    level[same_address] = 3
    level[phone == 1] = 4
    level[(phone == 1) & same_address] = 5
    comparable = (phone >= 0) | (address >= 0) | (postcode >= 0) | (house >= 0)
    level[~comparable] = -1
    return level
