"""The `crm-hub` command line: a thin Typer app, one module per command group.

Each command module exposes ``register(app)``; this file only assembles them. Commands parse
arguments, call one function of the engine, and render the result. Exit codes follow the error
branch: 0 ok, 1 run failed, 2 usage or configuration error.
"""

from __future__ import annotations

import typer

from crm_hub.cli import (
    db,
    deploy,
    erase,
    identity,
    mapping,
    match,
    project,
    publish,
    rejected,
    report,
    sandbox,
    secrets,
    segments,
    serve,
    sync,
)

app = typer.Typer(
    name="crm-hub",
    help="Pull customers from every system, recognise the same person, keep one master record, "
    "and push unified profiles back out.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# In the order `crm-hub --help` lists them: the loop's stages first, then tools.
for _module in (project, sync, mapping, identity, segments, publish, erase, report, deploy,
                rejected, serve, secrets, db, match, sandbox):  # fmt: skip
    _module.register(app)


def main() -> None:
    """Console-script entry point."""
    app()
