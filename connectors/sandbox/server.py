"""Serving the sandbox over HTTP: in-process (a background thread) or as a subprocess.

In-process::

    with SandboxServer(customers=500, seed=7) as sb:
        auth = {"Authorization": "Bearer sandbox-square-token"}
        httpx.get(f"{sb.url}/square/v2/customers", headers=auth)

As a subprocess (its own interpreter, e.g. for a demo or a connector run in another process)::

    with SandboxProcess(customers=500, seed=7) as proc:
        proc.url

Both bind 127.0.0.1 on a free port unless told otherwise. The server is the standard library's
``ThreadingHTTPServer`` speaking HTTP/1.1 with keep-alive: it starts in milliseconds and needs
nothing installed.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any

from connectors.sandbox.app import Sandbox
from connectors.sandbox.config import SandboxConfig
from connectors.sandbox.control import describe
from connectors.sandbox.routing import Response, json_response

logger = logging.getLogger("connectors.sandbox")
_DISCONNECTS = (BrokenPipeError, ConnectionResetError, ConnectionAbortedError)


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    sandbox: Sandbox

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, _DISCONNECTS):
            logger.debug("sandbox.client_disconnected client=%s", client_address)
            return
        logger.exception("sandbox.connection_error client=%s", client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body are written separately: without TCP_NODELAY, Nagle's algorithm and the
    # client's delayed ACK add ~40 ms to every keep-alive response.
    disable_nagle_algorithm = True
    server: _HTTPServer

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        try:
            response = self.server.sandbox.handle(self.command, self.path, headers, body)
        except Exception:  # a sandbox bug must answer, not hang the client
            logger.exception(
                "sandbox.handler_error method=%s path=%s", self.command, self.path.split("?")[0]
            )
            response = json_response(500, {"error": "sandbox internal error (see the sandbox log)"})
        self._send(response)

    def _send(self, response: Response) -> None:
        self.send_response(response.status)
        for key, value in response.headers:
            self.send_header(key, value)
        if response.stream is not None:
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for chunk in response.stream:
                if chunk:
                    self.wfile.write(f"{len(chunk):X}\r\n".encode() + chunk + b"\r\n")
            self.wfile.write(b"0\r\n\r\n")
            return
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if self.command != "HEAD" and response.body:
            self.wfile.write(response.body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _serve

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (stdlib signature)
        """Silence the default stderr access log: the sandbox logs each request itself."""


class SandboxServer:
    """The sandbox served from a background thread of this process.

    Args:
        config: full configuration (default: ``SandboxConfig()``).
        host: interface to bind (keep it on loopback).
        port: port to bind; 0 picks a free one.
        **overrides: ``SandboxConfig`` fields to change, e.g. ``customers=500, seed=7``.
    """

    def __init__(
        self,
        config: SandboxConfig | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        **overrides: Any,
    ) -> None:
        base = config or SandboxConfig()
        self.config = dataclasses.replace(base, **overrides) if overrides else base
        self.host = host
        self.port = port
        self.sandbox = Sandbox(self.config)
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:54321`` (vendors live under ``/square`` etc.)."""
        if self._httpd is None:
            raise RuntimeError("the sandbox server is not started")
        return self.sandbox.base_url

    def vendor_url(self, vendor: str) -> str:
        """Base URL of one vendor, e.g. ``http://127.0.0.1:54321/square``."""
        return f"{self.url}/{vendor}"

    def start(self) -> SandboxServer:
        """Bind and serve in a daemon thread; returns ``self``."""
        httpd = _HTTPServer((self.host, self.port), _Handler)
        httpd.sandbox = self.sandbox
        host, port = str(httpd.server_address[0]), httpd.server_address[1]
        shown = f"[{host}]" if ":" in host else host
        self.sandbox.bind(f"http://{shown}:{port}")
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"sandbox:{port}",
            daemon=True,
        )
        self._thread.start()
        logger.info(
            "sandbox.started url=%s seed=%s customers=%s",
            self.sandbox.base_url,
            self.config.seed,
            self.config.customers,
        )
        return self

    def stop(self) -> None:
        """Stop serving, wake stalled requests and close the socket."""
        if self._httpd is None:
            return
        self.sandbox.stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        logger.info("sandbox.stopped url=%s", self.sandbox.base_url)
        self._httpd = None

    def info(self) -> dict[str, Any]:
        """URLs, credentials and ids (what ``GET /_sandbox/info`` answers)."""
        return describe(self.sandbox)

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def serve_forever(
    config: SandboxConfig, *, host: str = "127.0.0.1", port: int = 8765, on_ready: Any = None
) -> None:
    """Serve until interrupted (Ctrl-C); ``on_ready(info)`` is called once listening."""
    with SandboxServer(config, host=host, port=port) as server:
        if on_ready is not None:
            on_ready(server.info())
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            logger.info("sandbox.interrupted")


class SandboxProcess:
    """The sandbox in a child Python process (``python -m connectors.sandbox``).

    Args:
        customers: world size.
        seed: world seed.
        host: interface to bind.
        port: port (0: a free one, read back from the child).
        extra_args: more command-line options for the child (e.g. ``["--no-rate-limits"]``).
        startup_timeout: seconds to wait for the child to listen.
    """

    def __init__(
        self,
        *,
        customers: int = 3000,
        seed: int = 7,
        host: str = "127.0.0.1",
        port: int = 0,
        extra_args: tuple[str, ...] = (),
        startup_timeout: float = 60.0,
    ) -> None:
        self.args = [
            "--host",
            host,
            "--port",
            str(port),
            "--customers",
            str(customers),
            "--seed",
            str(seed),
            *extra_args,
        ]
        self.startup_timeout = startup_timeout
        self.url = ""
        self.info: dict[str, Any] = {}
        self._proc: subprocess.Popen[bytes] | None = None
        self._dir: tempfile.TemporaryDirectory[str] | None = None

    def start(self) -> SandboxProcess:
        """Start the child and wait until it listens."""
        self._dir = tempfile.TemporaryDirectory(prefix="crm-hub-sandbox-")
        ready = Path(self._dir.name) / "ready.json"
        log = open(Path(self._dir.name) / "stderr.log", "wb")  # noqa: SIM115 (kept open for the child)
        cmd = [sys.executable, "-m", "connectors.sandbox", *self.args, "--ready-file", str(ready)]
        self._proc = subprocess.Popen(
            cmd, stdout=subprocess.DEVNULL, stderr=log, env=dict(os.environ)
        )
        log.close()
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if ready.exists() and ready.stat().st_size:
                self.info = json.loads(ready.read_text("utf-8"))
                self.url = self.info["base_url"]
                return self
            if self._proc.poll() is not None:
                break
            time.sleep(0.05)
        errors = (Path(self._dir.name) / "stderr.log").read_text("utf-8", "replace")[-2000:]
        self.stop()
        raise RuntimeError(f"sandbox process did not start: {errors or 'timed out'}")

    def stop(self) -> None:
        """Terminate the child (SIGTERM, then SIGKILL after 5 s) and clean up."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(timeout=5)
        self._proc = None
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None

    def __enter__(self) -> SandboxProcess:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
