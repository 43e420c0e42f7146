"""Placeholder: the `sandbox` command lands with the vendor sandbox."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add nothing yet."""
