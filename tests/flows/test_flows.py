"""The Prefect flows on a real `crm-hub init` project, under one Prefect test harness.

The flows must leave the store exactly as `crm-hub run` does, keep going past a failed source,
stop after a failed stage, retry only what may pass, and alert on failure.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from sqlalchemy import func, select

from crm_hub.config import load_config
from crm_hub.errors import StoreError
from crm_hub.pipeline import STAGES, run_pipeline
from crm_hub.store import Store, open_store
from crm_hub.store.leases import hold_lease
from crm_hub.store.schema import (
    events,
    invoices,
    master_links,
    masters,
    order_lines,
    orders,
    payments,
    raw_records,
    rejected_records,
    runs,
    source_customers,
)
from flows.pipeline import crm_hub_pipeline, stages_flow, sync_source_flow

# One worker runs them all, around one harness (started for this module, then stopped).
pytestmark = [
    pytest.mark.slow,
    pytest.mark.usefixtures("prefect_harness"),
    pytest.mark.xdist_group("prefect"),
]


def snapshot(store: Store) -> dict[str, Any]:
    """What a run leaves in the store, free of run ids, times and generated master ids."""
    with store.read() as conn:
        counted = {
            table.name: conn.execute(select(func.count()).select_from(table)).scalar_one()
            for table in (
                raw_records, source_customers, orders, order_lines, invoices, payments, events,
                rejected_records, masters, master_links,
            )
        }  # fmt: skip
        raw = set(
            conn.execute(
                select(raw_records.c.source, raw_records.c.record_key, raw_records.c.content_hash)
            ).tuples()
        )
        people: dict[str, set[tuple[str, str]]] = {}
        for source, source_id, master_id in conn.execute(
            select(master_links.c.source, master_links.c.source_id, master_links.c.master_id)
        ):
            people.setdefault(master_id, set()).add((source, source_id))
        stages = sorted(
            conn.execute(select(runs.c.stage, runs.c.source, runs.c.status)).tuples(),
            key=lambda row: tuple(str(v) for v in row),
        )
    return {
        "counts": counted,
        "raw": raw,
        "people": {frozenset(members) for members in people.values()},
        "runs": stages,
    }


@contextmanager
def project_store(project: Path) -> Iterator[Store]:
    store = open_store(load_config(project / "hub.yaml").store)
    try:
        yield store
    finally:
        store.dispose()


@pytest.fixture
def opened(project: Path) -> Iterator[Store]:
    with project_store(project) as store:
        yield store


def prefect_client() -> Any:
    from prefect.client.orchestration import get_client

    return get_client(sync_client=True)


@pytest.mark.timeout(60)
def test_pipeline_flow_leaves_the_store_as_crm_hub_run_does(
    project: Path, opened: Store, tmp_path: Path, init_project: Callable[[Path, str], Path]
) -> None:
    expected_hub = init_project(tmp_path / "by_run", f"sqlite:///{tmp_path / 'by_run.db'}")
    expected_config = load_config(expected_hub)
    expected_store = open_store(expected_config.store)
    try:
        assert run_pipeline(expected_store, expected_config).ok
        expected = snapshot(expected_store)
    finally:
        expected_store.dispose()

    state = crm_hub_pipeline(str(project / "hub.yaml"), return_state=True)
    summary = state.result()

    assert summary["failures"] == []
    assert {name: counts["inserted"] for name, counts in summary["sync"].items()} == {
        "pos_export": 10,
        "pos_orders": 6,
        "newsletter": 5,
    }
    assert set(summary["map"]) == {"pos_export", "pos_orders", "newsletter"}
    assert list(summary["stages"]) == list(STAGES)
    assert snapshot(opened) == expected
    assert expected["counts"]["masters"] > 0
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    with prefect_client() as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(
                flow_run_id=ArtifactFilterFlowRunId(any_=[state.state_details.flow_run_id])
            )
        )
    assert [a.key for a in artifacts] == ["crm-hub-counts"]
    assert "| sync | pos_export | read 10, inserted 10," in str(artifacts[0].data)


# Usually ~7 s; once in CI, releasing a concurrency slot waited past 60 s on Prefect's own
# event loop (threads of earlier flow runs' slot leases still alive in this process).
@pytest.mark.timeout(180)
def test_failed_source_fails_the_flow_runs_the_others_and_alerts(
    sqlite_project: Path, httpserver: HTTPServer, caplog: pytest.LogCaptureFixture
) -> None:
    project = sqlite_project
    (project / "data" / "orders.jsonl").unlink()
    token = "alert-token-7f3a9c"
    hub = project / "hub.yaml"
    hub.write_text(
        hub.read_text()
        + f"\nalerts:\n  webhook:\n    url: {httpserver.url_for('/hooks/' + token)}\n"
    )
    httpserver.expect_oneshot_request(f"/hooks/{token}", method="POST").respond_with_data("ok")

    state = crm_hub_pipeline(str(project / "hub.yaml"), return_state=True)

    assert state.is_failed()
    httpserver.check_assertions()
    (request, _response), *_ = httpserver.log
    alert = request.get_json()
    assert alert["type"] == "crm_hub.run_failed" and alert["run"] == "crm-hub-pipeline"
    assert alert["failures"] == [
        "sync pos_orders: source pos_orders: path 'data/orders.jsonl' matches no file "
        f"(looked for {project / 'data/orders.jsonl'})"
    ]
    assert alert["project"] == str(project) and alert["run_id"]
    with project_store(project) as opened, opened.read() as conn:
        synced = dict(
            conn.execute(select(raw_records.c.source, func.count()).group_by(raw_records.c.source))
            .tuples()
            .all()
        )
        resolved = conn.execute(select(func.count()).select_from(master_links)).scalar_one()
        attempts = conn.execute(
            select(func.count()).where(runs.c.stage == "sync", runs.c.source == "pos_orders")
        ).scalar_one()
    assert synced == {"pos_export": 10, "newsletter": 5}
    assert resolved > 0, "the stages after a failed source still ran"
    assert attempts == 1, "a missing file is not retried"
    logged = [
        f"{record.getMessage()} {getattr(record, 'fields', '')}"
        for record in caplog.records
        if not record.name.startswith("werkzeug")  # the test's own webhook server
    ]
    assert any("run failed" in line and "pos_orders" in line for line in logged)
    assert not [line for line in logged if token in line]


@pytest.mark.timeout(60)
def test_failed_stage_stops_the_stages_after_it(
    sqlite_project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ran: list[str] = []

    def broken(store: Store, config: Any) -> dict[str, Any]:
        ran.append("broken")
        raise StoreError("the store went away")

    def after(store: Store, config: Any) -> dict[str, Any]:
        ran.append("after")
        return {}

    monkeypatch.setitem(STAGES, "broken", broken)
    monkeypatch.setitem(STAGES, "after", after)

    state = stages_flow(str(sqlite_project / "hub.yaml"), return_state=True)

    assert state.is_failed()
    assert ran == ["broken"]
    with pytest.raises(Exception, match="broken: the store went away"):
        state.result()


@pytest.mark.timeout(60)
def test_busy_source_is_retried_until_the_holder_is_done(
    project: Path, opened: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CRM_HUB_FLOWS__RETRIES", "5")
    monkeypatch.setenv("CRM_HUB_FLOWS__RETRY_DELAY_SECONDS", "0.5")
    taken, release = threading.Event(), threading.Event()

    def hold() -> None:
        with hold_lease(opened, "sync:pos_export", "OTHER-RUN"):
            taken.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    assert taken.wait(10)
    threading.Timer(1.0, release.set).start()
    try:
        began = time.monotonic()
        counts = sync_source_flow(str(project / "hub.yaml"), "pos_export")
    finally:
        release.set()
        holder.join()
    assert counts["inserted"] == 10
    assert time.monotonic() - began >= 1.0
    with opened.read() as conn:
        statuses = (
            conn.execute(
                select(runs.c.status).where(runs.c.stage == "sync", runs.c.source == "pos_export")
            )
            .scalars()
            .all()
        )
    assert statuses == ["succeeded"]
    with prefect_client() as client:
        limit = client.read_global_concurrency_limit_by_name("crm-hub-source-pos_export")
    assert limit.limit == 1 and limit.active_slots == 0


@pytest.mark.timeout(60)
def test_config_error_is_never_retried(
    sqlite_project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CRM_HUB_FLOWS__RETRY_DELAY_SECONDS", "30")
    began = time.monotonic()
    state = sync_source_flow(str(sqlite_project / "hub.yaml"), "no_such_source", return_state=True)
    assert state.is_failed()
    assert time.monotonic() - began < 20
