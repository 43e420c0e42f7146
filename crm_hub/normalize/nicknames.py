"""Given-name equivalence: Bob/Robert, Liz/Elizabeth, Paco/Francisco...

The table ships as ``data/nicknames.csv`` (one group a line: the formal name, then its
nicknames and variants). A name may belong to several groups (``alex``: alexander, alexandra);
two names are compatible when they share a group. Names are looked up by their match form
(transliterated, lower-case letters only), so ``José`` finds ``jose``.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache
from importlib import resources

from crm_hub.normalize.text import letters_key

__all__ = [
    "are_nicknames",
    "canonical_names",
    "nickname_groups",
    "nickname_table",
]


class NicknameTable:
    """Groups of equivalent given names, indexed by match form.

    Args:
        groups: each group lists a formal name first, then its variants.
    """

    def __init__(self, groups: Iterable[Iterable[str]]) -> None:
        self.formal: list[str] = []
        self.members: list[tuple[str, ...]] = []
        index: dict[str, set[int]] = {}
        for group in groups:
            keys = [k for k in (letters_key(name) for name in group) if k]
            if len(keys) < 2:
                continue
            group_id = len(self.formal)
            self.formal.append(keys[0])
            self.members.append(tuple(dict.fromkeys(keys)))
            for key in keys:
                index.setdefault(key, set()).add(group_id)
        self.index: dict[str, tuple[int, ...]] = {k: tuple(sorted(v)) for k, v in index.items()}

    def groups(self, key: str) -> tuple[int, ...]:
        """Return the group ids of a name's match form (empty when the name is not listed)."""
        return self.index.get(key, ())

    def variants(self, key: str) -> tuple[str, ...]:
        """Return every name sharing a group with ``key`` (itself excluded)."""
        found = {name for g in self.groups(key) for name in self.members[g]}
        found.discard(key)
        return tuple(sorted(found))

    def __len__(self) -> int:
        return len(self.formal)


def _read_groups(text: str) -> list[list[str]]:
    rows = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            rows.append([part.strip() for part in line.split(",") if part.strip()])
    return rows


@lru_cache(maxsize=1)
def nickname_table() -> NicknameTable:
    """Return the shipped nickname table (loaded once)."""
    data = resources.files("crm_hub.normalize").joinpath("data/nicknames.csv")
    return NicknameTable(_read_groups(data.read_text(encoding="utf-8")))


def nickname_groups(name: str) -> tuple[int, ...]:
    """Return the ids of the equivalence groups a given name belongs to.

    Example:
        >>> nickname_groups("Bob") == nickname_groups("Robert")
        True
    """
    return nickname_table().groups(letters_key(name))


def are_nicknames(left: str, right: str) -> bool:
    """Tell whether two given names are the same name or variants of one another.

    Example:
        >>> are_nicknames("Liz", "Elizabeth"), are_nicknames("Liz", "Mary")
        (True, False)
    """
    a, b = letters_key(left), letters_key(right)
    if a and a == b:
        return True
    table = nickname_table()
    return bool(set(table.groups(a)) & set(table.groups(b)))


def canonical_names(name: str) -> tuple[str, ...]:
    """Return the formal names a given name may stand for (itself when not listed).

    Example:
        >>> canonical_names("Bill")
        ('william',)
    """
    key = letters_key(name)
    table = nickname_table()
    found = table.groups(key)
    if not found:
        return (key,) if key else ()
    return tuple(sorted({table.formal[g] for g in found}))
