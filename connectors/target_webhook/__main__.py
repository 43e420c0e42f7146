"""``python -m connectors.target_webhook --config c.json < messages.jsonl``."""

from __future__ import annotations

from connectors.target_webhook.target import TargetWebhook

TargetWebhook.cli()
