"""``crm-hub serve --workers N``: N uvicorn processes, each listening on a socket of its own
bound to the one port (``SO_REUSEPORT``), so the kernel shares connections out between them.

uvicorn's own ``--workers`` hands every process one shared listening socket, and a process
accepts every connection waiting when it wakes. A burst of keep-alive clients then lands on
whichever worker woke first: with 50 clients (``benchmarks/api.py``), 44 connections on one
worker and 6 on the other, so most requests queued behind one core while the other idled
(p99 2.5 times the median). With a socket per worker the kernel spreads new connections across
the sockets by a hash of their addresses, whatever each process is doing when they arrive.

The parent listens on nothing: it checks that the port is free (another server on it is an
error, not a silent share), starts the workers, replaces one that dies after it started, and
stops them all on Ctrl-C or SIGTERM. Without ``SO_REUSEPORT`` (Windows) uvicorn's own
supervisor runs instead.
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
import socket
import threading
import time
from multiprocessing.context import SpawnProcess
from typing import Any

from crm_hub.errors import ConfigError, CrmHubError

__all__ = ["APP_FACTORY", "check_port_free", "listening_socket", "reuse_port_supported",
           "run_workers"]  # fmt: skip

APP_FACTORY = "crm_hub.api.asgi:app_from_config"
SETTLE_SECONDS = 10.0  # a worker gone sooner failed to start: stop rather than restart forever
_STOP_SECONDS = 30.0  # a worker's graceful shutdown (open requests finish) before it is killed

log = logging.getLogger(__name__)


def reuse_port_supported() -> bool:
    return hasattr(socket, "SO_REUSEPORT")


def listening_socket(host: str, port: int, *, reuse_port: bool) -> socket.socket:
    """A TCP socket bound to ``host:port``, not yet listening (IPv6 when ``host`` has a colon)."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def check_port_free(host: str, port: int) -> None:
    """Raise ConfigError when ``host:port`` cannot be bound (in use, or not this machine's)."""
    try:
        listening_socket(host, port, reuse_port=False).close()
    except OSError as exc:
        raise ConfigError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc} (another server there? "
            "choose another --port, or stop it)"
        ) from exc


def run_workers(host: str, port: int, count: int, options: dict[str, Any]) -> None:
    """Serve on ``host:port`` with ``count`` worker processes until Ctrl-C or SIGTERM.

    ``options`` are ``uvicorn.Config`` keyword arguments (no host, port or app); the caller
    has checked the port (:func:`check_port_free`).
    """
    spawn = multiprocessing.get_context("spawn")

    def start() -> tuple[SpawnProcess, float]:
        process = spawn.Process(target=_worker, args=(host, port, options), name="crm-hub-api")
        process.start()
        return process, time.monotonic()

    stopping = threading.Event()
    handlers = {sig: signal.signal(sig, lambda *_: stopping.set())
                for sig in (signal.SIGINT, signal.SIGTERM)}  # fmt: skip
    workers = [start() for _ in range(count)]
    try:
        while not stopping.wait(0.5):
            for index, (process, started) in enumerate(workers):
                if process.is_alive():
                    continue
                if time.monotonic() - started < SETTLE_SECONDS:
                    raise CrmHubError(
                        f"API worker {process.pid} stopped while starting "
                        f"(exit code {process.exitcode}); its error is above"
                    )
                log.warning("API worker %s died (exit code %s); starting another",
                            process.pid, process.exitcode)  # fmt: skip
                workers[index] = start()
    finally:
        _stop([process for process, _ in workers])
        for sig, handler in handlers.items():
            signal.signal(sig, handler)


def _stop(processes: list[SpawnProcess]) -> None:
    """SIGTERM every worker (uvicorn finishes open requests), then kill what outlives the wait."""
    for process in processes:
        if process.is_alive():
            process.terminate()
    deadline = time.monotonic() + _STOP_SECONDS
    for process in processes:
        process.join(max(0.0, deadline - time.monotonic()))
        if process.is_alive():
            process.kill()
            process.join()


def _worker(host: str, port: int, options: dict[str, Any]) -> None:
    """One worker process: its own listening socket in the port's group, one uvicorn server."""
    import uvicorn

    config = uvicorn.Config(APP_FACTORY, factory=True, host=host, port=port, **options)
    # Bound, not listening: the socket joins the port's group when the server listens on it,
    # after the app has loaded, so no connection waits on a worker that is still starting.
    sock = listening_socket(host, port, reuse_port=True)
    uvicorn.Server(config).run(sockets=[sock])
