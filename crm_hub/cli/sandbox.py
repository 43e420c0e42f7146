"""``crm-hub sandbox``: serve the loopback emulation of the vendor APIs until Ctrl-C.

Thin: parse the options, call ``connectors.sandbox``, print where each vendor lives and the test
credentials to use. Exit codes: 0 after Ctrl-C, 2 for a bad option or a port already in use.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

_HELP = "\n\n".join(
    [
        "Serve fake Square, Mailchimp, Typeform, QuickBooks and HubSpot APIs on this machine.",
        "Connectors and the demo point at it instead of the internet. The data is a restaurant "
        "network whose customers appear in several systems with realistic differences; the same "
        "--seed always gives the same data.",
        "Control endpoints under /_sandbox inject faults (429 storms, 5xx, stalls, truncated JSON, "
        "duplicate or empty pages, expiring tokens), mutate records for incremental syncs, and "
        "stream the ground truth of who is who (/_sandbox/truth).",
        "See connectors/sandbox/README.md for every endpoint and credential.",
    ]
)


def _render(info: dict[str, Any]) -> None:
    """Print plain lines (never truncated or wrapped: URLs and tokens must stay copyable)."""
    vendors = info["vendors"]
    quickbooks, oauth = vendors["quickbooks"], vendors["quickbooks"]["oauth"]
    mailchimp, typeform = vendors["mailchimp"], vendors["typeform"]
    rows = [
        ("square", vendors["square"]["api_base"], f"Bearer {vendors['square']['access_token']}"),
        (
            "mailchimp",
            mailchimp["api_base"],
            f"Basic auth, any user, password {mailchimp['api_key']}",
        ),
        ("", "", f"list ids {', '.join(mailchimp['list_ids'])}"),
        ("typeform", typeform["base_url"], f"Bearer {typeform['access_token']}"),
        ("", "", f"form ids {', '.join(typeform['form_ids'])}"),
        ("quickbooks", quickbooks["api_base"], f"Bearer {quickbooks['access_token']}"),
        ("", "", f"refresh: POST {oauth['token_url']}"),
        ("", "", f"  client {oauth['client_id']}:{oauth['client_secret']}"),
        ("", "", f"  first refresh token {oauth['refresh_token']} (rotates)"),
        ("hubspot", vendors["hubspot"]["api_base"], f"Bearer {vendors['hubspot']['access_token']}"),
    ]
    typer.secho(f"crm-hub sandbox listening on {info['base_url']}", bold=True)
    typer.echo(f"seed {info['seed']}, {info['customers']:,} people\n")
    width = max(len(url) for _, url, _ in rows)
    for vendor, url, credential in rows:
        typer.echo(f"  {vendor:<11} {url:<{width}}  {credential}")
    typer.echo(
        f"\ncontrol   {info['control']}/info  /truth  /faults  /mutate  /reset  /typeform/deliver"
    )
    typer.echo("Press Ctrl-C to stop.")


def sandbox(
    host: Annotated[
        str, typer.Option(help="Interface to bind. Keep it on loopback.")
    ] = "127.0.0.1",
    port: Annotated[
        int, typer.Option(help="Port to listen on (0 picks a free one).", min=0, max=65535)
    ] = 8765,
    customers: Annotated[
        int,
        typer.Option(
            help="Number of real people in the world (1 to 1,000,000).", min=1, max=1_000_000
        ),
    ] = 3000,
    seed: Annotated[
        int, typer.Option(help="World seed: the same seed always gives the same data.")
    ] = 7,
    rate_limits: Annotated[
        bool,
        typer.Option(
            "--rate-limits/--no-rate-limits", help="Enforce each vendor's published rate limits."
        ),
    ] = True,
) -> None:
    """Serve the vendor sandbox until Ctrl-C."""
    from connectors.sandbox import SandboxConfig
    from connectors.sandbox.server import serve_forever

    config = SandboxConfig(seed=seed, customers=customers, enforce_rate_limits=rate_limits)
    try:
        serve_forever(config, host=host, port=port, on_ready=_render)
    except OSError as exc:
        message = f"cannot listen on {host}:{port}: {exc.strerror or exc} (pick another --port)"
        typer.secho(message, fg="red", err=True)
        raise typer.Exit(2) from None
    typer.echo("sandbox stopped")


def register(app: typer.Typer) -> None:
    """Add the ``sandbox`` command to the CLI."""
    app.command("sandbox", help=_HELP, no_args_is_help=False)(sandbox)
