"""Placeholder: the `match` command lands with the identity engine."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add nothing yet."""
