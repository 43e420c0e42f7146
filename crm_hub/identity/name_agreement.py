"""Given- and family-name agreement: swaps, nicknames, initials, typos of nicknames.

Shared by the ``first_name`` and ``last_name`` comparisons and computed once per set of pairs
(cached on the `PairContext`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from rapidfuzz import process
from rapidfuzz.distance import OSA

from crm_hub.identity.arrays import distinct_inverse
from crm_hub.identity.context import PairContext
from crm_hub.normalize import nickname_table

__all__ = ["NameAgreement", "given_names", "keyboard_slip", "names", "nickname_typo"]


@dataclass(frozen=True)
class NameAgreement:
    """Given- and family-name agreement per pair, after undoing first/last swaps.

    ``first``/``last`` hold Jaro-Winkler similarity (1.0 when equal, NaN when missing);
    ``*_nickname`` and ``first_initial`` flag nickname and initial agreement.
    """

    first: np.ndarray
    last: np.ndarray
    first_nickname: np.ndarray
    last_nickname: np.ndarray
    first_initial: np.ndarray
    swapped: np.ndarray


@dataclass(frozen=True)
class _Tokens:
    similarity: np.ndarray
    nickname: np.ndarray
    initial: np.ndarray

    def score(self) -> np.ndarray:
        best = np.where(self.nickname, np.maximum(self.similarity, 0.95), self.similarity)
        result: np.ndarray = np.where(self.initial, np.maximum(best, 0.85), best)
        return result


def _name_attributes(ctx: PairContext) -> tuple[np.ndarray, np.ndarray]:
    """Per value of the joint name vocabulary: first letter code and single-letter flag."""
    if "name_attributes" not in ctx.cache:
        _, strings = ctx.vocabulary("names", "first", "last")
        initial = np.fromiter((ord(v[0]) for v in strings), dtype=np.int32, count=len(strings))
        single = np.fromiter((len(v) == 1 for v in strings), dtype=bool, count=len(strings))
        ctx.cache["name_attributes"] = (initial, single)
    found: tuple[np.ndarray, np.ndarray] = ctx.cache["name_attributes"]  # type: ignore[assignment]
    return found


def _groups_overlap(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    hit = np.zeros(len(a), dtype=bool)
    for i in range(a.shape[1]):
        for j in range(b.shape[1]):
            hit |= (a[:, i] >= 0) & (a[:, i] == b[:, j])
    return hit


def _tokens(
    ctx: PairContext,
    rows: np.ndarray | slice,
    codes: tuple[np.ndarray, np.ndarray],
    groups: tuple[np.ndarray, np.ndarray],
) -> _Tokens:
    _, strings = ctx.vocabulary("names", "first", "last")
    initial, single = _name_attributes(ctx)
    left_rows, right_rows = ctx.left[rows], ctx.right[rows]
    a, b = codes[0][left_rows], codes[1][right_rows]
    similarity = ctx.similarity(a, b, strings)
    present = (a >= 0) & (b >= 0)
    nickname = present & _groups_overlap(groups[0][left_rows], groups[1][right_rows])
    if not len(strings):
        return _Tokens(similarity, nickname, np.zeros(len(a), dtype=bool))
    safe_a, safe_b = np.maximum(a, 0), np.maximum(b, 0)
    initials = present & (initial[safe_a] == initial[safe_b]) & (single[safe_a] | single[safe_b])
    # ``B``/``Rebecca``: the initial of a nickname (Becky) stands for the full name too.
    letters = _variant_initials(ctx)
    for one, other in ((safe_a, safe_b), (safe_b, safe_a)):
        initials |= present & single[one] & _has_letter(letters[other], initial[one])
    return _Tokens(similarity, nickname, initials)


def _has_letter(masks: np.ndarray, letters: np.ndarray) -> np.ndarray:
    """Whether each letter (a code point) is set in its 26-bit a-z mask."""
    bit = letters.astype(np.int64) - ord("a")
    inside = (bit >= 0) & (bit < 26)
    result: np.ndarray = inside & ((masks >> np.where(inside, bit, 0)) & 1).astype(bool)
    return result


def _variant_initials(ctx: PairContext) -> np.ndarray:
    """Per value of the joint name vocabulary: a-z mask of its nickname variants' initials."""
    if "variant_initials" not in ctx.cache:
        pointer, flat = _variant_table(ctx)
        masks = np.zeros(len(pointer) - 1, dtype=np.int64)
        for row in np.flatnonzero(np.diff(pointer)):
            for name in flat[pointer[row] : pointer[row + 1]]:
                if "a" <= name[0] <= "z":
                    masks[row] |= 1 << (ord(name[0]) - ord("a"))
        ctx.cache["variant_initials"] = masks
    found: np.ndarray = ctx.cache["variant_initials"]  # type: ignore[assignment]
    return found


