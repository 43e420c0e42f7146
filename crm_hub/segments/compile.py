"""Segment conditions → SQLAlchemy Core expressions over ``profiles`` and ``traits``.

Fields are looked up by name in a catalogue built from the two tables' columns (never pasted
into SQL); values are checked against the column's type and always bound as parameters. Every
test is two-valued (``field IS NOT NULL AND ...``), so ``not`` selects exactly the people the
inner condition does not, including those whose field is empty.

```python
compiled = compile_segments(load_segments(path), dialect="sqlite", today=date(2026, 3, 2))
select(profiles.c.master_id).select_from(population()).where(compiled["high_value"].expr)
```
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    Date,
    Float,
    Integer,
    Numeric,
    String,
    and_,
    case,
    cast,
    func,
    literal,
    not_,
    or_,
)
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.selectable import FromClause

from crm_hub.errors import ConfigError
from crm_hub.segments.spec import (
    RELATIVE,
    Condition,
    Group,
    Leaf,
    LoadedSegments,
    Loc,
    Negation,
)
from crm_hub.store.schema import ExactDecimal, JsonDocument, UtcDateTime, masters, profiles, traits

__all__ = [
    "FIELDS",
    "CompiledSegment",
    "FieldInfo",
    "check_segments",
    "compile_segments",
    "population",
    "values_json",
]

# Keys and bookkeeping: not something a segment selects on.
_HIDDEN = {
    "master_id",
    "change_seq",
    "run_id",
    "computed_at",
    "updated_at",
    "provenance",
    "values_hash",
}
_ORDERED = {"integer", "number", "money", "date", "datetime"}
_SCALAR = _ORDERED | {"text", "boolean"}
_OPS_BY_KIND: dict[str, set[str]] = {
    kind: {"eq", "ne", "in", "not_in", "is_null"}
    | ({"gt", "gte", "lt", "lte", "between"} if kind in _ORDERED else set())
    | ({"contains"} if kind == "text" else set())
    | ({*RELATIVE, "in_this"} if kind in ("date", "datetime") else set())
    for kind in _SCALAR
}
_OPS_BY_KIND["json"] = {"is_null"}
_KIND_WORDS = {
    "integer": "a whole number",
    "number": "a number",
    "money": "an amount",
    "text": "text",
    "boolean": "true or false",
    "date": "a date",
    "datetime": "a date and time (UTC)",
    "json": "a JSON document",
}


@dataclass(frozen=True, slots=True)
class FieldInfo:
    """A field a segment can use: its column and what kind of value it holds."""

    name: str
    column: Column[Any]
    kind: str  # integer, number, money, text, boolean, date, datetime, json


def _kind(column: Column[Any]) -> str:
    kind = column.type
    checks: list[tuple[type, str]] = [
        (ExactDecimal, "money"),
        (UtcDateTime, "datetime"),
        (JsonDocument, "json"),
        (Boolean, "boolean"),
        (Date, "date"),
        (Integer, "integer"),
        (Float, "number"),
        (Numeric, "money"),
        (String, "text"),
    ]
    return next((name for cls, name in checks if isinstance(kind, cls)), "unsupported")


def _catalogue() -> dict[str, FieldInfo]:
    found: dict[str, FieldInfo] = {}
    plain: dict[str, list[FieldInfo]] = {}
    for table in (traits, profiles):
        for column in table.columns:
            if column.name in _HIDDEN:
                continue
            info = FieldInfo(column.name, column, _kind(column))
            found[f"{table.name}.{column.name}"] = info
            plain.setdefault(column.name, []).append(info)
    for name, infos in plain.items():
        if len(infos) == 1:  # a name in both tables must be written traits.x or profiles.x
            found[name] = infos[0]
    return found


FIELDS: dict[str, FieldInfo] = _catalogue()


@dataclass(frozen=True, slots=True)
class CompiledSegment:
    """A segment ready to run: its condition as SQL and what that condition reads."""

    name: str
    description: str | None
    definition_hash: str
    expr: ColumnElement[bool]
    fields: tuple[str, ...]  # referenced fields, in order: recorded as the cause
    uses_today: bool  # relative dates: a new day means a full evaluation
    per: FieldInfo | None


def population() -> FromClause:
    """Everyone a segment can select: active masters with a profile, and their traits if any."""
    return profiles.join(
        masters,
        and_(masters.c.master_id == profiles.c.master_id, masters.c.status == "active"),
    ).outerjoin(traits, traits.c.master_id == profiles.c.master_id)


def values_json(fields: tuple[str, ...], dialect: str) -> ColumnElement[Any]:
    """A JSON object of the fields' current values (keys bound as parameters)."""
    if dialect == "postgresql":
        args: list[Any] = []
        for name in fields:
            args += [cast(literal(name), String), FIELDS[name].column]
        return func.json_build_object(*args)
    args = []
    for name in fields:
        info = FIELDS[name]
        value: Any = info.column
        if info.kind == "boolean":  # SQLite keeps 0/1: make them JSON booleans
            value = func.json(case((value == 1, "true"), (value == 0, "false"), else_=None))
        elif info.kind == "json":
            value = func.json(value)
        args += [literal(name), value]
    return func.json_object(*args)


