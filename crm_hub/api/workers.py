"""``crm-hub serve --workers N``: N uvicorn processes behind one listening socket that the parent
process holds, each new connection handed to the worker holding the fewest open ones.

uvicorn's own ``--workers`` hands every process the shared listening socket, and a process
accepts every connection waiting when it wakes. A burst of keep-alive clients then lands on
whichever worker woke first: with 50 clients (``benchmarks/api.py``), 44 connections on one
worker and 6 on the other, so most requests queued behind one core while the other idled. A
socket per worker (``SO_REUSEPORT``) leaves the split to a hash of the addresses: 22/28 is a
common draw, and the worker with 28 set the slowest answers.

So the parent accepts, and passes each connection (its file descriptor, over a Unix socket)
to the ready worker with the fewest connections open: 50 clients are served 25 and 25,
whatever the order they connect in. Each worker counts the connections it sees close, so the
parent knows what each still holds. A worker joins the share once its app has loaded.

The parent also checks that the port is free (another server on it is an error, not a silent
share), replaces a worker that dies after it started, and stops them all on Ctrl-C or SIGTERM.
A worker whose parent is gone stops too. Without descriptor passing (Windows) uvicorn's own
supervisor runs instead.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import multiprocessing
import select
import signal
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.context import SpawnProcess
from typing import Any

import uvicorn

from crm_hub.errors import ConfigError, CrmHubError

__all__ = ["APP_FACTORY", "check_port_free", "fd_passing_supported", "listening_socket",
           "run_workers"]  # fmt: skip

APP_FACTORY = "crm_hub.api.asgi:app_from_config"
SETTLE_SECONDS = 10.0  # a worker gone sooner failed to start: stop rather than restart forever
_STOP_SECONDS = 30.0  # a worker's graceful shutdown (open requests finish) before it is killed
_BACKLOG = 2048  # connections the kernel completes before the parent accepts them
_TICK = 0.5  # how often the parent looks at its workers when no connection arrives
_RETRY = 0.02  # how soon it tries again to hand out a connection no worker could take

log = logging.getLogger(__name__)


def fd_passing_supported() -> bool:
    return hasattr(socket, "send_fds") and hasattr(socket, "AF_UNIX")


def listening_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host:port``, not yet listening (IPv6 when ``host`` has a colon)."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def check_port_free(host: str, port: int) -> None:
    """Raise ConfigError when ``host:port`` cannot be bound (in use, or not this machine's)."""
    try:
        listening_socket(host, port).close()
    except OSError as exc:
        raise ConfigError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc} (another server there? "
            "choose another --port, or stop it)"
        ) from exc


@dataclass
class _Worker:
    """A worker process as the parent sees it."""

    process: SpawnProcess
    started: float
    channel: socket.socket  # the parent's end of the Unix socket connections are passed down
    ready: Any  # shared byte: 1 once the worker's app has loaded and it takes connections
    closed: Any  # shared count of the connections the worker has seen close
    sent: int = 0

    def load(self) -> tuple[int, int]:
        """Connections open, then connections ever sent: the fewest first, then in turn."""
        return self.sent - int(self.closed.value), self.sent


def run_workers(host: str, port: int, count: int, options: dict[str, Any]) -> None:
    """Serve on ``host:port`` with ``count`` worker processes until Ctrl-C or SIGTERM.

    ``options`` are ``uvicorn.Config`` keyword arguments (no host, port or app); the caller
    has checked the port (:func:`check_port_free`).
    """
    spawn = multiprocessing.get_context("spawn")

    def start() -> _Worker:
        channel, inbox = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        ready, closed = spawn.RawValue("b", 0), spawn.RawValue("q", 0)
        process = spawn.Process(target=_worker, name="crm-hub-api",
                                args=(host, port, options, inbox, ready, closed))  # fmt: skip
        process.start()
        inbox.close()  # the worker has its copy
        channel.setblocking(False)
        return _Worker(process, time.monotonic(), channel, ready, closed)

    stopping = threading.Event()
    handlers = {sig: signal.signal(sig, lambda *_: stopping.set())
                for sig in (signal.SIGINT, signal.SIGTERM)}  # fmt: skip
    listener = listening_socket(host, port)
    listener.listen(_BACKLOG)
    listener.setblocking(False)
    workers = [start() for _ in range(count)]
    waiting: deque[socket.socket] = deque()
    checked = time.monotonic()
    try:
        while not stopping.is_set():
            timeout = _RETRY if waiting else _TICK
            if select.select([listener], [], [], timeout)[0]:
                waiting.extend(_accept_waiting(listener))
            _hand_out(waiting, workers)
            if time.monotonic() - checked >= _TICK:
                _replace_dead(workers, start)
                checked = time.monotonic()
    finally:
        listener.close()  # the kernel refuses new connections from here on
        for conn in waiting:
            conn.close()
        _stop(workers)
        for sig, handler in handlers.items():
            signal.signal(sig, handler)