def names(ctx: PairContext) -> NameAgreement:
    """Compare given and family names, detecting records with the two swapped (cached).

    A pair counts as swapped when the crossed comparison (left given name against right family
    name and vice versa, nickname- and initial-aware) agrees clearly better than the straight
    one.
    """
    if "names" in ctx.cache:
        found: NameAgreement = ctx.cache["names"]  # type: ignore[assignment]
        return found
    (first_codes, last_codes), _ = ctx.vocabulary("names", "first", "last")
    p = ctx.prepared
    every = slice(None)
    first = _tokens(ctx, every, (first_codes, first_codes), (p.first_groups, p.first_groups))
    last = _tokens(ctx, every, (last_codes, last_codes), (p.last_groups, p.last_groups))
    first_sim, last_sim = first.similarity.copy(), last.similarity.copy()
    first_nick, last_nick = first.nickname.copy(), last.nickname.copy()
    first_init = first.initial.copy()
    straight = np.nan_to_num(first.score()) + np.nan_to_num(last.score())
    fl, fr = first_codes[ctx.left], first_codes[ctx.right]
    ll, lr = last_codes[ctx.left], last_codes[ctx.right]
    # Swaps need a given name on one side facing a family name on the other.
    cross_possible = ((fl >= 0) & (lr >= 0)) | ((ll >= 0) & (fr >= 0))
    maybe = np.flatnonzero(cross_possible & (straight < 1.8))
    swapped = np.zeros(len(ctx), dtype=bool)
    if len(maybe):
        # In swapped orientation the left family name is really a given name.
        as_first = _tokens(ctx, maybe, (last_codes, first_codes), (p.last_groups, p.first_groups))
        as_last = _tokens(ctx, maybe, (first_codes, last_codes), (p.first_groups, p.last_groups))
        score_first, score_last = as_first.score(), as_last.score()
        cross = np.nan_to_num(score_first) + np.nan_to_num(score_last)
        weakest = np.fmin(score_first, score_last)
        better = (cross > straight[maybe] + 0.1) & (weakest >= 0.85)
        chosen = maybe[better]
        swapped[chosen] = True
        first_sim[chosen] = as_first.similarity[better]
        first_nick[chosen] = as_first.nickname[better]
        first_init[chosen] = as_first.initial[better]
        last_sim[chosen] = as_last.similarity[better]
        last_nick[chosen] = as_last.nickname[better]
    result = NameAgreement(first_sim, last_sim, first_nick, last_nick, first_init, swapped)
    ctx.cache["names"] = result
    return result


def _variant_table(ctx: PairContext) -> tuple[np.ndarray, np.ndarray]:
    """Per value of the joint name vocabulary: its nickname variants, as CSR arrays."""
    if "name_variants" not in ctx.cache:
        _, strings = ctx.vocabulary("names", "first", "last")
        table = nickname_table()
        lists = [table.variants(name) for name in strings]
        pointer = np.zeros(len(strings) + 1, dtype=np.int64)
        pointer[1:] = np.cumsum([len(v) for v in lists])
        flat = np.array([name for v in lists for name in v], dtype=object)
        ctx.cache["name_variants"] = (pointer, flat)
    found: tuple[np.ndarray, np.ndarray] = ctx.cache["name_variants"]  # type: ignore[assignment]
    return found


