"""Prefect flows over the crm-hub stages. Thin: every task calls one stage entry point.

```
crm_hub_pipeline(config_path, sources=None)      the whole loop, like `crm-hub run`
├── sync_source_flow(config_path, source)        one per source  (task: sync-source)
├── map-source task                              one per source with a mapping
└── stages_flow(config_path)                     crm_hub.pipeline.STAGES in order (resolve, ...)
sync_sources_flow(config_path, sources=None)     sync only, for `run: sync` schedules
publish_destination_flow(config_path, destination)  one destination's push, on demand
```

- A failed source does not stop the others (its map still runs: what landed is good); a failed
  stage stops the ones after it. Any failure makes the flow Failed and raises an alert
  (:mod:`crm_hub.alerts`, hub.yaml ``alerts:``).
- Tasks retry only on :class:`RetryableSourceError` and :class:`BusyError`
  (``CRM_HUB_FLOWS__RETRIES``, ``CRM_HUB_FLOWS__RETRY_DELAY_SECONDS``); a ConfigError never.
- One sync or map of a source at a time: each holds the Prefect global concurrency limit
  ``crm-hub-source-<source>`` (created with limit 1 when missing), on top of the store's leases.
- Task results are small count dicts; each top-level flow leaves a markdown artifact of counts.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.concurrency.sync import concurrency
from prefect.context import FlowRunContext
from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

from crm_hub.alerts import Alert, send_failure_alert
from crm_hub.config import HubConfig, load_config
from crm_hub.errors import BusyError, ConfigError, CrmHubError, RetryableSourceError
from crm_hub.pipeline import STAGES
from crm_hub.settings import get_settings
from crm_hub.store import Store, open_store

__all__ = [
    "RunFailedError",
    "crm_hub_pipeline",
    "map_source_task",
    "publish_destination_flow",
    "publish_destination_task",
    "slot_name",
    "stage_task",
    "stages_flow",
    "sync_source_flow",
    "sync_source_task",
    "sync_sources_flow",
]

RETRYABLE = (RetryableSourceError, BusyError)


class RunFailedError(CrmHubError):
    """Part of a flow failed; ``failures`` lists each part as ``RunSummary.failures`` does."""

    def __init__(self, failures: list[str]) -> None:
        super().__init__(f"{len(failures)} failure(s): " + "; ".join(failures))
        self.failures = failures


def slot_name(source: str) -> str:
    """The Prefect global concurrency limit that lets one sync or map of ``source`` run."""
    return f"crm-hub-source-{source}"


def _retryable(task: Any, task_run: Any, state: Any) -> bool:
    """Prefect ``retry_condition_fn``: retry a busy or temporarily failing source, nothing else."""
    error = state.data if isinstance(state.data, BaseException) else None
    if error is None:
        error = state.result(raise_on_failure=False)
    return isinstance(error, RETRYABLE)


def _tuned(task_: Any) -> Any:
    """``task_`` with the retries of this process's settings (read now, not at import)."""
    settings = get_settings().flows
    delays = [settings.retry_delay_seconds * 2**i for i in range(settings.retries)]
    return task_.with_options(retries=settings.retries, retry_delay_seconds=delays or 0)


def _open(config_path: str) -> tuple[HubConfig, Store]:
    config = load_config(config_path)
    return config, open_store(config.store)


_ensured: set[tuple[str, str]] = set()


