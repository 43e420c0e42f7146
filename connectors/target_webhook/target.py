"""``target-crmhub-webhook``: POST JSON batches signed the Standard Webhooks way."""

from __future__ import annotations

from typing import Any

from singer_sdk import Target
from singer_sdk import typing as th
from singer_sdk.exceptions import ConfigValidationError

from connectors.target_common import (
    BatchReporter,
    DestinationHttp,
    RetryPolicy,
    TargetParts,
    common_properties,
)
from connectors.target_webhook.signing import SecretError, secret_key
from connectors.target_webhook.sinks import WebhookSink


class TargetWebhook(Target):
    """Singer target posting signed JSON batches to a URL (see README.md)."""

    name = "target-crmhub-webhook"
    default_sink_class = WebhookSink
    config_jsonschema = th.PropertiesList(
        th.Property("url", th.StringType, required=True, description="Receiver URL (POST)."),
        th.Property(
            "secret",
            th.StringType,
            required=True,
            secret=True,
            description="Signing secret, `whsec_` + base64 of at least 24 random bytes.",
        ),
        th.Property(
            "event_type",
            th.StringType,
            default="crm_hub.records",
            description="The payload's `type`.",
        ),
        th.Property(
            "headers",
            th.ObjectType(additional_properties=th.StringType),
            default={},
            description="Extra headers sent with every request.",
        ),
        *common_properties(batch_default=100, batch_max=10_000),
    ).to_dict()

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        config = dict(self.config)
        try:
            secret_key(str(config["secret"]))
        except SecretError as exc:
            raise ConfigValidationError(f"config 'secret': {exc}") from None
        self.parts = TargetParts(
            http=DestinationHttp(
                str(config["url"]),
                RetryPolicy.from_config(config),
                name="webhook",
                logger=self.logger,
            ),
            reporter=BatchReporter("webhook", config.get("rejections_path"), self.logger),
        )

    def process_endofpipe(self) -> None:
        """Drain every sink, then close the HTTP client."""
        try:
            super().process_endofpipe()
        finally:
            self.parts.http.close()
