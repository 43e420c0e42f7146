"""Process settings from the environment: ``CRM_HUB_<FIELD>`` or ``CRM_HUB_<GROUP>__<FIELD>``.

hub.yaml says *what* to sync; these settings say *how this process runs* (where its config is,
how it logs, how big its batches are). They are checked at start-up so a bad value fails before
any work starts.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from crm_hub.errors import ConfigError

__all__ = ["ApiSettings", "FlowSettings", "LogSettings", "Settings", "SyncSettings", "get_settings"]


class LogSettings(BaseModel):
    """How crm-hub logs."""

    level: str = Field("WARNING", description="Log level: DEBUG, INFO, WARNING or ERROR.")
    json_lines: bool = Field(False, description="Write logs as JSON lines instead of key=value.")


class SyncSettings(BaseModel):
    """Tuning of the sync stage."""

    batch_size: int = Field(
        20_000, ge=1, le=1_000_000, description="Records landed per transaction."
    )
    lease_ttl_seconds: float = Field(
        60.0,
        gt=0,
        description="A sync lease not renewed for this long is considered dead and taken over.",
    )


class ApiSettings(BaseModel):
    """The read API (`crm-hub serve`)."""

    default_page_size: int = Field(
        50, ge=1, le=1000, description="Read API page size when a request gives no limit."
    )
    max_page_size: int = Field(
        200, ge=1, le=1000, description="Read API cap on a request's limit (larger ones shrink)."
    )


class FlowSettings(BaseModel):
    """The Prefect flows (`crm-hub deploy`, flows/)."""

    retries: int = Field(
        3, ge=0, le=20, description="Retries of a flow task after a retryable or busy failure."
    )
    retry_delay_seconds: float = Field(
        60.0, ge=0, description="Seconds between a flow task's retries (doubling each time)."
    )


class Settings(BaseSettings):
    """Everything the process reads from its environment."""

    model_config = SettingsConfigDict(
        env_prefix="CRM_HUB_", env_nested_delimiter="__", extra="ignore"
    )

    config: Path = Field(
        Path("hub.yaml"), description="Path of hub.yaml when --config is not given."
    )
    log: LogSettings = Field(default_factory=LogSettings, description="Logging.")
    sync: SyncSettings = Field(default_factory=SyncSettings, description="Sync stage tuning.")
    api: ApiSettings = Field(default_factory=ApiSettings, description="Read API.")
    flows: FlowSettings = Field(default_factory=FlowSettings, description="Prefect flows.")
    secrets_key: SecretStr | None = Field(
        None,
        description=(
            "Fernet key that encrypts the credentials connectors rotate (e.g. QuickBooks refresh "
            "tokens) where the store keeps them; `crm-hub secrets keygen` makes one. To change "
            "keys, give `NEW,OLD`: the first encrypts, every one decrypts. Unset: stored as "
            "plain JSON."
        ),
    )

    @field_validator("secrets_key")
    @classmethod
    def _fernet_keys(cls, value: SecretStr | None) -> SecretStr | None:
        # checked at start-up, so a mistyped key fails before a token is stored with it
        from cryptography.fernet import Fernet

        if value is None:
            return None
        for position, key in enumerate(value.get_secret_value().split(","), start=1):
            try:
                Fernet(key.strip())
            except ValueError:
                raise ValueError(
                    f"key {position} is not a Fernet key (32 url-safe base64 bytes); "
                    "make one with `crm-hub secrets keygen`"
                ) from None
        return value


def get_settings() -> Settings:
    """Read the settings from the environment now (never cached: tests change it).

    Raises:
        ConfigError: a ``CRM_HUB_*`` variable holds a bad value (each one named).
    """
    try:
        return Settings()
    except ValidationError as exc:
        problems = [
            f"CRM_HUB_{'__'.join(str(part) for part in error['loc']).upper()}: {error['msg']}"
            for error in exc.errors()
        ]
        raise ConfigError(
            "bad environment setting:\n  " + "\n  ".join(problems), problems=problems
        ) from None
