"""target-crmhub-files run as its console script on plain Singer input: one file per stream per
run, written atomically, and per-batch STATE only once the file is in place."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import subprocess
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from singer_sdk.singerlib.exceptions import InvalidInputLine
from targets_helpers import run_script

from connectors.target_files import TargetFiles

SCHEMA = {
    "type": "SCHEMA",
    "stream": "people",
    "key_properties": ["id"],
    "schema": {
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "name": {"type": ["string", "null"]},
            "score": {"type": ["number", "null"]},
            "_deleted": {"type": ["boolean", "null"]},
        },
    },
}


def record(**fields: Any) -> dict[str, Any]:
    return {"type": "RECORD", "stream": "people", "record": fields}


def state(n: int) -> dict[str, Any]:
    return {"type": "STATE", "value": {"bookmark": n}}


# a, b, then a updated and b deleted; two batches of two
INPUT = [SCHEMA, record(id="a", name="Ann", score=1.5), record(id="b", name="Bob", score=2),
         state(1), record(id="a", name="Annie", score=3), record(id="b", _deleted=True),
         state(2)]  # fmt: skip


def run(
    tmp_path: Path, config: dict[str, Any], lines: list[dict[str, Any]]
) -> subprocess.CompletedProcess[str]:
    return run_script("target-crmhub-files", tmp_path, config, lines)


def stdout_states(done: subprocess.CompletedProcess[str]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in done.stdout.splitlines() if line.strip()]


def test_one_jsonl_file_per_stream_with_updates_and_deletes_then_the_state(tmp_path: Path) -> None:
    done = run(tmp_path, {"path": "out/{stream}-{timestamp}.jsonl", "batch_size": 2}, INPUT)

    assert done.returncode == 0, done.stderr
    [drop] = list((tmp_path / "out").iterdir())  # no temporary file left beside it
    rows = [json.loads(x) for x in drop.read_text().splitlines()]
    assert drop.name.startswith("people-") and drop.suffix == ".jsonl"
    assert rows == [
        {"id": "a", "name": "Ann", "score": 1.5},
        {"id": "b", "name": "Bob", "score": 2},
        {"id": "a", "name": "Annie", "score": 3},
        {"id": "b", "_deleted": True},
    ]
    said = stdout_states(done)
    assert [s["crm_hub_target"]["confirmed"] for s in said[:-1]] == [["a", "b"], ["a", "b"]]
    assert said[-1] == {"bookmark": 2}  # the input's state, echoed after the file is in place


@pytest.mark.parametrize("kind", ["csv", "parquet"])
def test_csv_and_parquet_by_extension(tmp_path: Path, kind: str) -> None:
    done = run(tmp_path, {"path": f"out/{{stream}}.{kind}"}, INPUT)

    assert done.returncode == 0, done.stderr
    path = tmp_path / "out" / f"people.{kind}"
    if kind == "csv":
        with path.open(newline="") as handle:
            rows = list(csv.DictReader(handle))
        assert [(r["id"], r["name"], r["_deleted"]) for r in rows] == [
            ("a", "Ann", ""), ("b", "Bob", ""), ("a", "Annie", ""), ("b", "", "True")]  # fmt: skip
    else:
        table = pq.read_table(path).to_pylist()
        assert [(r["id"], r["score"], r["_deleted"]) for r in table] == [
            ("a", 1.5, None), ("b", 2.0, None), ("a", 3.0, None), ("b", None, True)]  # fmt: skip


def test_a_run_that_fails_leaves_no_file_and_no_state(tmp_path: Path) -> None:
    broken = [*INPUT[:4], record(id="c", score="not a number")]  # fails schema validation

    done = run(tmp_path, {"path": "out/{stream}.jsonl", "batch_size": 1}, broken)

    assert done.returncode != 0
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []
    assert done.stdout.strip() == ""  # nothing confirmed: the hub sends it all again


def test_no_state_is_echoed_before_the_file_is_in_place(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """singer-sdk echoes the input's STATE whenever it drains every sink (here after each
    record): the target holds it back, since the records it covers are not written yet."""
    monkeypatch.setattr(TargetFiles, "_MAX_RECORD_AGE_IN_MINUTES", 0.0)
    monkeypatch.chdir(tmp_path)
    target = TargetFiles(config={"path": "out/{stream}.jsonl"})
    out = io.StringIO()
    lines = "".join(json.dumps(m) + "\n" for m in INPUT[:5])

    with contextlib.redirect_stdout(out), pytest.raises(InvalidInputLine):
        target.listen(file_input=io.StringIO(lines + '{"type": "RECORD", "stream": "nope"}\n'))

    assert out.getvalue() == "" and not (tmp_path / "out").exists()


def test_two_streams_cannot_share_one_file(tmp_path: Path) -> None:
    other = {**SCHEMA, "stream": "orders"}

    done = run(tmp_path, {"path": "out/all.jsonl"}, [SCHEMA, other])

    assert done.returncode != 0 and "put {stream} in it" in done.stderr
