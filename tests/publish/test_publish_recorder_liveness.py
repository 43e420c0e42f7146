"""Whether the recorder of a killed push still runs, when the hub can and cannot look at it: a
recorder on another host (a shared PostgreSQL store) is known only by its heartbeat. Also the
spool folder older versions left beside hub.yaml, which is named, never silently deleted."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import orjson
import pytest
from publish_helpers import hub_config, in_flight_rows, put
from sqlalchemy import select, update
from test_publish_sandbox import member_puts

from connectors.sandbox import SandboxServer
from crm_hub.publish import publish
from crm_hub.publish.inflight import SILENT_LIMIT_SECONDS, STORE_ENV, register, save_batch
from crm_hub.publish.payload import Outgoing
from crm_hub.store import Store
from crm_hub.store.runs import new_run_id, utcnow
from crm_hub.store.schema import publish_target_output, publish_target_runs
from tests.publish.conftest import mailchimp_yaml

ELSEWHERE = "worker-2.elsewhere"  # a host that is not this one: its pids mean nothing here
LONG_AGO = timedelta(seconds=SILENT_LIMIT_SECONDS + 60)


def killed_push_elsewhere(store: Store, *, silent_for: timedelta, ever_beat: bool = True) -> str:
    """The rows a push killed on another host leaves: one batch (m_0001) its target confirmed,
    and a recorder (pid 4242 there) last heard from ``silent_for`` ago."""
    run_id = new_run_id()
    fields = {"email": "far@example.com", "first_name": "F"}
    sent = Outgoing("m_0001", "upsert", {"master_id": "m_0001", **fields}, "0" * 32,
                    {"status": "active", "fields": fields})  # fmt: skip
    save_batch(store, "news", run_id, 1, [sent])
    echo = orjson.dumps(
        {"type": "STATE", "value": {"crm_hub_publish": {"run_id": run_id, "batch": 1}}}
    )
    last_heard = utcnow() - silent_for
    register(store, "news", run_id, Path("/tmp/crm-hub-publish-far"), 4242, target_pid=4243)
    with store.begin() as conn:
        conn.execute(publish_target_output.insert().values(
            destination="news", run_id=run_id, seq=1, line=echo.decode()))  # fmt: skip
        conn.execute(
            update(publish_target_runs)
            .where(publish_target_runs.c.run_id == run_id)
            .values(host=ELSEWHERE, started_at=last_heard,
                    heartbeat_at=last_heard if ever_beat else None)
        )  # fmt: skip
    return run_id


@pytest.mark.parametrize("ever_beat", [True, False], ids=["stale heartbeat", "never beat"])
def test_a_recorder_on_another_host_silent_too_long_is_dead_and_its_push_is_settled(
    store: Store, store_url: str, sandbox: SandboxServer, tmp_path: Path, ever_beat: bool
) -> None:
    put(store, "m_0001", email="far@example.com", first_name="F")
    hub = hub_config(tmp_path, store_url,
                     mailchimp_yaml(sandbox, extra="    time_budget_seconds: 5\n"))  # fmt: skip
    killed_push_elsewhere(store, silent_for=LONG_AGO, ever_beat=ever_beat)

    [resumed] = publish(store, hub)

    assert resumed.status == "succeeded", resumed.error
    assert resumed.recovered == 1  # what the far target confirmed is settled, not waited on
    assert in_flight_rows(store) == 0


def test_a_recorder_on_another_host_that_beats_is_waited_for_then_busy(
    store: Store, store_url: str, sandbox: SandboxServer, tmp_path: Path
) -> None:
    put(store, "m_0001", email="far@example.com", first_name="F")
    hub = hub_config(tmp_path, store_url,
                     mailchimp_yaml(sandbox, extra="    time_budget_seconds: 0.5\n"))  # fmt: skip
    run_id = killed_push_elsewhere(store, silent_for=timedelta(seconds=1))

    [busy] = publish(store, hub)

    assert busy.status == "failed"
    assert busy.error is not None and f"run {run_id}" in busy.error
    assert f"recorder pid 4242 on {ELSEWHERE}, last heartbeat" in busy.error
    assert "still running after 0.5 s" in busy.error
    assert member_puts(sandbox) == []  # nothing sent while the far push may still land
    assert in_flight_rows(store) > 0  # its rows wait for the next push


def test_the_recorder_beats_while_its_target_runs(store: Store, store_url: str,
                                                   tmp_path: Path) -> None:  # fmt: skip
    run_id = new_run_id()
    target = [sys.executable, "-c", "import time; time.sleep(1.2)"]
    subprocess.run(
        [sys.executable, "-m", "crm_hub.publish.recorder", "--destination", "news", "--run-id",
         run_id, "--workdir", str(tmp_path / "w"), "--heartbeat-seconds", "0.2", "--", *target],
        env={**os.environ, STORE_ENV: store_url}, check=True, stdin=subprocess.DEVNULL,
    )  # fmt: skip

    t = publish_target_runs
    with store.read() as conn:
        run = conn.execute(select(t).where(t.c.run_id == run_id)).mappings().one()
    assert run["exit_code"] == 0
    assert run["heartbeat_at"] - run["started_at"] >= timedelta(seconds=0.8)


@pytest.fixture
def warnings_of_publish() -> Iterator[list[logging.LogRecord]]:
    """Warnings of the Singer-target driver (its logger may not propagate to caplog's)."""
    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = records.append  # type: ignore[method-assign]
    logger = logging.getLogger("crm_hub.publish.singer_target")
    logger.addHandler(handler)
    yield records
    logger.removeHandler(handler)


def test_a_spool_folder_of_an_older_version_is_named_once_and_kept(
    store: Store, store_url: str, sandbox: SandboxServer, tmp_path: Path,
    warnings_of_publish: list[logging.LogRecord],
) -> None:  # fmt: skip
    legacy = tmp_path / ".crm-hub" / "publish" / "news"
    legacy.mkdir(parents=True)
    (legacy / "sent.jsonl").write_text("{}\n", encoding="utf-8")
    put(store, "m_0001", email="old@example.com", first_name="O")
    hub = hub_config(tmp_path, store_url, mailchimp_yaml(sandbox))

    [first] = publish(store, hub)
    put(store, "m_0001", email="old@example.com", first_name="Older")
    [second] = publish(store, hub)

    assert (first.status, second.status) == ("succeeded", "succeeded")
    [warning] = warnings_of_publish
    assert "no longer used: delete it" in warning.getMessage()
    assert warning.fields["path"] == str(legacy)  # type: ignore[attr-defined]
    assert (legacy / "sent.jsonl").exists()  # the user's to delete