def _ensure_slot(name: str) -> None:
    """Create the global concurrency limit ``name`` (limit 1) unless the server has it."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate

    with get_client(sync_client=True) as client:
        key = (str(client.api_url), name)
        if key in _ensured:
            return
        try:
            client.read_global_concurrency_limit_by_name(name)
        except ObjectNotFound:
            with contextlib.suppress(ObjectAlreadyExists):  # another run just created it
                client.create_global_concurrency_limit(
                    GlobalConcurrencyLimitCreate(name=name, limit=1)
                )
    _ensured.add(key)


def _one_at_a_time(source: str, call: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    name = slot_name(source)
    _ensure_slot(name)
    with concurrency(name, occupy=1, strict=True):
        return call()


def _source_counts(config_path: str, source: str, stage: Callable[..., Any]) -> dict[str, Any]:
    """Run a per-source stage entry point on its own store connection; its counts."""
    config, store = _open(config_path)
    try:
        result = stage(store, config, source)
    finally:
        store.dispose()
    return {"source": source, "run_id": result.run_id, "status": result.status, **result.counts()}


@task(name="sync-source", task_run_name="sync {source}", cache_policy=NO_CACHE,
      retry_condition_fn=_retryable)  # fmt: skip
def sync_source_task(config_path: str, source: str) -> dict[str, Any]:
    """Sync one source (``crm_hub.sync.sync_source``); returns its counts."""
    from crm_hub.sync import sync_source

    return _source_counts(config_path, source, sync_source)


@task(name="map-source", task_run_name="map {source}", cache_policy=NO_CACHE,
      retry_condition_fn=_retryable)  # fmt: skip
def map_source_task(config_path: str, source: str) -> dict[str, Any]:
    """Map one source's new raw records (``crm_hub.mapping.map_source``); returns its counts."""
    from crm_hub.mapping import map_source

    return _source_counts(config_path, source, map_source)


@task(name="stage", task_run_name="{stage}", cache_policy=NO_CACHE,
      retry_condition_fn=_retryable)  # fmt: skip
def stage_task(config_path: str, stage: str) -> dict[str, Any]:
    """Run one stage of ``crm_hub.pipeline.STAGES`` on the whole store; returns its counts."""
    config, store = _open(config_path)
    try:
        return STAGES[stage](store, config)
    finally:
        store.dispose()


@task(name="publish-destination", task_run_name="publish {destination}", cache_policy=NO_CACHE,
      retry_condition_fn=_retryable)  # fmt: skip
def publish_destination_task(config_path: str, destination: str) -> dict[str, Any]:
    """Push what changed to one destination (``crm_hub.publish.publish_destination``)."""
    from crm_hub.publish import publish_destination

    config, store = _open(config_path)
    try:
        result = publish_destination(store, config, destination)
    finally:
        store.dispose()
    if result.status == "failed":
        raise CrmHubError(f"publish {destination}: {result.error or 'failed'}")
    return {"destination": destination, "run_id": result.run_id, "status": result.status,
            **result.counts()}  # fmt: skip


@flow(name="crm-hub-publish-destination", flow_run_name="publish {destination}")
def publish_destination_flow(config_path: str, destination: str) -> dict[str, Any]:
    """Push to one destination, one push at a time per destination, retried when busy."""
    name = f"crm-hub-destination-{destination}"
    _ensure_slot(name)
    with concurrency(name, occupy=1, strict=True):
        result: dict[str, Any] = _tuned(publish_destination_task)(config_path, destination)
    return result


@flow(name="crm-hub-sync-source", flow_run_name="sync {source}")
def sync_source_flow(config_path: str, source: str) -> dict[str, Any]:
    """Sync one source, one run at a time per source, with retries when busy or failing."""
    return _one_at_a_time(source, lambda: _tuned(sync_source_task)(config_path, source))


def _map_one(config_path: str, source: str) -> dict[str, Any]:
    return _one_at_a_time(source, lambda: _tuned(map_source_task)(config_path, source))


@flow(name="crm-hub-stages")
def stages_flow(config_path: str) -> dict[str, dict[str, Any]]:
    """Run every stage of ``crm_hub.pipeline.STAGES`` in order; a failure stops the rest.

    Raises:
        RunFailedError: naming the stage that failed (``resolve: ...``).
    """
    done: dict[str, dict[str, Any]] = {}
    for name in list(STAGES):
        try:
            done[name] = _tuned(stage_task)(config_path, name)
        except Exception as exc:
            raise RunFailedError([f"{name}: {_message(exc)}"]) from exc
    return done


