"""`crm-hub map` as a user drives it: init, run (sync + map), preview, rejected list/replay."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "crm_hub.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "200"},
    )


@pytest.fixture
def demo(tmp_path: Path, store_url: str) -> Path:
    assert cli("init", "demo", cwd=tmp_path).returncode == 0
    hub = tmp_path / "demo" / "hub.yaml"
    hub.write_text(hub.read_text().replace("sqlite:///crm-hub.db", store_url))
    return hub.parent


def test_run_syncs_and_maps_the_example_project(demo: Path) -> None:
    run = cli("run", "--json", cwd=demo)
    assert run.returncode == 0, run.stderr
    mapped = {m["source"]: m for m in json.loads(run.stdout)["map"]}
    assert {s: (m["read"], m["accepted"], m["rejected"]) for s, m in mapped.items()} == {
        "pos_export": (10, 10, 0),
        "pos_orders": (6, 6, 0),
        "newsletter": (5, 5, 0),
    }
    assert mapped["pos_orders"]["tables"] == {"orders": 6, "order_lines": 9}
    again = json.loads(cli("map", "--json", cwd=demo).stdout)
    assert [m["read"] for m in again["map"]] == [0, 0, 0]


def test_preview_shows_source_beside_canonical_and_writes_nothing(demo: Path) -> None:
    assert cli("sync", cwd=demo).returncode == 0
    preview = cli("map", "--preview", "pos_orders", "--limit", "2", "--json", cwd=demo)
    assert preview.returncode == 0, preview.stderr
    items = json.loads(preview.stdout)
    assert [i["record_key"] for i in items] == ["o-5001", "o-5002"]
    assert items[0]["source_record"]["lines"][0]["item"] == "Flat white"
    assert items[0]["row"]["total"] == "9.3500" and len(items[0]["lines"]) == 2
    table = cli("map", "--preview", "pos_orders", "--limit", "1", cwd=demo).stdout
    assert "nothing is written" in table and "placed_at_offset" in table
    status = json.loads(cli("map", "--json", cwd=demo).stdout)  # the real map still has it all
    assert {m["source"]: m["read"] for m in status["map"]}["pos_orders"] == 6


def test_a_bad_record_is_listed_by_reason_and_replayed_after_the_fix(demo: Path) -> None:
    mapping = demo / "mappings" / "newsletter.yaml"
    mapping.write_text(mapping.read_text().replace("unsubscribed: false, ", ""))
    run = json.loads(cli("run", "--json", cwd=demo).stdout)
    assert {m["source"]: m["rejected"] for m in run["map"]}["newsletter"] == 1
    listed = json.loads(
        cli(
            "rejected", "list", "--stage", "map", "--reason", "unknown_value", "--json", cwd=demo
        ).stdout
    )
    assert [r["record_key"] for r in listed] == ["jim.miller@example.com"]
    assert listed[0]["location"] == "mappings/newsletter.yaml:15"
    assert listed[0]["message"].startswith(
        'customer jim.miller@example.com: consent.email "unsubscribed" is not in the lookup table'
    )
    mapping.write_text(
        mapping.read_text().replace("cleaned: false", "cleaned: false, unsubscribed: false")
    )
    replay = cli("rejected", "replay", "--source", "newsletter", "--json", cwd=demo)
    assert replay.returncode == 0, replay.stderr
    assert json.loads(replay.stdout)[0]["accepted"] == 1
    assert json.loads(cli("rejected", "list", "--stage", "map", "--json", cwd=demo).stdout) == []


def test_broken_mapping_exits_2_with_file_line(demo: Path) -> None:
    mapping = demo / "mappings" / "pos_export.yaml"
    mapping.write_text(
        mapping.read_text().replace("phone: phone", "phone: {path: phone, transforms: [shout]}")
    )
    result = cli("map", "pos_export", cwd=demo)
    assert result.returncode == 2
    assert "mappings/pos_export.yaml:16 streams.customers.fields.phone.transforms" in result.stderr
    preview = cli("map", "--preview", "pos_export", cwd=demo)
    assert preview.returncode == 2 and "unknown transform 'shout'" in preview.stderr


def test_schema_is_printed_for_editors(tmp_path: Path) -> None:
    result = cli("map", "--schema", cwd=tmp_path)
    assert result.returncode == 0
    assert json.loads(result.stdout)["title"] == "crm-hub mapping file, version 1"


def test_check_validates_mapping_files_before_any_run(demo: Path) -> None:
    mapping = demo / "mappings" / "newsletter.yaml"
    mapping.write_text(mapping.read_text().replace("version: 1\n", "version: 1\ncolour: red\n"))
    result = cli("check", cwd=demo)
    assert result.returncode == 2
    assert "mappings/newsletter.yaml:5 colour: unknown key; allowed keys here: currency" in (
        result.stdout + result.stderr
    )
