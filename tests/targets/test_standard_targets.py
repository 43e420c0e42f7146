"""singer-sdk's standard target suite on the crm-hub targets: the three vendor ones against the
sandbox, the files target in a temporary folder, the SQL target on a SQLite file and in a fresh
PostgreSQL schema (dropped at exit).

The suite's streams carry no e-mail addresses, so Mailchimp and HubSpot reject their records
locally (reported, not sent); the webhook target posts every batch to the signed receiver. The
suite checks the Singer side: schema changes, key handling, odd data, the CLI.
"""

from __future__ import annotations

import atexit
import tempfile
import uuid
from pathlib import Path

import psycopg
from singer_sdk.testing import get_target_test_class

from connectors.sandbox import SandboxConfig, SandboxServer
from connectors.target_files import TargetFiles
from connectors.target_hubspot import TargetHubSpot
from connectors.target_mailchimp import TargetMailchimp
from connectors.target_sql import TargetSql
from connectors.target_webhook import TargetWebhook
from tests.conftest import PG_DSN, pg_url

# The suite takes its config when the class is built, so the sandbox starts at import.
_SANDBOX = SandboxServer(SandboxConfig(seed=7, customers=50)).start()
atexit.register(_SANDBOX.stop)
_INFO = _SANDBOX.info()
_FOLDER = Path(tempfile.mkdtemp(prefix="crm-hub-std-targets-"))
_REJECTIONS = str(_FOLDER / "rejected.jsonl")


def _fresh_pg_schema() -> str:
    """A PostgreSQL schema of its own for the SQL target's suite, dropped at exit."""
    schema = f"t_std_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_DSN, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')

    def drop() -> None:
        with psycopg.connect(PG_DSN, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')

    atexit.register(drop)
    return schema


TestTargetWebhook = get_target_test_class(
    TargetWebhook,
    config={
        "url": f"{_SANDBOX.vendor_url('webhook')}/standard",
        "secret": _INFO["vendors"]["webhook"]["secret"],
        "rejections_path": _REJECTIONS,
    },
)

TestTargetMailchimp = get_target_test_class(
    TargetMailchimp,
    config={
        "api_key": "sandbox-mailchimp-key-us21",
        "base_url": _SANDBOX.vendor_url("mailchimp"),
        "list_id": _INFO["vendors"]["mailchimp"]["list_ids"][0],
        "rejections_path": _REJECTIONS,
    },
)

TestTargetHubSpot = get_target_test_class(
    TargetHubSpot,
    config={
        "access_token": "sandbox-hubspot-token",
        "base_url": _SANDBOX.vendor_url("hubspot"),
        "rejections_path": _REJECTIONS,
    },
)

TestTargetFiles = get_target_test_class(
    TargetFiles,
    config={"path": str(_FOLDER / "files" / "{stream}-{timestamp}.jsonl")},
)

TestTargetFilesCsv = get_target_test_class(
    TargetFiles,
    config={"path": str(_FOLDER / "csv" / "{stream}-{timestamp}.csv")},
)

TestTargetSqlSqlite = get_target_test_class(
    TargetSql,
    config={"url": f"sqlite:///{_FOLDER / 'standard.db'}", "rejections_path": _REJECTIONS},
)

TestTargetSqlPostgres = get_target_test_class(
    TargetSql,
    config={"url": pg_url(_fresh_pg_schema()), "rejections_path": _REJECTIONS},
)
