"""`crm-hub serve --workers N`: the parent accepts, each worker gets its share of connections."""

from __future__ import annotations

import os
import select
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import httpx
import psutil

from crm_hub.api.workers import SETTLE_SECONDS
from tests.live_server import free_port, wait_healthy


def _project(tmp_path: Path) -> Path:
    (tmp_path / "hub.yaml").write_text(f"store: sqlite:///{tmp_path / 'hub.db'}\n")
    return tmp_path


def _workers(server: psutil.Process, count: int) -> list[psutil.Process]:
    """The server's ``count`` worker processes (spawned; not multiprocessing's helpers)."""
    deadline = time.monotonic() + 60
    while True:
        workers = [c for c in server.children() if _is_worker(c)]
        if len(workers) == count:
            return workers
        assert time.monotonic() < deadline, f"{len(workers)} of {count} workers"
        time.sleep(0.1)


def _is_worker(process: psutil.Process) -> bool:
    try:
        return "spawn_main" in " ".join(process.cmdline())
    except psutil.Error:  # gone, or a zombie not yet reaped
        return False


def _holder(workers: list[psutil.Process], client: socket.socket) -> int | None:
    """The pid of the worker holding ``client``'s connection."""
    address = client.getsockname()
    for worker in workers:
        if any(c.raddr and tuple(c.raddr) == address for c in worker.net_connections("tcp")):
            return worker.pid
    return None


def _both_ready(port: int, workers: list[psutil.Process]) -> None:
    """Wait until both workers take connections: two held at once land on different ones."""
    deadline = time.monotonic() + 60
    while True:
        pair = [socket.create_connection(("127.0.0.1", port)) for _ in range(2)]
        for client in pair:  # answered: handed to a worker
            client.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            assert client.recv(4096).startswith(b"HTTP/1.1 200")
        holders = {_holder(workers, client) for client in pair}
        for client in pair:
            client.close()
        if len(holders) == 2:
            return
        assert time.monotonic() < deadline, "one worker never took a connection"
        time.sleep(0.2)


def _burst(port: int, count: int) -> list[socket.socket]:
    """``count`` connections opened at once, as clients starting together open them: the
    kernel completes them all before any worker accepts one."""
    clients = []
    for _ in range(count):
        client = socket.socket()
        client.setblocking(False)
        client.connect_ex(("127.0.0.1", port))
        clients.append(client)
    for client in clients:
        select.select([], [client], [], 10)
        client.setblocking(True)
    return clients


def _serve(project: Path, port: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "crm_hub.cli", "serve", "--port", str(port), "--workers", "2"],
        cwd=project, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def _stop(server: subprocess.Popen[str]) -> str:
    server.send_signal(signal.SIGTERM)
    _, err = server.communicate(timeout=60)
    return err


def test_a_burst_of_keep_alive_connections_is_shared_between_the_workers(tmp_path: Path) -> None:
    port = free_port()
    server = _serve(_project(tmp_path), port)
    try:
        wait_healthy(f"http://127.0.0.1:{port}", server, "crm-hub serve --workers 2")
        workers = _workers(psutil.Process(server.pid), 2)
        _both_ready(port, workers)
        time.sleep(0.5)  # the probes' closes reach the workers' counts
        clients = _burst(port, 60)
        for client in clients:  # every connection answered: every one accepted by a worker
            client.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        for client in clients:
            assert client.recv(4096).startswith(b"HTTP/1.1 200")
        held = Counter(
            worker.pid for worker in workers for c in worker.net_connections("tcp")
            if c.laddr.port == port and c.status == psutil.CONN_ESTABLISHED
        )  # fmt: skip
        # One shared socket gave a burst to whichever worker woke first (44 of 50 measured), a
        # socket per worker left it to a hash (22/28 often); the parent shares it out evenly
        # (a probe's close not yet counted: one either way).
        assert sum(held.values()) == 60, held
        assert abs(held[workers[0].pid] - held[workers[1].pid]) <= 2, held
        for client in clients:
            client.close()
    finally:
        err = _stop(server)
    assert server.returncode == 0, err


def test_serve_refuses_a_port_another_server_listens_on(tmp_path: Path) -> None:
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "crm_hub.cli", "serve", "--port", str(port), "--workers", "2"],
            cwd=_project(tmp_path), capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr


def _run_workers(project: Path, port: int, settle: float) -> subprocess.Popen[str]:
    """``run_workers`` in a process of its own, with a shorter settling time."""
    script = (
        "import crm_hub.api.workers as w\n"
        f"w.SETTLE_SECONDS = {settle}\n"
        f"w.run_workers('127.0.0.1', {port}, 2, {{'log_level': 'warning'}})\n"
    )
    return subprocess.Popen(
        [sys.executable, "-c", script], cwd=project, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
        env={**os.environ, "CRM_HUB_CONFIG": str(project / "hub.yaml")},
    )  # fmt: skip


def test_a_worker_that_dies_is_replaced_and_all_stop_on_sigterm(tmp_path: Path) -> None:
    assert SETTLE_SECONDS > 1  # the test's shorter settling time is what it relies on
    port = free_port()
    server = _run_workers(_project(tmp_path), port, settle=1.0)
    parent = psutil.Process(server.pid)
    try:
        wait_healthy(f"http://127.0.0.1:{port}", server, "run_workers")
        first = _workers(parent, 2)
        time.sleep(1.2)
        first[0].kill()
        deadline = time.monotonic() + 60
        while {w.pid for w in _workers(parent, 2)} == {w.pid for w in first}:
            assert time.monotonic() < deadline, "the dead worker was not replaced"
            time.sleep(0.2)
        now = _workers(parent, 2)
        assert first[1].pid in {w.pid for w in now} and first[0].pid not in {w.pid for w in now}
        assert httpx.get(f"http://127.0.0.1:{port}/health", timeout=5).status_code == 200
    finally:
        err = _stop(server)
    assert server.returncode == 0, err
    assert "died (exit code -9); starting another" in err
    gone, alive = psutil.wait_procs(now, timeout=15)
    assert not [p for p in alive if p.status() != psutil.STATUS_ZOMBIE]


def test_a_worker_that_cannot_start_stops_the_server_with_its_error(tmp_path: Path) -> None:
    (tmp_path / "hub.yaml").write_text("store: [not, a, url\n")  # the workers' config is broken
    server = _run_workers(tmp_path, free_port(), settle=SETTLE_SECONDS)
    _, err = server.communicate(timeout=120)
    assert server.returncode != 0
    assert "stopped while starting" in err and "hub.yaml" in err


def test_workers_stop_when_their_parent_is_killed(tmp_path: Path) -> None:
    port = free_port()
    server = _run_workers(_project(tmp_path), port, settle=1.0)
    wait_healthy(f"http://127.0.0.1:{port}", server, "run_workers")
    workers = _workers(psutil.Process(server.pid), 2)
    server.kill()  # no SIGTERM for the workers: they see their connection inbox close
    server.communicate(timeout=30)
    _, alive = psutil.wait_procs(workers, timeout=30)
    assert not [p for p in alive if p.status() != psutil.STATUS_ZOMBIE], alive
