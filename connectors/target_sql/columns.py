"""SQL columns from a stream's JSON schema.

``integer`` → BIGINT, ``number`` → NUMERIC, ``boolean`` → BOOLEAN, ``string`` with format
``date-time`` → TIMESTAMP WITH TIME ZONE, ``object``/``array`` → JSON, other strings → TEXT. A
property with no type, or more than one besides ``null`` (the hub sends ``{}``), is TEXT: text
as is, anything else as JSON text.
"""

from __future__ import annotations

import json
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Column, DateTime, MetaData, Numeric, Table, Text

CONTROL_FIELDS = frozenset({"_deleted", "_erase"})  # say what to do with a row, never stored


def json_types(prop: dict[str, Any]) -> set[str]:
    """The JSON types a property allows, ``null`` left out (``anyOf`` branches included)."""
    kinds = prop.get("type")
    found = {kinds} if isinstance(kinds, str) else set(kinds or [])
    for branch in prop.get("anyOf") or []:
        if isinstance(branch, dict):
            found |= json_types(branch)
    return found - {"null"}


def column_type(prop: dict[str, Any]) -> Any:
    """The SQL type of one JSON-schema property (see the module docstring)."""
    kinds = json_types(prop)
    if kinds == {"integer"}:
        return BigInteger()
    if kinds <= {"integer", "number"} and kinds:
        return Numeric()
    if kinds == {"boolean"}:
        return Boolean()
    if kinds == {"string"} and prop.get("format") == "date-time":
        return DateTime(timezone=True)
    if kinds and kinds <= {"object", "array"}:
        return JSON()
    return Text()


def table_for(name: str, schema: dict[str, Any], keys: list[str]) -> Table:
    """The table of a stream: one column per property (control fields aside), ``keys`` as the
    primary key."""
    properties: dict[str, Any] = dict(schema.get("properties") or {})
    columns = [
        Column(
            field,
            column_type(properties.get(field) or {}),
            primary_key=field in keys,
            nullable=field not in keys,
        )
        for field in dict.fromkeys([*keys, *properties])
        if field not in CONTROL_FIELDS
    ]
    return Table(name, MetaData(), *columns)


def cell(column: Column[Any], value: Any) -> Any:
    """``value`` as ``column`` stores it: in TEXT, text as is and anything else as JSON text; in
    JSON, decimals as numbers (the reader parses JSON numbers as decimals)."""
    if value is None:
        return None
    if isinstance(column.type, JSON):
        return _json_ready(value)
    if not isinstance(column.type, Text) or isinstance(value, str):
        return value
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    return json.dumps(_json_ready(value), ensure_ascii=False)


def _json_ready(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): _json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_ready(v) for v in value]
    return value
