"""Golden files: the example project's raw records in, exactly these canonical rows out.

The example project is what `crm-hub init` writes (crm_hub/templates/project). To accept a
deliberate change: CRM_HUB_UPDATE_GOLDEN=1 pytest tests/mapping/test_map_golden.py, then read
the diff of tests/mapping/golden/ before committing it.
"""

from __future__ import annotations

import json
import os
import shutil
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from crm_hub.config import load_config
from crm_hub.mapping import map_all
from crm_hub.pipeline import sync_sources
from crm_hub.store import Store
from crm_hub.store.schema import CANONICAL_TABLES, order_lines

TEMPLATE = Path(__file__).parents[2] / "crm_hub" / "templates" / "project"
GOLDEN = Path(__file__).parent / "golden"
VOLATILE = {"id", "raw_id", "raw_change_seq", "mapped_at", "run_id"}


def plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    return value


def dump(store: Store, source: str) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    with store.read() as conn:
        for name, table in {**CANONICAL_TABLES, "order_lines": order_lines}.items():
            query = select(table).where(table.c.source == source)
            rows = [
                {k: plain(v) for k, v in row.items() if k not in VOLATILE}
                for row in conn.execute(query).mappings()
            ]
            key = "order_source_id" if name == "order_lines" else "source_id"
            rows.sort(key=lambda r: (r[key], r.get("line_no", 0)))
            if rows:
                found[name] = rows
    return found


@pytest.fixture
def example(tmp_path: Path, store: Store) -> Path:
    project = tmp_path / "example"
    shutil.copytree(TEMPLATE, project)
    hub = project / "hub.yaml"
    hub.write_text(
        hub.read_text().replace(
            "sqlite:///crm-hub.db", str(store.engine.url.render_as_string(hide_password=False))
        )
    )
    return hub


@pytest.mark.parametrize("source", ["pos_export", "pos_orders", "newsletter"])
def test_shipped_mapping_turns_the_example_data_into_the_golden_rows(
    store: Store, example: Path, source: str
) -> None:
    config = load_config(example)
    assert not sync_sources(store, config, [source]).failures
    summary = map_all(store, config, [source])
    (result,) = summary.results
    assert result.rejected == 0 and result.accepted == result.read > 0
    got = dump(store, source)
    golden = GOLDEN / f"{source}.json"
    if os.environ.get("CRM_HUB_UPDATE_GOLDEN"):
        golden.parent.mkdir(exist_ok=True)
        golden.write_text(json.dumps(got, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    assert got == json.loads(golden.read_text(encoding="utf-8"))
