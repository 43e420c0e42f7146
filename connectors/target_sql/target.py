"""``target-crmhub-sql``: upsert records into a SQLite or PostgreSQL table per stream, by the
stream's key properties (the table and store-side writes of the hub's ``type: sql``,
:mod:`crm_hub.publish.tables`)."""

from __future__ import annotations

from typing import Any

from singer_sdk import Target
from singer_sdk import typing as th
from singer_sdk.exceptions import ConfigValidationError
from sqlalchemy.pool import NullPool

from connectors.target_common import BatchReporter, rejections_property
from connectors.target_sql.sinks import SqlSink
from crm_hub.errors import ConfigError
from crm_hub.publish.tables import open_database


class TargetSql(Target):
    """Singer target writing into SQL tables (see README.md)."""

    name = "target-crmhub-sql"
    default_sink_class = SqlSink
    config_jsonschema = th.PropertiesList(
        th.Property(
            "url",
            th.StringType,
            required=True,
            secret=True,
            description=(
                "SQLAlchemy URL of the database: sqlite:///out.db or "
                "postgresql+psycopg://user:password@host/db (a secret: it holds the password)."
            ),
        ),
        th.Property(
            "table",
            th.StringType,
            default="{stream}",
            description="Table name; {stream} is filled in. Created when missing.",
        ),
        th.Property(
            "batch_size",
            th.IntegerType(minimum=1),
            default=1000,
            description="Records per batch: one transaction and one STATE line each.",
        ),
        rejections_property(),
    ).to_dict()

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        config = dict(self.config)
        try:
            self.table_name("stream")
            # No pool: a batch is one transaction, and a run stopped by an error (singer-sdk
            # does not call process_endofpipe then) leaves no connection open behind it.
            self.engine = open_database(str(config["url"]), "target-crmhub-sql", poolclass=NullPool)
        except (KeyError, IndexError, ValueError) as exc:
            raise config_error(
                f"config 'table': unknown placeholder {exc} (use {{stream}})"
            ) from None
        except ConfigError as exc:
            raise config_error(f"config 'url': {exc}") from None
        self.reporter = BatchReporter("sql", config.get("rejections_path"), self.logger)

    def table_name(self, stream: str) -> str:
        """The table of ``stream``."""
        return str(self.config.get("table") or "{stream}").format(stream=stream)

    def process_endofpipe(self) -> None:
        """Drain every sink, then close the connections."""
        try:
            super().process_endofpipe()
        finally:
            self.engine.dispose()


def config_error(message: str) -> ConfigValidationError:
    """A config error whose message singer-sdk's CLI prints (it logs ``errors``, not the text)."""
    return ConfigValidationError(message, errors=[message])
