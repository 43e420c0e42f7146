"""`crm-hub secrets keygen|reencrypt`: the key that encrypts credentials kept in the store."""

from __future__ import annotations

import typer
from cryptography.fernet import Fernet

from crm_hub.cli.common import ConfigOption, console, handle_errors, load
from crm_hub.store.secrets import reencrypt_connector_secrets

secrets_app = typer.Typer(
    help="Encrypt the credentials connectors rotate (refresh tokens) where the store keeps them."
)


def register(app: typer.Typer) -> None:
    """Add the secrets group."""
    app.add_typer(secrets_app, name="secrets")


@secrets_app.command("keygen")
def keygen_command() -> None:
    """Print a new key for CRM_HUB_SECRETS_KEY (keep it where the hub's environment is kept)."""
    typer.echo(Fernet.generate_key().decode("ascii"))


@secrets_app.command("reencrypt")
@handle_errors
def reencrypt_command(config: ConfigOption = None) -> None:
    """Write every stored credential again with the first key of CRM_HUB_SECRETS_KEY.

    To change keys: set CRM_HUB_SECRETS_KEY=NEW,OLD, run this, then set it to NEW alone.
    Also encrypts credentials stored before a key was set.
    """
    _, store = load(config)
    with store.begin() as conn:
        count = reencrypt_connector_secrets(conn)
    console.print(f"re-encrypted {count} stored credential(s) with the first key")
