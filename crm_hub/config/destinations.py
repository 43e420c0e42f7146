"""hub.yaml ``destinations:``: where the publish stage pushes profiles, one typed model per
``type:`` (a discriminated union: ``mailchimp``, ``hubspot``, ``webhook``, ``file``, ``sql``,
``singer``).

Keys every destination has: which people (``segments``) and fields (``fields``) go, the field
``mapping`` to the destination's names, the ``mode`` (``upsert``, ``update-only``, ``mirror``),
``batch_size``, ``rate_limit`` and the consent ``channel`` a person must have granted.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

__all__ = [
    "DESTINATION_TYPES",
    "DestinationConfig",
    "FileDestination",
    "HubSpotDestination",
    "MailchimpDestination",
    "SingerDestination",
    "SqlDestination",
    "WebhookDestination",
]

Mode = Literal["upsert", "update-only", "mirror"]
Channel = Literal["email", "sms", "none"]


def hub_fields() -> set[str]:
    """Field names a destination may send: profile and trait columns, plus ``segments``."""
    from crm_hub.store.schema import profiles, traits

    skip = {"provenance", "updated_at", "change_seq", "run_id", "computed_at", "values_hash"}
    names = {c.name for c in (*profiles.columns, *traits.columns)} - skip
    return names | {"segments"}


class _Destination(BaseModel):
    """Keys of every destination."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = Field(True, description="Set false to keep the config but skip publishing.")
    segments: list[str] = Field(
        default_factory=list,
        description="Send the members of these segments (default: every active profile); their "
        "current segments go in the `segments` field.",
    )
    fields: list[str] = Field(
        default_factory=lambda: ["email", "first_name", "last_name", "phone"],
        description="Profile and trait fields to send (master_id always goes as the key).",
    )
    mapping: dict[str, str] = Field(
        default_factory=dict,
        description="Hub field → the destination's name for it (merge tag, property, column).",
    )
    mode: Mode = Field(
        "upsert",
        description="upsert: create or update; update-only: never create, only update people "
        "already sent; mirror: also remove people who left every listed segment.",
    )
    batch_size: int = Field(
        100, ge=1, le=10_000, description="Records per batch (one commit each)."
    )
    rate_limit: float | None = Field(
        None, gt=0, description="At most this many records per second (default: no limit)."
    )
    channel: Channel = Field(
        "none",
        description="Consent channel a person must have granted to be sent (email, sms, none); "
        "an opt-out on it sends the unsubscribe to a destination that has the person.",
    )
    stream: str = Field("profiles", description="Stream name of the records sent.")
    source: str | None = Field(
        None,
        description="The hub.yaml source that reads this destination back (e.g. the mailchimp "
        "source of the same audience): what the hub wrote is recognised there as its own echo, "
        "not new evidence.",
    )

    @field_validator("fields")
    @classmethod
    def _known_fields(cls, value: list[str]) -> list[str]:
        known = hub_fields()
        unknown = [name for name in value if name not in known]
        if unknown:
            raise ValueError(
                f"unknown field(s) {', '.join(unknown)}; fields are profile or trait columns, "
                "e.g. email, first_name, total_spend, segments"
            )
        return value

    @model_validator(mode="after")
    def _mapping_names_sent_fields(self) -> _Destination:
        extra = sorted(set(self.mapping) - set(self.fields) - {"master_id"})
        if extra:
            raise ValueError(f"mapping names field(s) not in `fields`: {', '.join(extra)}")
        return self

    def target_options(self) -> dict[str, Any]:
        """Extra target config keys (overridden by the Singer-target types)."""
        return {}


class _TargetTuning(BaseModel):
    """Retry tuning passed to the crm-hub Singer targets."""

    timeout_seconds: float = Field(30, gt=0, description="Timeout of one request, seconds.")
    max_attempts: int = Field(8, ge=1, description="Tries per request on 429, 5xx, timeouts.")
    backoff_seconds: float = Field(0.5, gt=0, description="First backoff step, seconds.")
    backoff_max_seconds: float = Field(60, gt=0, description="Longest backoff wait, seconds.")
    time_budget_seconds: float = Field(3600, gt=0, description="Total time of one push, seconds.")

    def tuning(self) -> dict[str, Any]:
        """The tuning keys as the target takes them."""
        keys = ("timeout_seconds", "max_attempts", "backoff_seconds", "backoff_max_seconds",
                "time_budget_seconds")  # fmt: skip
        return {key: getattr(self, key) for key in keys}


class MailchimpDestination(_TargetTuning, _Destination):
    """One Mailchimp audience (target-crmhub-mailchimp): ``mapping`` is field → merge tag."""

    type: Literal["mailchimp"] = Field(description="mailchimp")
    api_key: SecretStr = Field(description="Mailchimp API key (secret: write it as ${ENV}).")
    list_id: str = Field(description="Audience id.")
    base_url: str | None = Field(None, description="API root override (the sandbox's URL).")
    tag_prefix: str = Field("", description="Prefix of the tags the hub owns, e.g. 'hub:'.")
    channel: Channel = Field("email", description="Consent channel (default email).")

    def target_options(self) -> dict[str, Any]:
        """Target config keys of this destination."""
        merge = {tag: field for field, tag in self.mapping.items()}
        options: dict[str, Any] = {
            "api_key": self.api_key.get_secret_value(),
            "list_id": self.list_id,
            "merge_fields": merge or {"FNAME": "first_name", "LNAME": "last_name"},
            "tag_prefix": self.tag_prefix,
            **self.tuning(),
        }
        if self.base_url:
            options["base_url"] = self.base_url
        return options


