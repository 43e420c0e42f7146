"""Singer target upserting records into a SQLite or PostgreSQL table (see README.md)."""

from __future__ import annotations

from connectors.target_sql.target import TargetSql

__all__ = ["TargetSql"]
