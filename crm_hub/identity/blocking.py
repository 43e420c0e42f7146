"""Blocking: which record pairs are worth comparing.

A *blocking key* maps records to key values; records sharing a value form a block, and every
pair inside a block is a candidate. Candidates are the union over keys. Keys are registered by
name (`register_blocking_key`) and may give a record several values (``alex`` is a nickname of
both alexander and alexandra). A block larger than ``max_block_size`` creates no pairs: such
values are placeholders, shared office phones or very common names, and would swamp the
comparison step while saying little.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import jellyfish
import numpy as np

from crm_hub.identity.arrays import distinct, distinct_inverse
from crm_hub.identity.records import Prepared, codes_of
from crm_hub.identity.settings import MatchSettings
from crm_hub.normalize import nickname_table
from crm_hub.normalize.text import spread, unique_apply

__all__ = [
    "BlockingStats",
    "CandidatePairs",
    "KeyValues",
    "block_pairs",
    "blocking_key_names",
    "candidate_pairs",
    "key_values",
    "register_blocking_key",
]

log = logging.getLogger(__name__)

KeyValues = tuple[np.ndarray, np.ndarray]
"""``(rows, keys)``: record ``rows[i]`` has key value ``keys[i]`` (int64, ``-1`` = none)."""

BlockingKeyFunction = Callable[[Prepared], KeyValues]

_KEYS: dict[str, BlockingKeyFunction] = {}


def register_blocking_key(name: str) -> Callable[[BlockingKeyFunction], BlockingKeyFunction]:
    """Register a blocking key under ``name``.

    The function receives the prepared records and returns ``(rows, keys)`` arrays.

    Example:
        >>> @register_blocking_key("email_domain_initial")
        ... def _key(prepared): ...
    """

    def add(function: BlockingKeyFunction) -> BlockingKeyFunction:
        _KEYS[name] = function
        return function

    return add


def blocking_key_names() -> tuple[str, ...]:
    """Return the names of the registered blocking keys."""
    return tuple(_KEYS)


def key_values(prepared: Prepared, name: str) -> KeyValues:
    """Compute the values of one registered blocking key."""
    return _KEYS[name](prepared)


@dataclass
class BlockingStats:
    """What blocking did, per key: pairs made, blocks skipped as too large."""

    pairs_per_key: dict[str, int] = field(default_factory=dict)
    skipped_blocks: dict[str, int] = field(default_factory=dict)
    skipped_records: dict[str, int] = field(default_factory=dict)
    candidates: int = 0


@dataclass
class CandidatePairs:
    """Candidate pairs as two aligned arrays of canonical record indices, ``left < right``."""

    left: np.ndarray
    right: np.ndarray
    stats: BlockingStats

    def __len__(self) -> int:
        return len(self.left)


def _combine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    width = np.int64(max(int(b.max(initial=0)), 0) + 1)
    out = a.astype(np.int64) * width + b.astype(np.int64)
    out[(a < 0) | (b < 0)] = -1
    return out


def _single(codes: np.ndarray) -> KeyValues:
    return np.arange(len(codes), dtype=np.int64), codes.astype(np.int64)


def _distinct_entries(keys: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return the distinct ``(key, row)`` entries sorted by key, then row.

    Keys are ranked first, so that rank and row fit one int64 and one sort does the rest.
    """
    if not len(keys):
        return keys, rows
    values, rank = distinct_inverse(keys)
    width = np.int64(max(int(rows.max()), 0) + 1)
    entries = distinct(rank * width + rows.astype(np.int64))
    return values[entries // width], entries % width


def block_pairs(rows: np.ndarray, keys: np.ndarray, max_block_size: int) -> tuple[
    np.ndarray, np.ndarray, int, int
]:  # fmt: skip
    """Return every pair of rows sharing a key value, skipping blocks over the size cap.

    Args:
        rows: record indices.
        keys: their key values (``-1``: no value).
        max_block_size: blocks with more records than this are skipped.

    Returns:
        ``(left, right, skipped_blocks, skipped_records)`` with ``left < right``; a pair may
        appear twice when a record has two values in one block.
    """
    keep = keys >= 0
    sorted_keys, sorted_rows = _distinct_entries(keys[keep], rows[keep])
    if len(sorted_keys) == 0:
        empty = np.empty(0, dtype=np.int32)
        return empty, empty, 0, 0
    starts = np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]])
    sizes = np.diff(np.r_[starts, len(sorted_keys)])
    too_big = sizes > max_block_size
    group_size = np.repeat(sizes, sizes)
    group_start = np.repeat(starts, sizes)
    usable = (group_size >= 2) & (group_size <= max_block_size)
    position = np.flatnonzero(usable)
    remaining = (group_start[position] + group_size[position] - 1 - position).astype(np.int64)
    lefts, rights = [], []
    step = 1
    while len(position):
        alive = remaining >= step
        position, remaining = position[alive], remaining[alive]
        if not len(position):
            break
        lefts.append(sorted_rows[position])
        rights.append(sorted_rows[position + step])
        step += 1
    if not lefts:
        empty = np.empty(0, dtype=np.int32)
        return empty, empty, int(too_big.sum()), int(sizes[too_big].sum())
    a = np.concatenate(lefts)
    b = np.concatenate(rights)
    left = np.minimum(a, b).astype(np.int32)
    right = np.maximum(a, b).astype(np.int32)
    differ = left != right
    return left[differ], right[differ], int(too_big.sum()), int(sizes[too_big].sum())


