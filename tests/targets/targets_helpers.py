"""Helpers of the target tests: run a target (in-process, or its console script) on Singer
messages, read what it said."""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from connectors.sandbox import SandboxServer
from connectors.target_common import STATE_KEY

MAILCHIMP_AUTH = ("anyone", "sandbox-mailchimp-key-us21")
HUBSPOT_AUTH = {"Authorization": "Bearer sandbox-hubspot-token"}


@dataclass
class TargetRun:
    """What one run wrote: STATE values, batch reports, rejection lines."""

    states: list[dict[str, Any]] = field(default_factory=list)
    rejections: list[dict[str, Any]] = field(default_factory=list)

    @property
    def reports(self) -> list[dict[str, Any]]:
        """The per-batch ``crm_hub_target`` reports."""
        return [s[STATE_KEY] for s in self.states if STATE_KEY in s]

    @property
    def confirmed(self) -> list[Any]:
        """Every confirmed key, in order."""
        return [k for r in self.reports for k in r["confirmed"]]

    @property
    def rejected(self) -> dict[Any, str]:
        """Rejected key → reason, from STATE."""
        return {r["key"]: r["reason"] for rep in self.reports for r in rep["rejected"]}


def messages(stream: str, records: list[dict[str, Any]], key: str = "id") -> str:
    """SCHEMA plus RECORD lines for ``records`` (schema: every field, any type)."""
    names = sorted({k for r in records for k in r})
    schema = {"type": "object", "properties": {n: {} for n in names}}
    lines = [{"type": "SCHEMA", "stream": stream, "schema": schema, "key_properties": [key]}]
    lines += [{"type": "RECORD", "stream": stream, "record": r} for r in records]
    return "\n".join(json.dumps(line) for line in lines) + "\n"


def run_target(target_class: Any, config: dict[str, Any], lines: str) -> TargetRun:
    """Run a target class in-process on message lines; collect its stdout and rejections."""
    out = io.StringIO()
    target = target_class(config=config)
    with contextlib.redirect_stdout(out):
        target.listen(file_input=io.StringIO(lines))
    run = TargetRun()
    run.states = [json.loads(line) for line in out.getvalue().splitlines() if line.strip()]
    path = config.get("rejections_path")
    if path and Path(path).exists():
        run.rejections = [json.loads(x) for x in Path(path).read_text().splitlines()]
    return run


def run_script(
    script: str, tmp_path: Path, config: dict[str, Any], lines: list[dict[str, Any]]
) -> subprocess.CompletedProcess[str]:
    """Run an installed target's console script in ``tmp_path`` on ``lines`` (Singer messages)."""
    (tmp_path / "config.json").write_text(json.dumps(config))
    return subprocess.run(
        [str(Path(sys.executable).parent / script), "--config", "config.json"],
        input="".join(json.dumps(m) + "\n" for m in lines),
        cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def sandbox_requests(server: SandboxServer, vendor: str) -> list[dict[str, Any]]:
    """The sandbox's recent request log for one vendor."""
    answer = httpx.get(f"{server.url}/_sandbox/requests", params={"vendor": vendor, "limit": 2000})
    answer.raise_for_status()
    entries: list[dict[str, Any]] = answer.json()["requests"]
    return entries
