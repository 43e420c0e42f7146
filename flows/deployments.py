"""hub.yaml ``schedules:`` → Prefect deployments, served by ``crm-hub deploy``.

One deployment per schedule, named after it: ``run: run`` deploys :func:`crm_hub_pipeline`,
``run: sync`` deploys :func:`sync_sources_flow`; ``sources:`` becomes the ``sources``
parameter, ``cron`` + ``timezone`` the schedule. A deployment runs one flow run at a time: a run
due while the previous one still runs is cancelled (the next one catches up, stages are
incremental).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from crm_hub.config import load_config
from crm_hub.errors import ConfigError

__all__ = ["DeploymentPlan", "build_deployments", "plan_deployments", "require_api", "serve"]

SERVER_HINT = (
    "start a Prefect server: `prefect server start --host 127.0.0.1 --port 4200` (in another "
    "terminal or as a service), then `export PREFECT_API_URL=http://127.0.0.1:4200/api` and run "
    "`crm-hub deploy` again"
)


@dataclass(frozen=True, slots=True)
class DeploymentPlan:
    """What one schedule becomes: a deployment of ``flow`` (crm-hub-pipeline or crm-hub-sync)."""

    name: str
    flow: str
    cron: str
    timezone: str
    parameters: dict[str, Any]

    def next_runs(self, count: int = 3, after: datetime | None = None) -> list[datetime]:
        """The next ``count`` times the schedule fires, in its time zone."""
        from croniter import croniter

        zone = ZoneInfo(self.timezone)
        start = (after or datetime.now(zone)).astimezone(zone)
        it = croniter(self.cron, start)
        return [it.get_next(datetime) for _ in range(count)]


def plan_deployments(config_path: Path | str) -> list[DeploymentPlan]:
    """Read hub.yaml and say which deployments its ``schedules:`` make (no Prefect needed).

    Raises:
        ConfigError: hub.yaml is wrong, or a cron expression is invalid (naming the schedule).
    """
    from croniter import croniter

    path = Path(config_path).resolve()
    config = load_config(path)
    plans = []
    for name, schedule in config.schedules.items():
        if not croniter.is_valid(schedule.cron):
            raise ConfigError(
                f"{path.name} schedules.{name}.cron: {schedule.cron!r} is not a cron expression "
                "(five fields: minute hour day month weekday, e.g. '*/15 * * * *')"
            )
        parameters: dict[str, Any] = {"config_path": str(path)}
        if schedule.sources:
            parameters["sources"] = list(schedule.sources)
        plans.append(
            DeploymentPlan(
                name=name,
                flow="crm-hub-pipeline" if schedule.run == "run" else "crm-hub-sync",
                cron=schedule.cron,
                timezone=schedule.timezone,
                parameters=parameters,
            )
        )
    return plans


def build_deployments(config_path: Path | str) -> list[Any]:
    """The Prefect ``RunnerDeployment`` objects for hub.yaml's schedules (no server needed)."""
    from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy
    from prefect.schedules import Cron
    from prefect.types.entrypoint import EntrypointType

    from flows.pipeline import crm_hub_pipeline, sync_sources_flow

    flows = {"crm-hub-pipeline": crm_hub_pipeline, "crm-hub-sync": sync_sources_flow}
    deployments = []
    for plan in plan_deployments(config_path):
        deployments.append(
            flows[plan.flow].to_deployment(
                name=plan.name,
                schedule=Cron(plan.cron, timezone=plan.timezone),
                parameters=plan.parameters,
                concurrency_limit=ConcurrencyLimitConfig(
                    limit=1, collision_strategy=ConcurrencyLimitStrategy.CANCEL_NEW
                ),
                tags=["crm-hub"],
                description=f"hub.yaml schedule {plan.name}: {plan.cron} ({plan.timezone})",
                entrypoint_type=EntrypointType.MODULE_PATH,
            )
        )
    return deployments


def require_api() -> str:
    """The Prefect API URL this process talks to, checked to answer.

    Raises:
        ConfigError: PREFECT_API_URL is not set (an ephemeral server would never schedule a
            run) or the server does not answer; the message says how to start one.
    """
    import httpx
    from prefect.settings import PREFECT_API_URL

    url = PREFECT_API_URL.value()
    if not url:
        raise ConfigError(
            "PREFECT_API_URL is not set: without a Prefect server, schedules never fire; "
            + SERVER_HINT
        )
    try:
        httpx.get(f"{url.rstrip('/')}/health", timeout=5).raise_for_status()
    except httpx.HTTPError as exc:
        raise ConfigError(
            f"the Prefect server at PREFECT_API_URL={url} does not answer "
            f"({type(exc).__name__}); " + SERVER_HINT
        ) from None
    return str(url)


def serve(config_path: Path | str) -> None:
    """Register the deployments and run their schedules in this process until Ctrl-C."""
    from prefect import serve as prefect_serve

    require_api()
    deployments = build_deployments(config_path)
    if not deployments:
        raise ConfigError(f"{Path(config_path).name}: no schedules: nothing to deploy")
    prefect_serve(*deployments)
