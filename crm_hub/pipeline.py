"""`crm-hub run`: every stage that exists, in order (DESIGN.md). Stages never call each other;
this is the one place that calls them one after the other. Prefect flows call the same stage
entry points as tasks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from crm_hub.config import HubConfig
from crm_hub.errors import ConfigError, CrmHubError
from crm_hub.store import Store
from crm_hub.sync import SyncProgress, SyncResult, sync_source

if TYPE_CHECKING:  # the map stage imports pandas (normalisers): loaded only when it runs
    from crm_hub.mapping import MapResult

__all__ = ["STAGES", "RunSummary", "run_pipeline", "sync_sources"]


@dataclass(slots=True)
class RunSummary:
    """What one `crm-hub run` did, stage by stage."""

    sync: list[SyncResult] = field(default_factory=list)
    map: list[MapResult] = field(default_factory=list)
    stages: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Counts of each stage after map (resolve, profile, ...), by stage name."""
    failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every stage and source succeeded."""
        return not self.failures


def sync_sources(
    store: Store,
    config: HubConfig,
    names: list[str] | None = None,
    *,
    wait: float = 0.0,
    on_progress: Callable[[SyncProgress], None] | None = None,
) -> RunSummary:
    """Sync the named sources (default: every enabled one); one failing does not stop the rest."""
    unknown = [name for name in names or [] if name not in config.sources]
    if unknown:
        known = ", ".join(sorted(config.sources)) or "none"
        raise ConfigError(f"no source named {', '.join(unknown)} in hub.yaml (sources: {known})")
    summary = RunSummary()
    for name in config.enabled_sources(names):
        try:
            summary.sync.append(
                sync_source(store, config, name, wait=wait, on_progress=on_progress)
            )
        except CrmHubError as exc:
            summary.failures.append(f"sync {name}: {exc.message}")
    return summary


def run_pipeline(
    store: Store,
    config: HubConfig,
    *,
    on_progress: Callable[[SyncProgress], None] | None = None,
) -> RunSummary:
    """Run every stage in order: sync, map, then the stages on the whole store (`STAGES`).

    Map runs for every enabled source with a ``mapping:``, even one whose sync failed: what
    landed before the failure is good and gets mapped. A later stage that fails stops the ones
    after it (they would read its half-done work).
    """
    from crm_hub.mapping import map_all

    summary = sync_sources(store, config, on_progress=on_progress)
    mapped = map_all(store, config)
    summary.map.extend(mapped.results)
    summary.failures.extend(mapped.failures)
    for name, stage in STAGES.items():
        try:
            summary.stages[name] = stage(store, config)
        except CrmHubError as exc:
            summary.failures.append(f"{name}: {exc.message}")
            break
    return summary


def _resolve(store: Store, config: HubConfig) -> dict[str, Any]:
    from crm_hub.identity.stage import resolve_store

    return resolve_store(store).counts()


def _profile(store: Store, config: HubConfig) -> dict[str, Any]:
    from crm_hub.profile import build_profiles

    return build_profiles(store, config).counts()


def _traits(store: Store, config: HubConfig) -> dict[str, Any]:
    from crm_hub.profile.traits import compute_traits

    return compute_traits(store, config).counts()


def _reports(store: Store, config: HubConfig) -> dict[str, Any]:
    from crm_hub.analytics import compute_reports

    return {name: len(rows) for name, rows in compute_reports(store, config).items()}


def _segments(store: Store, config: HubConfig) -> dict[str, Any]:
    from crm_hub.segments import evaluate_segments

    if (
        "segments" not in config.model_fields_set
        and not config.resolve_path(config.segments).exists()
    ):
        return {"segments": 0}  # a project without segments (the file is optional by default)
    return evaluate_segments(store, config).counts()


def _publish(store: Store, config: HubConfig) -> dict[str, Any]:
    from crm_hub.publish import publish

    results = publish(store, config)
    failed = [
        f"{r.destination}: {r.error}" for r in results if r.status in ("failed", "incomplete")
    ]
    if failed:
        raise CrmHubError("; ".join(failed))
    return {
        "destinations": len(results),
        **{key: sum(getattr(r, key) for r in results) for key in
           ("considered", "sent", "confirmed", "rejected", "unchanged")},
    }  # fmt: skip


STAGES: dict[str, Callable[[Store, HubConfig], dict[str, Any]]] = {
    "resolve": _resolve,
    "profile": _profile,
    "traits": _traits,
    "segments": _segments,
    "reports": _reports,
    "publish": _publish,
}
"""The stages after map, in order; each takes the store and config and returns its counts."""
