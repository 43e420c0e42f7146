"""Survivorship (``mappings/survivorship.yaml``): which source record a golden field comes from.

```yaml
version: 1
default: most_recent                  # every field not listed below
fields:
  email:
    rule: source_priority
    sources: [newsletter, pos_export]   # the first listed source that has a value wins
    fallback: [most_recent]             # when none of them has one (the default fallback)
  birth_date: most_frequent             # the value most records agree on
  full_name: longest
```

Rules are name-keyed (:data:`RULES`, :func:`register_rule`). Every rule sees only records that
have a value for the field, so a null never beats a value. Fields are profile columns, except
two groups chosen together from one record so they stay coherent: ``address`` (address_line1,
address_line2, city, region, postcode, country) and ``birth_date`` (birth_year, birth_month,
birth_day). Without the file every field is ``most_recent`` (:data:`DEFAULT_SPEC`).

Errors list every problem at once as ``mappings/survivorship.yaml:LINE key: message``.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from ruamel.yaml.comments import CommentedMap

from crm_hub.config.loader import format_pydantic_errors, line_of, parse_yaml_with_lines
from crm_hub.errors import ConfigError

__all__ = [
    "DEFAULT_SPEC",
    "FIELDS",
    "RULES",
    "FieldRule",
    "LoadedSurvivorship",
    "RuleInfo",
    "SurvivorshipSpec",
    "load_survivorship",
    "register_rule",
]

# Golden field → the profile columns it fills (a group is chosen from one record).
FIELDS: dict[str, tuple[str, ...]] = {
    "full_name": ("full_name",),
    "first_name": ("first_name",),
    "last_name": ("last_name",),
    "email": ("email",),
    "phone": ("phone",),
    "birth_date": ("birth_year", "birth_month", "birth_day"),
    "address": ("address_line1", "address_line2", "city", "region", "postcode", "country"),
    "language": ("language",),
    "branch": ("branch",),
}
_GROUP_OF = {col: name for name, cols in FIELDS.items() if len(cols) > 1 for col in cols}

# A rule gets the candidates that have a value, most recent first (values and their sources,
# index for index) and returns the winner's index, or None to hand over to the next rule.
RuleFunction = Callable[[Sequence[Any], Sequence[str], "FieldRule"], int | None]


@dataclass(frozen=True, slots=True)
class RuleInfo:
    """A registered rule: its function and what the loader must check."""

    function: RuleFunction
    always_picks: bool  # picks whenever any record has a value: later fallbacks are unused
    needs_sources: bool  # needs ``sources: [...]``


RULES: dict[str, RuleInfo] = {}


def register_rule(
    name: str, function: RuleFunction, *, always_picks: bool = True, needs_sources: bool = False
) -> None:
    """Make a rule usable by name in survivorship.yaml."""
    RULES[name] = RuleInfo(function, always_picks, needs_sources)


def _most_recent(values: Sequence[Any], sources: Sequence[str], rule: FieldRule) -> int | None:
    """The most recently updated record's value: ``("Ann", 2024), ("Anne", 2025)`` → Anne.

    Recency is ``updated_at`` (a record without one counts as oldest), then ``mapped_at``.
    """
    return 0 if values else None


def _source_priority(values: Sequence[Any], sources: Sequence[str], rule: FieldRule) -> int | None:
    """The first source of ``sources`` that has a value (its most recent record's):
    ``sources: [pos, newsletter]``, ``newsletter: a@x.com, pos: b@x.com`` → b@x.com.
    None (next rule) when none of them has one.
    """
    for wanted in rule.sources or ():
        for index, source in enumerate(sources):
            if source == wanted:
                return index
    return None


def _most_frequent(values: Sequence[Any], sources: Sequence[str], rule: FieldRule) -> int | None:
    """The value most records hold; ties go to the most recent:
    ``Leeds, York, Leeds`` → Leeds; ``Leeds, York`` → the more recent of the two.
    """
    if len(values) < 3:  # one value, or two: equal, or a tie
        return 0 if values else None
    counts = Counter(values)
    best, winner = 0, 0
    for index, value in enumerate(values):
        if counts[value] > best:  # strictly: the first (most recent) of the tied values stays
            best, winner = counts[value], index
    return winner


def _size(value: Any) -> int:
    if isinstance(value, tuple):
        return sum(len(str(part)) for part in value if part is not None)
    return len(str(value))


def _longest(values: Sequence[Any], sources: Sequence[str], rule: FieldRule) -> int | None:
    """The longest value; ties go to the most recent: ``J. Smith, John Smith`` → John Smith."""
    if not values:
        return None
    sizes = [_size(value) for value in values]
    return sizes.index(max(sizes))


register_rule("most_recent", _most_recent)
register_rule("source_priority", _source_priority, always_picks=False, needs_sources=True)
register_rule("most_frequent", _most_frequent)
register_rule("longest", _longest)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _known_rule(name: str) -> str:
    if name not in RULES:
        raise ValueError(f"unknown rule {name!r}; allowed: {', '.join(sorted(RULES))}")
    return name


class FieldRule(_Strict):
    """How one golden field is chosen: a rule, its sources, and the rules to fall back on."""

    rule: str = Field(
        description="Rule name: most_recent, source_priority, most_frequent, longest."
    )
    sources: list[str] | None = Field(
        None, description="source_priority only: source names, the preferred first."
    )
    fallback: list[str] | None = Field(
        None,
        description="Rules tried in order when the rule finds nothing "
        "(source_priority: [most_recent] unless given; [] for none).",
    )

    @field_validator("rule")
    @classmethod
    def _rule(cls, value: str) -> str:
        return _known_rule(value)

    @field_validator("fallback")
    @classmethod
    def _fallback(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else [_known_rule(name) for name in value]

    @model_validator(mode="after")
    def _consistent(self) -> FieldRule:
        chain = self.chain
        needing = [name for name in chain if RULES[name].needs_sources]
        if needing and not self.sources:
            raise ValueError(f"{needing[0]} needs `sources: [...]` (the preferred source first)")
        if self.sources is not None and not needing:
            raise ValueError("`sources` is only used by source_priority")
        for index, name in enumerate(chain[:-1]):
            if RULES[name].always_picks:
                unused = ", ".join(chain[index + 1 :])
                raise ValueError(
                    f"{unused} would never be used: {name} always finds a value when any "
                    "record has one; remove the fallback"
                )
        return self

    @property
    def chain(self) -> tuple[str, ...]:
        """The rule, then its fallbacks (source_priority falls back to most_recent by default)."""
        if self.fallback is not None:
            return (self.rule, *self.fallback)
        if not RULES[self.rule].always_picks:
            return (self.rule, "most_recent")
        return (self.rule,)

    @classmethod
    def coerce(cls, raw: Any) -> Any:
        """A bare string is a rule name."""
        return {"rule": raw} if isinstance(raw, str) else raw


class SurvivorshipSpec(_Strict):
    """A whole survivorship file."""

    version: Literal[1] = Field(description="Schema version of the file; always 1.")
    default: FieldRule = Field(
        FieldRule(rule="most_recent"), description="The rule of every field not listed."
    )
    fields: dict[str, FieldRule] = Field(
        default_factory=dict, description="Golden field → its rule (see FIELDS)."
    )

    _default = field_validator("default", mode="before")(lambda cls, v: FieldRule.coerce(v))

    @field_validator("fields", mode="before")
    @classmethod
    def _fields(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: FieldRule.coerce(v) for k, v in value.items()}
        return value


DEFAULT_SPEC = SurvivorshipSpec(version=1)


@dataclass(frozen=True, slots=True)
class LoadedSurvivorship:
    """A validated survivorship file (or the built-in defaults), with every field's rule."""

    spec: SurvivorshipSpec
    display: str  # e.g. mappings/survivorship.yaml, or "built-in defaults"
    digest: str  # a change recomputes every profile
    rules: dict[str, FieldRule] = field(default_factory=dict)

    @classmethod
    def of(cls, spec: SurvivorshipSpec, display: str, digest: str) -> LoadedSurvivorship:
        """Resolve every field's rule (listed, else the default)."""
        rules = {name: spec.fields.get(name, spec.default) for name in FIELDS}
        return cls(spec, display, digest, rules)


def builtin_survivorship() -> LoadedSurvivorship:
    """The defaults used when there is no survivorship.yaml: every field most_recent."""
    return LoadedSurvivorship.of(DEFAULT_SPEC, "built-in defaults", "builtin")


def load_survivorship(
    path: Path, *, sources: Collection[str] | None = None, display: str | None = None
) -> LoadedSurvivorship:
    """Read and validate a survivorship file.

    Args:
        path: the file.
        sources: the source names in hub.yaml; ``sources:`` may only name these (None: unchecked).
        display: how messages name the file (default: its name), e.g. mappings/survivorship.yaml.

    Raises:
        ConfigError: listing every problem as ``file:line key: message``.
    """
    shown = display or path.name
    tree = parse_yaml_with_lines(path)
    if not isinstance(tree, CommentedMap):
        raise ConfigError(f"{shown}:1: expected a mapping with version, default and fields")
    data = _plain(tree)
    problems = _cross_checks(data, tree, shown, sources)
    spec = None
    try:
        spec = SurvivorshipSpec.model_validate(data)
    except ValidationError as exc:
        problems += [
            _tidy(_rename(problem, path.name, shown), item["loc"], item["type"])
            for problem, item in zip(
                format_pydantic_errors(exc, SurvivorshipSpec, path, tree), exc.errors(), strict=True
            )
        ]
    if problems or spec is None:
        problems.sort(key=_line)
        raise ConfigError(_summary(shown, problems), problems=problems)
    digest = hashlib.blake2b(path.read_bytes(), digest_size=16).hexdigest()
    return LoadedSurvivorship.of(spec, shown, digest)


def _line(problem: str) -> int:
    head = problem.split(" ", 1)[0]
    number = head.rstrip(":").rsplit(":", 1)[-1]
    return int(number) if number.isdigit() else 0


def _cross_checks(
    data: dict[str, Any], tree: Any, shown: str, sources: Collection[str] | None
) -> list[str]:
    """Field names and source names, checked on the raw file so they join pydantic's list."""
    problems = []

    def where(*loc: str | int) -> str:
        return f"{shown}:{line_of(tree, loc) or 1} {'.'.join(str(p) for p in loc)}"

    fields = data.get("fields")
    fields = fields if isinstance(fields, dict) else {}
    for name in fields:
        if name in _GROUP_OF:
            group = _GROUP_OF[name]
            problems.append(
                f"{where('fields', name)}: {name} is chosen together with the rest of {group} "
                f"({', '.join(FIELDS[group])}) from one record; set a rule for {group}"
            )
        elif name not in FIELDS:
            problems.append(f"{where('fields', name)}: unknown field; allowed: {', '.join(FIELDS)}")
    if sources is not None:
        known = ", ".join(sorted(sources)) or "none"
        rules: list[tuple[tuple[str, ...], Any]] = [(("default",), data.get("default"))]
        rules += [(("fields", name), rule) for name, rule in fields.items()]
        for loc, rule in rules:
            listed = rule.get("sources") if isinstance(rule, dict) else None
            for index, source in enumerate(listed if isinstance(listed, list) else []):
                if source not in sources:
                    problems.append(
                        f"{where(*loc, 'sources', index)}: unknown source {source!r}; "
                        f"sources in hub.yaml: {known}"
                    )
    return problems


def _plain(node: Any) -> Any:
    if isinstance(node, dict):
        return {str(k): _plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    return node


def _rename(problem: str, name: str, shown: str) -> str:
    return shown + problem[len(name) :] if problem.startswith(name + ":") else problem


def _tidy(problem: str, loc: tuple[str | int, ...], kind: str) -> str:
    """Drop pydantic's "Value error, "; inside a rule, list a rule's keys as the allowed ones."""
    problem = problem.replace(": Value error, ", ": ", 1)
    if kind == "extra_forbidden" and len(loc) > 1:
        head, _, _ = problem.partition("allowed keys here: ")
        problem = head + "allowed keys here: " + ", ".join(sorted(FieldRule.model_fields))
    return problem


def _summary(shown: str, problems: list[str]) -> str:
    return f"{shown}: {len(problems)} problem(s) in the survivorship rules\n  " + "\n  ".join(
        problems
    )