class _BadValue(ValueError):
    """A value that does not fit the field's type."""


def _start(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)


class _Compiler:
    """Compiles one file's conditions; collects every problem instead of stopping at the first."""

    def __init__(self, dialect: str, today: date, where: Callable[[Loc], str]) -> None:
        self.dialect, self.today, self.where = dialect, today, where
        self.problems: list[str] = []
        self.fields: list[str] = []
        self.uses_today = False

    def problem(self, loc: Loc, message: str) -> None:
        self.problems.append(f"{self.where(loc)}: {message}")

    def lookup(self, name: str, loc: Loc) -> FieldInfo | None:
        info = FIELDS.get(name)
        if info is not None:
            return info
        close = difflib.get_close_matches(name, list(FIELDS), n=3, cutoff=0.6)
        hint = f"did you mean {', '.join(close)}?" if close else "see the field list in README"
        self.problem(loc, f"unknown field {name!r} ({hint})")
        return None

    def condition(self, node: Condition) -> ColumnElement[bool] | None:
        if isinstance(node, Group):
            parts = [self.condition(item) for item in node.items]
            if any(p is None for p in parts):
                return None
            join = and_ if node.kind == "all" else or_
            return join(*[p for p in parts if p is not None])
        if isinstance(node, Negation):
            inner = self.condition(node.item)
            return None if inner is None else not_(inner)
        return self.leaf(node)

    def leaf(self, leaf: Leaf) -> ColumnElement[bool] | None:
        info = self.lookup(leaf.field, (*leaf.loc, "field"))
        if info is None:
            return None
        if info.name not in self.fields:
            self.fields.append(info.name)
        allowed = _OPS_BY_KIND.get(info.kind, set())
        if leaf.op not in allowed:
            what = _KIND_WORDS.get(info.kind, f"of a type segments cannot use ({info.column.type})")
            ops = ", ".join(sorted(allowed)) or "none"
            self.problem(
                (*leaf.loc, leaf.op),
                f"{leaf.op} does not apply to {leaf.field}, which holds {what}; use: {ops}",
            )
            return None
        column = info.column
        if leaf.op == "is_null":
            return column.is_(None) if leaf.value else column.is_not(None)
        try:
            test = _Test(self, info).build(leaf.op, leaf.value)
        except _BadValue as exc:
            self.problem(
                (*leaf.loc, leaf.op), f"{leaf.field} holds {_KIND_WORDS[info.kind]}: {exc}"
            )
            return None
        return and_(column.is_not(None), test)


class _Test:
    """One field's comparisons: coerce values to its type, bind them, compare."""

    def __init__(self, compiler: _Compiler, info: FieldInfo) -> None:
        self.compiler, self.info, self.kind = compiler, info, info.kind
        self.sqlite = compiler.dialect == "sqlite"
        column: Any = info.column
        if self.kind == "money" and self.sqlite:  # stored as exact text: compare as numbers
            column = cast(column, Float)
        elif self.kind == "text":
            column = func.lower(column)  # text compares case-insensitively
        self.lhs: ColumnElement[Any] = column

    def build(self, op: str, value: Any) -> ColumnElement[bool]:
        if op in RELATIVE or op == "in_this":
            return self.relative(op, value)
        if op == "contains":
            needle = func.lower(literal(self.coerce(value), String))
            finder = func.instr(self.lhs, needle) if self.sqlite else func.strpos(self.lhs, needle)
            return finder > 0
        if op in ("in", "not_in"):
            tests = [self.compare("eq", self.coerce(v)) for v in value]
            test = or_(*tests) if len(tests) > 1 else tests[0]
            return not_(test) if op == "not_in" else test
        if op == "between":
            low, high = self.coerce(value[0]), self.coerce(value[1])
            if _key(low) > _key(high):
                raise _BadValue(f"between [{value[0]}, {value[1]}]: the low end is above the high")
            return and_(self.compare("gte", low), self.compare("lte", high))
        test = self.compare("eq" if op == "ne" else op, self.coerce(value))
        return not_(test) if op == "ne" else test

    def bind(self, value: Any) -> ColumnElement[Any]:
        if self.kind == "text":
            return func.lower(literal(value, String))
        if self.kind == "money":
            return literal(float(value), Float) if self.sqlite else literal(value, Numeric(18, 4))
        types: dict[str, Any] = {
            "integer": Integer(),
            "number": Float(),
            "boolean": Boolean(),
            "date": Date(),
            "datetime": UtcDateTime(),
        }
        return literal(value, types[self.kind])

    def compare(self, op: str, value: Any) -> ColumnElement[bool]:
        lhs = self.lhs
        if self.kind == "datetime" and not isinstance(value, datetime):  # a whole day
            low, high = self.bind(_start(value)), self.bind(_start(value + timedelta(days=1)))
            day: dict[str, ColumnElement[bool]] = {
                "eq": and_(lhs >= low, lhs < high),
                "gt": lhs >= high,
                "gte": lhs >= low,
                "lt": lhs < low,
                "lte": lhs < high,
            }
            return day[op]
        bound = self.bind(value)
        point: dict[str, ColumnElement[bool]] = {
            "eq": lhs == bound,
            "gt": lhs > bound,
            "gte": lhs >= bound,
            "lt": lhs < bound,
            "lte": lhs <= bound,
        }
        return point[op]

    def relative(self, op: str, value: Any) -> ColumnElement[bool]:
        self.compiler.uses_today = True
        today = self.compiler.today
        if op == "older_than_days":
            return self.compare("lt", today - timedelta(days=value))
        if op == "in_this":
            low, high = _period(today, value)
        else:
            days = timedelta(days=value)
            low = today if op == "within_next_days" else today - days
            high = today if op == "within_last_days" else today + days
        return and_(self.compare("gte", low), self.compare("lte", high))

    def coerce(self, value: Any) -> Any:
        kind = self.kind
        if kind == "integer":
            if isinstance(value, bool) or not isinstance(value, int):
                raise _BadValue(f"expected a whole number, got {value!r}")
            return value
        if kind == "number":
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise _BadValue(f"expected a number, got {value!r}")
            return float(value)
        if kind == "money":
            return _money(value)
        if kind == "text":
            if isinstance(value, bool) or not isinstance(value, (str, int)):
                raise _BadValue(f"expected text, got {value!r}")
            return str(value)
        if kind == "boolean":
            if not isinstance(value, bool):
                raise _BadValue(f"expected true or false, got {value!r}")
            return value
        return _moment(value, with_time=kind == "datetime")


