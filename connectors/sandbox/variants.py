"""How the same fact gets written differently in different systems.

Pure functions of their inputs and a ``random.Random``: typos, phone formats, name casing,
accent stripping. Each system picks among them with its own habits (staff typing at a till,
people typing into a form, a bookkeeper).
"""

from __future__ import annotations

import random
import unicodedata
from functools import lru_cache

_KEYBOARD_NEIGHBOURS = {
    "a": "sq",
    "b": "vn",
    "c": "xv",
    "d": "sf",
    "e": "wr",
    "f": "dg",
    "g": "fh",
    "h": "gj",
    "i": "uo",
    "j": "hk",
    "k": "jl",
    "l": "k",
    "m": "n",
    "n": "bm",
    "o": "ip",
    "p": "o",
    "r": "et",
    "s": "ad",
    "t": "ry",
    "u": "yi",
    "w": "qe",
    "y": "tu",
}


def typo(text: str, rng: random.Random) -> str:
    """Introduce one plausible typing mistake.

    Args:
        text: the correct text.
        rng: the random source.

    Returns:
        The text with one letter swapped, dropped, doubled or replaced by a neighbouring key;
        unchanged when it is shorter than three characters.

    Example: ``typo("Robert", rng)`` may give ``"Rboert"``, ``"Robrt"`` or ``"Robbert"``.
    """
    if len(text) < 3:
        return text
    i = rng.randrange(1, len(text) - 1)
    kind = rng.randrange(4)
    if kind == 0:
        return text[:i] + text[i + 1] + text[i] + text[i + 2 :]
    if kind == 1:
        return text[:i] + text[i + 1 :]
    if kind == 2:
        return text[:i] + text[i] + text[i:]
    neighbours = _KEYBOARD_NEIGHBOURS.get(text[i].lower())
    if not neighbours:
        return text[:i] + text[i + 1 :]
    return text[:i] + rng.choice(neighbours) + text[i + 1 :]


@lru_cache(maxsize=8192)
def strip_accents(text: str) -> str:
    """Drop diacritics as an old till keyboard does (``Zoë`` → ``Zoe``, ``Łukasz`` → ``Lukasz``)."""
    text = text.replace("Ł", "L").replace("ł", "l")
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def recase(text: str, rng: random.Random, *, lower: float = 0.0, upper: float = 0.0) -> str:
    """Return the text lower-cased or upper-cased with the given probabilities, else unchanged."""
    r = rng.random()
    if r < lower:
        return text.lower()
    if r < lower + upper:
        return text.upper()
    return text


def format_phone(area: str, number: str, style: str) -> str:
    """Write a UK number in one of the styles people use.

    Args:
        area: the area or mobile prefix without the trunk 0 (``"20"``, ``"161"``, ``"7700"``).
        number: the subscriber digits.
        style: one of ``PHONE_STYLES``.

    Returns:
        The formatted number.

    Example: ``format_phone("20", "79460123", "national")`` → ``"020 7946 0123"``;
    with ``"e164"`` → ``"+442079460123"``.
    """
    if area == "20":
        parts = [number[:4], number[4:]]
    elif len(area) == 4:  # mobile 07xxx xxxxxx
        parts = [number]
    else:
        parts = [number[:3], number[3:]]
    if style == "e164":
        return "+44" + area + number
    if style == "intl":
        return " ".join(["+44", area, *parts])
    if style == "intl00":
        return " ".join(["0044", area, *parts])
    if style == "national":
        return " ".join(["0" + area, *parts])
    if style == "dashed":
        return "-".join(["0" + area, *parts])
    if style == "parens":
        if len(area) == 4:  # nobody writes a mobile prefix in brackets
            return " ".join(["0" + area, *parts])
        return " ".join([f"(0{area})", *parts])
    if style == "compact":
        return "0" + area + number
    raise ValueError(f"unknown phone style {style!r}")


PHONE_STYLES = ("e164", "intl", "intl00", "national", "dashed", "parens", "compact")


def pick_phone_style(rng: random.Random, weights: tuple[float, ...]) -> str:
    """Choose a phone style with per-system weights aligned with ``PHONE_STYLES``."""
    return rng.choices(PHONE_STYLES, weights=weights)[0]
