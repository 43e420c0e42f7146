"""``python -m connectors.target_mailchimp --config c.json < messages.jsonl``."""

from __future__ import annotations

from connectors.target_mailchimp.target import TargetMailchimp

TargetMailchimp.cli()
