"""``type: file``: one drop per push, CSV, JSONL or Parquet (Parquet needs pyarrow), written to a
temporary file beside the target and renamed into place: a reader never sees half a file, and
a push killed before the rename leaves no file and no state (it is sent again next time).

Records keep their destination field names; a removal is a row with ``_deleted`` true. In CSV,
lists and objects are JSON text. A push with nothing to send writes no file.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

from crm_hub.config.destinations import FileDestination
from crm_hub.publish.driver import DriverContext, Outcome, Settle, register_driver
from crm_hub.publish.drops import RENDERERS, write_atomically
from crm_hub.publish.payload import Outgoing

__all__ = ["FileDriver"]


class FileDriver:
    """Writes every batch of one push into one file, then settles them all."""

    def __init__(self, ctx: DriverContext) -> None:
        config = ctx.config
        assert isinstance(config, FileDestination)
        self.config, self.name, self.run_id = config, ctx.name, ctx.run_id
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        relative = config.path.format(destination=ctx.name, run_id=ctx.run_id, timestamp=stamp)
        path = Path(relative).expanduser()
        self.path = path if path.is_absolute() else ctx.base_dir / path
        self.format = config.file_format()

    def recover(self, settle: Settle) -> int:
        """Nothing to recover: an unrenamed temporary file is not a drop."""
        return 0

    def send(self, batches: Iterable[list[Outgoing]], settle: Settle) -> None:
        """Write the file atomically; settle everything once it is in place."""
        items = [item for batch in batches for item in batch]
        if not items:
            return
        records = [item.record for item in items]
        write_atomically(self.path, RENDERERS[self.format](records))
        settle(Outcome(confirmed=items))


register_driver("file", FileDriver)
