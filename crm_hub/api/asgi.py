"""The read API as an ASGI app factory, for running it under uvicorn with several workers.

``crm-hub serve`` runs one process. A deployment that wants every core runs uvicorn itself,
which starts each worker process by calling this factory::

    CRM_HUB_CONFIG=/srv/crm/hub.yaml uvicorn --factory crm_hub.api.asgi:app_from_config \\
        --workers 2 --http crm_hub.api.asgi:NoDelayH11Protocol \\
        --host 127.0.0.1 --port 8000 --no-access-log

``--http crm_hub.api.asgi:NoDelayH11Protocol`` matters with ``--workers``: a worker rebuilds the
listening socket from its file descriptor, Python then sees its protocol as 0 rather than TCP and
asyncio skips ``TCP_NODELAY``; uvicorn writes a response's head and body in two sends, so on a
keep-alive connection the body waits for the client's delayed ACK (40 ms per request on Linux).

Each worker loads hub.yaml and opens its own store connection pool, exactly as ``crm-hub
serve`` does; the app keeps no state between requests, so workers need nothing shared but the
store.
"""

from __future__ import annotations

import asyncio
import socket

from fastapi import FastAPI
from uvicorn.protocols.http.h11_impl import H11Protocol

from crm_hub.api.app import create_app

__all__ = ["NoDelayH11Protocol", "app_from_config"]


class NoDelayH11Protocol(H11Protocol):
    """uvicorn's HTTP/1.1 protocol with ``TCP_NODELAY`` set on every connection."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Turn Nagle's algorithm off, then serve the connection as uvicorn does."""
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().connection_made(transport)


def app_from_config() -> FastAPI:
    """The app ``crm-hub serve`` would build, from ``$CRM_HUB_CONFIG`` (default ./hub.yaml)."""
    from crm_hub.cli.common import load
    from crm_hub.cli.serve import phone_regions
    from crm_hub.logging import configure_logging
    from crm_hub.settings import get_settings

    settings = get_settings()
    configure_logging(settings.log.level, settings.log.json_lines)
    hub, store = load(None)
    return create_app(
        store,
        phone_regions=phone_regions(hub),
        default_page_size=settings.api.default_page_size,
        max_page_size=settings.api.max_page_size,
        sources=hub.sources,
    )
