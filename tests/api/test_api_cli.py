"""`crm-hub tokens ...` and `crm-hub serve` as a user runs them: real subprocesses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import psutil
from sqlalchemy import select

from crm_hub.api.tokens import hash_token
from crm_hub.store import open_store
from crm_hub.store.schema import api_tokens
from tests.live_server import free_port, wait_healthy


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "crm_hub.cli", *args], cwd=cwd, capture_output=True, text=True,
        timeout=120, env={**os.environ, "COLUMNS": "200"},
    )  # fmt: skip


def _project(tmp_path: Path) -> Path:
    (tmp_path / "hub.yaml").write_text(f"store: sqlite:///{tmp_path / 'hub.db'}\n")
    return tmp_path


def test_tokens_create_list_revoke(tmp_path: Path) -> None:
    project = _project(tmp_path)
    made = cli("tokens", "create", "--name", "till-north", "--role", "staff", "--branch",
               "north", "--json", cwd=project)  # fmt: skip
    assert made.returncode == 0, made.stderr
    created = json.loads(made.stdout)
    secret = created["token"]
    assert secret.startswith("chub_") and created["branch"] == "north"
    listed = cli("tokens", "list", "--json", cwd=project)
    assert listed.returncode == 0 and secret not in listed.stdout
    assert [t["name"] for t in json.loads(listed.stdout)] == ["till-north"]
    store = open_store(f"sqlite:///{tmp_path / 'hub.db'}")
    with store.read() as conn:
        assert conn.execute(select(api_tokens.c.token_hash)).scalar_one() == hash_token(secret)
    store.dispose()
    revoked = cli("tokens", "revoke", created["id"], cwd=project)
    assert revoked.returncode == 0 and "revoked" in revoked.stdout
    again = cli("tokens", "revoke", created["id"], cwd=project)
    assert again.returncode == 2 and "no live token" in again.stderr


def test_tokens_create_refuses_an_unknown_role(tmp_path: Path) -> None:
    result = cli("tokens", "create", "--name", "x", "--role", "boss", cwd=_project(tmp_path))
    assert result.returncode == 2 and "staff, manager, admin, service" in result.stderr


def _serve(project: Path, *options: str) -> tuple[subprocess.Popen[str], str, str]:
    """``crm-hub serve`` on a free port in ``project``: (process, base URL, a service token)."""
    secret = json.loads(
        cli("tokens", "create", "--name", "svc", "--role", "service", "--json", cwd=project).stdout
    )["token"]
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "crm_hub.cli", "serve", "--port", str(port), *options],
        cwd=project, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    return server, f"http://127.0.0.1:{port}", secret


def test_serve_answers_on_loopback(tmp_path: Path) -> None:
    server, base, secret = _serve(_project(tmp_path))
    try:
        wait_healthy(base, server, "crm-hub serve")
        auth = {"Authorization": f"Bearer {secret}"}
        found = httpx.get(f"{base}/customers", params={"q": "07911 123456"}, headers=auth)
        assert found.status_code == 200 and found.json()["match"] == "phone"
        assert httpx.get(f"{base}/customers", params={"q": "x"}).status_code == 401
    finally:
        server.terminate()
        out, err = server.communicate(timeout=30)
    assert secret not in out + err and "07911" not in out + err


def test_serve_with_two_workers_starts_both_and_answers(tmp_path: Path) -> None:
    server, base, secret = _serve(_project(tmp_path), "--workers", "2")
    try:
        wait_healthy(base, server, "crm-hub serve --workers 2")
        workers = [p for p in psutil.Process(server.pid).children() if p.name().startswith("python")
                   and any("multiprocessing" in part for part in p.cmdline())]  # fmt: skip
        assert len(workers) >= 2  # the two workers (spawn may add its resource tracker)
        auth = {"Authorization": f"Bearer {secret}"}
        with httpx.Client(base_url=base, headers=auth) as client:
            answers = [client.get("/customers", params={"q": "07911 123456"}) for _ in range(8)]
        assert {(a.status_code, a.json()["match"]) for a in answers} == {(200, "phone")}
    finally:
        server.terminate()
        out, err = server.communicate(timeout=30)
    assert "2 workers" in out and secret not in out + err
    # A worker may still be finishing its shutdown when the server has exited; none outlives it.
    _, alive = psutil.wait_procs(workers, timeout=15)
    assert not [p for p in alive if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
