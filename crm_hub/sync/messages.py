"""What a source reader yields: records, state checkpoints and rejections.

This is the Airbyte message model cut to what the hub needs. The engine's promise to a reader:
a ``StateMessage`` is committed only together with (or after) every record yielded before it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

__all__ = ["Message", "RecordMessage", "RejectMessage", "SourceReader", "StateMessage"]


@dataclass(slots=True)
class RecordMessage:
    """One record of a stream, as the source delivered it."""

    stream: str
    data: dict[str, Any]
    where: str | None = None  # file or endpoint, for messages about this record
    line: int | None = None
    deleted: bool = False


@dataclass(slots=True)
class StateMessage:
    """A checkpoint: resume here once every record before it is committed."""

    stream: str
    state: dict[str, Any]


@dataclass(slots=True)
class RejectMessage:
    """A record the source could not even parse (bad line, bad JSON, missing key)."""

    stream: str
    reason_code: str
    message: str
    reject_key: str
    location: str | None = None
    payload: str | None = None
    record_key: str | None = None


Message = RecordMessage | StateMessage | RejectMessage


class SourceReader(Protocol):
    """A source, as the sync engine sees it."""

    def streams(self) -> dict[str, list[str]]:
        """Stream name → primary-key fields."""
        ...

    def read(self, state: dict[str, Any]) -> Iterator[Message]:
        """Yield messages, resuming from ``state`` (stream → saved state)."""
        ...

    def position(self) -> tuple[int, int | None]:
        """Work done and total work (e.g. bytes), for progress bars; total None if unknown."""
        ...
