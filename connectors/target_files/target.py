"""``target-crmhub-files``: one CSV, JSONL or Parquet file per stream per run, written
atomically (the writers of the hub's ``type: file``, :mod:`crm_hub.publish.drops`)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from singer_sdk import Target
from singer_sdk import typing as th
from singer_sdk.exceptions import ConfigValidationError

from connectors.target_common import BatchReporter
from connectors.target_files.sinks import FilesSink, StreamDrop
from crm_hub.publish.drops import format_for_path


class TargetFiles(Target):
    """Singer target writing file drops (see README.md)."""

    name = "target-crmhub-files"
    default_sink_class = FilesSink
    config_jsonschema = th.PropertiesList(
        th.Property(
            "path",
            th.StringType,
            required=True,
            description=(
                "Output file, relative to the working directory; {stream} and {timestamp} "
                "(UTC, 20261102T100000) are filled in, e.g. out/{stream}-{timestamp}.csv."
            ),
        ),
        th.Property(
            "format",
            th.StringType(allowed_values=["auto", "csv", "jsonl", "parquet"]),
            default="auto",
            description="auto picks by extension (.csv, .parquet, .jsonl/.ndjson; else JSONL).",
        ),
        th.Property(
            "batch_size",
            th.IntegerType(minimum=1),
            default=1000,
            description="Records per batch; one STATE line per batch once the file is written.",
        ),
    ).to_dict()

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        self.drops: dict[str, StreamDrop] = {}
        self.reporter = BatchReporter("files", None, self.logger)
        self._files_written = False
        try:
            self._path_of("stream")
        except (KeyError, IndexError, ValueError) as exc:
            raise config_error(
                f"config 'path': unknown placeholder {exc} (use {{stream}}, {{timestamp}})"
            ) from None

    def _path_of(self, stream: str) -> Path:
        template = str(self.config["path"])
        return Path(template.format(stream=stream, timestamp=self.stamp)).expanduser()

    def drop_for(self, stream: str) -> StreamDrop:
        """The drop of ``stream`` (kept across schema changes: one file per stream per run).

        Raises:
            ConfigValidationError: when two streams would write the same file.
        """
        if stream not in self.drops:
            path = self._path_of(stream)
            if any(d.path == path for d in self.drops.values()):
                raise config_error(
                    f"config 'path': streams would share the file {path}; put {{stream}} in it"
                )
            kind = format_for_path(path.name, str(self.config.get("format") or "auto"))
            self.drops[stream] = StreamDrop(path, kind)
        return self.drops[stream]

    def process_endofpipe(self) -> None:
        """Drain every sink, write the files, then report the batches and the input's STATE."""
        super().process_endofpipe()
        for stream, drop in self.drops.items():
            drop.write(stream, self.reporter)
        self._files_written = True
        if self._latest_state:
            self._write_state_message(self._latest_state)

    def _write_state_message(self, state: dict[str, Any]) -> None:
        # The input's STATE says "everything before me is stored": true only once the files
        # are renamed into place, so nothing is echoed before that (singer-sdk echoes on drain).
        if self._files_written:
            super()._write_state_message(state)


def config_error(message: str) -> ConfigValidationError:
    """A config error whose message singer-sdk's CLI prints (it logs ``errors``, not the text)."""
    return ConfigValidationError(message, errors=[message])
