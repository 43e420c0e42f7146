"""`crm-hub init` and `crm-hub check`."""

from __future__ import annotations

import shutil
from importlib import resources
from pathlib import Path
from typing import Annotated

import typer

from crm_hub.cli.common import (
    ConfigOption,
    JsonOption,
    config_path,
    console,
    emit_json,
    handle_errors,
)
from crm_hub.config import load_config
from crm_hub.errors import ConfigError, CrmHubError
from crm_hub.store import open_store
from crm_hub.sync.registry import make_reader


def register(app: typer.Typer) -> None:
    """Add init and check."""
    app.command("init")(init_command)
    app.command("check")(check_command)


@handle_errors
def init_command(
    directory: Annotated[Path, typer.Argument(help="Folder to create the project in.")],
    force: Annotated[bool, typer.Option(help="Overwrite files that already exist.")] = False,
    vendors: Annotated[
        bool,
        typer.Option(
            "--vendors",
            help="Write the vendor demo instead: Square, Mailchimp, Typeform and QuickBooks "
            "pointed at `crm-hub sandbox` (URL from $CRM_HUB_SANDBOX_URL, default "
            "http://127.0.0.1:8765), with their mappings.",
        ),
    ] = False,
) -> None:
    """Write a working example project (hub.yaml, sample data); then: cd DIR && crm-hub run.

    With --vendors: the four shipped connectors against the vendor sandbox; start it first
    (crm-hub sandbox --port 8765), then cd DIR && crm-hub run.
    """
    if vendors:
        from crm_hub.demo_vendors import write_vendor_project

        written_files = write_vendor_project(directory, force=force)
        console.print(
            f"Created the vendor demo in [bold]{directory}[/] ({len(written_files)} files)."
        )
        console.print(
            "Next: [bold]crm-hub sandbox --port 8765[/] in another terminal, then "
            f"[bold]cd {directory} && crm-hub check && crm-hub run && crm-hub status[/]"
        )
        return
    template = resources.files("crm_hub") / "templates" / "project"
    written = []
    with resources.as_file(template) as source:
        for path in sorted(p for p in Path(source).rglob("*") if p.is_file()):
            relative = path.relative_to(source)
            target = directory / relative
            if target.exists() and not force:
                raise ConfigError(f"{target} already exists; pass --force to overwrite it")
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
            written.append(str(relative))
    console.print(f"Created a crm-hub project in [bold]{directory}[/] ({len(written)} files).")
    console.print(
        f"Next: [bold]cd {directory} && crm-hub check && crm-hub run && crm-hub status[/]"
    )


@handle_errors
def check_command(config: ConfigOption = None, json_output: JsonOption = False) -> None:
    """Validate hub.yaml, the files and mappings it names, and that the store is reachable.

    Lists every problem found, not only the first; exits 2 when the configuration is wrong,
    1 when only the store is unreachable, 0 when everything is fine.
    """
    path = config_path(config)
    hub = load_config(path)
    problems: list[str] = []
    for name, source in hub.sources.items():
        if source.mapping and not hub.resolve_path(source.mapping).is_file():
            problems.append(f"{path.name} sources.{name}.mapping: {source.mapping} not found")
        elif source.mapping:
            from crm_hub.mapping.spec import load_mapping

            try:
                load_mapping(hub.resolve_path(source.mapping), source.mapping)
            except ConfigError as exc:
                problems.extend(exc.problems)
        files = getattr(make_reader(name, source, hub.base_dir), "files", None)
        if files is not None:
            try:
                files()
            except CrmHubError as exc:
                problems.append(f"{path.name} sources.{name}.path: {exc.message}")
    store_problem = None
    try:
        open_store(hub.store, migrate=False).dispose()
    except CrmHubError as exc:
        store_problem = exc.message
    everything = problems + ([f"store: {store_problem}"] if store_problem else [])
    if json_output:
        emit_json({"ok": not everything, "problems": everything})
    elif everything:
        console.print(f"[bold red]{len(everything)} problem(s):[/]")
        for problem in everything:
            console.print(f"  {problem}", highlight=False)
    else:
        console.print(f"[green]ok[/]: {len(hub.sources)} source(s), store {hub.store}")
    if problems:
        raise typer.Exit(2)
    if store_problem:
        raise typer.Exit(1)
