"""Given- and family-name agreement: swaps, nicknames, initials, typos of nicknames.

Shared by the ``first_name`` and ``last_name`` comparisons and computed once per set of pairs
(cached on the `PairContext`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from rapidfuzz import process
from rapidfuzz.distance import OSA, JaroWinkler

from crm_hub.identity.arrays import distinct_inverse
from crm_hub.identity.context import PairContext
from crm_hub.normalize import nickname_table

__all__ = [
    "NameAgreement",
    "given_names",
    "keyboard_slip",
    "member_slip",
    "names",
    "nickname_typo",
]


@dataclass(frozen=True)
class NameAgreement:
    """Given- and family-name agreement per pair, after undoing first/last swaps.

    ``first``/``last`` hold Jaro-Winkler similarity (1.0 when equal, NaN when missing);
    ``*_nickname`` and ``first_initial`` flag nickname and initial agreement; ``swapped`` and
    ``right_swapped`` flag the record (left or right) read with its two names swapped.
    """

    first: np.ndarray
    last: np.ndarray
    first_nickname: np.ndarray
    last_nickname: np.ndarray
    first_initial: np.ndarray
    swapped: np.ndarray
    right_swapped: np.ndarray

    @property
    def crossed(self) -> np.ndarray:
        """Pairs read with one record's names swapped."""
        result: np.ndarray = self.swapped | self.right_swapped
        return result


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
    # Only rows where both names have a group can overlap (most names have none).
    both = np.flatnonzero((a >= 0).any(axis=1) & (b >= 0).any(axis=1))
    a, b = a[both], b[both]
    for i in range(a.shape[1]):
        for j in range(b.shape[1]):
            hit[both] |= (a[:, i] >= 0) & (a[:, i] == b[:, j])
    return hit


def _vocabulary_groups(ctx: PairContext) -> np.ndarray:
    """Per value of the joint name vocabulary: its nickname groups (``-1`` padded)."""
    if "vocabulary_groups" not in ctx.cache:
        (first_codes, last_codes), strings = ctx.vocabulary("names", "first", "last")
        p = ctx.prepared
        table = np.full((len(strings), p.first_groups.shape[1]), -1, dtype=p.first_groups.dtype)
        for codes, groups in ((first_codes, p.first_groups), (last_codes, p.last_groups)):
            present = codes >= 0
            table[codes[present]] = groups[present]
        ctx.cache["vocabulary_groups"] = table
    found: np.ndarray = ctx.cache["vocabulary_groups"]  # type: ignore[assignment]
    return found


def _value_tokens(ctx: PairContext, low: np.ndarray, high: np.ndarray) -> _Tokens:
    """Compare pairs of name values (vocabulary codes, all present)."""
    _, strings = ctx.vocabulary("names", "first", "last")
    initial, single = _name_attributes(ctx)
    similarity = np.ones(len(low), dtype=np.float32)
    differ = np.flatnonzero(low != high)
    if len(differ):
        scores = process.cpdist(strings[low[differ]], strings[high[differ]],
                                scorer=JaroWinkler.normalized_similarity,
                                workers=ctx.settings.workers)  # fmt: skip
        similarity[differ] = np.asarray(scores, dtype=np.float32)
    groups = _vocabulary_groups(ctx)
    nickname = _groups_overlap(groups[low], groups[high])
    initials = (initial[low] == initial[high]) & (single[low] | single[high])
    # ``B``/``Rebecca``: the initial of a nickname (Becky) stands for the full name too.
    letters = _variant_initials(ctx)
    for one, other in ((low, high), (high, low)):
        initials |= single[one] & _has_letter(letters[other], initial[one])
    return _Tokens(similarity, nickname, initials)


def _own_tokens(ctx: PairContext) -> _Tokens:
    """Every value of the joint name vocabulary compared with itself (cached)."""
    if "own_name_tokens" not in ctx.cache:
        _, strings = ctx.vocabulary("names", "first", "last")
        codes = np.arange(len(strings), dtype=np.int64)
        ctx.cache["own_name_tokens"] = _value_tokens(ctx, codes, codes)
    found: _Tokens = ctx.cache["own_name_tokens"]  # type: ignore[assignment]
    return found


