"""``python -m connectors.target_files --config c.json < messages.jsonl``."""

from __future__ import annotations

from connectors.target_files.target import TargetFiles

TargetFiles.cli()
