"""Webhook sink: each batch is one signed JSON POST.

Body (the Standard Webhooks payload shape)::

    {"type": "<event_type>", "timestamp": "<ISO 8601 UTC>",
     "data": {"stream": "<stream>", "key_properties": [...], "records": [...]}}

A 2xx confirms every record of the batch; any other 4xx (401/403 stop the run) rejects every
record of the batch with the receiver's answer; 429/5xx/timeouts are retried by the shared HTTP
layer (``Retry-After`` honoured), with the same ``webhook-id`` so the receiver can de-duplicate.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from singer_sdk.sinks import BatchSink

from connectors.target_common import (
    BatchOutcome,
    Rejection,
    batch_size,
    http_reason,
    jsonable,
    parts_of,
    record_key,
)
from connectors.target_webhook.signing import new_message_id, secret_key, signed_headers


class WebhookSink(BatchSink):
    """Posts batches; see the module docstring."""

    def __init__(self, target: Any, stream_name: str, schema: dict[str, Any], key_properties: Any):
        super().__init__(target, stream_name, schema, key_properties)
        self._parts = parts_of(target)
        self._key = secret_key(str(self.config["secret"]))

    @property
    def max_size(self) -> int:
        """Records per batch (``batch_size``)."""
        return batch_size(self.config, 100)

    def process_batch(self, context: dict[str, Any]) -> None:
        """POST the batch once (retrying transient failures), then report the outcome."""
        records: list[dict[str, Any]] = context.get("records", [])
        keys = [record_key(r, self.key_properties) for r in records]
        payload = {
            "type": self.config.get("event_type") or "crm_hub.records",
            "timestamp": datetime.now(UTC).isoformat(),
            "data": {
                "stream": self.stream_name,
                "key_properties": list(self.key_properties),
                "records": jsonable(records),
            },
        }
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        msg_id = new_message_id()
        static = dict(self.config.get("headers") or {})
        response = self._parts.http.request(
            "POST",
            str(self.config["url"]),
            content=body,
            headers=lambda: {**static, **signed_headers(self._key, msg_id, body)},
        )
        outcome = BatchOutcome()
        if response.is_success:
            outcome.confirmed = keys
        else:
            reason = http_reason(response)
            outcome.rejected = [Rejection(k, reason, response.status_code) for k in keys]
        self._parts.reporter.report(self.stream_name, msg_id, outcome)
        self.tally_record_written(len(outcome.confirmed))
