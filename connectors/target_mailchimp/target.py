"""``target-crmhub-mailchimp``: upsert audience members into one Mailchimp audience."""

from __future__ import annotations

from typing import Any

from singer_sdk import Target
from singer_sdk import typing as th

from connectors.target_common import (
    BatchReporter,
    DestinationHttp,
    RetryPolicy,
    TargetParts,
    common_properties,
)
from connectors.target_mailchimp.sinks import MailchimpSink


def api_root(config: dict[str, Any]) -> str:
    """The API root: ``base_url`` if given, else ``https://{server}.api.mailchimp.com`` with the
    server taken from ``server`` or from the API key's ``-us21`` suffix."""
    if config.get("base_url"):
        return str(config["base_url"]).rstrip("/")
    server = config.get("server") or str(config["api_key"]).rpartition("-")[2]
    return f"https://{server}.api.mailchimp.com"


class TargetMailchimp(Target):
    """Singer target for a Mailchimp audience (see README.md)."""

    name = "target-crmhub-mailchimp"
    default_sink_class = MailchimpSink
    config_jsonschema = th.PropertiesList(
        th.Property(
            "api_key",
            th.StringType,
            required=True,
            secret=True,
            description="Mailchimp API key (`<hex>-us21`), used as the Basic-auth password.",
        ),
        th.Property(
            "server",
            th.StringType,
            description="Data centre (`us21`); default: the API key's suffix.",
        ),
        th.Property(
            "base_url",
            th.StringType,
            description="API root without `/3.0` (overrides `server`; the sandbox's "
            "`{url}/mailchimp`).",
        ),
        th.Property("list_id", th.StringType, required=True, description="Audience (list) id."),
        th.Property(
            "email_field",
            th.StringType,
            default="email",
            description="Record field with the "
            "e-mail address (the member is addressed by its MD5 subscriber hash).",
        ),
        th.Property(
            "merge_fields",
            th.ObjectType(additional_properties=th.StringType),
            default={"FNAME": "first_name", "LNAME": "last_name"},
            description="Merge tag → record field. An absent field is left alone, null clears.",
        ),
        th.Property(
            "consent_field",
            th.StringType,
            default="email_consent",
            description="Boolean record field: true → `status_if_new: subscribed`; false → "
            "`unsubscribed`; null/absent → `status_if_new_without_consent`.",
        ),
        th.Property(
            "status_if_new_without_consent",
            th.StringType(allowed_values=["transactional", "pending", "unsubscribed"]),
            default="transactional",
            description="Status a new member without recorded consent is created with.",
        ),
        th.Property(
            "segments_field",
            th.StringType,
            default="segments",
            description="Array field of segment names: each becomes an active tag.",
        ),
        th.Property(
            "segments_exited_field",
            th.StringType,
            default="segments_exited",
            description="Array field of segments the person left: those tags are removed.",
        ),
        th.Property(
            "tag_prefix",
            th.StringType,
            default="",
            description="Prefix of the tags the hub owns; when set, a member's tags with the "
            "prefix that are not in `segments` are removed.",
        ),
        th.Property(
            "delete_mode",
            th.StringType(allowed_values=["archive", "delete_permanent"]),
            default="archive",
            description="What a record with `_deleted: true` does (`_erase: true` always "
            "deletes permanently).",
        ),
        th.Property(
            "concurrency",
            th.IntegerType(minimum=1, maximum=10),
            default=4,
            description="Member requests in flight (Mailchimp allows 10 connections).",
        ),
        *common_properties(batch_default=100, batch_max=1000),
    ).to_dict()

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        config = dict(self.config)
        self.parts = TargetParts(
            http=DestinationHttp(
                f"{api_root(config)}",
                RetryPolicy.from_config(config),
                name="mailchimp",
                auth=("crm-hub", str(config["api_key"])),
                logger=self.logger,
            ),
            reporter=BatchReporter("mailchimp", config.get("rejections_path"), self.logger),
        )

    def process_endofpipe(self) -> None:
        """Drain every sink, then close the HTTP client."""
        try:
            super().process_endofpipe()
        finally:
            self.parts.http.close()