def _tokens(ctx: PairContext, a: np.ndarray, b: np.ndarray) -> _Tokens:
    """Compare names given as vocabulary codes per pair; each distinct pair of values once."""
    similarity = np.full(len(a), np.nan, dtype=np.float32)
    nickname = np.zeros(len(a), dtype=bool)
    initials = np.zeros(len(a), dtype=bool)
    present = (a >= 0) & (b >= 0)
    same = np.flatnonzero(present & (a == b))
    if len(same):
        own, code = _own_tokens(ctx), a[same]
        similarity[same] = own.similarity[code]
        nickname[same] = own.nickname[code]
        initials[same] = own.initial[code]
    differ = np.flatnonzero(present & (a != b))
    if len(differ):
        # Every comparison is symmetric, so a pair of values counts once in either order.
        a, b = a[differ], b[differ]
        low, high = np.minimum(a, b).astype(np.int64), np.maximum(a, b).astype(np.int64)
        width = np.int64(int(high.max()) + 1)
        keys, inverse = distinct_inverse(low * width + high)
        found = _value_tokens(ctx, keys // width, keys % width)
        similarity[differ] = found.similarity[inverse]
        nickname[differ] = found.nickname[inverse]
        initials[differ] = found.initial[inverse]
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
    one: both crossed names alike, or one the same where neither straight name is alike. In
    that half swap the name found in both is read as the family name, the harder reading for a
    household (``Crook``/``Channing`` against ``Bethany``/``Crook``: same family name, given
    names Channing and Bethany).
    """
    if "names" in ctx.cache:
        found: NameAgreement = ctx.cache["names"]  # type: ignore[assignment]
        return found
    (first_codes, last_codes), _ = ctx.vocabulary("names", "first", "last")
    fl, fr = first_codes[ctx.left], first_codes[ctx.right]
    ll, lr = last_codes[ctx.left], last_codes[ctx.right]
    first, last = _tokens(ctx, fl, fr), _tokens(ctx, ll, lr)
    first_sim, last_sim = first.similarity.copy(), last.similarity.copy()
    first_nick, last_nick = first.nickname.copy(), last.nickname.copy()
    first_init = first.initial.copy()
    straight_first, straight_last = first.score(), last.score()
    straight = np.nan_to_num(straight_first) + np.nan_to_num(straight_last)
    # Swaps need a given name on one side facing a family name on the other.
    cross_possible = ((fl >= 0) & (lr >= 0)) | ((ll >= 0) & (fr >= 0))
    maybe = np.flatnonzero(cross_possible & (straight < 1.8))
    swapped = np.zeros(len(ctx), dtype=bool)
    right_swapped = np.zeros(len(ctx), dtype=bool)
    if len(maybe):
        # In swapped orientation the left family name is really a given name.
        as_first = _tokens(ctx, ll[maybe], fr[maybe])
        as_last = _tokens(ctx, fl[maybe], lr[maybe])
        score_first, score_last = as_first.score(), as_last.score()
        cross = np.nan_to_num(score_first) + np.nan_to_num(score_last)
        weakest = np.fmin(score_first, score_last)
        unlike = np.fmax(straight_first[maybe], straight_last[maybe]) < 0.8
        half = unlike & (np.fmax(score_first, score_last) >= 1.0)
        better = (cross > straight[maybe] + 0.1) & ((weakest >= 0.85) | half)
        # The left family name found as the right given name: the right record is swapped.
        right = better & (weakest < 0.85) & (score_first >= 1.0)
        for rows, given, family, flag in ((better & ~right, as_first, as_last, swapped),
                                          (right, as_last, as_first, right_swapped)):  # fmt: skip
            chosen = maybe[rows]
            flag[chosen] = True
            first_sim[chosen] = given.similarity[rows]
            first_nick[chosen] = given.nickname[rows]
            first_init[chosen] = given.initial[rows]
            last_sim[chosen] = family.similarity[rows]
            last_nick[chosen] = family.nickname[rows]
    result = NameAgreement(
        first_sim, last_sim, first_nick, last_nick, first_init, swapped, right_swapped
    )
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
    _, strings = ctx.vocabulary("names", "first", "last")
    todo = np.flatnonzero((level == 0) & ~np.isnan(agreement.first))
    left, right = ctx.left[todo], ctx.right[todo]
    support = np.zeros(len(todo), dtype=bool)
    for name in ("email_code", "phone_code", "address_code", "dob_code"):
        values: np.ndarray = getattr(ctx.prepared, name)
        support |= (values[left] == values[right]) & (values[left] >= 0)
    todo, left, right = todo[support], left[support], right[support]
    hit = np.zeros(len(ctx), dtype=bool)
    if not len(todo):
        return hit
    pointer, flat = _variant_table(ctx)
    a, b = (codes.astype(np.int64) for codes in _given_codes(ctx, agreement, todo))
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


def member_slip(a: str, b: str) -> bool:
    """Whether a given name is one keystroke (`keyboard_slip`) from the other or from one of its
    nicknames (``Jonh``/``John``; ``Tereas``/``Tess`` and ``Bcky``/``Rebecca``, a slip of
    Teresa and of Becky): the name still says which member of a household the record is.
    """
    if keyboard_slip(a, b):
        return True
    table = nickname_table()
    return any(keyboard_slip(a, v) for v in table.variants(b)) or any(
        keyboard_slip(b, v) for v in table.variants(a)
    )


def _given_codes(
    ctx: PairContext, agreement: NameAgreement, rows: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Vocabulary codes of the two given names of the pairs ``rows``, swaps undone: a swapped
    record's given name is in its family-name field."""
    (first_codes, last_codes), _ = ctx.vocabulary("names", "first", "last")
    left, right = ctx.left[rows], ctx.right[rows]
    a = np.where(agreement.swapped[rows], last_codes[left], first_codes[left])
    b = np.where(agreement.right_swapped[rows], last_codes[right], first_codes[right])
    return a, b


def given_names(ctx: PairContext, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The two given names of the pairs ``rows`` (after undoing swaps), as name strings."""
    _, strings = ctx.vocabulary("names", "first", "last")
    a, b = _given_codes(ctx, names(ctx), rows)
    return strings[a], strings[b]
