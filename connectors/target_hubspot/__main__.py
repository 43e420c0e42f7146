"""``python -m connectors.target_hubspot --config c.json < messages.jsonl``."""

from __future__ import annotations

from connectors.target_hubspot.target import TargetHubSpot

TargetHubSpot.cli()
