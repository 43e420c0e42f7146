"""Singer target that upserts crm-hub profiles into HubSpot contacts (see README.md)."""

from __future__ import annotations

from connectors.target_hubspot.target import TargetHubSpot

__all__ = ["TargetHubSpot"]
