"""A parser for the QuickBooks query shapes connectors send.

Grammar (keywords case-insensitive, one statement)::

    SELECT (* | COUNT(*)) FROM <Entity>
      [WHERE <cond> (AND <cond>)*]
      [ORDERBY <field> [ASC|DESC]]
      [STARTPOSITION <n>] [MAXRESULTS <m>]

    <cond>  := <field> (= | < | > | <= | >=) <value> | <field> IN ( <value>, ... )
    <value> := 'text' | number | true | false

Fields understood: ``Metadata.LastUpdatedTime``, ``Metadata.CreateTime`` (also spelt
``MetaData``), ``Id``, ``Active``, ``CustomerRef``. No OR (QuickBooks has none either).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

ENTITIES = {"customer": "Customer", "invoice": "Invoice", "payment": "Payment"}
FIELDS = {
    "metadata.lastupdatedtime": "updated",
    "metadata.createtime": "created",
    "id": "id",
    "active": "active",
    "customerref": "customer",
}

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>'(?:[^']|'')*')
      | (?P<number>-?\d+(?:\.\d+)?)
      | (?P<op><=|>=|=|<|>|\(|\)|,|\*)
      | (?P<word>[A-Za-z_][A-Za-z0-9_.]*)
    )""",
    re.VERBOSE,
)


class QueryError(ValueError):
    """The query is not one the sandbox (or QuickBooks) accepts; the message says where."""


@dataclass(frozen=True)
class Condition:
    """One ``field op value(s)`` condition; ``field`` is a key of ``FIELDS`` values."""

    field: str
    op: str
    values: tuple[str | float | bool, ...]


@dataclass
class Query:
    """A parsed query."""

    entity: str
    count: bool = False
    conditions: list[Condition] = field(default_factory=list)
    order_field: str | None = None
    descending: bool = False
    start_position: int = 1
    max_results: int = 100


def _tokens(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    position = 0
    text = text.strip().rstrip(";")
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            if text[position:].strip() == "":
                break
            raise QueryError(
                f"QueryParserError: Encountered {text[position : position + 10]!r} "
                f"at column {position + 1}."
            )
        kind = match.lastgroup or ""
        out.append((kind, match.group(kind)))
        position = match.end()
    return out


class _Cursor:
    def __init__(self, tokens: list[tuple[str, str]]) -> None:
        self.tokens = tokens
        self.index = 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def next(self, what: str) -> tuple[str, str]:
        token = self.peek()
        if token is None:
            raise QueryError(f"QueryParserError: expected {what} but the query ended.")
        self.index += 1
        return token

    def keyword(self, word: str) -> bool:
        token = self.peek()
        if token is not None and token[0] == "word" and token[1].upper() == word:
            self.index += 1
            return True
        return False

    def expect(self, value: str) -> None:
        kind, text = self.next(repr(value))
        if text.upper() != value:
            raise QueryError(f"QueryParserError: expected {value!r}, found {text!r}.")


def _value(cursor: _Cursor) -> str | float | bool:
    kind, text = cursor.next("a value")
    if kind == "string":
        return text[1:-1].replace("''", "'")
    if kind == "number":
        return float(text)
    if kind == "word" and text.lower() in ("true", "false"):
        return text.lower() == "true"
    raise QueryError(f"QueryParserError: expected a value, found {text!r}.")


def _field(cursor: _Cursor) -> str:
    kind, text = cursor.next("a property")
    if kind != "word":
        raise QueryError(f"QueryParserError: expected a property, found {text!r}.")
    name = FIELDS.get(text.lower())
    if name is None:
        raise QueryError(
            f"QueryValidationError: property '{text}' is not queryable in the sandbox "
            f"(use one of {sorted(FIELDS)})."
        )
    return name


def parse(text: str, *, max_results_limit: int = 1000) -> Query:
    """Parse a QuickBooks query.

    Args:
        text: the statement, e.g. ``SELECT * FROM Customer WHERE Metadata.LastUpdatedTime >
            '2026-01-01T00:00:00-08:00' ORDERBY Metadata.LastUpdatedTime STARTPOSITION 1
            MAXRESULTS 1000``.
        max_results_limit: the largest ``MAXRESULTS`` accepted.

    Returns:
        The parsed query.

    Raises:
        QueryError: with QuickBooks-like wording on anything else.
    """
    cursor = _Cursor(_tokens(text))
    if not cursor.keyword("SELECT"):
        raise QueryError("QueryParserError: the query must start with SELECT.")
    count = False
    if cursor.keyword("COUNT"):
        cursor.expect("(")
        cursor.expect("*")
        cursor.expect(")")
        count = True
    else:
        cursor.expect("*")
    if not cursor.keyword("FROM"):
        raise QueryError("QueryParserError: expected FROM.")
    _, entity_text = cursor.next("an entity")
    entity = ENTITIES.get(entity_text.lower())
    if entity is None:
        raise QueryError(
            f"QueryParserError: entity '{entity_text}' is not emulated "
            "(use Customer, Invoice or Payment)."
        )
    query = Query(entity=entity, count=count)
    if cursor.keyword("WHERE"):
        while True:
            name = _field(cursor)
            if cursor.keyword("IN"):
                cursor.expect("(")
                values = [_value(cursor)]
                while cursor.peek() == ("op", ","):
                    cursor.index += 1
                    values.append(_value(cursor))
                cursor.expect(")")
                query.conditions.append(Condition(name, "IN", tuple(values)))
            else:
                kind, op = cursor.next("an operator")
                if kind != "op" or op not in ("=", "<", ">", "<=", ">="):
                    raise QueryError(f"QueryParserError: expected an operator, found {op!r}.")
                query.conditions.append(Condition(name, op, (_value(cursor),)))
            if cursor.keyword("OR"):
                raise QueryError("QueryParserError: OR is not supported in WHERE clauses.")
            if not cursor.keyword("AND"):
                break
    if cursor.keyword("ORDERBY") or (cursor.keyword("ORDER") and cursor.keyword("BY")):
        query.order_field = _field(cursor)
        if cursor.keyword("DESC"):
            query.descending = True
        else:
            cursor.keyword("ASC")
    for keyword in ("STARTPOSITION", "MAXRESULTS"):
        if cursor.keyword(keyword):
            kind, number = cursor.next("a number")
            if kind != "number" or not number.isdigit():
                raise QueryError(
                    f"QueryParserError: {keyword} needs a positive integer, found {number!r}."
                )
            if keyword == "STARTPOSITION":
                query.start_position = max(1, int(number))
            else:
                query.max_results = int(number)
    leftover = cursor.peek()
    if leftover is not None:
        raise QueryError(
            f'QueryParserError: Encountered "{leftover[1]}" after the end of the query.'
        )
    if not 1 <= query.max_results <= max_results_limit:
        raise QueryError(
            f"QueryValidationError: MAXRESULTS must be between 1 and {max_results_limit}, "
            f"got {query.max_results}."
        )
    return query
