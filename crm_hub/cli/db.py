"""`crm-hub db upgrade`: apply store migrations explicitly (they also run on first use)."""

from __future__ import annotations

import typer

from crm_hub.cli.common import ConfigOption, config_path, console, handle_errors
from crm_hub.config import load_config
from crm_hub.store import open_store
from crm_hub.store.engine import HEAD_REVISION, upgrade

db_app = typer.Typer(help="Manage the store's schema.")


def register(app: typer.Typer) -> None:
    """Add the db group."""
    app.add_typer(db_app, name="db")


@db_app.command("upgrade")
@handle_errors
def upgrade_command(config: ConfigOption = None) -> None:
    """Bring the store's schema to the newest migration (safe to run any time)."""
    hub = load_config(config_path(config))
    store = open_store(hub.store, migrate=False)
    before = upgrade(store)
    console.print(f"store {store.safe_url}: migration {before or 'none'} → {HEAD_REVISION}")
