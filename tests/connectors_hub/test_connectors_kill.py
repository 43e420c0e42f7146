"""Kill -9 a real `crm-hub sync` of airbyte-source-faker while records land, a few times, then
let it finish: nothing lost, nothing duplicated, the saved state never ahead of the landed data,
and no connector process left behind."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from connectors_hub_helpers import raw_keys, saved_states
from sqlalchemy import select

from crm_hub.store import Store
from crm_hub.store.schema import runs

USERS = 4_000
KILLS = 3
CLI = [sys.executable, "-m", "crm_hub.cli"]


def landing_started(store: Store) -> bool:
    """The latest run is running and has committed records."""
    with store.read() as conn:
        row = conn.execute(
            select(runs.c.status, runs.c.counts).order_by(runs.c.started_at.desc()).limit(1)
        ).first()
    if row is None or row[0] != "running":
        return False
    counts = row[1] or {}
    return bool(counts.get("inserted", 0) + counts.get("updated", 0))


def connector_leftovers(folder: Path) -> list[psutil.Process]:
    """Live processes working in ``folder`` (the connector runs with cwd = hub.yaml's folder)."""
    found = []
    for process in psutil.process_iter(["pid"]):
        try:
            if process.cwd() == str(folder) and process.status() != psutil.STATUS_ZOMBIE:
                found.append(process)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


def check_state_not_ahead(store: Store) -> int:
    """Users before the saved ``loop_offset`` have all landed; returns how many users landed."""
    users = raw_keys(store, "faker").get("users", set())  # also asserts: no key twice
    state = saved_states(store, "faker").get("users")
    if state is not None:
        offset = state["airbyte"]["stream"]["stream_state"]["loop_offset"]
        assert {str(i) for i in range(1, offset + 1)} <= users, f"state at {offset} ahead"
    return len(users)


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_kill_9_mid_sync_then_resume_loses_and_duplicates_nothing(
    tmp_path: Path, store_url: str, store: Store, faker_command: str
) -> None:
    (tmp_path / "hub.yaml").write_text(
        f"store: {store_url}\nsources:\n  faker:\n    type: airbyte\n"
        f"    command: [{faker_command}]\n"
        f"    config: {{count: {USERS}, seed: 3, records_per_slice: 200, parallelism: 1}}\n"
    )
    env = {
        **os.environ,
        "CRM_HUB_SYNC__BATCH_SIZE": "500",
        "CRM_HUB_CONFIG": str(tmp_path / "hub.yaml"),
    }
    rng = random.Random(20261125)
    progress = []
    for _ in range(KILLS):
        process = subprocess.Popen(
            [*CLI, "sync"],
            env=env,
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while not landing_started(store) and process.poll() is None:
            assert time.monotonic() < deadline, "the sync never started landing"
            time.sleep(0.05)
        time.sleep(rng.uniform(0.0, 0.4))
        process.send_signal(signal.SIGKILL)
        process.wait()
        deadline = time.monotonic() + 10
        while connector_leftovers(tmp_path):  # the kernel kills the orphaned connector
            assert time.monotonic() < deadline, connector_leftovers(tmp_path)
            time.sleep(0.05)
        progress.append(check_state_not_ahead(store))

    final = subprocess.run(
        [*CLI, "sync", "--json"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert final.returncode == 0, final.stderr
    summary = json.loads(final.stdout)["sync"][0]
    assert summary["status"] == "succeeded"
    keys = raw_keys(store, "faker")  # duplicated 0: asserted inside
    assert keys["users"] == {str(i) for i in range(1, USERS + 1)}  # lost 0
    # faker restarts every stream from the start each run, so the final run emitted every
    # record once: the store must hold exactly that many keys, no stray one from a killed run.
    assert sum(map(len, keys.values())) == summary["read"]
    assert check_state_not_ahead(store) == USERS
    assert progress == sorted(progress)
    # The kills hit mid-sync: the last one left records for the final run to land (users land
    # first and fast, so the users count alone may already be complete at the first kill).
    assert summary["inserted"] > 0 and progress[0] > 0
