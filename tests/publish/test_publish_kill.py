"""SIGKILL `crm-hub publish` part-way through a push; the next push resends nothing that landed
and loses nothing (checked against the sandbox's own request log), on both backends, with the
store as the only state left between the two and no secret left on disk."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from publish_helpers import hub_config, in_flight_rows, put, states
from sqlalchemy import select
from test_publish_sandbox import member, member_puts

from connectors.sandbox import SandboxServer
from crm_hub.config import HubConfig
from crm_hub.publish import publish
from crm_hub.publish.inflight import register
from crm_hub.store import Store
from crm_hub.store.runs import new_run_id
from crm_hub.store.schema import publish_target_runs
from tests.publish.conftest import mailchimp_yaml

PEOPLE = 120
API_KEY = b"sandbox-mailchimp-key-us21"  # in mailchimp_yaml: must reach no file but hub.yaml


@pytest.fixture
def private_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The temp folder of this process and the hubs it starts (the recorder's folder goes there)."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    monkeypatch.setenv("TMPDIR", str(folder))
    return folder


def push_in_background(store: Store, tmp_path: Path, landed: int) -> subprocess.Popen[bytes]:
    """`crm-hub publish news` in its own process, once ``landed`` people are confirmed."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "crm_hub.cli", "publish", "news", "--config",
         str(tmp_path / "hub.yaml")],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=tmp_path,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while len(states(store, "news")) < landed:
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        assert time.monotonic() < deadline, "the push never got going"
        time.sleep(0.02)
    return proc


def wait_ended(proc: subprocess.Popen[bytes]) -> None:
    proc.wait()
    assert proc.stderr is not None
    proc.stderr.close()


def people_to_push(
    store: Store, sandbox: SandboxServer, tmp_path: Path, store_url: str
) -> HubConfig:
    """PEOPLE people and a mailchimp destination slow enough to be caught half-way."""
    for i in range(PEOPLE):
        put(store, f"m_{i:04d}", email=f"kill{i}@example.com", first_name=f"K{i}")
    extra = "    batch_size: 5\n    rate_limit: 40\n"
    return hub_config(tmp_path, store_url, mailchimp_yaml(sandbox, extra=extra))


def test_kill_mid_push_then_resume_resends_none_and_loses_none(
    store: Store, store_url: str, sandbox: SandboxServer, tmp_path: Path, private_tmp: Path
) -> None:
    hub = people_to_push(store, sandbox, tmp_path, store_url)
    proc = push_in_background(store, tmp_path, landed=20)
    [workdir] = private_tmp.iterdir()  # the recorder's folder: the target's config is there
    assert workdir.stat().st_mode & 0o777 == 0o700
    assert (workdir / "config.json").stat().st_mode & 0o777 == 0o600
    os.kill(proc.pid, signal.SIGKILL)
    wait_ended(proc)
    landed_before = len(states(store, "news"))
    assert landed_before < PEOPLE  # really killed part-way
    assert in_flight_rows(store) > 0  # what the resume needs is in the store

    [resumed] = publish(store, hub)

    puts = member_puts(sandbox)
    assert len(puts) == len(set(puts)), "a member was sent twice"  # re-sent 0
    assert len(puts) == PEOPLE  # lost 0
    assert len(states(store, "news")) == PEOPLE
    assert resumed.status == "succeeded"
    assert landed_before + resumed.recovered + resumed.confirmed == PEOPLE
    assert member(sandbox, f"kill{PEOPLE - 1}@example.com")["merge_fields"]["FNAME"] == "K119"
    assert in_flight_rows(store) == 0
    assert not (tmp_path / ".crm-hub").exists()  # the store is the only state
    assert list(private_tmp.iterdir()) == []  # the config with the API key is gone
    files = [p for p in tmp_path.rglob("*") if p.is_file() and p.name != "hub.yaml"]
    assert [p for p in files if API_KEY in p.read_bytes()] == []
    [again] = publish(store, hub)
    assert again.sent == 0


def test_a_killed_recorder_loses_nothing_and_leaves_no_secret(
    store: Store, store_url: str, sandbox: SandboxServer, tmp_path: Path, private_tmp: Path
) -> None:
    """Without its recorder the target dies at its next state line; what it had confirmed by
    then is in the store, the rest is sent again (every write is an upsert), none is lost."""
    hub = people_to_push(store, sandbox, tmp_path, store_url)
    proc = push_in_background(store, tmp_path, landed=20)
    with store.read() as conn:
        recorder_pid = conn.execute(select(publish_target_runs.c.pid)).scalar_one()
    os.kill(recorder_pid, signal.SIGKILL)
    wait_ended(proc)
    assert proc.returncode != 0  # the hub says its push failed

    [resumed] = publish(store, hub)

    assert resumed.status == "succeeded"
    assert len(states(store, "news")) == PEOPLE
    assert len(set(member_puts(sandbox))) == PEOPLE  # lost 0
    assert in_flight_rows(store) == 0
    assert list(private_tmp.iterdir()) == []  # the resume removed the dead recorder's folder


def test_resume_waits_for_the_live_recorder_of_a_killed_push_then_says_busy(
    store: Store, store_url: str, sandbox: SandboxServer, tmp_path: Path
) -> None:
    put(store, "m_0001", email="busy@example.com", first_name="B")
    extra = "    time_budget_seconds: 0.5\n"
    hub = hub_config(tmp_path, store_url, mailchimp_yaml(sandbox, extra=extra))
    old_run = new_run_id()
    recorder = subprocess.Popen(  # stands for the old run's recorder: its run id in argv
        [sys.executable, "-c", "import time; time.sleep(60)", old_run]
    )
    try:
        register(store, "news", old_run, tmp_path / "crm-hub-publish-old", recorder.pid)
        [busy] = publish(store, hub)
    finally:
        recorder.kill()
        recorder.wait()

    assert busy.status == "failed"
    assert busy.error is not None and f"run {old_run}" in busy.error
    assert "still running after 0.5 s" in busy.error
    assert member_puts(sandbox) == []
    [resumed] = publish(store, hub)  # the old recorder is gone: the push goes on
    assert (resumed.status, resumed.confirmed) == ("succeeded", 1)


def test_a_recycled_pid_does_not_hold_up_the_resume(
    store: Store, store_url: str, sandbox: SandboxServer, tmp_path: Path
) -> None:
    put(store, "m_0001", email="pid@example.com", first_name="P")
    hub = hub_config(tmp_path, store_url, mailchimp_yaml(sandbox))
    # a live process that is not that run's recorder (its command line lacks the run id)
    register(store, "news", new_run_id(), tmp_path / "crm-hub-publish-old", os.getpid())

    [pushed] = publish(store, hub)

    assert (pushed.status, pushed.confirmed) == ("succeeded", 1)
    assert in_flight_rows(store) == 0
