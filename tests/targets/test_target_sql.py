"""target-crmhub-sql run as its console script on plain Singer input, on a SQLite file and in a
fresh PostgreSQL schema: typed table created, upserts by key, deletes, rejections."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, inspect, text
from targets_helpers import run_script

from tests.conftest import pg_url

PROPERTIES = {
    "id": {"type": "string"},
    "name": {"type": ["string", "null"]},
    "visits": {"type": ["integer", "null"]},
    "spend": {"type": ["number", "null"]},
    "vip": {"type": ["boolean", "null"]},
    "tags": {"type": ["array", "null"], "items": {"type": "string"}},
    "seen_at": {"type": ["string", "null"], "format": "date-time"},
    "extra": {},
}
SCHEMA = {"type": "SCHEMA", "stream": "people", "key_properties": ["id"],
          "schema": {"type": "object", "properties": PROPERTIES}}  # fmt: skip


def record(**fields: Any) -> dict[str, Any]:
    return {"type": "RECORD", "stream": "people", "record": fields}


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'out.db'}"
    return pg_url(request.getfixturevalue("pg_schema"))


def run(
    tmp_path: Path, config: dict[str, Any], lines: list[dict[str, Any]]
) -> subprocess.CompletedProcess[str]:
    return run_script("target-crmhub-sql", tmp_path, config, lines)


def reports(done: subprocess.CompletedProcess[str]) -> list[dict[str, Any]]:
    said = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
    return [s["crm_hub_target"] for s in said if "crm_hub_target" in s]


def rows(url: str, table: str) -> dict[str, dict[str, Any]]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            found = conn.execute(text(f"SELECT id, name, visits, vip, extra FROM {table}"))
            return {r["id"]: dict(r) for r in found.mappings()}
    finally:
        engine.dispose()


def test_upserts_by_key_deletes_and_keeps_what_a_record_leaves_out(
    tmp_path: Path, db_url: str
) -> None:
    lines = [
        SCHEMA,
        record(
            id="a",
            name="Ann",
            visits=3,
            spend=12.5,
            vip=True,
            tags=["x"],
            seen_at="2026-11-02T10:00:00+00:00",
            extra={"k": 1},
        ),  # fmt: skip
        record(id="b", name="Bob", visits=1),
        record(id="c", name="Cy"),
        {"type": "STATE", "value": {"bookmark": 1}},
        record(id="a", name="Annie"),  # visits, vip... left out: kept
        record(id="b", _deleted=True),
        record(id="c", _deleted=True),
        record(id="c", name="Cy again"),  # deleted, then back in the same batch
        {"type": "STATE", "value": {"bookmark": 2}},
    ]
    config = {"url": db_url, "table": "crm_{stream}", "batch_size": 4}

    done = run(tmp_path, config, lines)

    assert done.returncode == 0, done.stderr
    assert [sorted(r["confirmed"]) for r in reports(done)] == [
        ["a", "a", "b", "c"],
        ["b", "c", "c"],
    ]
    assert done.stdout.splitlines()[-1] == '{"bookmark": 2}'
    found = rows(db_url, "crm_people")
    assert set(found) == {"a", "c"}
    assert (found["a"]["name"], found["a"]["visits"], bool(found["a"]["vip"])) == ("Annie", 3, True)
    assert json.loads(found["a"]["extra"]) == {"k": 1}  # untyped: JSON text
    assert (found["c"]["name"], found["c"]["visits"]) == ("Cy again", None)


def test_the_table_gets_typed_columns_and_a_primary_key(tmp_path: Path, db_url: str) -> None:
    done = run(tmp_path, {"url": db_url}, [SCHEMA, record(id="a", name="Ann")])

    assert done.returncode == 0, done.stderr
    engine = create_engine(db_url)
    try:
        columns = {
            c["name"]: type(c["type"]).__name__ for c in inspect(engine).get_columns("people")
        }
        key = inspect(engine).get_pk_constraint("people")["constrained_columns"]
    finally:
        engine.dispose()
    assert key == ["id"]
    assert columns["visits"] == "BIGINT" and columns["vip"] == "BOOLEAN"
    assert columns["spend"] == "NUMERIC" and columns["extra"] == "TEXT"
    assert columns["seen_at"] in {"DATETIME", "TIMESTAMP"}
    assert columns["tags"] in {"JSON", "NullType"}  # SQLite reflects JSON as NullType
    assert "_deleted" not in columns


def test_a_schema_with_a_new_property_adds_the_column(tmp_path: Path, db_url: str) -> None:
    run(tmp_path, {"url": db_url}, [SCHEMA, record(id="a", name="Ann")])
    properties = {**PROPERTIES, "city": {"type": "string"}}
    wider = {**SCHEMA, "schema": {"type": "object", "properties": properties}}

    done = run(tmp_path, {"url": db_url}, [wider, record(id="b", name="Bob", city="Oslo")])

    assert done.returncode == 0, done.stderr
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            cities = {r[0]: r[1] for r in conn.execute(text("SELECT id, city FROM people"))}
    finally:
        engine.dispose()
    assert cities == {"a": None, "b": "Oslo"}


def test_records_the_database_refuses_are_rejected_and_the_rest_lands(
    tmp_path: Path, pg_schema: str
) -> None:
    url = pg_url(pg_schema)
    rejections = tmp_path / "rejected.jsonl"
    nullable_key = {"id": {"type": ["string", "null"]}}
    schema = {**SCHEMA, "schema": {"type": "object", "properties": {**PROPERTIES, **nullable_key}}}
    lines = [schema, record(id="a", visits=1), record(id="b", visits=10**20), record(id=None)]

    done = run(tmp_path, {"url": url, "rejections_path": str(rejections)}, lines)

    assert done.returncode == 0, done.stderr
    [report] = reports(done)
    assert report["confirmed"] == ["a"]
    reasons = {r["key"]: r["reason"] for r in report["rejected"]}
    assert "out of range" in reasons["b"] and reasons[None] == "no value for key property id"
    assert [json.loads(x)["key"] for x in rejections.read_text().splitlines()] == [None, "b"]
    assert set(rows(url, "people")) == {"a"}


def test_a_bad_url_is_a_config_error(tmp_path: Path) -> None:
    done = run(tmp_path, {"url": "nonsense://"}, [SCHEMA])

    assert done.returncode != 0 and "url is not a database URL" in done.stderr
