"""`crm-hub publish` as a user drives it: real subprocesses, output, exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from publish_helpers import hub_config, put

from connectors.sandbox import SandboxServer
from crm_hub.store import Store
from tests.publish.conftest import mailchimp_yaml


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "crm_hub.cli", *args, "--config", str(cwd / "hub.yaml")],
        cwd=cwd, capture_output=True, text=True, timeout=120,
        env={**os.environ, "COLUMNS": "200"},
    )  # fmt: skip


def test_dry_run_prints_the_records_and_a_real_push_keeps_rejections_listed(
    lite: Store, sandbox: SandboxServer, tmp_path: Path
) -> None:
    put(lite, "m_1", email="good@example.com", first_name="Good")
    put(lite, "m_2", email="bad@example", first_name="Bad")
    hub_config(tmp_path, str(lite.engine.url), mailchimp_yaml(sandbox))

    dry = cli("publish", "--dry-run", cwd=tmp_path)
    real = cli("publish", "news", "--json", cwd=tmp_path)
    listed = cli("rejected", "list", "--stage", "publish", "--json", cwd=tmp_path)

    assert dry.returncode == 0, dry.stderr
    assert (
        "news: would send 2 record(s)" in dry.stdout and '"email":"good@example.com"' in dry.stdout
    )
    assert real.returncode == 0, real.stderr
    [result] = json.loads(real.stdout)
    assert (result["status"], result["confirmed"], result["rejected"]) == ("succeeded", 1, 1)
    [row] = json.loads(listed.stdout)
    assert (row["source"], row["record_key"], row["reason_code"]) == ("news", "m_2", "http_400")
    assert "looks fake or invalid" in row["message"]


def test_unknown_destination_is_a_config_error_with_exit_code_2(
    lite: Store, tmp_path: Path
) -> None:
    hub_config(tmp_path, str(lite.engine.url), "  drop:\n    type: file\n    path: out.csv\n")

    answer = cli("publish", "nowhere", cwd=tmp_path)

    assert answer.returncode == 2
    assert "no destination named nowhere in hub.yaml (destinations: drop)" in answer.stderr
