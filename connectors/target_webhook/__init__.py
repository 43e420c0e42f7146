"""Singer target posting crm-hub records as signed JSON batches (see README.md)."""

from __future__ import annotations

from connectors.target_webhook.target import TargetWebhook

__all__ = ["TargetWebhook"]
