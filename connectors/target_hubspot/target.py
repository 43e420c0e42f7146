"""``target-crmhub-hubspot``: upsert contacts into HubSpot by e-mail, with list membership;
archive, GDPR-delete and unsubscribe them."""

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
from connectors.target_hubspot.sinks import BATCH_LIMIT, HubSpotSink


class TargetHubSpot(Target):
    """Singer target for HubSpot contacts (see README.md)."""

    name = "target-crmhub-hubspot"
    default_sink_class = HubSpotSink
    config_jsonschema = th.PropertiesList(
        th.Property(
            "access_token",
            th.StringType,
            required=True,
            secret=True,
            description="Private-app access token (Bearer).",
        ),
        th.Property(
            "base_url",
            th.StringType,
            default="https://api.hubapi.com",
            description="API root (the sandbox's `{url}/hubspot`).",
        ),
        th.Property(
            "email_field",
            th.StringType,
            default="email",
            description="Record field with the e-mail address (the upsert's idProperty).",
        ),
        th.Property(
            "properties",
            th.ObjectType(additional_properties=th.StringType),
            default={"firstname": "first_name", "lastname": "last_name", "phone": "phone"},
            description="HubSpot property → record field. Values are sent as strings; an "
            "absent field is left alone, null clears the property.",
        ),
        th.Property(
            "segments_field",
            th.StringType,
            default="segments",
            description="Array field of the person's current segment names.",
        ),
        th.Property(
            "segment_lists",
            th.ObjectType(additional_properties=th.StringType),
            default={},
            description="Segment name → id of a MANUAL HubSpot contact list the target "
            "keeps in step (added when in the segment, removed otherwise).",
        ),
        th.Property(
            "consent_field",
            th.StringType,
            default="email_consent",
            description="Boolean field: false unsubscribes the contact from e-mail (never the "
            "other way: v3 cannot re-subscribe anyone).",
        ),
        th.Property(
            "subscription_ids",
            th.ArrayType(th.StringType),
            default=[],
            description="Subscription types an opt-out unsubscribes from (default: every "
            "active, non-internal type of the portal).",
        ),
        th.Property(
            "legal_basis",
            th.StringType,
            description="legalBasis sent with an unsubscribe (GDPR-enabled portals), e.g. "
            "CONSENT_WITH_NOTICE.",
        ),
        th.Property(
            "legal_basis_explanation",
            th.StringType,
            description="legalBasisExplanation sent with an unsubscribe.",
        ),
        *common_properties(batch_default=BATCH_LIMIT, batch_max=BATCH_LIMIT),
    ).to_dict()

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        config = dict(self.config)
        self.parts = TargetParts(
            http=DestinationHttp(
                str(config.get("base_url") or "https://api.hubapi.com"),
                RetryPolicy.from_config(config),
                name="hubspot",
                headers={"Authorization": f"Bearer {config['access_token']}"},
                logger=self.logger,
            ),
            reporter=BatchReporter("hubspot", config.get("rejections_path"), self.logger),
        )

    def process_endofpipe(self) -> None:
        """Drain every sink, then close the HTTP client."""
        try:
            super().process_endofpipe()
        finally:
            self.parts.http.close()
