"""`crm-hub serve --workers N`: a listening socket per worker, shared out by the kernel."""

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


def _workers_listening(server: psutil.Process, port: int, count: int) -> list[psutil.Process]:
    """The server's worker processes, once ``count`` of them listen on ``port``."""
    deadline = time.monotonic() + 60
    while True:
        listening = [
            child for child in server.children()
            if any(c.laddr.port == port and c.status == psutil.CONN_LISTEN
                   for c in child.net_connections("tcp"))
        ]  # fmt: skip
        if len(listening) == count:
            return listening
        assert time.monotonic() < deadline, f"{len(listening)} of {count} workers listen"
        time.sleep(0.1)


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
        workers = _workers_listening(psutil.Process(server.pid), port, 2)
        clients = _burst(port, 60)
        for client in clients:  # every connection answered: every one accepted by a worker
            client.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        for client in clients:
            assert client.recv(4096).startswith(b"HTTP/1.1 200")
        held = Counter(
            worker.pid for worker in workers for c in worker.net_connections("tcp")
            if c.laddr.port == port and c.status == psutil.CONN_ESTABLISHED
        )  # fmt: skip
        # One shared socket gave a burst to whichever worker woke first (44 of 50 measured);
        # a hash shares 60 out so that fewer than 12 on one side is a one-in-a-million draw.
        assert sum(held.values()) == 60 and min(held[w.pid] for w in workers) >= 12, held
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
        first = _workers_listening(parent, port, 2)
        time.sleep(1.2)
        first[0].kill()
        deadline = time.monotonic() + 60
        while {w.pid for w in _workers_listening(parent, port, 2)} == {w.pid for w in first}:
            assert time.monotonic() < deadline, "the dead worker was not replaced"
            time.sleep(0.2)
        now = _workers_listening(parent, port, 2)
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
