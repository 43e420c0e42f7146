"""The read API as an ASGI app factory, for uvicorn worker processes (``crm-hub serve --workers``).

``crm-hub serve --workers N`` starts N processes, each calling :func:`app_from_config`; a
deployment that runs uvicorn itself does the same::

    CRM_HUB_CONFIG=/srv/crm/hub.yaml uvicorn --factory crm_hub.api.asgi:app_from_config \\
        --workers 2 --http crm_hub.api.nodelay_httptools:NoDelayHttpToolsProtocol \\
        --host 127.0.0.1 --port 8000 --no-access-log

The ``--http`` protocol matters with ``--workers``: a worker rebuilds the listening socket from
its file descriptor, Python then sees its protocol as 0 rather than TCP and asyncio skips
``TCP_NODELAY``; uvicorn writes a response's head and body in two sends, so on a keep-alive
connection the body waits for the client's delayed ACK (40 ms per request on Linux). The
httptools parser (C) costs a fraction of h11's (pure Python) per request;
:func:`http_protocol` picks it when installed, as uvicorn's own ``--http auto`` does.

Each worker loads hub.yaml and opens its own store connection pool, exactly as ``crm-hub
serve`` does; the app keeps no state between requests, so workers need nothing shared but the
store.
"""

from __future__ import annotations

import asyncio
import gc
import importlib.util
import socket

from fastapi import FastAPI
from uvicorn.protocols.http.h11_impl import H11Protocol

__all__ = ["NoDelayH11Protocol", "app_from_config", "http_protocol"]


def _no_delay(transport: asyncio.Transport) -> None:
    """Turn Nagle's algorithm off on a TCP connection."""
    sock = transport.get_extra_info("socket")
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class NoDelayH11Protocol(H11Protocol):
    """uvicorn's h11 HTTP/1.1 protocol with ``TCP_NODELAY`` set on every connection."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Turn Nagle's algorithm off, then serve the connection as uvicorn does."""
        _no_delay(transport)
        super().connection_made(transport)


def http_protocol() -> str:
    """uvicorn's ``--http`` value: the httptools protocol when installed, else h11's."""
    if importlib.util.find_spec("httptools") is not None:
        return "crm_hub.api.nodelay_httptools:NoDelayHttpToolsProtocol"
    return "crm_hub.api.asgi:NoDelayH11Protocol"


def app_from_config() -> FastAPI:
    """The app ``crm-hub serve`` would build, from ``$CRM_HUB_CONFIG`` (default ./hub.yaml)."""
    from crm_hub.cli.common import load
    from crm_hub.cli.serve import build_app
    from crm_hub.logging import configure_logging
    from crm_hub.settings import get_settings

    settings = get_settings()
    configure_logging(settings.log.level, settings.log.json_lines)
    app = build_app(*load(None))
    settle_collector()
    return app


def settle_collector() -> None:
    """Once the app is built: what the worker has loaded so far lives as long as it does, so it
    is kept out of the collector's full passes, which walked every module, table and model at
    each one (the slowest requests under load went from 170 ms to 40-50 ms). Young collections
    come every 20,000 allocations instead of 700: a request's objects die by reference count,
    and in benchmarks/api.py the slowest request was 30-37 ms (two runs), against 44-56 ms
    (three runs without)."""
    gc.freeze()
    gc.set_threshold(20_000, 20, 20)
