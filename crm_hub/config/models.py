"""The shape of hub.yaml, as pydantic models (strict: unknown keys are errors).

Source types are name-keyed: each ``type:`` value names a model in :data:`SOURCE_TYPES`, filled
by :func:`register_source_type`. The sync stage keeps its own registry of readers by the same
names.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    StringConstraints,
    field_validator,
    model_validator,
)

from crm_hub.config.destinations import DestinationConfig

__all__ = [
    "SOURCE_TYPES",
    "AlertsConfig",
    "CampaignConfig",
    "EmailAlertConfig",
    "WebhookAlertConfig",
    "FileSourceConfig",
    "HubConfig",
    "ScheduleConfig",
    "SourceConfig",
    "register_source_type",
]

# Names of sources, streams, schedules: safe in SQL, file names and URLs.
Name = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,62}$")]
NAME_RULE = "a name is lower-case letters, digits and _, starting with a letter"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SourceConfig(_Strict):
    """Keys every source has, whatever its type."""

    type: str = Field(description="Connector type: file, or a registered connector name.")
    mapping: str | None = Field(
        None, description="Mapping file (relative to hub.yaml) used by the map stage."
    )
    enabled: bool = Field(True, description="Set false to keep the config but skip the source.")


class FileSourceConfig(SourceConfig):
    """A CSV or JSONL file (or a glob of them) read as one stream."""

    type: Literal["file"] = Field("file", description="Always file for this source type.")
    path: str = Field(description="File path or glob, relative to hub.yaml, e.g. data/*.csv.")
    stream: Name = Field(description="Stream name the records land under, e.g. customers.")
    primary_key: list[str] = Field(
        min_length=1, description="Column(s) that identify a record, e.g. [id]."
    )
    cursor_field: str | None = Field(
        None,
        description="Column that grows when a record changes (e.g. updated_at). When set, "
        "records at or below the saved cursor are skipped; otherwise unchanged files are skipped.",
    )
    format: Literal["auto", "csv", "jsonl"] = Field(
        "auto", description="File format; auto picks by extension (.csv, .jsonl/.ndjson)."
    )
    delimiter: str = Field(",", min_length=1, max_length=1, description="CSV field delimiter.")
    quotechar: str = Field('"', min_length=1, max_length=1, description="CSV quote character.")
    encoding: str = Field("utf-8", description="Text encoding; a UTF-8 BOM is always removed.")

    @field_validator("primary_key", mode="before")
    @classmethod
    def _one_key_as_list(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, value: str) -> str:
        import codecs

        try:
            codecs.lookup(value)
        except LookupError:
            raise ValueError(f"unknown encoding {value!r} (e.g. utf-8, latin-1, cp1252)") from None
        return value


SOURCE_TYPES: dict[str, type[SourceConfig]] = {}


def register_source_type(name: str, model: type[SourceConfig]) -> None:
    """Make ``type: name`` valid in hub.yaml, validated by ``model``."""
    SOURCE_TYPES[name] = model


register_source_type("file", FileSourceConfig)


class ScheduleConfig(_Strict):
    """When a flow runs (used by the Prefect deployments)."""

    cron: str = Field(description="Cron expression, e.g. '*/15 * * * *'.")
    run: Literal["run", "sync"] = Field("run", description="What to run: the whole loop or sync.")
    sources: list[str] = Field(
        default_factory=list, description="Sources to sync (empty: all enabled sources)."
    )
    timezone: str = Field(
        "UTC", description="IANA time zone the cron is read in, e.g. Europe/London (DST-aware)."
    )

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {value!r} (an IANA name, e.g. UTC, Europe/London)"
            ) from None
        return value


class WebhookAlertConfig(_Strict):
    """A URL that receives a JSON POST when a run fails (Slack, Teams, an incident tool...)."""

    url: SecretStr = Field(
        description="Receiver URL; it often holds a token: write it as ${ENV}. Never logged."
    )
    headers: dict[str, SecretStr] = Field(
        default_factory=dict, description="Extra request headers (e.g. Authorization: ${ENV})."
    )
    timeout_seconds: float = Field(10.0, gt=0, le=120, description="Give up after this long.")


class EmailAlertConfig(_Strict):
    """An e-mail sent through an SMTP server when a run fails."""

    to: list[str] = Field(min_length=1, description="Recipients, e.g. [ops@cafe.example].")
    sender: str = Field(description="From address, e.g. crm-hub@cafe.example.")
    smtp_host: str = Field(description="SMTP server host name.")
    smtp_port: int = Field(587, ge=1, le=65535, description="SMTP port (587 with STARTTLS).")
    starttls: bool = Field(True, description="Upgrade the connection with STARTTLS.")
    username: str | None = Field(None, description="SMTP user, when the server needs a login.")
    password: SecretStr | None = Field(None, description="SMTP password: write it as ${ENV}.")
    timeout_seconds: float = Field(10.0, gt=0, le=120, description="Give up after this long.")


class AlertsConfig(_Strict):
    """Where a failed run is reported, besides the error log line (each part optional)."""

    webhook: WebhookAlertConfig | None = Field(None, description="POST a JSON alert here.")
    email: EmailAlertConfig | None = Field(None, description="Send an alert e-mail.")


class CampaignConfig(_Strict):
    """What a marketing campaign cost: the cost per acquisition of `crm-hub report campaigns`."""

    cost: Decimal = Field(ge=0, description="What the campaign cost, e.g. 120.00.")
    currency: str = Field(
        pattern=r"^[A-Z]{3}$", description="ISO 4217 currency of the cost, e.g. GBP."
    )


class HubConfig(_Strict):
    """The whole of hub.yaml, after ${ENV} substitution and validation."""

    version: Literal[1] = Field(1, description="Schema version of hub.yaml.")
    store: str = Field(
        "sqlite:///crm-hub.db",
        description="SQLAlchemy URL of the store: sqlite:///file.db or "
        "postgresql+psycopg://user@host/db.",
    )
    sources: dict[Name, SourceConfig] = Field(default_factory=dict, description="Sources by name.")
    destinations: dict[Name, DestinationConfig] = Field(
        default_factory=dict, description="Destinations by name (publish stage), typed by `type`."
    )
    schedules: dict[Name, ScheduleConfig] = Field(
        default_factory=dict, description="Schedules by name."
    )
    alerts: AlertsConfig = Field(
        default_factory=AlertsConfig, description="Where failed runs are reported."
    )
    segments: str = Field(
        "mappings/segments.yaml",
        description="Segment definitions file (relative to hub.yaml), read by the segments stage.",
    )
    campaigns: dict[str, CampaignConfig] = Field(
        default_factory=dict,
        description="Campaign costs by campaign id or UTM tag, e.g. {spring: {cost: 120, "
        "currency: GBP}} (crm-hub report campaigns).",
    )
    base_dir: Path = Field(Path("."), exclude=True, description="Folder holding hub.yaml.")

    @model_validator(mode="after")
    def _echo_sources_exist(self) -> HubConfig:
        for name, destination in self.destinations.items():
            if destination.source is not None and destination.source not in self.sources:
                known = ", ".join(sorted(self.sources)) or "none"
                raise ValueError(
                    f"destinations.{name}.source: no source named {destination.source!r} "
                    f"(sources: {known})"
                )
        return self

    def resolve_path(self, relative: str) -> Path:
        """A path from the config, relative to the folder holding hub.yaml."""
        path = Path(relative).expanduser()
        return path if path.is_absolute() else self.base_dir / path

    def enabled_sources(self, names: list[str] | None = None) -> dict[str, SourceConfig]:
        """The sources to run: the named ones, or every enabled one."""
        if names:
            return {name: self.sources[name] for name in names}
        return {name: cfg for name, cfg in self.sources.items() if cfg.enabled}
