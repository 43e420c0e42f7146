"""The store: migrations create exactly the schema the code uses, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import select

from crm_hub.errors import ConfigError, StoreError
from crm_hub.store import Store, open_store
from crm_hub.store.engine import _MIGRATIONS, HEAD_REVISION, current_revision
from crm_hub.store.schema import metadata, runs


def test_head_revision_constant_matches_alembic_head() -> None:
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    assert ScriptDirectory.from_config(config).get_current_head() == HEAD_REVISION


def test_migrated_schema_matches_the_code(fresh_store_url: str) -> None:
    store = open_store(fresh_store_url)
    with store.read() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(context, metadata)
    assert diff == []
    assert current_revision(store) == HEAD_REVISION
    store.dispose()


def test_opening_twice_and_concurrently_is_safe(fresh_store_url: str) -> None:
    store_url = fresh_store_url
    errors: list[BaseException] = []

    def opener() -> None:
        try:
            open_store(store_url).dispose()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=opener) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    reopened = open_store(store_url)
    assert current_revision(reopened) == HEAD_REVISION
    reopened.dispose()


def test_times_come_back_aware_utc(store: Store) -> None:
    moment = datetime(2026, 3, 1, 12, 30, tzinfo=UTC)
    with store.begin() as conn:
        conn.execute(
            runs.insert().values(id="r1", stage="sync", status="running", started_at=moment)
        )
    with store.read() as conn:
        started = conn.execute(select(runs.c.started_at)).scalar_one()
    assert started == moment and started.tzinfo is not None


def test_json_keeps_integers_past_64_bits_exact(store: Store) -> None:
    wide = {"id": 2**70 + 1, "nested": [{"n": -(2**65)}], "small": 1}
    moment = datetime(2026, 3, 1, 12, 30, tzinfo=UTC)
    with store.begin() as conn:
        for run_id, detail in (("wide", wide), ("plain", {"small": 1})):
            conn.execute(runs.insert().values(id=run_id, stage="sync", status="succeeded",
                                              started_at=moment, counts=detail))  # fmt: skip
    with store.read() as conn:
        found = dict(conn.execute(select(runs.c.id, runs.c.counts)).tuples().all())
    assert found == {"wide": wide, "plain": {"small": 1}}
    assert isinstance(found["wide"]["id"], int)


def test_unreachable_postgres_is_a_clear_store_error() -> None:
    with pytest.raises(StoreError, match="cannot reach the store at postgresql"):
        open_store("postgresql+psycopg://postgres@127.0.0.1:1/test?connect_timeout=2")


@pytest.mark.parametrize(
    "url", ["mysql://x@y/z", "not a url", "sqlite:////no/such/folder/x.db"], ids=str
)
def test_bad_store_url_is_a_config_error(url: str) -> None:
    with pytest.raises(ConfigError, match="store: "):
        open_store(url)
