"""Singer target that upserts crm-hub profiles into a Mailchimp audience (see README.md)."""

from __future__ import annotations

from connectors.target_mailchimp.target import TargetMailchimp

__all__ = ["TargetMailchimp"]
