"""What a crm-hub target holds for all its sinks: one HTTP client (one time budget) and one
reporter (one rejections file, one STATE writer)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from connectors.target_common.http import DestinationHttp
from connectors.target_common.report import BatchReporter


@dataclass(frozen=True)
class TargetParts:
    """The shared collaborators of one target run."""

    http: DestinationHttp
    reporter: BatchReporter


def parts_of(target: object) -> TargetParts:
    """The ``parts`` a crm-hub target built in its ``__init__`` (for its sinks).

    Raises:
        TypeError: when the target is not a crm-hub target.
    """
    parts = getattr(target, "parts", None)
    if not isinstance(parts, TargetParts):
        raise TypeError(f"{type(target).__name__} has no crm-hub TargetParts")
    return parts


def batch_size(config: Mapping[str, Any], default: int) -> int:
    """The configured ``batch_size``."""
    return int(config.get("batch_size") or default)