@flow(name="crm-hub-sync")
def sync_sources_flow(config_path: str, sources: list[str] | None = None) -> dict[str, Any]:
    """Sync the named sources (default: every enabled one); one failing does not stop the rest."""
    config = load_config(config_path)
    summary: dict[str, Any] = {"sync": {}, "failures": []}
    for name in _sources(config, sources):
        try:
            summary["sync"][name] = sync_source_flow(config_path, name)
        except Exception as exc:
            summary["failures"].append(f"sync {name}: {_message(exc)}")
    _finish(config, "crm-hub-sync", summary)
    return summary


@flow(name="crm-hub-pipeline")
def crm_hub_pipeline(config_path: str, sources: list[str] | None = None) -> dict[str, Any]:
    """The whole loop, as ``crm-hub run``: sync each source, map each, then every stage.

    A failed source does not stop the other sources, and its map still runs; a failed stage
    stops the stages after it. Any failure fails the flow and sends an alert.
    """
    config = load_config(config_path)
    names = _sources(config, sources)
    summary: dict[str, Any] = {"sync": {}, "map": {}, "stages": {}, "failures": []}
    failures: list[str] = summary["failures"]
    for name in names:
        try:
            summary["sync"][name] = sync_source_flow(config_path, name)
        except Exception as exc:
            failures.append(f"sync {name}: {_message(exc)}")
    for name in names:
        if not config.sources[name].mapping:
            continue
        try:
            summary["map"][name] = _map_one(config_path, name)
        except Exception as exc:
            failures.append(f"map {name}: {_message(exc)}")
    try:
        summary["stages"] = stages_flow(config_path)
    except RunFailedError as exc:
        failures.extend(exc.failures)
    except Exception as exc:
        failures.append(f"stages: {_message(exc)}")
    _finish(config, "crm-hub-pipeline", summary)
    return summary


def _sources(config: HubConfig, names: list[str] | None) -> list[str]:
    unknown = [name for name in names or [] if name not in config.sources]
    if unknown:
        known = ", ".join(sorted(config.sources)) or "none"
        raise ConfigError(f"no source named {', '.join(unknown)} in hub.yaml (sources: {known})")
    return list(config.enabled_sources(names or None))


def _message(exc: BaseException) -> str:
    return exc.message if isinstance(exc, CrmHubError) else f"{type(exc).__name__}: {exc}"


def _finish(config: HubConfig, run: str, summary: dict[str, Any]) -> None:
    """Leave the counts as an artifact; on failures, alert and fail the flow."""
    logger = get_run_logger()
    _artifact(summary)
    failures: list[str] = summary["failures"]
    if not failures:
        logger.info("crm-hub: every part succeeded")
        return
    context = FlowRunContext.get()
    flow_run = context.flow_run if context else None
    from prefect.runtime import flow_run as runtime

    alert = Alert(
        run=run,
        failures=failures,
        project=str(config.base_dir),
        run_id=str(flow_run.id) if flow_run else None,
        url=runtime.ui_url,
    )
    for problem in send_failure_alert(config.alerts, alert):
        logger.error(problem)
    raise RunFailedError(failures)


def _artifact(summary: dict[str, Any]) -> None:
    from prefect.artifacts import create_markdown_artifact

    lines = ["| part | name | counts |", "|---|---|---|"]
    for part in ("sync", "map", "stages"):
        for name, counts in summary.get(part, {}).items():
            shown = ", ".join(
                f"{key} {value}"
                for key, value in counts.items()
                if isinstance(value, int | float) and not isinstance(value, bool)
                and key not in ("seconds",)
            )  # fmt: skip
            lines.append(f"| {part} | {name} | {shown} |")
    for failure in summary["failures"]:
        lines.append(f"| failed | | {failure.replace('|', '/')} |")
    create_markdown_artifact(
        markdown="\n".join(lines), key="crm-hub-counts", description="crm-hub run counts"
    )
