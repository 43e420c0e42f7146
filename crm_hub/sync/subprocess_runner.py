"""Run a connector (an Airbyte source, a Singer tap) as a child process and read its stdout.

What this module guarantees, whatever the connector does:

- stdout is read line by line; no output for ``idle_seconds`` or a run longer than
  ``max_seconds`` kills the connector (:class:`RetryableSourceError`);
- stderr is drained on a thread into a ring buffer of its last lines (so a chatty connector never
  blocks on a full pipe) and each line is handed to a callback (Singer logs go there);
- the connector runs in its own process group, killed as a whole on timeout, on an error in the
  reading code, or when the reader stops early; the child is always reaped (no zombie); on Linux
  the kernel also kills it if the hub itself dies (``kill -9`` of ``crm-hub sync``);
- errors name the source and carry the redacted tail of stderr.

Config, catalog and state files go to a private temporary folder (0700, files 0600) removed
afterwards: see :func:`private_dir` and :func:`write_private_json`.
"""

from __future__ import annotations

import collections
import contextlib
import ctypes
import os
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType
from typing import IO, Any, TypeVar

import orjson

from crm_hub.errors import ConfigError, CrmHubError, RetryableSourceError
from crm_hub.logging import redact

__all__ = [
    "ConnectorProcess",
    "private_dir",
    "resolve_command",
    "write_private_json",
]

