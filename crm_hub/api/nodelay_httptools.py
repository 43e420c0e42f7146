"""uvicorn's httptools protocol with ``TCP_NODELAY`` (see :mod:`crm_hub.api.asgi`).

A module of its own: importing it needs httptools, which :func:`~crm_hub.api.asgi.http_protocol`
checks first.
"""

from __future__ import annotations

import asyncio

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from crm_hub.api.asgi import _no_delay

__all__ = ["NoDelayHttpToolsProtocol"]


class NoDelayHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools HTTP/1.1 protocol with ``TCP_NODELAY`` set on every connection."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Turn Nagle's algorithm off, then serve the connection as uvicorn does."""
        _no_delay(transport)
        super().connection_made(transport)
