"""SIGKILL `crm-hub publish` part-way through a push; the next push resends nothing that landed
and loses nothing (checked against the sandbox's own request log)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from publish_helpers import hub_config, put, states
from test_publish_sandbox import member, member_puts

from connectors.sandbox import SandboxServer
from crm_hub.publish import publish
from crm_hub.store import Store
from tests.publish.conftest import mailchimp_yaml

PEOPLE = 120


def test_kill_mid_push_then_resume_resends_none_and_loses_none(
    lite: Store, sandbox: SandboxServer, tmp_path: Path
) -> None:
    for i in range(PEOPLE):
        put(lite, f"m_{i:04d}", email=f"kill{i}@example.com", first_name=f"K{i}")
    extra = "    batch_size: 5\n    rate_limit: 40\n"
    hub = hub_config(tmp_path, str(lite.engine.url), mailchimp_yaml(sandbox, extra=extra))
    proc = subprocess.Popen(
        [sys.executable, "-m", "crm_hub.cli", "publish", "news", "--config",
         str(tmp_path / "hub.yaml")],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=tmp_path,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while len(states(lite, "news")) < 20:
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        assert time.monotonic() < deadline, "the push never got going"
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.stderr is not None
    proc.stderr.close()
    landed_before = len(states(lite, "news"))
    assert landed_before < PEOPLE  # really killed part-way

    [resumed] = publish(lite, hub)

    puts = member_puts(sandbox)
    assert len(puts) == len(set(puts)), "a member was sent twice"  # re-sent 0
    assert len(puts) == PEOPLE  # lost 0
    assert len(states(lite, "news")) == PEOPLE
    assert resumed.status == "succeeded"
    assert landed_before + resumed.recovered + resumed.confirmed == PEOPLE
    assert member(sandbox, f"kill{PEOPLE - 1}@example.com")["merge_fields"]["FNAME"] == "K119"
    [again] = publish(lite, hub)
    assert again.sent == 0
