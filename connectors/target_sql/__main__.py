"""``python -m connectors.target_sql --config c.json < messages.jsonl``."""

from __future__ import annotations

from connectors.target_sql.target import TargetSql

TargetSql.cli()