def _key(value: Any) -> Any:
    """Comparable form of a coerced value (a day compares as its start)."""
    if isinstance(value, date) and not isinstance(value, datetime):
        return _start(value)
    return value


def _money(value: Any) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise _BadValue(f"expected an amount such as 500 or 99.90, got {value!r}")
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        raise _BadValue(f"expected an amount such as 500 or 99.90, got {value!r}") from None
    if not amount.is_finite():
        raise _BadValue(f"expected an amount such as 500 or 99.90, got {value!r}")
    return amount


def _moment(value: Any, *, with_time: bool) -> date | datetime:
    """A date (YAML 2026-03-01 or '2026-03-01'); with_time also a datetime (naive = UTC)."""
    example = "2026-03-01" + (" or 2026-03-01T09:30:00Z" if with_time else "")
    if isinstance(value, str):
        try:
            value = (
                date.fromisoformat(value)
                if len(value.strip()) == 10
                else datetime.fromisoformat(value.strip())
            )
        except ValueError:
            raise _BadValue(f"expected a date such as {example}, got {value!r}") from None
    if isinstance(value, datetime):
        if not with_time:
            raise _BadValue(f"expected a date without a time, such as 2026-03-01, got {value}")
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return value
    raise _BadValue(f"expected a date such as {example}, got {value!r}")


def _period(today: date, period: str) -> tuple[date, date]:
    """First and last day of the calendar week (Monday first), month or year holding today."""
    if period == "week":
        monday = today - timedelta(days=today.weekday())
        return monday, monday + timedelta(days=6)
    if period == "month":
        first = today.replace(day=1)
        following = (first + timedelta(days=32)).replace(day=1)
        return first, following - timedelta(days=1)
    return today.replace(month=1, day=1), today.replace(month=12, day=31)


def compile_segments(
    loaded: LoadedSegments, *, dialect: str, today: date
) -> dict[str, CompiledSegment]:
    """Compile every segment of a loaded file for ``dialect``, relative dates as of ``today``.

    Raises:
        ConfigError: unknown fields (with suggestions), operators that do not fit a field's
            type, values of the wrong type; every problem at once, with file:line.
    """
    compiled: dict[str, CompiledSegment] = {}
    problems: list[str] = []
    for name, spec in loaded.spec.segments.items():
        compiler = _Compiler(dialect, today, loaded.where)
        expr = compiler.condition(loaded.conditions[name])
        per = None
        if spec.per is not None:
            per = compiler.lookup(spec.per, ("segments", name, "per"))
            if per is not None and per.kind != "text":
                compiler.problem(
                    ("segments", name, "per"),
                    f"per needs a text field such as branch or city; {per.name} holds "
                    f"{_KIND_WORDS.get(per.kind, per.kind)}",
                )
            if per is not None and per.name not in compiler.fields:
                compiler.fields.append(per.name)
        problems += compiler.problems
        if expr is not None and not compiler.problems:
            compiled[name] = CompiledSegment(
                name,
                spec.description,
                loaded.hashes[name],
                expr,
                tuple(compiler.fields),
                compiler.uses_today,
                per,
            )
    if problems:
        summary = f"{loaded.display}: {len(problems)} problem(s) in the segments"
        raise ConfigError(summary + "\n  " + "\n  ".join(problems), problems=problems)
    return compiled


def check_segments(loaded: LoadedSegments) -> int:
    """Check fields, operators and values of every segment; returns how many there are.

    Raises:
        ConfigError: every problem, with file:line.
    """
    return len(compile_segments(loaded, dialect="sqlite", today=datetime.now(UTC).date()))