def candidate_pairs(prepared: Prepared, settings: MatchSettings) -> CandidatePairs:
    """Build the union of the pairs of every configured blocking key.

    Args:
        prepared: the records.
        settings: which keys, and the block size cap.

    Returns:
        Unique candidate pairs sorted by ``(left, right)``, with per-key counts.
    """
    names = settings.blocking_keys or blocking_key_names()
    stats = BlockingStats()
    encoded = []
    n = np.int64(prepared.n)
    for name in names:
        rows, keys = key_values(prepared, name)
        left, right, skipped, skipped_rows = block_pairs(rows, keys, settings.max_block_size)
        stats.pairs_per_key[name] = len(left)
        stats.skipped_blocks[name] = skipped
        stats.skipped_records[name] = skipped_rows
        encoded.append(left.astype(np.int64) * n + right)
        log.debug("blocking key", extra={"key": name, "pairs": len(left), "skipped": skipped})
    pairs = distinct(np.concatenate(encoded)) if encoded else np.empty(0, dtype=np.int64)
    stats.candidates = len(pairs)
    return CandidatePairs((pairs // n).astype(np.int32), (pairs % n).astype(np.int32), stats)


# --- the default keys ------------------------------------------------------------------------


def _name_tokens(values: np.ndarray) -> np.ndarray:
    """Per record, up to three codes standing for a name: nickname groups, else its sound."""
    table = nickname_table()

    def tokens(key: object) -> tuple[str, ...]:
        if not isinstance(key, str) or len(key) < 2:
            return ()
        groups = table.groups(key)
        if groups:
            return tuple(f"g{g}" for g in groups[:3])
        return (f"p{jellyfish.metaphone(key)}",)

    codes, items = unique_apply(values, tokens)
    flat = sorted({token for item in items for token in item})
    index = {token: position for position, token in enumerate(flat)}
    matrix = np.full((len(items), 3), -1, dtype=np.int64)
    for row, item in enumerate(items):
        for slot, token in enumerate(item):
            matrix[row, slot] = index[token]
    result: np.ndarray = matrix[codes]
    return result


def _initials(values: np.ndarray) -> np.ndarray:
    return np.array([ord(v[0]) if isinstance(v, str) and v else -1 for v in values],
                    dtype=np.int64)  # fmt: skip


def _multi(rows: np.ndarray, matrix: np.ndarray) -> KeyValues:
    width = matrix.shape[1]
    return np.repeat(rows, width), matrix.reshape(-1)


@register_blocking_key("email")
def _email(prepared: Prepared) -> KeyValues:
    return _single(prepared.email_code)


@register_blocking_key("phone")
def _phone(prepared: Prepared) -> KeyValues:
    return _single(prepared.phone_code)


@register_blocking_key("surname_dob")
def _surname_dob(prepared: Prepared) -> KeyValues:
    return _single(_combine(prepared.last_phonetic, prepared.dob_code))


@register_blocking_key("dob")
def _dob(prepared: Prepared) -> KeyValues:
    """Full birth date alone: duplicates whose names and address were both rewritten (FEBRL's
    heavy corruptions); common dates fill blocks past the cap and make no pairs."""
    return _single(prepared.dob_code)


@register_blocking_key("first_name_dob")
def _first_dob(prepared: Prepared) -> KeyValues:
    tokens = _name_tokens(prepared.first)
    rows = np.arange(prepared.n, dtype=np.int64)
    keyed = np.where(tokens >= 0, _combine(tokens.reshape(-1), np.repeat(prepared.dob_code, 3))
                     .reshape(-1, 3), -1)  # fmt: skip
    return _multi(rows, keyed)


@register_blocking_key("surname_postcode")
def _surname_postcode(prepared: Prepared) -> KeyValues:
    return _single(_combine(prepared.last_phonetic, prepared.postcode_code))


@register_blocking_key("initial_postcode")
def _initial_postcode(prepared: Prepared) -> KeyValues:
    return _single(_combine(_initials(prepared.first), prepared.postcode_code))


@register_blocking_key("address")
def _address(prepared: Prepared) -> KeyValues:
    rows = np.arange(prepared.n, dtype=np.int64)
    offset = np.int64(prepared.address_code.max(initial=0) + 1)
    house = np.where(prepared.number_postcode_code >= 0, prepared.number_postcode_code + offset, -1)
    line = codes_of(prepared.address).astype(np.int64)
    line = np.where(line >= 0, line + offset + prepared.number_postcode_code.max(initial=0) + 1, -1)
    columns = [prepared.address_code.astype(np.int64), house, line]
    return _multi(rows, np.stack(columns, axis=1))


@register_blocking_key("full_name")
def _full_name(prepared: Prepared) -> KeyValues:
    """Given and family name in either order (swaps), nickname-aware, surname by sound."""
    both = _name_tokens(np.concatenate([prepared.first, prepared.last]))
    first, last = both[: prepared.n], both[prepared.n :]
    rows = np.arange(prepared.n, dtype=np.int64)
    columns = []
    for i in range(3):
        for j in range(3):
            a, b = first[:, i], last[:, j]
            low, high = np.minimum(a, b), np.maximum(a, b)
            key = _combine(low, high)
            key[(a < 0) | (b < 0)] = -1
            columns.append(key)
    return _multi(rows, np.stack(columns, axis=1))


@register_blocking_key("email_local")
def _email_local(prepared: Prepared) -> KeyValues:
    """The part before ``@`` at any provider, when long enough to be personal."""
    codes, items = unique_apply(
        prepared.email_local, lambda v: v if isinstance(v, str) and len(v) >= 6 else None
    )
    return _single(codes_of(spread(codes, items)))


@register_blocking_key("initials_dob")
def _initials_dob(prepared: Prepared) -> KeyValues:
    """Birth date with the two name initials in either order: catches swapped names with typos
    (``Nathan Challenor``/``Challmenor Natahn``) that no name key groups."""
    a, b = _initials(prepared.first), _initials(prepared.last)
    pair = np.minimum(a, b) * 1024 + np.maximum(a, b)
    pair[(a < 0) | (b < 0)] = -1
    return _single(_combine(pair, prepared.dob_code))


@register_blocking_key("surname_initial")
def _surname_initial(prepared: Prepared) -> KeyValues:
    """Surname by sound with the given name's initial: given names with a typo, an initial
    or a nickname the table lacks (``Jqson Smith``/``Jason Smith``, ``R Williams``)."""
    return _single(_combine(prepared.last_phonetic, _initials(prepared.first)))
