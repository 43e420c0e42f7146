"""Vendor-looking record ids that decode back to a row number without any lookup table.

An opaque id is ``<keyed hash prefix><scrambled row number in base 32>``: it looks random like
the vendor's ids, is stable for a seed, and ``decode`` recovers the row (``None`` if forged) in
O(1), so a world of a million records needs no id → row dictionary.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base 32
_INDEX = {c: i for i, c in enumerate(_ALPHABET)}
_ROW_CHARS = 6  # 32**6 ≈ 1.07e9 rows per table


def _b32(value: int, width: int) -> str:
    chars = []
    for _ in range(width):
        value, rem = divmod(value, 32)
        chars.append(_ALPHABET[rem])
    return "".join(reversed(chars))


# Two base-32 characters per 10 bits: a table lookup instead of a divmod per character.
_PAIRS = [a + b for a in _ALPHABET for b in _ALPHABET]


def _hash_prefix(seed: int, namespace: str, row: int, width: int) -> str:
    digest = hashlib.blake2b(f"{seed}:{namespace}:{row}".encode(), digest_size=20).digest()
    value = int.from_bytes(digest, "big")
    chunks = []
    for _ in range((width + 1) // 2):
        chunks.append(_PAIRS[value & 1023])
        value >>= 10
    return "".join(chunks)[:width]


_ROW_SPACE: int = 1 << (5 * _ROW_CHARS)  # 32**6 == 2**30
_MULTIPLIER = 0x2545F491  # odd, so invertible modulo 2**30
_INVERSE = pow(_MULTIPLIER, -1, _ROW_SPACE)


@lru_cache(maxsize=256)
def _row_offset(seed: int, namespace: str) -> int:
    digest = hashlib.blake2b(f"{seed}:{namespace}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % _ROW_SPACE


def _scramble(seed: int, namespace: str, row: int) -> int:
    return (row * _MULTIPLIER + _row_offset(seed, namespace)) % _ROW_SPACE


def _unscramble(seed: int, namespace: str, value: int) -> int:
    return ((value - _row_offset(seed, namespace)) * _INVERSE) % _ROW_SPACE


def encode(seed: int, namespace: str, row: int, length: int = 26, *, lower: bool = False) -> str:
    """Make the opaque id of a row.

    Args:
        seed: the world seed (ids differ between worlds).
        namespace: the kind of record, e.g. ``"square.customer"``.
        row: the row number in its table.
        length: total id length (at least 10).
        lower: lower-case the id (Typeform tokens).

    Returns:
        The id, e.g. ``"7WQ2C4M0N8TZJ5RKD1AF00002B"``.
    """
    tail = _b32(_scramble(seed, namespace, row), _ROW_CHARS)
    text = _hash_prefix(seed, namespace, row, length - _ROW_CHARS) + tail
    return text.lower() if lower else text


def decode(seed: int, namespace: str, text: str, length: int = 26) -> int | None:
    """Recover the row number from an id made by ``encode``, or ``None`` if it is not one."""
    if len(text) != length:
        return None
    upper = text.upper()
    value = 0
    for ch in upper[-_ROW_CHARS:]:
        if ch not in _INDEX:
            return None
        value = value * 32 + _INDEX[ch]
    row = _unscramble(seed, namespace, value)
    if _hash_prefix(seed, namespace, row, length - _ROW_CHARS) != upper[: length - _ROW_CHARS]:
        return None
    return row


def hex_id(seed: int, namespace: str, key: str | int, length: int = 10) -> str:
    """A stable lower-case hex id (Mailchimp list, unique_email_id, contact_id style)."""
    digest = hashlib.blake2b(f"{seed}:{namespace}:{key}".encode(), digest_size=32).hexdigest()
    return digest[:length]
