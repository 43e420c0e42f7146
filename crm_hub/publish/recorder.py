"""The recorder: a small process that runs a Singer target for a push and writes what the target
says into the store, so that a killed hub loses nothing (see :mod:`singer_target`).

``python -m crm_hub.publish.recorder --destination D --run-id R --workdir W -- TARGET ARGS``
(``--heartbeat-seconds S`` sets how often it beats; tests use a short one)

The hub starts it in its own session with the hub's pipe as standard input; the target inherits
that input, so it reads the hub's messages directly and sees end-of-input when the hub ends or
dies. The recorder reads the target's stdout line by line into ``publish_target_output``
(committed as lines arrive, so every state line is in the store before the next is read) and
keeps the end of its stderr for ``publish_target_runs``, whose ``heartbeat_at`` it sets every
few seconds until the target's end is recorded (a hub on another host cannot see this process:
the beats tell it that it lives). When the target exits it records the exit code, deletes the
private folder ``W`` (the target's config, with secrets, and our targets' rejections file, whose
reasons are also on stdout) and exits. The store URL comes in the environment variable
``CRM_HUB_RECORDER_STORE`` (never on a command line), removed before the target starts. It
imports the store and little else: it starts for every push, and the target waits for it.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import queue
import shutil
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any

import orjson
from sqlalchemy import update
from sqlalchemy.exc import SQLAlchemyError

from crm_hub.errors import StoreError
from crm_hub.publish.inflight import HEARTBEAT_SECONDS, STORE_ENV, beat, register
from crm_hub.store.engine import Store, open_store
from crm_hub.store.runs import utcnow
from crm_hub.store.schema import publish_target_output, publish_target_runs

__all__ = ["main"]

_STDERR_LINES = 200
_SECRET_WORDS = ("key", "token", "secret", "password")


def _pump(stream: IO[bytes], kind: str, into: queue.Queue[tuple[str, bytes] | None]) -> None:
    for raw in iter(stream.readline, b""):
        into.put((kind, raw))
    into.put(None)


class _Heartbeat(threading.Thread):
    """Beats for one run every ``interval`` seconds, from the first moment until stopped."""

    def __init__(self, store: Store, destination: str, run_id: str, interval: float) -> None:
        super().__init__(name="recorder-heartbeat", daemon=True)
        self.store, self.destination, self.run_id = store, destination, run_id
        self.interval = interval
        self.stopped = threading.Event()

    def run(self) -> None:
        while True:
            with contextlib.suppress(SQLAlchemyError, StoreError):  # a missed beat is only late
                beat(self.store, self.destination, self.run_id)
            if self.stopped.wait(self.interval):
                return


class _Recording:
    """Follows one target: stdout lines into the store, the stderr tail in memory."""

    def __init__(self, store: Store, destination: str, run_id: str) -> None:
        self.store, self.destination, self.run_id = store, destination, run_id
        self.seq = 0
        self.stderr: deque[str] = deque(maxlen=_STDERR_LINES)

    def follow(self, proc: subprocess.Popen[bytes]) -> None:
        """Until the target closes stdout and stderr, commit whatever lines have arrived."""
        lines: queue.Queue[tuple[str, bytes] | None] = queue.Queue()
        for stream, kind in ((proc.stdout, "out"), (proc.stderr, "err")):
            assert stream is not None
            threading.Thread(target=_pump, args=(stream, kind, lines), daemon=True).start()
        open_streams = 2
        while open_streams:
            arrived = [lines.get()]
            while not lines.empty():
                arrived.append(lines.get_nowait())
            open_streams -= arrived.count(None)
            self._save([item for item in arrived if item is not None])

    def _save(self, arrived: Iterable[tuple[str, bytes]]) -> None:
        rows = []
        for kind, raw in arrived:
            text = raw.decode("utf-8", errors="replace").rstrip("\r\n")
            if kind == "err":
                self.stderr.append(text)
            elif text.strip():
                self.seq += 1
                rows.append({"destination": self.destination, "run_id": self.run_id,
                             "seq": self.seq, "line": text})  # fmt: skip
        if rows:
            with self.store.begin() as conn:
                conn.execute(publish_target_output.insert(), rows)

    def finish(self, workdir: Path, **outcome: Any) -> None:
        """Record how the target ended (stderr tail without the config's secrets)."""
        tail = _without_secrets("\n".join(self.stderr), workdir / "config.json")
        with self.store.begin() as conn:
            conn.execute(
                update(publish_target_runs)
                .where((publish_target_runs.c.destination == self.destination)
                       & (publish_target_runs.c.run_id == self.run_id))
                .values(finished_at=utcnow(), stderr_tail=tail, **outcome)
            )  # fmt: skip


def _without_secrets(text: str, config_path: Path) -> str:
    try:
        config = orjson.loads(config_path.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return text
    for name, value in config.items() if isinstance(config, dict) else ():
        if isinstance(value, str) and len(value) >= 6 and any(w in name for w in _SECRET_WORDS):
            text = text.replace(value, "***")
    return text


def _run(store: Store, args: argparse.Namespace) -> int:
    workdir = Path(args.workdir)
    register(store, args.destination, args.run_id, workdir, os.getpid())
    heartbeat = _Heartbeat(store, args.destination, args.run_id, args.heartbeat_seconds)
    heartbeat.start()
    try:
        _record(store, args, workdir)
    finally:
        heartbeat.stopped.set()
        heartbeat.join()
    return 0


def _record(store: Store, args: argparse.Namespace, workdir: Path) -> None:
    recording = _Recording(store, args.destination, args.run_id)
    try:
        proc = subprocess.Popen(args.target, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    except OSError as exc:
        recording.finish(workdir, exit_code=127, error=f"cannot start {args.target[0]!r}: {exc}")
        return
    register(store, args.destination, args.run_id, workdir, os.getpid(), target_pid=proc.pid)
    recording.follow(proc)
    recording.finish(workdir, exit_code=proc.wait())


def main(argv: list[str] | None = None) -> int:
    """Run the target named after ``--`` and record it (see the module docstring)."""
    parser = argparse.ArgumentParser(prog="crm_hub.publish.recorder")
    for option in ("--destination", "--run-id", "--workdir"):
        parser.add_argument(option, required=True)
    parser.add_argument("--heartbeat-seconds", type=float, default=HEARTBEAT_SECONDS)
    parser.add_argument("target", nargs="+")
    args = parser.parse_args(argv)
    url = os.environ.pop(STORE_ENV, "")  # the target must not inherit it
    try:
        store = open_store(url, migrate=False)
        try:
            return _run(store, args)
        finally:
            store.dispose()
    finally:
        shutil.rmtree(args.workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
