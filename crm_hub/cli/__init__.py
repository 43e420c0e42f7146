"""The `crm-hub` command line: a thin Typer app, one module per command group.

Each command module exposes ``register(app)``; this file only assembles them. Commands parse
arguments, call one function of the engine, and render the result. Exit codes follow the error
branch: 0 ok, 1 run failed, 2 usage or configuration error.
"""

from __future__ import annotations

import typer

from crm_hub.cli import db, identity, mapping, match, project, rejected, sandbox, serve, sync
from crm_hub.cli import segments as segments_cli

app = typer.Typer(
    name="crm-hub",
    help="Pull customers from every system, recognise the same person, keep one master record, "
    "and push unified profiles back out.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

for _module in (project, sync, mapping, identity, rejected, db, match, sandbox, serve):
    _module.register(app)
segments_cli.register(app)


def main() -> None:
    """Console-script entry point."""
    app()
