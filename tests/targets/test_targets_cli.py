"""The targets as programs: ``python -m`` and the console scripts, state lines on stdout."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from targets_helpers import messages

from connectors.sandbox import SandboxServer
from connectors.target_common import STATE_KEY

BIN = Path(sys.executable).parent


def run(command: list[str], config: dict[str, Any], lines: str, tmp_path: Path) -> list[Any]:
    config_path = tmp_path / "config.json"
    config_path.write_text(json.dumps(config))
    done = subprocess.run(
        [*command, "--config", str(config_path)],
        input=lines,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return [json.loads(line) for line in done.stdout.splitlines() if line.strip()]


def test_python_m_mailchimp_reads_stdin_and_writes_state_lines(
    sandbox: SandboxServer, mailchimp_config: dict[str, Any], tmp_path: Path
) -> None:
    records = [
        {"id": "a", "email": "cli.person@example.com", "email_consent": True},
        {"id": "b", "email": "broken@", "email_consent": True},
    ]
    upstream_state = json.dumps({"type": "STATE", "value": {"bookmarks": {"profiles": 7}}})
    lines = messages("profiles", records) + upstream_state + "\n"

    states = run(
        [sys.executable, "-m", "connectors.target_mailchimp"], mailchimp_config, lines, tmp_path
    )

    report = states[0][STATE_KEY]
    assert (report["confirmed"], [r["key"] for r in report["rejected"]]) == (["a"], ["b"])
    assert states[-1] == {"bookmarks": {"profiles": 7}}  # the input's state, echoed last
    line = json.loads(Path(mailchimp_config["rejections_path"]).read_text())
    assert (line["key"], line["status"]) == ("b", 400)


@pytest.mark.parametrize(
    ("script", "fixture"),
    [
        ("target-crmhub-webhook", "webhook_config"),
        ("target-crmhub-hubspot", "hubspot_config"),
    ],
    ids=["webhook", "hubspot"],
)
def test_console_scripts_run_the_targets(
    script: str, fixture: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    config = request.getfixturevalue(fixture)
    records = [{"id": "a", "email": "script.person@example.com"}]

    states = run([str(BIN / script)], config, messages("profiles", records), tmp_path)

    assert states == [
        {
            STATE_KEY: {
                **states[0][STATE_KEY],
                "stream": "profiles",
                "confirmed": ["a"],
                "rejected": [],
            }
        }
    ]


@pytest.mark.parametrize("module", ["files", "sql"])
def test_python_m_files_and_sql_targets_report_each_batch(module: str, tmp_path: Path) -> None:
    config = {
        "files": {"path": str(tmp_path / "out" / "{stream}.jsonl"), "batch_size": 1},
        "sql": {"url": f"sqlite:///{tmp_path / 'out.db'}", "batch_size": 1},
    }[module]
    lines = messages("people", [{"id": "a", "name": "Ann"}, {"id": "b", "name": "Bob"}])

    said = run([sys.executable, "-m", f"connectors.target_{module}"], config, lines, tmp_path)

    reports = [s[STATE_KEY] for s in said if STATE_KEY in s]
    assert [r["confirmed"] for r in reports] == [["a"], ["b"]]
    assert {r["destination"] for r in reports} == {module}
