"""hub.yaml models of connector sources: ``type: airbyte``, ``type: singer`` and the native
types (``square``, ``mailchimp``, ``typeform``, ``quickbooks``), registered with the config
loader when this module is imported (the sync registry imports it).

``config:`` is passed to the connector as it is; put secrets in ``${ENV}`` references: their
values are redacted from every log line and error message, and the model's repr hides the whole
mapping.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator

from crm_hub.config.models import SourceConfig, register_source_type

__all__ = [
    "NATIVE_TYPES",
    "AirbyteSourceConfig",
    "CommandSourceConfig",
    "NativeSourceConfig",
    "SingerSourceConfig",
    "TypeformSourceConfig",
]

NATIVE_TYPES = ("square", "mailchimp", "typeform", "quickbooks")


def _keys_as_lists(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: [v] if isinstance(v, str) else v for k, v in value.items()}
    return value


class _ConnectorFields(SourceConfig):
    """Keys of every connector source."""

    config: dict[str, Any] = Field(
        default_factory=dict,
        repr=False,
        description="The connector's own configuration, passed as it is; secrets as ${ENV}.",
    )
    streams: list[str] | None = Field(
        None, description="Streams to read (default: every stream the connector offers)."
    )
    primary_key: dict[str, list[str]] = Field(
        default_factory=dict,
        description="Primary key per stream, e.g. {events: [id]}: needed for a stream whose "
        "catalog has none; wins over the catalog's.",
    )

    @field_validator("primary_key", mode="before")
    @classmethod
    def _one_key_as_list(cls, value: Any) -> Any:
        return _keys_as_lists(value)


class CommandSourceConfig(_ConnectorFields):
    """Keys of a connector run as a program (Airbyte source, Singer tap)."""

    command: list[str] = Field(
        min_length=1,
        description="The connector's executable and fixed arguments, e.g. "
        "[.venv-connectors/faker/bin/source-faker]; a path with / is relative to hub.yaml's "
        "folder, a bare name is looked up on PATH.",
    )
    timeout_seconds: float | None = Field(
        900.0,
        gt=0,
        description="Kill the connector as hung when it writes nothing for this long "
        "(null: never).",
    )
    max_seconds: float | None = Field(
        None,
        gt=0,
        description="Kill the connector when a run takes longer than this; the next sync "
        "resumes from the last saved state (null: no limit).",
    )

    @field_validator("command", mode="before")
    @classmethod
    def _command_as_list(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value


class AirbyteSourceConfig(CommandSourceConfig):
    """Any Airbyte source, run as a program (``spec``/``discover``/``read`` protocol)."""

    type: Literal["airbyte"] = "airbyte"


class SingerSourceConfig(CommandSourceConfig):
    """Any Singer tap, run as a program (``--discover``, ``--catalog``, ``--state``)."""

    type: Literal["singer"] = "singer"
    catalog_option: Literal["catalog", "properties"] = Field(
        "catalog",
        description="How the tap takes its catalog: --catalog (current taps) or --properties "
        "(older singer-io taps).",
    )


class NativeSourceConfig(_ConnectorFields):
    """A connector shipped with crm-hub (an airbyte-cdk declarative manifest), run in-process."""

    type: Literal["square", "mailchimp", "typeform", "quickbooks"]
    manifest: str | None = Field(
        None,
        description="Manifest to run instead of the bundled connectors/source_<type>/"
        "manifest.yaml (relative to hub.yaml), e.g. a patched copy.",
    )


class TypeformSourceConfig(NativeSourceConfig):
    """``type: typeform``: the native connector, and optionally the receiver of the form's
    webhook (``POST /events/typeform`` of ``crm-hub serve``), which lands each response as the
    next sync would."""

    webhook_secret: SecretStr | None = Field(
        None,
        description="Secret of the Typeform webhook pointed at crm-hub serve "
        "(POST /events/typeform); write it as ${ENV}. Unset: this source takes no webhooks.",
    )
    webhook_max_age_seconds: float = Field(
        3600.0,
        gt=0,
        description="Refuse a webhook whose response was submitted longer ago than this "
        "(a replay); the next sync still reads the response.",
    )


register_source_type("airbyte", AirbyteSourceConfig)
register_source_type("singer", SingerSourceConfig)
for _native in NATIVE_TYPES:
    register_source_type(_native, NativeSourceConfig)
register_source_type("typeform", TypeformSourceConfig)
