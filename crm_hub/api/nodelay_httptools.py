"""uvicorn's httptools protocol with ``TCP_NODELAY``, and each response's head sent with its body.

A module of its own: importing it needs httptools, which :func:`~crm_hub.api.asgi.http_protocol`
checks first.
"""

from __future__ import annotations

import asyncio

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from crm_hub.api.asgi import _no_delay

__all__ = ["NoDelayHttpToolsProtocol"]


class NoDelayHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools HTTP/1.1 protocol with ``TCP_NODELAY`` set on every connection, and
    each response written as one segment where it can be (see :class:`HeadWithBody`)."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Turn Nagle's algorithm off, then serve the connection as uvicorn does."""
        _no_delay(transport)
        super().connection_made(transport)

    def on_headers_complete(self) -> None:
        """Start the request's cycle as uvicorn does, writing through a :class:`HeadWithBody`."""
        before = self.cycle
        super().on_headers_complete()
        if self.cycle is not before:  # the same: an upgrade, handed to another protocol
            self.cycle.transport = HeadWithBody(self.transport)  # type: ignore[assignment]


class HeadWithBody:
    """A response's transport that holds its first write (the status line and headers) until
    the next write or the event loop's next turn, whichever comes first.

    uvicorn writes a response's head and body separately; with Nagle's algorithm off, that is
    two send calls and two segments for every small JSON answer, and the client wakes twice.
    Held together they leave in one. A streamed response whose body comes later still gets its
    head on the loop's next turn, so nothing waits longer than the current callback.
    """

    __slots__ = ("_transport", "_held", "_flush")

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport
        self._held: bytes | None = None
        self._flush: asyncio.Handle | None = None

    def write(self, data: bytes) -> None:
        if self._flush is None:  # the first write: hold it
            self._held = bytes(data)
            self._flush = asyncio.get_running_loop().call_soon(self._release)
            return
        if self._held is not None:
            self._flush.cancel()
            data, self._held = self._held + data, None
        self._transport.write(data)

    def _release(self) -> None:
        if self._held is not None:
            held, self._held = self._held, None
            if not self._transport.is_closing():
                self._transport.write(held)

    def close(self) -> None:
        self._release()
        self._transport.close()

    def is_closing(self) -> bool:
        return self._transport.is_closing()
