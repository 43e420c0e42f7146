"""Files sink: batches are kept in memory, per stream, until the run ends; then each stream's
file is written atomically (:func:`crm_hub.publish.drops.write_atomically`) and only then is
every batch of it reported confirmed. A run killed before that leaves no file and no STATE.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Any

from singer_sdk.sinks import BatchSink

from connectors.target_common import BatchOutcome, BatchReporter, batch_size, record_key
from crm_hub.publish.drops import RENDERERS, write_atomically


@dataclass
class StreamDrop:
    """What one stream has gathered this run: its records and the batches not yet reported."""

    path: Path
    format: str
    records: list[dict[str, Any]] = field(default_factory=list)
    batches: list[tuple[str, list[Any]]] = field(default_factory=list)

    def write(self, stream: str, reporter: BatchReporter) -> None:
        """Write the file (none when there are no records), then report every batch."""
        if self.records:
            write_atomically(self.path, RENDERERS[self.format](self.records))
        for batch_id, keys in self.batches:
            reporter.report(stream, batch_id, BatchOutcome(confirmed=keys))


class FilesSink(BatchSink):
    """Adds each batch to its stream's :class:`StreamDrop` (held by the target)."""

    def __init__(self, target: Any, stream_name: str, schema: dict[str, Any], key_properties: Any):
        super().__init__(target, stream_name, schema, key_properties)
        self._drop: StreamDrop = target.drop_for(stream_name)

    @property
    def max_size(self) -> int:
        """Records per batch (``batch_size``): one STATE line each once the file is written."""
        return batch_size(self.config, 1000)

    def process_batch(self, context: dict[str, Any]) -> None:
        """Keep the batch; it is written at the end of the run."""
        records: list[dict[str, Any]] = context.get("records", [])
        self._drop.records.extend({k: plain(v) for k, v in r.items()} for r in records)
        keys = [record_key(r, self.key_properties) for r in records]
        self._drop.batches.append((f"batch_{uuid.uuid4().hex}", keys))
        self.tally_record_written(len(records))


def plain(value: Any) -> Any:
    """A value the renderers take: dates and times as ISO text, decimals as numbers."""
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value
