"""`crm-hub run`: every stage that exists, in order (DESIGN.md). Stages never call each other;
this is the one place that calls them one after the other. Prefect flows call the same stage
entry points as tasks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from crm_hub.config import HubConfig
from crm_hub.errors import ConfigError, CrmHubError
from crm_hub.store import Store
from crm_hub.sync import SyncProgress, SyncResult, sync_source

if TYPE_CHECKING:  # the map stage imports pandas (normalisers): loaded only when it runs
    from crm_hub.mapping import MapResult

__all__ = ["RunSummary", "run_pipeline", "sync_sources"]


@dataclass(slots=True)
class RunSummary:
    """What one `crm-hub run` did, stage by stage."""

    sync: list[SyncResult] = field(default_factory=list)
    map: list[MapResult] = field(default_factory=list)
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
    """Run every stage in order: sync, then map (later: resolve, profile, segments, publish).

    Map runs for every enabled source with a ``mapping:``, even one whose sync failed: what
    landed before the failure is good and gets mapped.
    """
    from crm_hub.mapping import map_all

    summary = sync_sources(store, config, on_progress=on_progress)
    mapped = map_all(store, config)
    summary.map.extend(mapped.results)
    summary.failures.extend(mapped.failures)
    return summary
