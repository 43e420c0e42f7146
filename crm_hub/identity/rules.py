"""Deterministic rules: matches that need no model, and vetoes no score can overrule.

*Match rules* are high-precision patterns (same e-mail and a compatible name; same phone, same
name and birthday). *Vetoes* are person-level disagreements that mean two records are two
people however much else agrees: different given names (neither a nickname, initial nor typo of
the other), or different birth dates. They are what makes the matcher household-aware: people
living together agree on surname, address and phone, and differ exactly there.

Both are registries of functions over the pairs' comparison levels (`register_rule`,
`register_veto`); a rule or veto that needs a comparison left out of the model never fires.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from crm_hub.identity.comparisons import PairContext
from crm_hub.identity.name_agreement import given_names, member_slip

__all__ = [
    "Rule",
    "active_vetoes",
    "apply",
    "conflict_names",
    "register_rule",
    "register_veto",
    "requires",
    "rule_names",
    "veto_names",
]

LevelMap = Mapping[str, np.ndarray]
RuleFunction = Callable[[LevelMap, PairContext], np.ndarray]


@dataclass(frozen=True)
class Rule:
    """A registered match rule or veto: a name, what it means, and its mask function."""

    name: str
    description: str
    function: RuleFunction
    requires: tuple[str, ...]
    conflict: bool = False
    unless_m_above: tuple[str, int, float] | None = None


_RULES: dict[str, Rule] = {}
_VETOES: dict[str, Rule] = {}


def _register(
    registry: dict[str, Rule],
    name: str,
    description: str,
    requires: tuple[str, ...],
    conflict: bool = False,
    unless_m_above: tuple[str, int, float] | None = None,
) -> Callable[[RuleFunction], RuleFunction]:
    def add(function: RuleFunction) -> RuleFunction:
        registry[name] = Rule(name, description, function, requires, conflict, unless_m_above)
        return function

    return add


def register_rule(
    name: str, description: str, *, requires: tuple[str, ...]
) -> Callable[[RuleFunction], RuleFunction]:
    """Register a deterministic match rule: pairs where it returns True are linked.

    Args:
        name: registry name, recorded on every link it makes.
        description: what the rule means, for people.
        requires: the comparisons it reads.
    """
    return _register(_RULES, name, description, requires)


def register_veto(
    name: str,
    description: str,
    *,
    requires: tuple[str, ...],
    conflict: bool = False,
    unless_m_above: tuple[str, int, float] | None = None,
) -> Callable[[RuleFunction], RuleFunction]:
    """Register a veto: pairs where it returns True are never linked (except by must-link).

    Args:
        name: registry name.
        description: what it means, for people.
        requires: the comparisons it reads.
        conflict: the two records are certainly different people, so no cluster may hold
            both (checked against chaining); otherwise the veto only says the evidence is too
            weak for a direct link.
        unless_m_above: ``(comparison, level, share)``: drop the veto for a data set where
            more than ``share`` of true matches were learnt to sit at that level (the field
            is too noisy there to be decisive).
    """
    return _register(_VETOES, name, description, requires, conflict, unless_m_above)


def active_vetoes(names: Sequence[str], m: Mapping[str, np.ndarray]) -> tuple[str, ...]:
    """Return the vetoes that stay active given the learnt m per comparison."""
    kept = []
    for name in names:
        guard = _VETOES[name].unless_m_above
        if guard is not None and guard[0] in m and float(m[guard[0]][guard[1]]) > guard[2]:
            continue
        kept.append(name)
    return tuple(kept)


def conflict_names() -> tuple[str, ...]:
    """Return the vetoes that mark two records as different people."""
    return tuple(name for name, rule in _VETOES.items() if rule.conflict)


def rule_names() -> tuple[str, ...]:
    """Return the registered match rule names."""
    return tuple(_RULES)


def veto_names() -> tuple[str, ...]:
    """Return the registered veto names."""
    return tuple(_VETOES)


def requires(name: str, veto: bool) -> tuple[str, ...]:
    """Return the comparisons a registered rule (or veto, when ``veto``) reads."""
    return (_VETOES if veto else _RULES)[name].requires


def apply(
    levels: LevelMap, names: Sequence[str] | None, ctx: PairContext, *, vetoes: bool
) -> np.ndarray:
    """Return, per pair, the index into ``names`` of the first rule that fires, else ``-1``.

    Args:
        levels: comparison levels by comparison name.
        names: rules (or vetoes) to apply, in priority order; ``None``: all registered.
        ctx: the pairs (rules may read the prepared records).
        vetoes: apply vetoes rather than match rules.
    """
    registry = _VETOES if vetoes else _RULES
    chosen = tuple(names) if names is not None else tuple(registry)
    fired = np.full(len(ctx), -1, dtype=np.int8)
    for index in range(len(chosen) - 1, -1, -1):
        rule = registry[chosen[index]]
        if any(name not in levels for name in rule.requires):
            continue
        fired[rule.function(levels, ctx)] = index
    return fired


# --- the default rules -----------------------------------------------------------------------


@register_rule(
    "email_and_name",
    "same e-mail mailbox, compatible given and family names, no birth-date conflict",
    requires=("email", "first_name", "last_name", "birth_date"),
)
def _email_and_name(levels: LevelMap, ctx: PairContext) -> np.ndarray:
    first, last = levels["first_name"], levels["last_name"]
    named = (first >= 2) | (last >= 3)
    compatible = ((first >= 2) | (first == -1) | ((first == 1) & (last >= 3))) & (
        (last >= 1) | (last == -1)
    )
    result: np.ndarray = (levels["email"] == 2) & named & compatible & (levels["birth_date"] != 0)
    return result


@register_rule(
    "email_no_conflict",
    "same e-mail mailbox (held by at most 4 records), nothing else disagrees",
    requires=("email", "first_name", "last_name", "birth_date"),
)
def _email_no_conflict(levels: LevelMap, ctx: PairContext) -> np.ndarray:
    counts = ctx.prepared.counts["email"]
    private = np.maximum(counts[ctx.left], counts[ctx.right]) <= 4
    result: np.ndarray = (
        (levels["email"] == 2)
        & private
        & (levels["first_name"] != 0)
        & (levels["last_name"] != 0)
        & (levels["birth_date"] != 0)
    )
    return result


@register_rule(
    "phone_name_birthday",
    "same phone, same given and family name (or nickname), same birthday",
    requires=("contact", "first_name", "last_name", "birth_date"),
)
def _phone_name_birthday(levels: LevelMap, ctx: PairContext) -> np.ndarray:
    return (
        (levels["contact"] >= 4)
        & (levels["first_name"] >= 3)
        & (levels["last_name"] >= 3)
        & (levels["birth_date"] >= 2)
    )


@register_veto(
    "different_given_name",
    "given names differ and are not a nickname, initial or typo of each other",
    requires=("first_name",),
    conflict=True,
    unless_m_above=("first_name", 0, 0.06),
)
def _different_given_name(levels: LevelMap, ctx: PairContext) -> np.ndarray:
    result: np.ndarray = levels["first_name"] == 0
    return result


@register_veto(
    "different_birth_date",
    "full birth dates differ by more than a typo (unless the e-mail and name agree exactly)",
    requires=("birth_date", "first_name", "last_name", "email"),
    conflict=True,
    unless_m_above=("birth_date", 0, 0.05),
)
def _different_birth_date(levels: LevelMap, ctx: PairContext) -> np.ndarray:
    strong = (levels["email"] == 2) & (levels["first_name"] >= 4) & (levels["last_name"] >= 3)
    result: np.ndarray = (levels["birth_date"] == 0) & ~strong
    return result


@register_veto(
    "ambiguous_household",
    "only surname and a contact point several people share agree (or, for a record without "
    "a given name, only surname and postcode), and no given name tells which member the "
    "record is",
    requires=("first_name", "email", "birth_date", "contact"),
)
def _ambiguous_household(levels: LevelMap, ctx: PairContext) -> np.ndarray:
    shared = ctx.prepared.shared
    contact = levels["contact"]

    def either(name: str) -> np.ndarray:
        flags = shared[name]
        result: np.ndarray = flags[ctx.left] | flags[ctx.right]
        return result

    household = np.zeros(len(contact), dtype=bool)
    household[contact >= 4] = either("phone")[contact >= 4]
    household[contact == 3] = either("address")[contact == 3]
    near = (contact == 1) | (contact == 2)
    # A record without a given name, near the other only by surname and postcode, cannot say
    # which member it is even where one member alone gives a name there.
    household[near] = either("surname_postcode")[near] | (levels["first_name"][near] < 0)
    result: np.ndarray = (
        (levels["first_name"] <= 2)
        & (levels["email"] != 2)
        & (levels["birth_date"] < 2)
        & household
    )
    # A given name one keystroke from the other's (or its nickname's) names its member:
    # ``Jonh`` is John, not Joan.
    similar = np.flatnonzero(result & (levels["first_name"] == 2))
    if len(similar):
        slips = np.fromiter(
            (member_slip(a, b) for a, b in zip(*given_names(ctx, similar), strict=True)),
            dtype=bool, count=len(similar),
        )  # fmt: skip
        result[similar[slips]] = False
    return result
