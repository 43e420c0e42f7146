"""The hub driving target-crmhub-files and target-crmhub-sql as any Singer target
(``type: singer``, the command found on PATH): records land, their per-batch STATE settles them,
and a second push sends nothing."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import orjson
import pytest
from publish_helpers import hub_config, in_flight_rows, merge, put, states
from sqlalchemy import create_engine, text

from crm_hub.publish import publish
from crm_hub.store import Store


@pytest.fixture(autouse=True)
def _scripts_on_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """The venv's console scripts on PATH, as after ``pip install crm-hub``."""
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")


def people(store: Store, count: int) -> None:
    for i in range(count):
        put(store, f"m_{i}", email=f"p{i}@example.com", first_name=f"P{i}", last_name="Test")


def test_target_crmhub_files_lands_every_record_and_a_second_push_sends_none(
    lite: Store, tmp_path: Path
) -> None:
    people(lite, 5)
    hub = hub_config(tmp_path, str(lite.engine.url), """  drop:
    type: singer
    command: [target-crmhub-files]
    config: {path: "out/{stream}-{timestamp}.jsonl", batch_size: 2}
    fields: [email, first_name]
    batch_size: 2
""")  # fmt: skip

    [first] = publish(lite, hub)
    [again] = publish(lite, hub)

    [drop] = list((tmp_path / "out").iterdir())
    records = [orjson.loads(line) for line in drop.read_text().splitlines()]
    assert (first.status, first.sent, first.confirmed) == ("succeeded", 5, 5)
    assert sorted(r["master_id"] for r in records) == [f"m_{i}" for i in range(5)]
    assert records[0]["email"] == "p0@example.com" and records[0]["first_name"] == "P0"
    assert (again.status, again.sent) == ("succeeded", 0)
    assert set(states(lite, "drop")) == {f"m_{i}" for i in range(5)}
    assert in_flight_rows(lite) == 0


def test_target_crmhub_sql_upserts_then_deletes_the_merged_away(
    lite: Store, tmp_path: Path
) -> None:
    people(lite, 3)
    url = f"sqlite:///{tmp_path / 'crm.db'}"
    hub = hub_config(tmp_path, str(lite.engine.url), f"""  crm:
    type: singer
    command: [target-crmhub-sql]
    config: {{url: "{url}", table: crm_people}}
    fields: [email, first_name]
""")  # fmt: skip

    [first] = publish(lite, hub)
    [again] = publish(lite, hub)
    merge(lite, "m_0", "m_1")
    [after_merge] = publish(lite, hub)

    engine = create_engine(url)
    with engine.connect() as conn:
        rows = {
            r[0]: r[1] for r in conn.execute(text("SELECT master_id, first_name FROM crm_people"))
        }
    engine.dispose()
    assert (first.confirmed, again.sent, after_merge.confirmed) == (3, 0, 1)
    assert rows == {"m_0": "P0", "m_2": "P2"}
