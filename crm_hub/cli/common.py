"""What every command shares: the --config and --json options, error → exit code, output."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import orjson
import typer
from rich.console import Console

from crm_hub.config import HubConfig, load_config
from crm_hub.errors import ConfigError, CrmHubError
from crm_hub.logging import configure_logging, redact
from crm_hub.settings import get_settings
from crm_hub.store import Store, open_store

__all__ = [
    "ConfigOption",
    "JsonOption",
    "console",
    "emit_json",
    "err_console",
    "handle_errors",
    "load",
]

console = Console()
err_console = Console(stderr=True)

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        help="Path of hub.yaml. Default: $CRM_HUB_CONFIG, else ./hub.yaml.",
        show_default=False,
    ),
]
JsonOption = Annotated[
    bool, typer.Option("--json", help="Print machine-readable JSON on stdout instead of tables.")
]

F = TypeVar("F", bound=Callable[..., Any])


def config_path(option: Path | None) -> Path:
    """The hub.yaml to use: --config, else $CRM_HUB_CONFIG, else ./hub.yaml."""
    return option if option is not None else get_settings().config  # settings read the env


def load(option: Path | None) -> tuple[HubConfig, Store]:
    """Load hub.yaml and open its store (migrating it if needed)."""
    config = load_config(config_path(option))
    return config, open_store(config.store)


def emit_json(data: Any) -> None:
    """Write ``data`` as one JSON document on stdout."""
    sys.stdout.write(
        redact(
            orjson.dumps(
                data, default=str, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS
            ).decode()
        )
    )
    sys.stdout.write("\n")


def handle_errors(func: F) -> F:
    """Run a command; turn crm-hub errors into a clear message and the branch's exit code."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            settings = get_settings()
            configure_logging(settings.log.level, settings.log.json_lines)
            return func(*args, **kwargs)
        except CrmHubError as exc:
            if kwargs.get("json_output"):
                problems = exc.problems if isinstance(exc, ConfigError) else [exc.message]
                emit_json({"ok": False, "error": type(exc).__name__, "problems": problems})
            else:
                err_console.print(
                    f"[bold red]error:[/] {redact(exc.message)}", highlight=False, soft_wrap=True
                )
            raise typer.Exit(exc.exit_code) from None

    return wrapper  # type: ignore[return-value]