def _accept_waiting(listener: socket.socket) -> list[socket.socket]:
    accepted = []
    while True:
        try:
            accepted.append(listener.accept()[0])
        except (BlockingIOError, InterruptedError):
            return accepted
        except OSError as exc:  # e.g. out of file descriptors: keep serving the open ones
            log.warning("could not accept a connection: %s", exc)
            return accepted


def _hand_out(waiting: deque[socket.socket], workers: list[_Worker]) -> None:
    """Pass waiting connections, oldest first, each to the ready worker holding the fewest."""
    while waiting:
        ready = [w for w in workers if w.ready.value]
        if not ready:
            return  # none has loaded yet: the connections wait for one
        worker = min(ready, key=_Worker.load)
        try:
            socket.send_fds(worker.channel, [b"c"], [waiting[0].fileno()])
        except BlockingIOError:
            return  # its queue is full: try again shortly
        except OSError:
            worker.ready.value = 0  # it is gone; _replace_dead starts another
            continue
        waiting.popleft().close()  # the worker holds its own descriptor now
        worker.sent += 1


def _replace_dead(workers: list[_Worker], start: Callable[[], _Worker]) -> None:
    for index, worker in enumerate(workers):
        process = worker.process
        if process.is_alive():
            continue
        if time.monotonic() - worker.started < SETTLE_SECONDS:
            raise CrmHubError(
                f"API worker {process.pid} stopped while starting "
                f"(exit code {process.exitcode}); its error is above"
            )
        log.warning("API worker %s died (exit code %s); starting another",
                    process.pid, process.exitcode)  # fmt: skip
        worker.channel.close()
        workers[index] = start()


def _stop(workers: list[_Worker]) -> None:
    """SIGTERM every worker (uvicorn finishes open requests), then kill what outlives the wait."""
    processes = [worker.process for worker in workers]
    for process in processes:
        if process.is_alive():
            process.terminate()
    deadline = time.monotonic() + _STOP_SECONDS
    for process in processes:
        process.join(max(0.0, deadline - time.monotonic()))
        if process.is_alive():
            process.kill()
            process.join()
    for worker in workers:
        worker.channel.close()


def _worker(
    host: str, port: int, options: dict[str, Any], inbox: socket.socket, ready: Any, closed: Any
) -> None:
    """One worker process: a uvicorn server fed the connections its parent accepts."""
    config = uvicorn.Config(APP_FACTORY, factory=True, host=host, port=port, **options)
    HandedConnectionsServer(config, inbox, ready, closed).run(sockets=[])


class HandedConnectionsServer(uvicorn.Server):
    """A uvicorn server that listens on nothing: it serves the connections passed down
    ``inbox``, and counts those that close in ``closed`` for the parent's share-out."""

    def __init__(self, config: uvicorn.Config, inbox: socket.socket, ready: Any, closed: Any):
        super().__init__(config)
        self.inbox, self.ready = inbox, ready
        self.server_state.connections = _CountedConnections(closed)
        self._closed = closed

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=[])  # the app's lifespan; no listener of its own
        loop = asyncio.get_running_loop()
        protocol = functools.partial(  # as uvicorn's startup makes its protocols
            self.config.http_protocol_class,
            config=self.config,  # type: ignore[call-arg]
            server_state=self.server_state,
            app_state=self.lifespan.state,
        )
        self.inbox.setblocking(False)
        loop.add_reader(self.inbox.fileno(), self._take, loop, protocol)
        self.ready.value = 1

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        self.ready.value = 0
        asyncio.get_running_loop().remove_reader(self.inbox.fileno())
        await super().shutdown(sockets)

    def _take(self, loop: asyncio.AbstractEventLoop, protocol: Any) -> None:
        try:
            _, fds, _, _ = socket.recv_fds(self.inbox, 1, 64)
        except (BlockingIOError, InterruptedError):
            return
        if not fds:  # the parent is gone: finish what is open, then stop
            loop.remove_reader(self.inbox.fileno())
            self.should_exit = True
            return
        for fd in fds:
            loop.create_task(self._connect(loop, protocol, socket.socket(fileno=fd)))

    async def _connect(self, loop: asyncio.AbstractEventLoop, protocol: Any, sock: Any) -> None:
        try:
            await loop.connect_accepted_socket(protocol, sock)
        except OSError as exc:  # closed by the client before it was served
            log.debug("a handed connection could not be served: %s", exc)
            sock.close()
            self._closed.value += 1


class _CountedConnections(set[Any]):
    """uvicorn's set of open connections, counting each one that leaves it in ``closed``."""

    def __init__(self, closed: Any) -> None:
        super().__init__()
        self._closed = closed

    def discard(self, connection: Any) -> None:
        if connection in self:
            super().discard(connection)
            self._closed.value += 1
