"""The trait schema served at ``/traits``.

Read from the profile stage's trait registry (``crm_hub.profile.traits.registry``: name, type,
unit, meaning, how it is computed). :func:`_from_table` reads the ``traits`` table's columns
instead (name, type, column comment); which one is used is the one-line switch :data:`_SOURCE`.
Types use the registry's words: integer, decimal, float, boolean, text, date, timestamp, json.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import JSON, Boolean, Date, DateTime, Float, Integer, Numeric

from crm_hub.api.lookup import TRAIT_FIELDS
from crm_hub.api.policy import TRAIT_GROUPS
from crm_hub.store.schema import ExactDecimal, JsonDocument, UtcDateTime, traits

__all__ = ["trait_definitions"]

_GROUP = {field: group for group, fields in TRAIT_GROUPS.items() for field in fields}


def _type_name(column_type: Any) -> str:
    checks: tuple[tuple[type | tuple[type, ...], str], ...] = (
        ((ExactDecimal, Numeric), "decimal"),
        ((JsonDocument, JSON), "json"),
        ((UtcDateTime, DateTime), "timestamp"),
        (Date, "date"),
        (Boolean, "boolean"),
        (Integer, "integer"),
        (Float, "float"),
    )
    for kinds, name in checks:
        if isinstance(column_type, kinds):
            return name
    return "text"


def _from_table() -> list[dict[str, Any]]:
    return [
        {
            "name": name,
            "type": _type_name(traits.c[name].type),
            "description": traits.c[name].comment,
            "unit": "",
            "computed": None,
            "group": _GROUP.get(name, "unclassified"),
        }
        for name in TRAIT_FIELDS
    ]


def _from_registry() -> list[dict[str, Any]]:
    from crm_hub.profile.traits.registry import TRAITS

    return [
        {
            "name": t.name,
            "type": t.type,
            "description": t.description,
            "unit": t.unit,
            "computed": t.computed,
            "group": _GROUP.get(t.name, "unclassified"),
        }
        for t in TRAITS.values()
    ]


_SOURCE: Callable[[], list[dict[str, Any]]] = _from_registry  # or _from_table


def trait_definitions() -> list[dict[str, Any]]:
    """Every trait: name, type, description, policy group."""
    return _SOURCE()
