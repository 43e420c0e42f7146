"""Segment files (``mappings/segments.yaml``): strict models, conditions parsed with line numbers.

```yaml
version: 1
segments:
  lapsed_regulars:
    description: Came 5+ times, not seen for two months
    where:
      all:
        - {field: orders_count, gte: 5}
        - {field: last_order_at, older_than_days: 60}
  newsletter_by_branch:
    where: {field: consent_email, eq: true}
    per: branch                  # one segment per branch: newsletter_by_branch:soho, ...
```

A condition is ``{all: [...]}``, ``{any: [...]}``, ``{not: {...}}`` or one test
``{field: NAME, OP: VALUE}``. This module checks the shape; :mod:`crm_hub.segments.compile`
checks fields and value types against the store's columns. Every problem is reported as
``segments.yaml:LINE segments.NAME.where.all.0.gte: what is wrong``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError
from ruamel.yaml.comments import CommentedMap

from crm_hub.config.loader import format_pydantic_errors, line_of, parse_yaml_with_lines
from crm_hub.errors import ConfigError

__all__ = [
    "COMPARISONS",
    "OPERATORS",
    "RELATIVE",
    "Condition",
    "Group",
    "Leaf",
    "LoadedSegments",
    "Loc",
    "Negation",
    "SegmentSpec",
    "SegmentsFile",
    "load_segments",
]

Loc = tuple[str | int, ...]
SegmentName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,62}$")]

# Operator → what its value must look like (checked here); types are checked by compile.
COMPARISONS = ("eq", "ne", "gt", "gte", "lt", "lte")
RELATIVE = ("within_days", "within_last_days", "within_next_days", "older_than_days")
OPERATORS = (
    *COMPARISONS,
    "in",
    "not_in",
    "between",
    "is_null",
    "contains",
    *RELATIVE,
    "in_this",
)
PERIODS = ("week", "month", "year")
_GROUPS = ("all", "any", "not")
_MAX_DEPTH = 20


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SegmentSpec(_Strict):
    """One segment: who is in it (``where``), optionally split per value of a field."""

    description: str | None = Field(None, description="What the segment is for, for people.")
    where: Any = Field(description="The condition: all/any/not, or {field: NAME, OP: VALUE}.")
    per: str | None = Field(
        None, description="Split into one segment per value of this text field, e.g. branch."
    )


class SegmentsFile(_Strict):
    """A whole segments file."""

    version: Literal[1] = Field(description="Schema version of the segments file; always 1.")
    segments: dict[SegmentName, SegmentSpec] = Field(
        default_factory=dict, description="Segment name → definition."
    )


@dataclass(frozen=True, slots=True)
class Leaf:
    """One test: ``{field: total_spend, gte: 500}``."""

    field: str
    op: str
    value: Any
    loc: Loc


@dataclass(frozen=True, slots=True)
class Group:
    """``all`` (every one holds) or ``any`` (at least one holds)."""

    kind: Literal["all", "any"]
    items: tuple[Condition, ...]
    loc: Loc


@dataclass(frozen=True, slots=True)
class Negation:
    """``not``: everyone the inner condition does not select (unknown values included)."""

    item: Condition
    loc: Loc


Condition = Leaf | Group | Negation


@dataclass(frozen=True, slots=True)
class LoadedSegments:
    """A parsed segments file: specs, their conditions, hashes, and where each key was written."""

    spec: SegmentsFile
    conditions: dict[str, Condition]
    hashes: dict[str, str]  # per segment: blake2b-128 of its where + per (not its description)
    display: str
    tree: Any = field(repr=False, default=None)

    def where(self, loc: Loc) -> str:
        """``file:line key.path`` of a key, for messages."""
        dotted = ".".join(str(p) for p in loc)
        return f"{self.display}:{line_of(self.tree, loc) or 1} {dotted}"


def load_segments(path: Path, display: str | None = None) -> LoadedSegments:
    """Read a segments file and check its shape (fields and types: ``compile.check_segments``).

    Raises:
        ConfigError: listing every problem as ``file:line key: message``.
    """
    shown = display or path.name
    if not path.is_file():
        raise ConfigError(
            f"{shown}: segments file not found (write one, e.g. from `crm-hub init`, or set "
            "`segments:` in hub.yaml)"
        )
    try:
        tree = parse_yaml_with_lines(path)
    except ConfigError as exc:
        raise ConfigError(_rename(exc.message, path.name, shown)) from None
    if not isinstance(tree, CommentedMap):
        raise ConfigError(f"{shown}:1: expected a mapping with version and segments")
    try:
        spec = SegmentsFile.model_validate(plain(tree))
    except ValidationError as exc:
        shape = [
            _rename(_allowed_here(p, item["loc"], item["type"]), path.name, shown)
            for p, item in zip(
                format_pydantic_errors(exc, SegmentsFile, path, tree), exc.errors(), strict=True
            )
        ]
        raise ConfigError(_summary(shown, shape), problems=shape) from None
    loaded = LoadedSegments(spec, {}, {}, shown, tree)
    problems: list[str] = []
    for name, segment in spec.segments.items():
        condition = _parse(segment.where, ("segments", name, "where"), loaded, problems, 0)
        if condition is not None:
            loaded.conditions[name] = condition
        body = {"where": segment.where, "per": segment.per}
        digest = orjson.dumps(body, default=str, option=orjson.OPT_SORT_KEYS)
        loaded.hashes[name] = hashlib.blake2b(digest, digest_size=16).hexdigest()
    if problems:
        raise ConfigError(_summary(shown, problems), problems=problems)
    return loaded


def plain(node: Any) -> Any:
    """ruamel's nodes as plain Python (bool, int, float, str, date, list, dict)."""
    if isinstance(node, dict):
        return {str(k): plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [plain(v) for v in node]
    if isinstance(node, bool) or node is None:
        return node
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    if isinstance(node, str):
        return str(node)
    if isinstance(node, datetime):
        return datetime.fromisoformat(node.isoformat())
    if isinstance(node, date):
        return date(node.year, node.month, node.day)
    return node


def _allowed_here(problem: str, loc: tuple[Any, ...], kind: str) -> str:
    """The loader lists the top level's keys; inside a segment, list a segment's keys."""
    if kind != "extra_forbidden" or len(loc) < 3:
        return problem
    head, _, _ = problem.partition("allowed keys here: ")
    return head + "allowed keys here: " + ", ".join(sorted(SegmentSpec.model_fields))


def _summary(shown: str, problems: list[str]) -> str:
    return f"{shown}: {len(problems)} problem(s) in the segments\n  " + "\n  ".join(problems)


def _rename(problem: str, name: str, shown: str) -> str:
    return shown + problem[len(name) :] if problem.startswith(name + ":") else problem


_HELP = (
    "a condition is {all: [...]}, {any: [...]}, {not: {...}} or "
    "{field: NAME, OP: VALUE} with OP one of " + ", ".join(OPERATORS)
)


def _parse(
    raw: Any, loc: Loc, loaded: LoadedSegments, problems: list[str], depth: int
) -> Condition | None:
    def bad(message: str, at: Loc = loc) -> None:
        problems.append(f"{loaded.where(at)}: {message}")

    if depth > _MAX_DEPTH:
        bad(f"conditions nest deeper than {_MAX_DEPTH} levels")
        return None
    if not isinstance(raw, dict) or not raw:
        bad(f"expected a mapping; {_HELP}")
        return None
    groups = [key for key in raw if key in _GROUPS]
    if groups:
        if len(raw) != 1:
            bad(f"{groups[0]} must be alone in its mapping; put the other keys in its list")
            return None
        kind = groups[0]
        inner = raw[kind]
        if kind == "not":
            item = _parse(inner, (*loc, "not"), loaded, problems, depth + 1)
            return None if item is None else Negation(item, loc)
        if not isinstance(inner, list) or not inner:
            bad(f"{kind} takes a non-empty list of conditions", (*loc, kind))
            return None
        items = [
            _parse(v, (*loc, kind, i), loaded, problems, depth + 1) for i, v in enumerate(inner)
        ]
        if any(i is None for i in items):
            return None
        return Group(kind, tuple(i for i in items if i is not None), loc)
    return _parse_leaf(raw, loc, bad)


def _parse_leaf(raw: dict[str, Any], loc: Loc, bad: Any) -> Leaf | None:
    unknown = [k for k in raw if k != "field" and k not in OPERATORS]
    if unknown:
        bad(f"unknown key {unknown[0]!r}; {_HELP}", (*loc, unknown[0]))
        return None
    name = raw.get("field")
    if not isinstance(name, str) or not name:
        bad("missing field: name the trait or profile field, e.g. {field: city, eq: London}")
        return None
    ops = [k for k in raw if k in OPERATORS]
    if len(ops) != 1:
        found = ", ".join(ops) or "none"
        bad(f"a test has exactly one operator (found {found}); combine tests with all/any")
        return None
    op = ops[0]
    value = raw[op]
    problem = _check_shape(op, value)
    if problem:
        bad(problem, (*loc, op))
        return None
    return Leaf(name, op, value, loc)


def _check_shape(op: str, value: Any) -> str | None:
    """Shape of the value by operator; None when fine."""
    if op in ("in", "not_in"):
        if not isinstance(value, list) or not value:
            return f"{op} takes a non-empty list, e.g. {op}: [soho, camden]"
        if any(isinstance(v, (list, dict)) or v is None for v in value):
            return f"{op} takes a list of plain values"
    elif op == "between":
        if not isinstance(value, list) or len(value) != 2 or None in value:
            return "between takes two values [low, high], both included"
    elif op == "is_null":
        if not isinstance(value, bool):
            return "is_null takes true (the field is empty) or false (it has a value)"
    elif op in RELATIVE:
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            return f"{op} takes a whole number of days, e.g. {op}: 30"
    elif op == "in_this":
        if value not in PERIODS:
            return f"in_this takes one of {', '.join(PERIODS)} (got {value!r})"
    elif value is None or isinstance(value, (list, dict)):
        return f"{op} takes one plain value (for empty fields use is_null: true)"
    return None