_CHUNK = 1 << 16
_MESSAGE_TAIL = 8  # stderr lines quoted in an error message (more go to ``detail``)
_PR_SET_PDEATHSIG = 1
E = TypeVar("E", bound=CrmHubError)


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Ask Linux to SIGKILL the connector when the hub process dies."""
    if _LIBC is not None:
        _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def _load_libc() -> Any:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None


_LIBC = _load_libc()


@contextlib.contextmanager
def private_dir(prefix: str) -> Iterator[Path]:
    """A temporary folder only this user can read (0700), removed afterwards."""
    path = Path(tempfile.mkdtemp(prefix=prefix))  # mkdtemp creates it 0700
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def write_private_json(folder: Path, name: str, data: Any) -> Path:
    """Write ``data`` as JSON to ``folder/name`` with mode 0600 (it may hold secrets)."""
    path = folder / name
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(orjson.dumps(data))
    return path


def resolve_command(label: str, command: list[str], base_dir: Path) -> list[str]:
    """The command with its executable found: a path with ``/`` is taken relative to the folder
    of hub.yaml, a bare name is looked up on ``PATH``.

    Raises:
        ConfigError: the executable does not exist or is not executable.
    """
    program = command[0]
    if "/" in program:
        path = Path(program).expanduser()
        path = path if path.is_absolute() else base_dir / path
        found = str(path) if os.access(path, os.X_OK) and path.is_file() else None
        looked = str(path)
    else:
        found = shutil.which(program)
        looked = "PATH"
    if found is None:
        raise ConfigError(
            f"{label}: command {program!r} not found or not executable (looked in {looked}); "
            "install the connector or fix `command:` in hub.yaml"
        )
    return [found, *command[1:]]


class ConnectorProcess:
    """One run of a connector; use as a context manager and iterate :meth:`lines`.

    Args:
        label: names the connector in messages, e.g. ``source faker``.
        argv: the command line (executable already resolved).
        idle_seconds: kill the connector when it writes nothing to stdout for this long.
        max_seconds: kill the connector when it runs longer than this.
        on_stderr: called with each stderr line (decoded, without the newline), on a thread.
        keep_lines: how many stderr lines the ring buffer keeps for error messages.
        cwd: working folder of the connector.
    """

    def __init__(
        self,
        label: str,
        argv: list[str],
        *,
        idle_seconds: float | None = None,
        max_seconds: float | None = None,
        on_stderr: Callable[[str], None] | None = None,
        keep_lines: int = 40,
        cwd: Path | None = None,
    ) -> None:
        self.label, self.argv, self.cwd = label, argv, cwd
        self.idle_seconds, self.max_seconds = idle_seconds, max_seconds
        self.on_stderr = on_stderr
        self.stderr_lines: collections.deque[str] = collections.deque(maxlen=keep_lines)
        self.returncode: int | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._stderr_thread: threading.Thread | None = None
        self._started = 0.0

    def __enter__(self) -> ConnectorProcess:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def start(self) -> None:
        """Start the connector in a new process group.

        Raises:
            ConfigError: the executable cannot be started.
        """
        try:
            self._proc = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                cwd=self.cwd,
                start_new_session=True,
                preexec_fn=_die_with_parent if _LIBC is not None else None,
            )
        except OSError as exc:
            raise ConfigError(
                f"{self.label}: cannot start {self.argv[0]!r}: {exc.strerror or exc}; "
                "fix `command:` in hub.yaml"
            ) from None
        self._started = time.monotonic()
        assert self._proc.stderr is not None
        self._stderr_thread = threading.Thread(
            target=self._drain_stderr,
            args=(self._proc.stderr,),
            name=f"stderr:{self.label}",
            daemon=True,
        )
        self._stderr_thread.start()

    def _drain_stderr(self, pipe: IO[bytes]) -> None:
        for raw in iter(pipe.readline, b""):
            line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
            if not line:
                continue
            self.stderr_lines.append(line)
            if self.on_stderr is not None:
                with contextlib.suppress(Exception):  # a logging problem must not stop draining
                    self.on_stderr(line)

    def lines(self) -> Iterator[bytes]:
        """Stdout, one line at a time (without the newline), until the connector closes it.

        Raises:
            RetryableSourceError: the connector was silent or ran too long, and was killed.
        """
        proc = self._proc
        assert proc is not None and proc.stdout is not None, "start() first"
        fd = proc.stdout.fileno()
        os.set_blocking(fd, False)
        pending: list[bytes] = []
        last_output = time.monotonic()
        with selectors.DefaultSelector() as selector:
            selector.register(fd, selectors.EVENT_READ)
            while True:
                if not selector.select(self._wait_budget(last_output)):
                    left = self._wait_budget(last_output)
                    if left is not None and left <= 0:
                        self._timeout(last_output)
                    continue
                try:
                    chunk = os.read(fd, _CHUNK)
                except BlockingIOError:
                    continue
                if not chunk:
                    break
                last_output = time.monotonic()
                if b"\n" not in chunk:
                    pending.append(chunk)
                    continue
                if pending:
                    pending.append(chunk)
                    chunk = b"".join(pending)
                    pending.clear()
                *complete, rest = chunk.split(b"\n")
                if rest:
                    pending.append(rest)
                yield from complete
        if pending:
            yield b"".join(pending)

    def _wait_budget(self, last_output: float) -> float | None:
        now = time.monotonic()
        budgets = []
        if self.idle_seconds is not None:
            budgets.append(last_output + self.idle_seconds - now)
        if self.max_seconds is not None:
            budgets.append(self._started + self.max_seconds - now)
        return max(0.0, min(budgets)) if budgets else None

    def _timeout(self, last_output: float) -> None:
        self.kill()
        now = time.monotonic()
        if self.max_seconds is not None and now - self._started >= self.max_seconds:
            why = (
                f"ran longer than max_seconds={self.max_seconds:g} and was killed; "
                "the next sync resumes from the last saved state (raise max_seconds in hub.yaml)"
            )
        else:
            why = (
                f"wrote nothing for {now - last_output:.0f} s (timeout_seconds="
                f"{self.idle_seconds:g}) and was killed as hung; raise timeout_seconds in "
                "hub.yaml if it is just slow"
            )
        raise self.error(RetryableSourceError, f"connector {why}")

    def wait(self) -> int:
        """Wait for the connector to exit after it closed stdout; returns its exit code.

        A connector that closes stdout but does not exit within ``idle_seconds`` is killed.
        """
        proc = self._proc
        assert proc is not None
        try:
            self.returncode = proc.wait(timeout=self.idle_seconds)
        except subprocess.TimeoutExpired:
            self.kill()
            self.returncode = proc.wait()
        self._join_stderr()
        return self.returncode

    def kill(self) -> None:
        """Kill the connector's whole process group (before it is reaped: no pid reuse race)."""
        proc = self._proc
        if proc is None or proc.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        self.returncode = proc.returncode
        self._join_stderr()

    def close(self) -> None:
        """Kill the connector if it still runs, reap it, close the pipes (idempotent)."""
        proc = self._proc
        if proc is None:
            return
        self.kill()
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()

    def _join_stderr(self) -> None:
        if self._stderr_thread is not None:
            self._stderr_thread.join(timeout=5)

    def stderr_tail(self, lines: int = _MESSAGE_TAIL) -> str:
        """The last stderr lines, redacted, joined with `` | ``."""
        tail = list(self.stderr_lines)[-lines:]
        return redact(" | ".join(line.strip() for line in tail))

    def error(self, kind: type[E], what: str, extra: str = "") -> E:
        """An error of class ``kind``: ``<label>: <what><extra>; last stderr lines: ...``."""
        tail = self.stderr_tail()
        message = f"{self.label}: {what}{extra}"
        if tail:
            message += f"; last stderr lines: {tail}"
        detail = redact("\n".join(self.stderr_lines)) or None
        return kind(message, detail=detail)

    def exit_error(self, extra: str = "") -> RetryableSourceError:
        """The error for a non-zero exit: retryable (the next sync resumes from saved state)."""
        code = self.returncode
        what = (
            f"connector was killed by signal {-code}"
            if code is not None and code < 0
            else f"connector exited with code {code}"
        )
        return self.error(RetryableSourceError, what, extra)
