"""Kill -9 a real `crm-hub sync` subprocess at 20 random moments, then let it finish:
nothing lost, nothing duplicated, and the saved state is never ahead of the landed data."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import Integer, cast, func, select

from crm_hub.store import open_store
from crm_hub.store.schema import raw_records, sync_state

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from gen_customers import write  # noqa: E402

ROWS = 200_000
KILLS = 20
CLI = [sys.executable, "-m", "crm_hub.cli"]


def check_state_not_ahead(store_url: str) -> int:
    """Every record before the saved offset is in raw; returns how many rows landed."""
    store = open_store(store_url)
    try:
        with store.read() as conn:
            state = conn.execute(select(sync_state.c.state)).scalar_one_or_none()
            landed = conn.execute(select(func.count()).select_from(raw_records)).scalar_one()
            distinct = conn.execute(
                select(func.count(func.distinct(raw_records.c.record_key)))
            ).scalar_one()
            assert landed == distinct
            if state is None:
                return int(landed)
            line = next(iter(state["files"].values()))["line"]
            covered = line - 1  # data lines before the checkpoint (line 1 is the header)
            below = conn.execute(
                select(func.count()).where(cast(raw_records.c.record_key, Integer) < covered)
            ).scalar_one()
            assert below == covered, f"state at line {line} but only {below} rows before it"
            return int(landed)
    finally:
        store.dispose()


@pytest.mark.slow
def test_kill_at_random_moments_loses_and_duplicates_nothing(
    tmp_path: Path, store_url: str
) -> None:
    write(tmp_path / "customers.csv", ROWS)
    (tmp_path / "hub.yaml").write_text(
        f"store: {store_url}\nsources:\n  pos:\n    type: file\n    path: customers.csv\n"
        "    stream: customers\n    primary_key: [id]\n"
    )
    env = {
        **os.environ,
        "CRM_HUB_SYNC__BATCH_SIZE": "2000",
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
        time.sleep(rng.uniform(0.4, 2.0))
        process.send_signal(signal.SIGKILL)
        process.wait()
        progress.append(check_state_not_ahead(store_url))
    final = subprocess.run(
        [*CLI, "sync", "--json"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert final.returncode == 0, final.stderr
    assert check_state_not_ahead(store_url) == ROWS
    assert progress == sorted(progress)  # each kill kept what earlier runs had landed
    # The kills really hit mid-sync (how many do depends on the machine's speed and load).
    assert sum(1 for landed in progress if 0 < landed < ROWS) >= 2, progress
