"""What a crm-hub target tells the hub after each batch: confirmed keys, rejected keys, reasons.

The contract (the same for every crm-hub target, documented in each README):

1. A record the destination refuses (HTTP 400 on its own request, an item error in a batch
   answer, or a record the target cannot send, e.g. no e-mail) does **not** fail the run. One
   JSON line per rejected record is appended to the file named by ``rejections_path``::

       {"destination": "mailchimp", "stream": "profiles", "key": "m-42",
        "reason": "HTTP 400 Invalid Resource: x@y looks fake or invalid", "status": 400,
        "batch_id": "…", "at": "2026-11-02T10:00:00+00:00"}

2. After each batch is settled (every record either landed or rejected, rejections already
   flushed to the file) the target writes one state line to stdout, the way Singer targets
   emit state (the bare state value, one JSON object per line)::

       {"crm_hub_target": {"destination": "mailchimp", "stream": "profiles", "batch_id": "…",
        "confirmed": ["m-1", "m-2"], "rejected": [{"key": "m-42", "reason": "…"}]}}

   The input's own STATE values are echoed as singer-sdk does (after all sinks drained); they
   never carry the ``crm_hub_target`` key, so a reader tells the two apart.

3. A batch that cannot be settled (credentials refused, destination down past the retries and
   the time budget) stops the run with an error before its STATE: its records are neither
   confirmed nor rejected and are simply sent again next time (every write is an upsert).

The record key is the value of the stream's key property (a list when the key is compound,
``null`` when the stream has none).
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, TextIO

STATE_KEY = "crm_hub_target"


@dataclass(frozen=True)
class Rejection:
    """One record the destination (or the target) refused.

    Attributes:
        key: the record key.
        reason: the destination's words, prefixed with the HTTP status when there was one.
        status: the HTTP status, or ``None`` when the target refused before sending.
    """

    key: Any
    reason: str
    status: int | None = None


@dataclass
class BatchOutcome:
    """What happened to every record of one batch."""

    confirmed: list[Any] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)


def jsonable(value: Any) -> Any:
    """A value JSON can carry: datetimes and dates as ISO text, decimals as text, recursively."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


def record_key(record: dict[str, Any], key_properties: Sequence[str]) -> Any:
    """The key the hub knows a record by: one value, a list for a compound key, or ``None``."""
    if not key_properties:
        return None
    values = [jsonable(record.get(name)) for name in key_properties]
    return values[0] if len(values) == 1 else values


class BatchReporter:
    """Writes rejections to the JSONL file and the per-batch STATE to stdout, thread-safely.

    Args:
        destination: target name (``mailchimp``).
        rejections_path: the JSONL file to append to, or ``None`` (rejections are then logged
            and only reported in STATE).
        logger: where counts go.
        out: the Singer output stream.
    """

    def __init__(
        self,
        destination: str,
        rejections_path: str | None,
        logger: logging.Logger,
        out: TextIO | None = None,
    ) -> None:
        self.destination = destination
        self.path = Path(rejections_path) if rejections_path else None
        self._logger = logger
        self._out = out
        self._lock = threading.Lock()
        self.confirmed = 0
        self.rejected = 0

    def report(self, stream: str, batch_id: str, outcome: BatchOutcome) -> None:
        """Persist the rejections of a settled batch, then emit its STATE."""
        now = datetime.now(UTC).isoformat(timespec="seconds")
        lines = [
            json.dumps(
                {
                    "destination": self.destination,
                    "stream": stream,
                    "key": r.key,
                    "reason": r.reason,
                    "status": r.status,
                    "batch_id": batch_id,
                    "at": now,
                },
                ensure_ascii=False,
            )
            for r in outcome.rejected
        ]
        state = {
            STATE_KEY: {
                "destination": self.destination,
                "stream": stream,
                "batch_id": batch_id,
                "confirmed": outcome.confirmed,
                "rejected": [{"key": r.key, "reason": r.reason} for r in outcome.rejected],
            }
        }
        with self._lock:
            if lines and self.path is not None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                with self.path.open("a", encoding="utf-8") as handle:
                    handle.write("\n".join(lines) + "\n")
                    handle.flush()
                    os.fsync(handle.fileno())
            out = self._out or sys.stdout
            out.write(json.dumps(state, ensure_ascii=False) + "\n")
            out.flush()
            self.confirmed += len(outcome.confirmed)
            self.rejected += len(outcome.rejected)
        for r in outcome.rejected if self.path is None else ():
            self._logger.warning("target.rejected stream=%s reason=%s", stream, r.reason)
        self._logger.info(
            "target.batch destination=%s stream=%s confirmed=%s rejected=%s",
            self.destination,
            stream,
            len(outcome.confirmed),
            len(outcome.rejected),
        )
