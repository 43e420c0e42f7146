"""Traits: what staff and marketing need to know about each master, one row per master.

The registry (``TRAITS``: name, type, unit, meaning, how it is computed) is the single
definition of every trait; it feeds the README table, the read API schema (``json_schema``)
and the stage (``compute_traits``), which keeps the ``traits`` table up to date incrementally.

The stage (pandas, numpy, lifetimes) is imported on first use, so importing the registry (the
CLI, the API schema) stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from crm_hub.profile.traits.registry import (
    TRAITS,
    TraitDef,
    json_schema,
    readme_table,
    register_trait,
    trait_names,
)

if TYPE_CHECKING:
    from crm_hub.profile.traits.stage import TraitsResult, compute_traits

__all__ = [
    "TRAITS",
    "TraitDef",
    "TraitsResult",
    "compute_traits",
    "json_schema",
    "readme_table",
    "register_trait",
    "trait_names",
]


def __getattr__(name: str) -> Any:
    if name in ("TraitsResult", "compute_traits"):
        from crm_hub.profile.traits import stage

        return getattr(stage, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