class HubSpotDestination(_TargetTuning, _Destination):
    """HubSpot contacts (target-crmhub-hubspot): ``mapping`` is field → contact property."""

    type: Literal["hubspot"] = Field(description="hubspot")
    access_token: SecretStr = Field(description="Private-app token (secret: write it as ${ENV}).")
    base_url: str | None = Field(None, description="API root override (the sandbox's URL).")
    segment_lists: dict[str, str] = Field(
        default_factory=dict, description="Segment name → id of a manual contact list."
    )
    channel: Channel = Field("email", description="Consent channel (default email).")
    batch_size: int = Field(100, ge=1, le=100, description="Records per batch (HubSpot: ≤ 100).")
    subscription_ids: list[str] = Field(
        default_factory=list,
        description="Subscription types an opt-out unsubscribes from (default: every active one).",
    )
    legal_basis: str | None = Field(
        None, description="legalBasis sent with unsubscribes (GDPR-enabled portals)."
    )

    def target_options(self) -> dict[str, Any]:
        """Target config keys of this destination."""
        properties = {prop: field for field, prop in self.mapping.items()}
        options: dict[str, Any] = {
            "access_token": self.access_token.get_secret_value(),
            "properties": properties or {"firstname": "first_name", "lastname": "last_name"},
            "segment_lists": dict(self.segment_lists),
            "subscription_ids": list(self.subscription_ids),
            **self.tuning(),
        }
        if self.legal_basis:
            options["legal_basis"] = self.legal_basis
        if self.base_url:
            options["base_url"] = self.base_url
        return options


class WebhookDestination(_TargetTuning, _Destination):
    """Signed JSON batches POSTed to a URL (target-crmhub-webhook)."""

    type: Literal["webhook"] = Field(description="webhook")
    url: str = Field(description="Receiver URL.")
    secret: SecretStr = Field(description="whsec_… signing secret (write it as ${ENV}).")
    event_type: str = Field("crm_hub.records", description="The payload's `type`.")
    headers: dict[str, str] = Field(default_factory=dict, description="Extra request headers.")

    def target_options(self) -> dict[str, Any]:
        """Target config keys of this destination."""
        return {
            "url": self.url,
            "secret": self.secret.get_secret_value(),
            "event_type": self.event_type,
            "headers": dict(self.headers),
            **self.tuning(),
        }


class FileDestination(_Destination):
    """A file drop per run: CSV, JSONL or Parquet, written atomically."""

    type: Literal["file"] = Field(description="file")
    path: str = Field(
        description="Output file, relative to hub.yaml; {destination}, {run_id} and {timestamp} "
        "are filled in, e.g. out/{destination}-{timestamp}.csv."
    )
    format: Literal["auto", "csv", "jsonl", "parquet"] = Field(
        "auto", description="auto picks by extension (.csv, .jsonl, .parquet)."
    )

    def file_format(self) -> str:
        """The format, with auto resolved from the extension."""
        if self.format != "auto":
            return self.format
        for ext, kind in ((".csv", "csv"), (".parquet", "parquet"), (".jsonl", "jsonl"),
                          (".ndjson", "jsonl")):  # fmt: skip
            if self.path.endswith(ext):
                return kind
        return "jsonl"


class SqlDestination(_Destination):
    """A table in another database, upserted by master id (people removed are deleted)."""

    type: Literal["sql"] = Field(description="sql")
    url: SecretStr = Field(
        description="SQLAlchemy URL of the other database (write passwords as ${ENV})."
    )
    table: str = Field(
        pattern=r"^[a-z][a-z0-9_]{0,62}$", description="Table name; created when missing."
    )


class SingerDestination(_Destination):
    """Any Singer target run as a program: the hub writes SCHEMA, RECORD and STATE to it."""

    type: Literal["singer"] = Field(description="singer")
    command: list[str] = Field(min_length=1, description="The target's command line.")
    config: dict[str, Any] = Field(
        default_factory=dict, repr=False, description="The target's own config, passed as is."
    )

    @field_validator("command", mode="before")
    @classmethod
    def _split_command(cls, value: Any) -> Any:
        return value.split() if isinstance(value, str) else value

    def target_options(self) -> dict[str, Any]:
        """The target's config as given."""
        return dict(self.config)


DestinationConfig = Annotated[
    MailchimpDestination
    | HubSpotDestination
    | WebhookDestination
    | FileDestination
    | SqlDestination
    | SingerDestination,
    Field(discriminator="type"),
]

DESTINATION_TYPES: dict[str, type[_Destination]] = {
    "mailchimp": MailchimpDestination,
    "hubspot": HubSpotDestination,
    "webhook": WebhookDestination,
    "file": FileDestination,
    "sql": SqlDestination,
    "singer": SingerDestination,
}
