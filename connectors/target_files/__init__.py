"""Singer target writing one CSV, JSONL or Parquet file per stream per run (see README.md)."""

from __future__ import annotations

from connectors.target_files.target import TargetFiles

__all__ = ["TargetFiles"]
