"""``crm-hub serve`` (the read API) and ``crm-hub tokens create|list|revoke`` (its tokens).

Thin: parse, call ``crm_hub.api``, render. The API (FastAPI, uvicorn, the normalisers) is
imported inside the commands so the CLI starts fast.
"""

from __future__ import annotations

import os
from dataclasses import asdict
from typing import TYPE_CHECKING, Annotated, Any

import typer

from crm_hub.cli.common import (
    ConfigOption,
    JsonOption,
    config_path,
    console,
    emit_json,
    handle_errors,
    load,
)
from crm_hub.config import HubConfig
from crm_hub.errors import ConfigError

if TYPE_CHECKING:
    from fastapi import FastAPI

    from crm_hub.store import Store

tokens_app = typer.Typer(
    help="Create, list and revoke read API tokens (stored hashed; shown once at creation)."
)

_SERVE_HELP = (
    "Serve the read API (search, customers, orders, timeline, segments, traits) over HTTP "
    "until Ctrl-C. Every request needs a token from `crm-hub tokens create`; the OpenAPI "
    "document is at /openapi.json and the interactive docs at /docs. Phone searches use the "
    "phone_region of the project's mappings, as the map stage does. Typeform sources with a "
    "webhook_secret also receive their form's webhook at POST /events/typeform. "
    "--workers N runs N server processes on one port (one per core serves the most requests)."
)


def register(app: typer.Typer) -> None:
    """Add ``serve`` and the ``tokens`` group."""
    app.command("serve", help=_SERVE_HELP)(serve)
    app.add_typer(tokens_app, name="tokens")


def phone_regions(config: HubConfig) -> tuple[str, ...]:
    """The phone regions of the enabled sources' mappings (the mapping default, GB, if none)."""
    from crm_hub.mapping.spec import MappingSpec, load_mapping

    regions = [
        load_mapping(config.resolve_path(source.mapping), source.mapping).spec.phone_region
        for source in config.sources.values()
        if source.enabled and source.mapping
    ]
    default = str(MappingSpec.model_fields["phone_region"].default)
    return tuple(dict.fromkeys(regions)) or (default,)


def build_app(hub: HubConfig, store: Store) -> FastAPI:
    """The read API over ``store`` with hub.yaml's phone regions and sources, and the settings."""
    from crm_hub.api import create_app
    from crm_hub.settings import get_settings

    settings = get_settings().api
    return create_app(
        store,
        phone_regions=phone_regions(hub),
        default_page_size=settings.default_page_size,
        max_page_size=settings.max_page_size,
        sources=hub.sources,
    )


@handle_errors
def serve(
    host: Annotated[
        str, typer.Option(help="Interface to bind; 0.0.0.0 serves other machines too.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.", min=1, max=65535)] = 8000,
    workers: Annotated[
        int,
        typer.Option(
            help="Server processes sharing the port, each with its own store connections; "
            "one per core serves the most requests.",
            min=1,
            max=64,
        ),
    ] = 1,
    config: ConfigOption = None,
) -> None:
    """Serve the read API until Ctrl-C."""
    import uvicorn

    from crm_hub.api.asgi import http_protocol, settle_collector
    from crm_hub.api.workers import APP_FACTORY, check_port_free, fd_passing_supported, run_workers

    path = config_path(config).resolve()
    hub, store = load(path)  # bad config or an old store fail here, before any worker starts
    check_port_free(host, port)
    console.print(
        f"crm-hub read API on http://{host}:{port} (docs: /docs), store {store.safe_url}, "
        f"{workers} worker{'s' if workers > 1 else ''}",
        soft_wrap=True,  # one line, whatever the terminal: URLs and paths copy whole
    )
    # No access log: a query string can hold a phone number or an e-mail; the app logs paths.
    options: dict[str, Any] = {"access_log": False, "log_level": "warning",
                               "http": http_protocol()}  # fmt: skip
    if workers == 1:
        app = build_app(hub, store)
        settle_collector()  # as each worker does (crm_hub.api.asgi.app_from_config)
        uvicorn.run(app, host=host, port=port, **options)
        return
    store.dispose()  # each worker process opens its own pool from hub.yaml
    os.environ["CRM_HUB_CONFIG"] = str(path)  # read by every worker's app_from_config
    if fd_passing_supported():
        run_workers(host, port, workers, options)
    else:
        uvicorn.run(APP_FACTORY, factory=True, workers=workers, host=host, port=port, **options)


@tokens_app.command("create")
@handle_errors
def create_command(
    name: Annotated[str, typer.Option(help="Who or what uses it, e.g. till-north.")],
    role: Annotated[
        str,
        typer.Option(
            help="staff (masked contact, no money), manager (its branch's money), admin or "
            "service (everything)."
        ),
    ],
    branch: Annotated[
        str | None,
        typer.Option(help="Limit the token to customers of this branch (default: every branch)."),
    ] = None,
    config: ConfigOption = None,
    json_output: JsonOption = False,
) -> None:
    """Create a token and print its secret, once: only its sha256 is stored."""
    from crm_hub.api.tokens import create_token

    _, store = load(config)
    created = create_token(store, name=name, role=role, branch=branch)
    info = created.info
    if json_output:
        emit_json({"id": info.id, "name": info.name, "role": info.role, "branch": info.branch,
                   "token": created.secret})  # fmt: skip
        return
    console.print(
        f"token {info.id} ({info.name}, {info.role}, branch {info.branch or 'all'}):",
        highlight=False,
    )
    typer.echo(created.secret)
    console.print("Keep it now: it is never shown again. Send it as Authorization: Bearer.")


@tokens_app.command("list")
@handle_errors
def list_command(config: ConfigOption = None, json_output: JsonOption = False) -> None:
    """List tokens (id, name, role, branch, created, last used, revoked); never secrets."""
    from rich.table import Table

    from crm_hub.api.tokens import list_tokens

    _, store = load(config)
    found = list_tokens(store)
    if json_output:
        emit_json([asdict(t) for t in found])
        return
    table = Table("id", "name", "role", "branch", "created", "last used", "revoked")
    for t in found:
        table.add_row(
            t.id, t.name, t.role, t.branch or "all", f"{t.created_at:%Y-%m-%d %H:%M}",
            f"{t.last_used_at:%Y-%m-%d %H:%M}" if t.last_used_at else "-",
            f"{t.revoked_at:%Y-%m-%d %H:%M}" if t.revoked_at else "-",
        )  # fmt: skip
    console.print(table)


@tokens_app.command("revoke")
@handle_errors
def revoke_command(
    token_id: Annotated[str, typer.Argument(metavar="ID", help="The token's id (tokens list).")],
    config: ConfigOption = None,
) -> None:
    """Revoke a token at once: requests with it get 401 from then on."""
    from crm_hub.api.tokens import revoke_token

    _, store = load(config)
    if not revoke_token(store, token_id):
        raise ConfigError(f"no live token {token_id}; see crm-hub tokens list")
    console.print(f"token {token_id} revoked")