def nickname_typo(ctx: PairContext, agreement: NameAgreement, level: np.ndarray) -> np.ndarray:
    """Given names one typo away from a nickname of the other (``Cahrles``/``Chuck``).

    Checked only where something else agrees (e-mail, phone, address, birth date), the pairs
    where a wrongly "different" given name would block a match.
    """
    (first_codes, last_codes), strings = ctx.vocabulary("names", "first", "last")
    codes = np.where(agreement.swapped[:, None], np.stack(
        [last_codes[ctx.left], first_codes[ctx.right]], axis=1), np.stack(
        [first_codes[ctx.left], first_codes[ctx.right]], axis=1))  # fmt: skip
    support = (ctx.equal_codes("email_code") == 1) | (ctx.equal_codes("phone_code") == 1)
    support |= (ctx.equal_codes("address_code") == 1) | (ctx.equal_codes("dob_code") == 1)
    todo = np.flatnonzero((level == 0) & ~np.isnan(agreement.first) & support)
    hit = np.zeros(len(ctx), dtype=bool)
    if not len(todo):
        return hit
    pointer, flat = _variant_table(ctx)
    a, b = codes[todo, 0].astype(np.int64), codes[todo, 1].astype(np.int64)
    width = np.int64(len(strings) + 1)
    distinct, inverse = distinct_inverse(a * width + b)
    da, db = distinct // width, distinct % width
    queries, choices, owners = [], [], []
    for one, other in ((da, db), (db, da)):
        counts = pointer[other + 1] - pointer[other]
        starts = np.repeat(pointer[other], counts)
        within = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
        queries.append(np.repeat(strings[one], counts))
        choices.append(flat[starts + within] if len(flat) else np.empty(0, dtype=object))
        owners.append(np.repeat(np.arange(len(distinct)), counts))
    query, choice, owner = np.concatenate(queries), np.concatenate(choices), np.concatenate(owners)
    close = np.zeros(len(distinct), dtype=bool)
    if len(query):
        distance = np.asarray(process.cpdist(query, choice, scorer=OSA.distance,
                                             workers=ctx.settings.workers))  # fmt: skip
        long_enough = np.array([len(q) >= 4 for q in query], dtype=bool)
        close[owner[(distance <= 1) & long_enough]] = True
    hit[todo] = close[inverse]
    return hit


_QWERTY_NEIGHBOURS = dict(zip("abcdefghijklmnopqrstuvwxyz", (
    "qwsz", "vghn", "xdfv", "serfcx", "wsdr", "drtgvc", "ftyhbv", "gyujnb", "ujko", "huikmn",
    "jiolm", "kop", "njk", "bhjm", "iklp", "ol", "wa", "edft", "awedxz", "rfgy", "yhji", "cfgb",
    "qase", "zsdc", "tghu", "asx"), strict=True))  # fmt: skip


def keyboard_slip(a: str, b: str) -> bool:
    """Whether two names (4+ letters) are one keystroke apart: a letter dropped or doubled, two
    neighbours swapped, or a key hit next to the right one (``Jonh``, ``Kohn``/``John``).

    A different letter far from the right key (``Joan``/``John``, ``Mary``/``Mark``) is more
    often a different name than a slip, so it does not count.
    """
    if len(a) < 4 or len(b) < 4 or OSA.distance(a, b) != 1:
        return False
    if len(a) != len(b):
        return True
    differ = [i for i in range(len(a)) if a[i] != b[i]]
    return len(differ) == 2 or b[differ[0]] in _QWERTY_NEIGHBOURS.get(a[differ[0]], "")


def given_names(ctx: PairContext, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The two given names of the pairs ``rows`` (after undoing swaps), as name strings."""
    (first_codes, last_codes), strings = ctx.vocabulary("names", "first", "last")
    left, right = ctx.left[rows], ctx.right[rows]
    swapped = names(ctx).swapped[rows]
    a = np.where(swapped, last_codes[left], first_codes[left])
    return strings[a], strings[first_codes[right]]
